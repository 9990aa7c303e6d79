"""Faults across real hosts (tests/support/lab.py): a link cut mid-procedure, an unreachable host, a recovery cut short.

Each fault is placed deterministically (a row lock the procedure waits on, a link cut before the play that needs it),
and every wait is bounded. After each: one clear message, and nothing lost once the procedure is re-run.
"""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import database_snapshot
from tests.support import services
from tests.support.gates import CreateDatabaseGate, terminate_every_client_backend
from tests.support.snapshots import without_tables

pytestmark = pytest.mark.lab

BANNED = "phone_03"


def _wait_for(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("{0} did not happen within {1}s".format(what, timeout))


def _in_background(function):
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(run=function()), daemon=True)
    thread.start()
    return thread, outcome


def _workers_connected(lab):
    return sum(1 for client in lab.r(2).client_list() if client.get("name", "").startswith("bull:"))


def test_redis_link_cut_during_the_ban_then_a_rerun_leaves_db_and_redis_consistent(lab_single):
    lab = lab_single
    lab.reset()
    status_key = "phone:status:{0}".format(BANNED)
    before_db = lab.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (BANNED,))
    before_redis = lab.r().get(status_key)
    # Hold the phone's row: the ban's module waits on it after the playbook's plan has read both servers.
    holder = lab.pg.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT id FROM wa_phone_numbers WHERE id = %s FOR UPDATE", (BANNED,))
        thread, outcome = _in_background(lambda: lab.play(
            "phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "INC-LINK"}))
        _wait_for(lambda: lab.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                  "AND application_name = 'cerniq.outreach'")[0][0] > 0, 120, "the ban waiting")
        lab.link_down("redis-1")
    finally:
        holder.rollback()
        holder.close()
    try:
        thread.join(120)
        assert not thread.is_alive()
    finally:
        lab.link_up("redis-1")
    failed = outcome["run"]
    assert failed.rc != 0
    assert "cannot reach Redis at {0}:".format(lab.hosts["redis-1"].address) in failed.stdout
    # Nothing half-done: the database was not changed without Redis.
    assert lab.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (BANNED,)) == before_db
    assert lab.r().get(status_key) == before_redis
    again = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "INC-LINK"})
    assert again.rc == 0, again.stdout[-4000:]
    assert lab.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (BANNED,)) == [("BANNED",)]
    assert lab.r().get(status_key) == "BANNED"


def test_a_worker_host_unreachable_stops_dr_database_before_the_restore(lab_single):
    lab = lab_single
    lab.reset()
    backup = lab.play("backup_database.yml")
    assert backup.rc == 0, backup.stdout[-4000:]
    before = lab.state()
    lab.link_down("workers-1")
    try:
        run = lab.play("dr_database.yml", extravars={"confirm": True, "dr_database_force": True})
    finally:
        lab.link_up("workers-1")
    assert run.rc != 0
    assert "workers-1" in run.stdout and "UNREACHABLE" in run.stdout
    # The restore never started: no restore database, the live one untouched.
    assert lab.sql("SELECT count(*) FROM pg_database WHERE datname LIKE %s", ("cerniq_restore_%",),
                   dbname="postgres") == [(0,)]
    after = lab.state()
    # One write comes first, by design: the hold that tells the next run to start the workers again (a recovery
    # opens it before it stops any worker, so a host lost midway cannot leave the others stopped unnoticed).
    assert [action for action, _recovery in lab.sql(HOLD_ROWS)] == ["dr_workers_stopped"]
    kept, now = without_tables(before, "ops_audit_log"), without_tables(after, "ops_audit_log")
    for part in kept:
        assert now[part] == kept[part], part


HOLD_ROWS = "SELECT action, after->>'recovery' FROM ops_audit_log WHERE target = 'bullmq workers' ORDER BY id"


def _snapshot(lab):
    return database_snapshot(services.module_params(lab.redis, lab.pg), checksum=True)


def _tables(lab):
    """The live database's figures per table, its audit log aside (a recovery's hold rows land there)."""
    return {t: f for t, f in _snapshot(lab)["tables"].items() if t != "ops_audit_log"}


