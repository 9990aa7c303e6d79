"""Redis DR: reschedule 100,000 pending follow-ups (runbook 6.2 step 4).

Baseline: the runbook's step only echoes, so the baseline is what an operator would write to make it work: a loop
adding one BullMQ job per lead (`queue.add`, the package's own call). Ours: followup_reschedule's core, run in a child
process so its peak memory is its own.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone

from bench._harness import PingSampler, run_child
from bench._scenario import Scenario, private_servers
from tests.support.services import module_params

FOLLOWUP_QUEUE = "outreach:followup"
_OURS = """
import json, sys
import tests.support  # the collection on sys.path
from ansible_collections.cerniq.outreach.plugins.module_utils._followups import reschedule_followups
print(json.dumps(reschedule_followups(json.loads(sys.argv[1]))["followups"]))
"""


def seed_followups(pg, count):
    conn = pg.connect()
    now = datetime.now(timezone.utc)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("TRUNCATE gold_lead_journey CASCADE")
            cur.execute("INSERT INTO gold_lead_journey (lead_id, tenant_id, engagement_stage, next_action_at) "
                        "SELECT gen_random_uuid(), %s, 'COLD', %s + (i || ' seconds')::interval "
                        "FROM generate_series(1, %s) AS i", (str(uuid.uuid4()), now + timedelta(hours=1), count))
            cur.execute("ANALYZE gold_lead_journey")
    finally:
        conn.close()


async def _one_by_one(redis_server, rows):
    from bullmq import Queue

    queue = Queue(FOLLOWUP_QUEUE, {"connection": {"host": redis_server.host, "port": redis_server.port, "db": 2,
                                                  "password": redis_server.password}})
    try:
        now_ms = int(time.time() * 1000)
        for lead_id, due_ms in rows:
            await queue.add("followup", {"leadId": lead_id}, {"jobId": "fu-{0}-{1}".format(lead_id, due_ms),
                                                              "delay": max(0, due_ms - now_ms),
                                                              "removeOnComplete": True})
    finally:
        await queue.close()


def baseline(redis_server, pg):
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT lead_id::text, floor(extract(epoch FROM next_action_at) * 1000)::bigint "
                        "FROM gold_lead_journey WHERE next_action_at > now() AND NOT sequence_paused")
            rows = cur.fetchall()
    finally:
        conn.close()
    asyncio.run(_one_by_one(redis_server, rows))
    return len(rows)


def run(sizes, repeat):
    count = sizes["followups"]
    rows = []
    with private_servers() as (redis_server, pg):
        seed_followups(pg, count)
        params = module_params(redis_server, pg, audit_actor="bench")
        figures = {"baseline": [], "ours": [], "ping_base": 0.0, "ping_ours": 0.0, "rss": 0.0}
        for _round in range(repeat):
            redis_server.client(2).flushdb()
            with PingSampler(redis_server) as sampler:
                started = time.perf_counter()
                baseline(redis_server, pg)
                figures["baseline"].append(time.perf_counter() - started)
            figures["ping_base"] = max(figures["ping_base"], sampler.worst_ms)
            redis_server.client(2).flushdb()
            with PingSampler(redis_server) as sampler:
                elapsed, rss, out = run_child([sys.executable, "-c", _OURS, json.dumps(params)])
            figures["ours"].append(elapsed)
            figures["ping_ours"] = max(figures["ping_ours"], sampler.worst_ms)
            figures["rss"] = max(figures["rss"], rss)
            assert json.loads(out)["present"] == count, out
        # A second run on the same data adds nothing.
        _elapsed, _rss, again = run_child([sys.executable, "-c", _OURS, json.dumps(params)])
        base = sorted(figures["baseline"])[len(figures["baseline"]) // 2]
        ours = sorted(figures["ours"])[len(figures["ours"]) // 2]
        rate = count / ours
        rows.append(dict(scenario="reschedule {0:,} follow-ups".format(count), baseline_s=base, ours_s=ours,
                         figure="{0:,.0f} jobs/s (process incl. start-up)".format(rate),
                         target=">= 20,000 jobs/s, >= 2.5x the loop", met=rate >= 20000 and base / ours >= 2.5,
                         worst_ping_ms=figures["ping_ours"], peak_rss_mb=figures["rss"],
                         note="baseline worst PING {0:.0f} ms; re-run added {1}".format(
                             figures["ping_base"], json.loads(again)["added"])))
    return rows


SCENARIOS = [Scenario("dr_redis", run, repeat=3, sizes={"full": {"followups": 100000}, "tiny": {"followups": 300}})]
