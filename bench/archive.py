"""Archive of the communication log (runbook 8.1 step 2): 1,000,000 rows of which 900,000 are older than 90 days.

Baseline: the runbook's INSERT-then-DELETE (bench/baseline/archive.sh, two psql statements). Ours: comm_log_archive's
core, keyed batches of DEFAULT_BATCH_SIZE rows. Figures: both durations, the longest any batch held its row locks
(ours: statement to commit; the runbook: its DELETE holds every deleted row's lock for the whole statement).

    python -m bench.archive [--rows 1000000] [--old 900000] [--sweep 2000,5000,10000,20000,50000]

prints the same figures and, with --sweep, one line per batch size (how DEFAULT_BATCH_SIZE was chosen).
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time

from bench._harness import baseline_env, run_baseline
from bench._scenario import Scenario, private_servers
from tests.support.services import module_params

# Imported after tests.support has put the collection on sys.path.
archive = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._archive")
contract = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._contract")
TABLE_COMM_LOG = contract.TABLE_COMM_LOG
TABLE_COMM_LOG_ARCHIVE = contract.TABLE_COMM_LOG_ARCHIVE

TENANT = "5b1f0c1e-0000-4000-8000-00000000c3e1"
LOCK_TARGET_MS = 250
RUNBOOK_INSERT = ("INSERT INTO " + TABLE_COMM_LOG_ARCHIVE + " SELECT * FROM " + TABLE_COMM_LOG +
                  " WHERE created_at < NOW() - INTERVAL '90 days'")
RUNBOOK_DELETE = "DELETE FROM " + TABLE_COMM_LOG + " WHERE created_at < NOW() - INTERVAL '90 days'"


def load(pg, rows, old):
    """`rows` log rows, ids in time order as the identity column gives them in production; the first `old` of them
    are 91 days to a year old, the rest from the last 89 days."""
    conn = pg.connect()
    try:
        with conn, conn.cursor() as cur:
            cur.execute("TRUNCATE " + TABLE_COMM_LOG + ", " + TABLE_COMM_LOG_ARCHIVE + ", ops_audit_log")
            cur.execute(
                "INSERT INTO " + TABLE_COMM_LOG + " (id, tenant_id, lead_id, phone_id, channel, direction, status, "
                "email, bounce_reason, campaign_id, quota_cost, created_at) "
                "SELECT g, %(tenant)s, md5(g::text)::uuid, 'phone_' || lpad((g %% 20 + 1)::text, 2, '0'), "
                "CASE WHEN g %% 3 = 0 THEN 'EMAIL' ELSE 'WHATSAPP' END, 'OUTBOUND', "
                "CASE WHEN g %% 50 = 0 THEN 'BOUNCED' ELSE 'DELIVERED' END, "
                "CASE WHEN g %% 3 = 0 THEN 'lead' || g || '@example.ro' END, "
                "CASE WHEN g %% 50 = 0 THEN '550 5.1.1 mailbox unavailable' END, 'camp-' || (g %% 7), "
                "(g %% 3 <> 0)::int, "
                "CASE WHEN g <= %(old)s THEN now() - interval '365 days' + (g * (274.0 / %(old)s)) * interval '1 day' "
                "ELSE now() - interval '89 days' + ((g - %(old)s) * (89.0 / %(recent)s)) * interval '1 day' END "
                "FROM generate_series(1, %(rows)s) AS g",
                dict(tenant=TENANT, old=old, recent=max(1, rows - old), rows=rows))
            cur.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (TABLE_COMM_LOG, rows))
    finally:
        conn.close()
    vacuum(pg)


def vacuum(pg):
    conn = pg.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE " + TABLE_COMM_LOG + ", " + TABLE_COMM_LOG_ARCHIVE)
    finally:
        conn.close()


def cluster_cpu_seconds(pg):
    """CPU the whole PostgreSQL cluster used so far: the postmaster, its live children, and (cutime/cstime) the
    backends it already reaped. On a shared machine this compares two procedures better than wall time does."""
    ticks = float(os.sysconf("SC_CLK_TCK"))
    postmaster = pg.pid
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/{0}/stat".format(entry)) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        if pid == postmaster:
            total += sum(int(v) for v in fields[11:15])
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def counts(pg):
    conn = pg.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM " + TABLE_COMM_LOG + "), (SELECT count(*) FROM "
                        + TABLE_COMM_LOG_ARCHIVE + ")")
            return cur.fetchone()
    finally:
        conn.close()


def runbook_statements(pg):
    """The runbook's two statements as psql runs them (autocommit each); seconds of each."""
    conn = pg.connect()
    conn.autocommit = True
    timings = []
    try:
        with conn.cursor() as cur:
            for statement in (RUNBOOK_INSERT, RUNBOOK_DELETE):
                started = time.perf_counter()
                cur.execute(statement)
                timings.append(time.perf_counter() - started)
    finally:
        conn.close()
    return timings


def ours(redis_server, pg, batch_size):
    started = time.perf_counter()
    result = archive.archive_comm_log(module_params(redis_server, pg, audit_actor="bench"), batch_size=batch_size)
    return time.perf_counter() - started, result