def test_a_recovery_cut_short_after_it_stopped_the_workers_is_finished_by_the_next_run(lab_single):
    """Issue 12 §4: every PostgreSQL client backend terminated while a forced recovery waits at a gate after the
    workers were stopped; the same command without the force flag then starts them (the audit log's hold), says so,
    and the data is intact. Workers an operator stopped (workers.yml: no hold) are left alone by the no-op run."""
    lab = lab_single
    started_at = time.monotonic()
    lab.reset()
    assert lab.play("backup_database.yml").rc == 0
    started = lab.play("workers.yml", extravars={"workers_action": "start"})
    assert started.rc == 0, started.stdout[-4000:]
    recovered = lab.play("dr_database.yml", extravars={"confirm": True})
    assert recovered.rc == 0, recovered.stdout[-4000:]
    assert _workers_connected(lab) >= 1
    assert [action for action, _recovery in lab.sql(HOLD_ROWS)] == ["dr_workers_stopped", "dr_workers_started"]

    # Stopped by an operator: the no-op run leaves them stopped and says why.
    stopped = lab.play("workers.yml", extravars={"workers_action": "stop"})
    assert stopped.rc == 0, stopped.stdout[-4000:]
    left = lab.play("dr_database.yml", extravars={"confirm": True})
    assert left.rc == 0, left.stdout[-4000:]
    assert "No recovery holds the workers stopped: they were left alone" in left.result("Nothing to do")["msg"]
    assert _workers_connected(lab) == 0 and not left.results("Start the process")

    # A forced recovery cut short after the stop: every client backend terminated at the gate.
    started = lab.play("workers.yml", extravars={"workers_action": "start"})
    assert started.rc == 0, started.stdout[-4000:]
    before = _tables(lab)
    gate = CreateDatabaseGate(lab.pg)
    thread, outcome = _in_background(lambda: lab.play(
        "dr_database.yml", extravars={"confirm": True, "dr_database_force": True}))
    try:
        _wait_for(lambda: gate.waiting() or not thread.is_alive(), 300, "the restore at the gate")
        assert gate.waiting(), outcome.get("run") and outcome["run"].stdout[-4000:]
        assert _workers_connected(lab) == 0, "the workers were not stopped before the restore"
        assert terminate_every_client_backend(lab.pg) >= 1
    finally:
        gate.close()
        thread.join(300)
    assert not thread.is_alive()
    cut = outcome["run"]
    assert cut.rc != 0
    assert "db-1" in cut.stdout and "PostgreSQL" in cut.stdout
    assert _workers_connected(lab) == 0
    hold = _snapshot(lab)["workers_hold"]
    assert hold["open"] and hold["hosts"] == ["workers-1"]

    again = lab.play("dr_database.yml", extravars={"confirm": True})
    assert again.rc == 0, again.stdout[-4000:]
    line = again.result("Nothing to do")["msg"]
    assert "Recovery {0} stopped the workers on workers-1".format(hold["recovery"]) in line
    assert "they are started now and its hold closed" in line
    _wait_for(lambda: _workers_connected(lab) >= 1, 30, "a worker connecting")
    assert lab.sql(HOLD_ROWS)[-1] == ("dr_workers_started", hold["recovery"])
    # Data intact: nothing restored again, the live database as it was before the forced run.
    assert _tables(lab) == before
    assert lab.sql("SELECT count(*) FROM pg_database WHERE datname LIKE %s", ("cerniq_restore_%",),
                   dbname="postgres") == [(0,)]
    print("recovery cut short after the stop: {0:.1f}s".format(time.monotonic() - started_at))


def _log_rows(lab):
    return lab.sql("SELECT (SELECT count(*) FROM gold_communication_log), "
                   "(SELECT count(*) FROM gold_communication_log_archive), "
                   "(SELECT count(*) FROM gold_communication_log l JOIN gold_communication_log_archive a "
                   "ON a.id = l.id)")[0]


# Each archive batch lasts at least half a second on the server (a statement trigger on the archive table), so the
# link is cut while batches remain however fast the machine is: 6,000 rows in batches of 200 otherwise finish in
# less time than the test takes to see the second batch.
SLOW_ARCHIVE_BATCHES = (
    "CREATE FUNCTION lab_slow_archive_batch() RETURNS trigger LANGUAGE plpgsql AS "
    "$$BEGIN PERFORM pg_sleep(0.5); RETURN NULL; END$$; "
    "CREATE TRIGGER lab_slow_archive_batch AFTER INSERT ON gold_communication_log_archive "
    "FOR EACH STATEMENT EXECUTE FUNCTION lab_slow_archive_batch()")
NORMAL_ARCHIVE_BATCHES = (
    "DROP TRIGGER IF EXISTS lab_slow_archive_batch ON gold_communication_log_archive; "
    "DROP FUNCTION IF EXISTS lab_slow_archive_batch()")


def test_db_link_cut_during_the_archive_then_a_rerun_leaves_every_row_in_exactly_one_table(lab_single):
    lab = lab_single
    lab.reset(seed=False)
    lab.seed(old_log_rows=6000)
    live, archived, both = _log_rows(lab)
    total = live + archived
    batches = "SELECT count(*) FROM ops_audit_log WHERE action = 'comm_log_archive_batch'"
    archive = dict(confirm=True, maintenance_weekly_archive_batch_size=200)
    lab.sql(SLOW_ARCHIVE_BATCHES)
    try:
        thread, outcome = _in_background(lambda: lab.play("maintenance_weekly.yml", extravars=archive,
                                                          tags="archive"))
        try:
            _wait_for(lambda: lab.sql(batches)[0][0] >= 2, 120, "two archive batches committed")
            lab.link_down("db-1")
            thread.join(150)
            assert not thread.is_alive()
        finally:
            lab.link_up("db-1")
    finally:
        lab.sql(NORMAL_ARCHIVE_BATCHES)
    assert lab.sql(batches)[0][0] < 6000 // 200
    cut = outcome["run"]
    assert cut.rc != 0
    assert "PostgreSQL at {0}:".format(lab.hosts["db-1"].address) in cut.stdout
    # What was committed is committed whole; nothing is in both tables or in neither.
    live, archived, both = _log_rows(lab)
    assert (live + archived, both) == (total, 0)
    assert archived > 0
    rerun = lab.play("maintenance_weekly.yml", extravars=archive, tags="archive")
    assert rerun.rc == 0, rerun.stdout[-4000:]
    live, archived, both = _log_rows(lab)
    assert (live + archived, both) == (total, 0)
    assert lab.sql("SELECT count(*) FROM gold_communication_log WHERE created_at < now() - interval '90 days'") \
        == [(0,)]
