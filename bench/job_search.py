"""Finding jobs by data (bullmq_job_info): "which jobs are for lead X?" over 1,000,000 jobs of one queue.

No runbook procedure exists (bull-board's search is the reference), so there is no baseline. Ours: the module's core,
pages of 1,000 ids (LRANGE / ZREVRANGE), one pipeline of HGET data a page, every job examined (limit 0, no time
budget), while a PING sampler in its own process measures the longest wait another client sees.
"""

from __future__ import annotations

import importlib
import json
import time

from bench._harness import alternate
from bench._scenario import Scenario, private_servers
from tests.support.services import module_params

bullmq = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search")

QUEUE = "outreach:followup"
LEADS = 50000


def fill(redis_server, jobs):
    """`jobs` job hashes shaped as BullMQ writes them: 60 % delayed, 30 % waiting, 10 % completed; each lead has
    jobs/LEADS of them."""
    client = redis_server.client(2)
    client.flushdb()
    base = "bull:{0}:".format(QUEUE)
    now = int(time.time() * 1000)
    for start in range(0, jobs, 10000):
        pipe = client.pipeline(transaction=False)
        delayed, waiting, completed = {}, [], {}
        for i in range(start, min(jobs, start + 10000)):
            job_id = "fu-{0}".format(i)
            data = json.dumps({"leadId": "lead-{0}".format(i % LEADS), "phone": "+4071{0:07d}".format(i % LEADS),
                               "template": "followup_{0}".format(i % 3), "step": i % 5})
            pipe.hset(base + job_id, mapping={"name": "followup", "data": data, "opts": '{"attempts":3}',
                                              "timestamp": now, "delay": 0, "priority": 0, "atm": 0, "ats": 0})
            bucket = i % 10
            if bucket < 6:
                delayed[job_id] = (now + 3600000 + i) * 4096
            elif bucket < 9:
                waiting.append(job_id)
            else:
                completed[job_id] = now
        pipe.zadd(base + "delayed", delayed)
        if waiting:
            pipe.lpush(base + "wait", *waiting)
        pipe.zadd(base + "completed", completed)
        pipe.execute()
    client.set(base + "id", jobs)


def run(sizes, repeat):
    jobs = sizes["jobs"]
    with private_servers() as (redis_server, pg):
        params = module_params(redis_server, pg, audit_actor="bench")
        fill(redis_server, jobs)
        figures = {}

        def ours():
            result = bullmq.find_jobs(params, QUEUE, match={"leadId": "lead-42"}, limit=0, time_budget_ms=0)
            figures.update(found=result["found"], scanned=result["scanned"]["total"])
            return dict(figures)

        _base, mine = alternate(None, ours, repeat, redis_server=redis_server)
    expected = len(range(42, jobs, LEADS))
    return [dict(scenario="find jobs by data in {0:,} jobs".format(jobs), baseline_s=None, ours_s=mine.median,
                 figure="{0:,} scanned, {1} found, {2:,.0f} jobs/s".format(
                     figures["scanned"], figures["found"], figures["scanned"] / mine.median),
                 target="worst PING <= 100 ms", met=mine.worst_ping_ms <= 100 and figures["found"] == expected
                 and figures["scanned"] == jobs, worst_ping_ms=mine.worst_ping_ms,
                 note="pages of 1,000 ids, one HGET pipeline a page; no baseline (the runbook has no search)")]


SCENARIOS = [Scenario("job_search", run, repeat=3, sizes={"full": {"jobs": 1000000}, "tiny": {"jobs": 2000}})]
