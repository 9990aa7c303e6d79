"""Ban a phone (runbook 2.2): 2,000 leads on it and 10,000 pending jobs in its queue, 20 phones in all.

Baseline: the runbook's three steps made runnable (bench/baseline/ban_phone.sh: UPDATE, UPDATE, DEL of the `wait` and
`delayed` lists). Ours: `ansible-playbook playbooks/phone_banned.yml -e phone=... -e confirm=true`, the whole
procedure (plan, confirmation, one audited wa_phone ban, verification, summary) timed as the operator waits for it.
Figures: wall time of each, and the job keys each leaves behind with no state list or set pointing at them (the
runbook's DEL drops the lists and keeps every job hash: orphans that live until someone finds them).

    python -m bench --only ban_phone [--size tiny]
"""

from __future__ import annotations

import asyncio
import importlib
import statistics
import tempfile

from bench._harness import PingSampler, PlaybookCommand, baseline_env, run_baseline
from bench._scenario import Scenario, private_servers
from tests.support.seed import SeedPlan, seed_all

# Imported after tests.support has put the collection on sys.path.
contract = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._contract")
bullmq_utils = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys")

PHONE = "phone_07"
TARGET_WALL_S = 2.0
# Stage mix of the banned phone's leads: 60 % releasable (COLD, CONTACTED_WA).
STAGE_MIX = (("COLD", 40), ("CONTACTED_WA", 20), ("CONTACTED_EMAIL", 15), ("REPLIED", 15), ("CONVERTED", 5),
             ("DEAD", 5))


def seed(redis_server, pg, leads):
    conn = pg.connect()
    try:
        seed_all(conn, redis_server, SeedPlan(phones=20, leads=2000, old_log_rows=0, reviews=0, jobs_per_phone=50,
                                              dlq_entries=0, offline=(), banned=(), drift_phone="", leak_phone="",
                                              no_ttl_phone=""))
        with conn, conn.cursor() as cur:
            # The seed's own leads of the phone go to a neighbour, so every run bans exactly the same leads.
            cur.execute("UPDATE " + contract.TABLE_LEADS + " SET assigned_phone_id = 'phone_08' "
                        "WHERE assigned_phone_id = %s", (PHONE,))
            cur.execute("CREATE TABLE bench_banned_leads AS SELECT md5('ban' || g)::uuid AS lead_id, "
                        "(%s::text[])[1 + (g * 97) %% 100] AS stage FROM generate_series(1, %s) AS g",
                        (_stage_wheel(), leads))
    finally:
        conn.close()


def _stage_wheel():
    """100 stage names in the mix's proportions: row g takes wheel[g * 97 mod 100] (a fixed shuffle)."""
    wheel = []
    for stage, percent in STAGE_MIX:
        wheel += [stage] * percent
    return wheel


def reset(redis_server, pg, jobs):
    """Before every run: the phone ACTIVE in DB and Redis, its 2,000 leads assigned, its queue holding exactly `jobs`
    pending jobs and nothing else (orphans of the previous run removed)."""
    conn = pg.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("UPDATE " + contract.TABLE_PHONES + " SET status = 'ACTIVE' WHERE id = %s", (PHONE,))
            cur.execute("DELETE FROM " + contract.TABLE_LEADS + " WHERE lead_id IN (SELECT lead_id FROM "
                        "bench_banned_leads)")
            cur.execute("INSERT INTO " + contract.TABLE_LEADS + " (lead_id, tenant_id, engagement_stage, "
                        "assigned_phone_id, assigned_at) SELECT lead_id, %s, stage, %s, now() - interval '2 days' "
                        "FROM bench_banned_leads", ("5b1f0c1e-0000-4000-8000-00000000c3e1", PHONE))
    finally:
        conn.close()
    redis_server.client(contract.DEFAULT_REDIS_DB).set(contract.phone_status_key(PHONE), "ACTIVE")
    bull = redis_server.client(contract.DEFAULT_BULLMQ_DB)
    prefix = _queue_prefix()
    stale = list(bull.scan_iter(match=prefix + "*", count=5000))
    for start in range(0, len(stale), 5000):
        bull.delete(*stale[start:start + 5000])
    asyncio.run(_add_jobs(redis_server, jobs))


