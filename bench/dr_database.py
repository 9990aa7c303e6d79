"""Database DR (runbook 6.1): restore a 1,000,000-row database, dr_database.yml beside a plain pg_restore.

Baseline: the runbook's step 2, `pg_restore -d <db> cerniq.dump`, into a fresh database (it has nothing else to
restore into). Ours: the whole dr_database.yml run (confirm=true) on the same backup - verify the backup (sha256,
pg_restore --list), stop a real Node worker, pg_restore --jobs 2 into a fresh database, compare every table with the
manifest (counts and content checksums), ANALYZE, swap it in, resync Redis, start the worker and wait for it. The
figures split our time into those steps. Also measured: db_backup at that size, and the checksum methods considered
for the manifest (why the sum of md5 prefixes).

    python -m bench.dr_database [--rows 1000000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from bench._scenario import Scenario, private_servers
from tests.support.nodeworker import WORKER_JS
from tests.support.playbooks import inventory_for, run_playbook
from tests.support.seed import SeedPlan, seed_all
from tests.support.services import REPO_ROOT, module_params

_backup = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._backup")
_snapshot = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._snapshot")

TENANT = "5b1f0c1e-0000-4000-8000-00000000c3e1"
CHECKSUMS = (
    ("count(*) only", "count(*)"),
    ("md5(string_agg(md5(row) ORDER BY id))", "md5(string_agg(md5(t::text), '' ORDER BY id))"),
    ("sum of md5 64-bit prefixes (chosen)", "sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric)"),
    ("sum of hashtextextended (internal hash)", "sum(hashtextextended(t::text, 0)::numeric)"),
)


def load(pg, redis_server, rows):
    """A realistic small platform (seed) plus communication log rows up to `rows` rows in all."""
    conn = pg.connect()
    try:
        seed_all(conn, redis_server, SeedPlan(phones=20, leads=5000, old_log_rows=3000, reviews=300))
        with conn, conn.cursor() as cur:
            cur.execute("SELECT " + " + ".join("(SELECT count(*) FROM {0})".format(t) for t in
                                               _snapshot.validate_tables(None)))
            missing = max(0, rows - cur.fetchone()[0])
            cur.execute("INSERT INTO gold_communication_log (tenant_id, lead_id, phone_id, channel, status, "
                        "quota_cost, created_at) SELECT %s, md5(g::text)::uuid, "
                        "'phone_' || lpad((g %% 20 + 1)::text, 2, '0'), 'WHATSAPP', 'DELIVERED', 1, "
                        "now() - (g || ' seconds')::interval FROM generate_series(1, %s) AS g", (TENANT, missing))
            cur.execute("ANALYZE")
    finally:
        conn.close()


def checksum_timings(pg):
    conn = pg.connect()
    timings = []
    try:
        with conn.cursor() as cur:
            for label, expression in CHECKSUMS:
                started = time.perf_counter()
                cur.execute("SELECT " + expression + " FROM gold_communication_log AS t")
                cur.fetchone()
                timings.append((label, time.perf_counter() - started))
        conn.rollback()
    finally:
        conn.close()
    return timings


def plain_pg_restore(pg, dump_path):
    """The runbook's step: pg_restore into a fresh database (created and dropped around it, not timed)."""
    env = dict(os.environ, PGHOST=pg.host, PGPORT=str(pg.port), PGUSER="cerniq", PGPASSWORD=pg.password)
    subprocess.run(["createdb", "cerniq_baseline"], env=env, check=True)
    try:
        started = time.perf_counter()
        subprocess.run(["pg_restore", "--dbname=cerniq_baseline", dump_path], env=env, check=True)
        return time.perf_counter() - started
    finally:
        subprocess.run(["dropdb", "cerniq_baseline"], env=env, check=True)


def worker_inventory(redis_server, pg, work_dir, backup_dir):
    start = "node {0} --host {1} --port {2} --db 2 --queue q:wa:phone_01".format(
        WORKER_JS, redis_server.host, redis_server.port)
    return inventory_for(redis_server, pg, dict(
        cerniq_workers_manager="process", cerniq_workers_process_start=start,
        cerniq_workers_environment={"CERNIQ_REDIS_PASSWORD": redis_server.password},
        cerniq_workers_env_file=os.path.join(work_dir, "workers.env"),
        cerniq_workers_process_pid_file=os.path.join(work_dir, "workers.pid"),
        cerniq_workers_process_log=os.path.join(work_dir, "workers.log"), cerniq_workers_process_chdir=str(REPO_ROOT),
        cerniq_workers_queues=["q:wa:phone_01"], cerniq_workers_queue_pattern="", cerniq_backup_dir=backup_dir))


