"""Phone and quota reads, and the quota recount, beside the runbook's per-phone shell loops on the same data.

- Reads: wa_phone_info + quota_counter_info cores (one SQL query and one pipeline per Redis db each) for 20 and
  1,000 phones, against bench/baseline/phone_reads.sh (runbook 1.1 step 6 and 3.1 step 1: one redis-cli per phone
  per loop). Target: <= 0.3 s module core time for 1,000 phones.
- Recount: quota_counter sync_from=db core for 1,000 phones with 200,000 WhatsApp messages logged today, against
  bench/baseline/quota_resync.sh (runbook 6.1 step 4: psql piped into one redis-cli SET per phone). Every run starts
  from counters that are all wrong, so both sides write every counter. Target: <= 0.3 s.

Ours is timed in this process (module core time: connections, SQL, Redis, result); the baseline is the shell
script, timed as a child process.

    python -m bench.phones_quota [--size full|tiny] [--repeat N]
    python -m bench --only phones_quota
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import sys
import time

from bench._harness import alternate, baseline_env, run_baseline
from bench._scenario import Scenario, private_servers
from tests.support.seed import SeedPlan, seed_all
from tests.support.services import module_params

# Imported after tests.support has put the collection on sys.path.
contract = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._contract")
phones = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._phones")
quota = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._quota")

TARGET_S = 0.3
SIZES = {
    "full": {"read_phones": (20, 1000), "sync_phones": 1000, "messages_per_phone": 200, "jobs_per_phone": 3},
    "tiny": {"read_phones": (5,), "sync_phones": 5, "messages_per_phone": 20, "jobs_per_phone": 1},
}


def seed(redis_server, pg, phone_count, messages_per_phone, jobs_per_phone):
    """`phone_count` phones (all ACTIVE, so every one has messages, a counter and a queue), their log rows today."""
    for db in (0, 2):
        redis_server.client(db).flushdb()
    pg.reset_data()
    conn = pg.connect()
    try:
        facts = seed_all(conn, redis_server, SeedPlan(
            phones=phone_count, leads=min(phone_count * 5, 5000), wa_messages_today=messages_per_phone,
            old_log_rows=0, reviews=0, jobs_per_phone=jobs_per_phone, followups=0, dlq_entries=0, offline=(),
            banned=(), drift_phone="", leak_phone="", no_ttl_phone="", stale_yesterday_keys=False))
    finally:
        conn.close()
    return facts


def wrong_counters(redis_server, facts, tz_name):
    """Every counter off by a few (the state a recount repairs), with the runbook's TTL."""
    pipe = redis_server.client(0).pipeline(transaction=False)
    day = contract.business_day(tz_name)
    for phone_id, count in facts["wa_counts"].items():
        pipe.set(contract.quota_key(phone_id, day), count + 7, ex=contract.QUOTA_KEY_TTL_SECONDS)
    pipe.execute()


def read_ours(params, splits):
    """The morning reads as the modules do them; appends their split (for the figure column) to `splits`."""
    started = time.perf_counter()
    info = phones.phones_info(params)
    middle = time.perf_counter()
    counters = quota.quota_counters_info(params)
    ended = time.perf_counter()
    splits.append({"info_s": middle - started, "quota_s": ended - middle, "phones": len(info["phones"]),
                   "counters": len(counters["counters"])})


def sync_ours(params, results):
    results.append(quota.sync_counters_from_db(params))


def shell(script, env):
    """A baseline script as alternate() wants a run: its figures are the harness's own timing."""
    def run_script():
        run_baseline(script, env)
    return run_script


def _median(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _row(name, baseline, ours, figure, note):
    return dict(scenario=name, baseline_s=baseline.median, ours_s=ours.median, figure=figure,
                target="<= {0} s module core time".format(TARGET_S), met=ours.median <= TARGET_S,
                worst_ping_ms=ours.worst_ping_ms, note=note)


def run(sizes, repeat):
    rows = []
    with private_servers() as (redis_server, pg):
        params = module_params(redis_server, pg, audit_actor="bench")
        env = baseline_env(redis_server, pg, CERNIQ_TIMEZONE=params["timezone"])
        for phone_count in sizes["read_phones"]:
            seed(redis_server, pg, phone_count, sizes["messages_per_phone"], sizes["jobs_per_phone"])
            splits = []
            base, mine = alternate(shell("phone_reads.sh", env), functools.partial(read_ours, params, splits), repeat,
                                   redis_server)
            assert splits[-1]["phones"] == phone_count, splits[-1]
            rows.append(_row("wa_phone_info + quota read, {0:,} phones".format(phone_count), base, mine,
                             "info {0:.3f} s + quota {1:.3f} s (medians)".format(
                                 _median([s["info_s"] for s in splits]), _median([s["quota_s"] for s in splits])),
                             "baseline: 2 redis-cli per phone, reads status and quota only (no drift, TTL, limit, "
                             "queue depths, leak check)"))

        phone_count = sizes["sync_phones"]
        facts = seed(redis_server, pg, phone_count, sizes["messages_per_phone"], 0)
        messages = sum(facts["wa_counts"].values())
        results = []
        base, mine = alternate(shell("quota_resync.sh", env), functools.partial(sync_ours, params, results), repeat,
                               redis_server, reset=functools.partial(wrong_counters, redis_server, facts,
                                                                     params["timezone"]))
        corrected = results[-1]["corrected_count"]
        assert corrected == phone_count and results[-1]["total_db_count"] == messages, results[-1]["phones"]
        rows.append(_row("quota_counter sync_from=db, {0:,} phones / {1:,} rows today".format(phone_count, messages),
                         base, mine, "{0:,} counters corrected per run".format(corrected),
                         "baseline counts from the server's CURRENT_DATE (not the business day) and SETs every "
                         "phone with a relative EX; ours writes only counters that differ"))
    return rows


SCENARIOS = [Scenario("phones_quota", run, repeat=3, sizes=SIZES)]


def main(argv=None):
    from bench.__main__ import format_table

    parser = argparse.ArgumentParser(prog="python -m bench.phones_quota", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=tuple(SIZES), default="full")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rows = run(SIZES[args.size], args.repeat)
    print(format_table(rows))
    # Every figure is wall time on a shared machine: the load says how shared it was.
    print("\nload average (1, 5, 15 min) at the end: {0:.1f} {1:.1f} {2:.1f} on {3} CPU(s)".format(
        *os.getloadavg(), os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