def measure(redis_server, pg, rows, old, repeat, batch_size):
    """Alternate the runbook's shell procedure and ours on freshly loaded data; medians and the worst batch."""
    env = baseline_env(redis_server, pg)
    base, mine, base_cpu, mine_cpu, longest, batches = [], [], [], [], 0, 0
    for _round in range(repeat):
        load(pg, rows, old)
        cpu = cluster_cpu_seconds(pg)
        seconds, _rss, _out = run_baseline("archive.sh", env)
        base_cpu.append(cluster_cpu_seconds(pg) - cpu)
        base.append(seconds)
        assert counts(pg) == (rows - old, old), counts(pg)
        load(pg, rows, old)
        cpu = cluster_cpu_seconds(pg)
        seconds, result = ours(redis_server, pg, batch_size)
        mine_cpu.append(cluster_cpu_seconds(pg) - cpu)
        mine.append(seconds)
        assert result["rows_moved"] == old and result["complete"], result
        longest = max(longest, result["longest_batch_ms"])
        batches = result["batches"]
    # The runbook's DELETE holds the locks of every row it deletes until it ends: time it on its own once.
    load(pg, rows, old)
    delete_s = runbook_statements(pg)[1]
    return dict(baseline_s=statistics.median(base), ours_s=statistics.median(mine), longest_batch_ms=longest,
                batches=batches, runbook_delete_ms=delete_s * 1000, baseline_cpu_s=statistics.median(base_cpu),
                ours_cpu_s=statistics.median(mine_cpu), load=os.getloadavg()[0])


def sweep(redis_server, pg, rows, old, sizes):
    lines = []
    for size in sizes:
        load(pg, rows, old)
        cpu = cluster_cpu_seconds(pg)
        seconds, result = ours(redis_server, pg, size)
        lines.append(dict(batch_size=size, seconds=seconds, cpu_s=cluster_cpu_seconds(pg) - cpu,
                          batches=result["batches"], longest_batch_ms=result["longest_batch_ms"],
                          load=os.getloadavg()[0]))
    return lines


def run(sizes, repeat):
    with private_servers() as (redis_server, pg):
        figures = measure(redis_server, pg, sizes["rows"], sizes["old"], repeat, archive.DEFAULT_BATCH_SIZE)
    ratio = figures["ours_s"] / figures["baseline_s"]
    return [dict(scenario="archive {0:,} of {1:,} log rows".format(sizes["old"], sizes["rows"]),
                 baseline_s=figures["baseline_s"], ours_s=figures["ours_s"],
                 figure="{0:.1f}x the runbook's time; longest batch {1} ms ({2} batches of {3:,})".format(
                     ratio, figures["longest_batch_ms"], figures["batches"], archive.DEFAULT_BATCH_SIZE),
                 target="<= 2x the runbook, batches <= {0} ms".format(LOCK_TARGET_MS),
                 met=ratio <= 2 and figures["longest_batch_ms"] <= LOCK_TARGET_MS,
                 note="PostgreSQL CPU {0:.2f} s vs the runbook's {1:.2f} s; the runbook's DELETE alone holds its "
                      "row locks {2:.0f} ms".format(figures["ours_cpu_s"], figures["baseline_cpu_s"],
                                                    figures["runbook_delete_ms"]))]


SIZES = {"full": {"rows": 1000000, "old": 900000}, "tiny": {"rows": 2000, "old": 1800}}
SCENARIOS = [Scenario("archive", run, repeat=3, sizes=SIZES)]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000000)
    parser.add_argument("--old", type=int, default=900000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sweep", help="comma-separated batch sizes to time one by one")
    args = parser.parse_args(argv)
    with private_servers() as (redis_server, pg):
        if args.sweep:
            print("batch size | seconds | PostgreSQL CPU | batches | longest batch | load average")
            for line in sweep(redis_server, pg, args.rows, args.old, [int(s) for s in args.sweep.split(",")]):
                print("{batch_size:>10,} | {seconds:7.2f} | {cpu_s:12.2f} s | {batches:7} | {longest_batch_ms:>10} ms "
                      "| {load:.1f}".format(**line))
        figures = measure(redis_server, pg, args.rows, args.old, args.repeat, archive.DEFAULT_BATCH_SIZE)
    print("rows: {0:,}, old: {1:,}, batch size {2:,}".format(args.rows, args.old, archive.DEFAULT_BATCH_SIZE))
    print("runbook INSERT-then-DELETE (psql, median of {0}): {1:.2f} s, PostgreSQL CPU {2:.2f} s; its DELETE alone "
          "holds row locks {3:.0f} ms".format(
              args.repeat, figures["baseline_s"], figures["baseline_cpu_s"], figures["runbook_delete_ms"]))
    print("ours (median of {0}): {1:.2f} s = {2:.2f}x the runbook, PostgreSQL CPU {3:.2f} s = {4:.2f}x; {5} batches, "
          "longest {6} ms (target <= {7} ms)".format(
              args.repeat, figures["ours_s"], figures["ours_s"] / figures["baseline_s"], figures["ours_cpu_s"],
              figures["ours_cpu_s"] / figures["baseline_cpu_s"], figures["batches"], figures["longest_batch_ms"],
              LOCK_TARGET_MS))
    print("load average at the end: {0:.1f} on {1} CPUs".format(figures["load"], os.cpu_count()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