async def _add_jobs(redis_server, jobs):
    from bullmq import Queue

    queue = Queue(contract.phone_queue(PHONE), {"connection": {"host": redis_server.host, "port": redis_server.port,
                                                               "db": contract.DEFAULT_BULLMQ_DB,
                                                               "password": redis_server.password},
                                                "prefix": contract.BULLMQ_PREFIX})
    try:
        batch = []
        for i in range(jobs):
            opts = {"jobId": "ban-{0}".format(i)}
            if i % 3:
                opts["delay"] = 600_000 + i * 1000
            batch.append({"name": "send", "data": {"phoneId": PHONE, "seq": i}, "opts": opts})
            if len(batch) == 1000:
                await queue.addBulk(batch)
                batch = []
        if batch:
            await queue.addBulk(batch)
    finally:
        await queue.close()


def _queue_prefix():
    return "{0}:{1}:".format(contract.BULLMQ_PREFIX, contract.phone_queue(PHONE))


def orphaned_job_keys(redis_server):
    """Job hashes of the phone's queue that no state list or sorted set refers to."""
    bull = redis_server.client(contract.DEFAULT_BULLMQ_DB)
    prefix = _queue_prefix()
    pipe = bull.pipeline(transaction=False)
    for state in bullmq_utils.LIST_STATES:
        pipe.lrange(prefix + state, 0, -1)
    for state in bullmq_utils.ZSET_STATES:
        pipe.zrange(prefix + state, 0, -1)
    referenced = {job_id for members in pipe.execute() for job_id in members}
    job_keys = [key for key in bull.scan_iter(match=prefix + "ban-*", count=5000) if key.count(":") == 4]
    return sum(1 for key in job_keys if key[len(prefix):] not in referenced)


def released_leads(pg):
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM " + contract.TABLE_LEADS + " WHERE lead_id IN (SELECT lead_id FROM "
                        "bench_banned_leads) AND assigned_phone_id IS NULL")
            return cur.fetchone()[0]
    finally:
        conn.close()


def run(sizes, repeat):
    leads, jobs = sizes["leads"], sizes["jobs"]
    with private_servers() as (redis_server, pg), tempfile.TemporaryDirectory(prefix="bench-ban-") as tmp:
        seed(redis_server, pg, leads)
        playbook = PlaybookCommand(redis_server, pg, tmp)
        expected_released = sum(1 for g in range(1, leads + 1)
                                if _stage_wheel()[(g * 97) % 100] in contract.RELEASABLE_STAGES)
        figures = {"baseline": [], "ours": [], "orphans_base": 0, "orphans_ours": 0, "ping": 0.0, "rss": 0.0}
        for _round in range(repeat):
            reset(redis_server, pg, jobs)
            seconds, _rss, _out = run_baseline("ban_phone.sh", baseline_env(redis_server, pg, PHONE_ID=PHONE))
            figures["baseline"].append(seconds)
            figures["orphans_base"] = max(figures["orphans_base"], orphaned_job_keys(redis_server))
            assert released_leads(pg) == expected_released

            reset(redis_server, pg, jobs)
            with PingSampler(redis_server) as sampler:
                seconds, rss, _out = playbook.run("phone_banned.yml", {"phone": PHONE, "confirm": "true"})
            figures["ours"].append(seconds)
            figures["ping"] = max(figures["ping"], sampler.worst_ms)
            figures["rss"] = max(figures["rss"], rss)
            figures["orphans_ours"] = max(figures["orphans_ours"], orphaned_job_keys(redis_server))
            assert released_leads(pg) == expected_released
        ours = statistics.median(figures["ours"])
        return [dict(scenario="ban a phone: {0:,} leads, {1:,} pending jobs".format(leads, jobs),
                     baseline_s=statistics.median(figures["baseline"]), ours_s=ours,
                     figure="{0:.2f} s playbook wall, {1} orphaned job keys".format(ours, figures["orphans_ours"]),
                     target="<= {0:.0f} s wall, 0 orphans".format(TARGET_WALL_S),
                     met=ours <= TARGET_WALL_S and figures["orphans_ours"] == 0,
                     worst_ping_ms=figures["ping"], peak_rss_mb=figures["rss"],
                     note="baseline leaves {0:,} orphaned job keys; {1:,} leads released by both".format(
                         figures["orphans_base"], expected_released))]


SIZES = {"full": {"leads": 2000, "jobs": 10000}, "tiny": {"leads": 50, "jobs": 300}}
SCENARIOS = [Scenario("ban_phone", run, repeat=3, sizes=SIZES)]