def measure(rows, repeat):
    """Figures for one data size: dicts of seconds (medians) and the breakdown of our run."""
    work_dir = tempfile.mkdtemp(prefix="cerniq-bench-dr-")
    backup_dir = os.path.join(work_dir, "backups")
    try:
        with private_servers() as (redis_server, pg):
            load(pg, redis_server, rows)
            params = module_params(redis_server, pg, audit_actor="bench")
            started = time.perf_counter()
            backup = _backup.create_backup(params, backup_dir, 7, False)["backup"]
            backup_seconds = time.perf_counter() - started
            total_rows = sum(t["rows"] for t in backup["manifest"]["tables"].values())
            dump_path = os.path.join(backup["path"], backup["manifest"]["dump"]["file"])
            inventory = worker_inventory(redis_server, pg, work_dir, backup_dir)
            run_playbook("workers.yml", inventory, extravars={"workers_action": "start"})
            baseline, ours, steps = [], [], []
            for _round in range(repeat):
                baseline.append(plain_pg_restore(pg, dump_path))
                started = time.perf_counter()
                run = run_playbook("dr_database.yml", inventory, extravars={"confirm": True,
                                                                            "dr_database_force": True})
                ours.append(time.perf_counter() - started)
                if run.rc != 0:
                    raise RuntimeError("dr_database.yml failed:\n" + run.stdout[-3000:])
                steps.append(run.result("Restore the backup into a fresh database")["timings"])
                pg.drop_databases("cerniq\\_pre\\_dr\\_%")
            run_playbook("workers.yml", inventory, extravars={"workers_action": "stop"})
            checksums = checksum_timings(pg)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    breakdown = {key: statistics.median(s[key] for s in steps) for key in steps[0]}
    return dict(rows=total_rows, dump_bytes=backup["bytes"], backup_s=backup_seconds,
                baseline_s=statistics.median(baseline), ours_s=statistics.median(ours), steps=breakdown,
                checksums=checksums)


def run(sizes, repeat):
    figures = measure(sizes["rows"], repeat)
    steps = figures["steps"]
    module_s = sum(steps.values())
    return [dict(scenario="restore {0:,} rows (dr_database.yml)".format(figures["rows"]),
                 baseline_s=figures["baseline_s"], ours_s=figures["ours_s"],
                 figure="pg_restore -j2 {0:.1f} s, verify {1:.1f} s, ANALYZE {2:.1f} s; whole run {3:.1f} s".format(
                     steps["pg_restore"], steps["verify_backup"] + steps["verify_restore"],
                     steps.get("analyze", 0.0), figures["ours_s"]),
                 target="report beside plain pg_restore", met=None,
                 note="restore step {0:.1f}x plain pg_restore; the rest is workers, swap, Redis resync, Ansible; "
                      "db_backup {1:.1f} s for {2:,} bytes".format(module_s / figures["baseline_s"],
                                                                   figures["backup_s"], figures["dump_bytes"]))]


SCENARIOS = [Scenario("dr_database", run, repeat=1, sizes={"full": {"rows": 1000000}, "tiny": {"rows": 10000}})]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.dr_database", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    figures = measure(args.rows, args.repeat)
    print("database: {0:,} rows, dump {1:,} bytes; db_backup (pg_dump -Fc + figures + verify) {2:.1f} s".format(
        figures["rows"], figures["dump_bytes"], figures["backup_s"]))
    print("plain pg_restore into a fresh database (runbook 6.1 step 2): {0:.1f} s".format(figures["baseline_s"]))
    print("dr_database.yml, whole run with confirm=true: {0:.1f} s".format(figures["ours_s"]))
    for step, seconds in figures["steps"].items():
        print("  {0:<15} {1:6.1f} s".format(step, seconds))
    print("checksum of gold_communication_log ({0:,} rows in the database):".format(figures["rows"]))
    for label, seconds in figures["checksums"]:
        print("  {0:<42} {1:6.2f} s".format(label, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
