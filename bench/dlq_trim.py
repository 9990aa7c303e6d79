"""Trimming a 50,000-entry dead-letter list to its newest 1,000 (runbook 8.1 step 3).

Baseline: the runbook's `KEYS bull:dlq:* | xargs LTRIM` (bench/baseline/dlq_trim.sh). Ours: bullmq_queue's core with
dlq_type=list (LLEN, then LTRIM on that exact key; no KEYS), audited.
"""

from __future__ import annotations

import importlib

from bench._harness import alternate, baseline_env, run_baseline
from bench._scenario import Scenario, private_servers
from tests.support.services import module_params

bullmq = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_dlq")
contract = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._contract")


def fill(redis_server, entries):
    client = redis_server.client(2)
    client.delete(contract.DLQ_LIST_KEY)
    for start in range(0, entries, 10000):
        batch = ['{{"jobId":"dead-{0}"}}'.format(i) for i in range(start, min(entries, start + 10000))]
        client.lpush(contract.DLQ_LIST_KEY, *batch)


def run(sizes, repeat):
    entries, keep = sizes["entries"], sizes["keep"]
    with private_servers() as (redis_server, pg):
        params = module_params(redis_server, pg, audit_actor="bench")
        request = bullmq.DlqRequest(dlq_type="list", dlq_key=contract.DLQ_LIST_KEY, dlq_keep=keep, dlq_push_side="left")
        env = baseline_env(redis_server, pg)
        lengths = {}

        def baseline():
            run_baseline("dlq_trim.sh", env)
            lengths["baseline"] = redis_server.client(2).llen(contract.DLQ_LIST_KEY)

        def ours():
            result = bullmq.manage_dlq(params, request)
            lengths["ours"] = redis_server.client(2).llen(contract.DLQ_LIST_KEY)
            return {"removed": result["dlq"]["removed"]}

        base, mine = alternate(baseline, ours, repeat, redis_server=redis_server,
                               reset=lambda: fill(redis_server, entries))
    return [dict(scenario="trim a {0:,}-entry DLQ to {1:,}".format(entries, keep), baseline_s=base.median,
                 ours_s=mine.median, figure="{0:,} removed, {1:,} kept".format(mine.extra["removed"], lengths["ours"]),
                 target="no Redis stall over 100 ms", met=mine.worst_ping_ms <= 100 and lengths["ours"] == keep,
                 worst_ping_ms=mine.worst_ping_ms,
                 note="ours adds an audit row; baseline KEYS over the keyspace, worst PING {0:.0f} ms".format(
                     base.worst_ping_ms))]


SCENARIOS = [Scenario("dlq_trim", run, repeat=5,
                      sizes={"full": {"entries": 50000, "keep": 1000}, "tiny": {"entries": 300, "keep": 100}})]
