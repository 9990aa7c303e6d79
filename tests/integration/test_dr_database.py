"""dr_database.yml (runbook 6.1) on three hosts: Redis 127.0.0.11, PostgreSQL 127.0.0.12, a Node worker on 127.0.0.13.

Every test runs the playbook for real (ansible-runner) against real servers and a real Node BullMQ worker managed
by the workers role's process manager.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _backup, _database, _health, _snapshot
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    TABLE_AUDIT,
    TABLE_COMM_LOG,
    business_day,
    business_day_bounds,
    phone_status_key,
    quota_key,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.gates import CreateDatabaseGate, terminate_every_client_backend
from tests.support.services import wait_until
from tests.support.snapshots import assert_unchanged, platform_state, without_keys
from tests.support.split_platform import WORKER_QUEUE

# Excluded by design where a worker runs: its own keys, which BullMQ writes whatever the playbook does (the
# stalled-jobs check re-sets one with a new expiry; a waking worker pops the queue's marker).
WORKER_OWN_KEYS = tuple("bull:{0}:{1}".format(WORKER_QUEUE, name) for name in ("stalled-check", "marker"))


def _backup_now(platform):
    return _backup.create_backup(platform.params, str(platform.backup_dir), 7, False)["backup"]


def _state(platform):
    """Everything a DR run could touch: platform_state() (every key's DUMP and expiry, every table) and the
    databases with their markers."""
    return dict(platform_state(platform), databases=platform.databases())


def _failures(run):
    return [r.get("msg", "") for r in run.results() if r["_event"] == "runner_on_failed"]


def test_corrupt_backup_is_refused_before_the_workers_stop(split_platform):
    split_platform.seed()
    backup = _backup_now(split_platform)
    dump = Path(backup["path"]) / backup["manifest"]["dump"]["file"]
    dump.write_bytes(dump.read_bytes()[:-100])
    pid = split_platform.start_worker()
    before = without_keys(_state(split_platform), *WORKER_OWN_KEYS)

    run = split_platform.play("dr_database.yml", {"confirm": True})

    assert run.rc != 0
    message = " ".join(_failures(run))
    assert "refused" in message and "truncated" in message and "workers were not stopped" in message
    assert split_platform.worker_pid() == pid, "the worker was stopped"
    assert not run.results("Stop the process"), "a stop task ran"
    assert_unchanged(before, without_keys(_state(split_platform), *WORKER_OWN_KEYS))


def test_check_mode_shows_the_plan_and_the_backup_and_changes_nothing(split_platform):
    split_platform.seed()
    backup = _backup_now(split_platform)
    before = _state(split_platform)

    run = split_platform.play("dr_database.yml", check=True)

    assert run.rc == 0, run.stdout[-3000:]
    plan = run.result("What this run will change")["msg"]
    assert backup["id"] in plan[0] and "verified now" in plan[0]
    assert any("swap it in" in line for line in plan)
    restore = run.result("Restore the backup into a fresh database")
    assert restore["changed"] is True and restore["plan"]["backup"] == backup["id"]
    assert "CHECK MODE" in run.result("Summary")["msg"][0]
    assert_unchanged(before, _state(split_platform))


def test_full_recovery_then_a_node_worker_processes_the_queue(split_platform):
    split_platform.seed()
    backup = _backup_now(split_platform)
    manifest = backup["manifest"]
    # After the backup: new rows, a phone taken offline, a counter gone wrong - the disaster happens later.
    split_platform.sql("INSERT INTO gold_communication_log (tenant_id, phone_id, channel, status, quota_cost) "
                       "SELECT tenant_id, 'phone_01', 'WHATSAPP', 'SENT', 1 FROM wa_phone_numbers LIMIT 1")
    split_platform.sql("UPDATE wa_phone_numbers SET status = 'OFFLINE' WHERE id = 'phone_02'")
    split_platform.r(0).set(phone_status_key("phone_02"), "OFFLINE")
    today = business_day("Europe/Bucharest")
    split_platform.r(0).set(quota_key("phone_01", today), 999)
    old_pid = split_platform.start_worker()

    # While the workers are stopped, producers keep adding jobs: the restarted worker must process them.
    added = []

    def add_when_stopped():
        deadline = time.monotonic() + 120
        while split_platform.worker_pid() == old_pid and time.monotonic() < deadline:
            time.sleep(0.05)
        added.extend(["after-stop-{0}".format(n) for n in range(3)])
        split_platform.add_jobs(added)

    producer = threading.Thread(target=add_when_stopped)
    producer.start()
    run = split_platform.play("dr_database.yml", {"confirm": True, "dr_database_reason": "INC-42"}, verbosity=3)
    producer.join()
    assert run.rc == 0, run.stdout[-4000:]
    for secret in (split_platform.pg.password, split_platform.redis.password):
        assert secret not in run.stdout

    # The live database is the backup again, table by table (plus the recovery's own audit rows).
    live = _snapshot.database_snapshot(split_platform.params)
    for table, figures in manifest["tables"].items():
        if table != TABLE_AUDIT:
            assert live["tables"][table] == figures, table
    assert live["database"]["marker"]["backup"] == backup["id"]
    assert live["database"]["marker"]["completed"] is True
    kept = [name for name, marker in split_platform.databases().items() if marker and marker["cerniq_outreach"] ==
            "kept"]
    assert len(kept) == 1
    assert split_platform.sql("SELECT count(*) FROM gold_communication_log", dbname=kept[0])[0][0] == \
        manifest["tables"][TABLE_COMM_LOG]["rows"] + 1

    # Redis follows the restored database.
    assert split_platform.r(0).get(phone_status_key("phone_02")) == "ACTIVE"
    start, end = business_day_bounds(today, "Europe/Bucharest")
    sent_today = split_platform.sql("SELECT count(*) FROM gold_communication_log WHERE phone_id = 'phone_01' AND "
                                    "channel = 'WHATSAPP' AND quota_cost = 1 AND created_at >= %s AND "
                                    "created_at < %s", (start, end))[0][0]
    assert int(split_platform.r(0).get(quota_key("phone_01", today))) == sent_today

    # A new worker process took over and processed what was queued while it was down.
    new_pid = split_platform.worker_pid()
    assert new_pid and new_pid != old_pid
    split_platform.wait_for_log(lambda e: set(added) <= split_platform.completed_ids(), 20, "jobs after the stop")

    actions = [row[0] for row in split_platform.sql("SELECT action FROM ops_audit_log WHERE reason LIKE %s OR "
                                                    "action IN ('phone_status_sync') ORDER BY id", ("%INC-42%",))]
    assert actions[:2] == ["db_restore", "db_swap"] and actions[-1] == "db_mark" and "phone_status_sync" in actions

    # Same backup again: a clear no-op, the worker left alone.
    before = without_keys(_state(split_platform), *WORKER_OWN_KEYS)
    again = split_platform.play("dr_database.yml", {"confirm": True})
    assert again.rc == 0, again.stdout[-3000:]
    assert_unchanged(before, without_keys(_state(split_platform), *WORKER_OWN_KEYS))
    assert "nothing was restored" in again.result("Nothing to do")["msg"]
    assert "No recovery holds the workers stopped: they were left alone (1 worker connection(s)" in \
        again.result("Nothing to do")["msg"]
    assert split_platform.worker_pid() == new_pid and len(split_platform.databases()) == 2

    # Once confirmed, the kept database goes (and only a kept one may go this way).
    refused = split_platform.play("dr_database.yml", {"confirm": True, "dr_database_drop_kept": "cerniq"})
    assert refused.rc != 0 and "cerniq" in split_platform.databases()
    dropped = split_platform.play("dr_database.yml", {"confirm": True, "dr_database_drop_kept": kept[0]})
    assert dropped.rc == 0, dropped.stdout[-3000:]
    assert list(split_platform.databases()) == ["cerniq"]


def test_recovery_when_the_live_database_is_gone(split_platform):
    split_platform.seed(leads=50, old_log_rows=10, reviews=5)
    backup = _backup_now(split_platform)
    split_platform.pg.drop_databases("cerniq")

    run = split_platform.play("dr_database.yml", {"confirm": True})

    assert run.rc == 0, run.stdout[-3000:]
    assert any("does not exist" in line for line in run.result("What this run will change")["msg"])
    assert run.result("Swap it in")["kept_as"] is None
    live = _snapshot.database_snapshot(split_platform.params)
    assert live["tables"]["gold_lead_journey"] == backup["manifest"]["tables"]["gold_lead_journey"]
    assert list(split_platform.databases()) == ["cerniq"]
    assert split_platform.worker_pid(), "the workers were not started"


def test_inventory_pointing_at_the_wrong_host_fails_before_any_change(split_platform):
    split_platform.seed()
    _backup_now(split_platform)
    pid = split_platform.start_worker()
    inventory = split_platform.inventory(redis_address="127.0.0.12")  # the db host's address
    assert "cerniq_redis_host" not in inventory["all"]["vars"]
    before = without_keys(_state(split_platform), *WORKER_OWN_KEYS)

    run = split_platform.play("dr_database.yml", {"confirm": True}, inventory=inventory)

    assert run.rc != 0
    message = " ".join(_failures(run))
    assert "Redis at 127.0.0.12" in message and "Nothing was changed" in message
    assert split_platform.worker_pid() == pid
    assert_unchanged(before, without_keys(_state(split_platform), *WORKER_OWN_KEYS))


def test_db_database_refuses_the_live_database_and_keeps_a_copy_that_does_not_match(split_platform):
    split_platform.seed(leads=50, old_log_rows=10, reviews=5)
    backup = _backup_now(split_platform)
    params = split_platform.params
    with pytest.raises(CerniqError, match="the database the platform uses"):
        _database.restore_database(params, "cerniq", backup["path"], False)
    with pytest.raises(CerniqError, match="the database the platform uses"):
        _database.ensure_absent(params, "cerniq", False, "postgres")

    # A manifest that disagrees with its dump (as a dump of another moment would): the copy fails verification.
    manifest_path = Path(backup["path"]) / "manifest.json"
    text = manifest_path.read_text()
    rows = backup["manifest"]["tables"]["wa_phone_numbers"]["rows"]
    tampered = json.loads(text)
    tampered["tables"]["wa_phone_numbers"]["rows"] = rows + 1
    manifest_path.write_text(json.dumps(tampered))
    live_before = _snapshot.database_snapshot(params)["tables"]
    with pytest.raises(CerniqError, match="does not match") as failure:
        _database.restore_database(params, "cerniq_restore_probe", backup["path"], False, jobs=1)
    assert "wa_phone_numbers: rows {0} expected, {1} found".format(rows + 1, rows) in failure.value.msg
    assert split_platform.databases()["cerniq_restore_probe"]["cerniq_outreach"] == "verification_failed"
    assert _snapshot.database_snapshot(params)["tables"] == live_before

    manifest_path.write_text(text)
    restored = _database.restore_database(params, "cerniq_restore_probe", backup["path"], False, jobs=1)
    assert restored["changed"] and restored["plan"]["replaces_unfinished"]

    # What no dump holds - the live database's GRANTs and settings - follows the swap; a second call finds it done.
    admin = split_platform.pg.superuser_connect()
    with admin.cursor() as cur:
        cur.execute("DO $$ BEGIN CREATE ROLE app_reader LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        cur.execute("REVOKE CONNECT, TEMPORARY ON DATABASE cerniq FROM PUBLIC")
        cur.execute("GRANT CONNECT ON DATABASE cerniq TO app_reader")
        cur.execute("ALTER DATABASE cerniq SET work_mem = '8MB'")
    first = _database.rename_database(params, "cerniq_restore_probe", "cerniq", True, "cerniq_pre_probe", False)
    second = _database.rename_database(params, "cerniq_restore_probe", "cerniq", True, "cerniq_pre_probe", False)
    assert first["changed"] and not second["changed"]
    with admin.cursor() as cur:
        cur.execute("SELECT has_database_privilege('app_reader', 'cerniq', 'CONNECT'), "
                    "EXISTS (SELECT 1 FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = 'cerniq' "
                    "AND a.grantee = 0), (SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d "
                    "ON d.oid = s.setdatabase WHERE d.datname = 'cerniq' AND s.setrole = 0)")
        assert cur.fetchone() == (True, False, ["work_mem=8MB"])
    admin.close()
    assert split_platform.databases()["cerniq"]["cerniq_outreach"] == "restored"


# --- a recovery cut short after it stopped the workers (issue 12 §4) ---------------------------------------------

HOLD_ROWS = "SELECT action, after->>'recovery' FROM ops_audit_log WHERE target = 'bullmq workers' ORDER BY id"


def test_a_recovery_cut_short_after_the_stop_is_finished_by_the_next_run(split_platform):
    split_platform.seed()
    backup = _backup_now(split_platform)
    split_platform.start_worker()
    done = split_platform.play("dr_database.yml", {"confirm": True})
    assert done.rc == 0, done.stdout[-3000:]
    held = split_platform.sql(HOLD_ROWS)
    # The hold was recorded before the stop (in the old database) and again in the one swapped in; closed at the end.
    assert [action for action, _recovery in held] == ["dr_workers_stopped", "dr_workers_started"]
    assert held[0][1] == held[1][1] and held[0][1].startswith(backup["id"] + "@")

    # Workers stopped by an operator (no recovery's hold): the no-op run leaves them stopped and says why.
    split_platform.stop_worker()
    left = split_platform.play("dr_database.yml", {"confirm": True})
    assert left.rc == 0, left.stdout[-3000:]
    message = left.result("Nothing to do")["msg"]
    assert "No recovery holds the workers stopped: they were left alone (0 worker connection(s)" in message
    assert split_platform.worker_pid() is None and not left.results("Start the process")
    assert split_platform.sql(HOLD_ROWS) == held

    # A forced recovery, cut short after it stopped the workers: every client backend terminated while the restore
    # waits at the gate (CREATE DATABASE of the fresh copy).
    pid = split_platform.start_worker()
    tables_before = {t: f for t, f in _snapshot.database_snapshot(split_platform.params)["tables"].items()
                     if t != TABLE_AUDIT}
    gate = CreateDatabaseGate(split_platform.pg)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.update(run=split_platform.play(
        "dr_database.yml", {"confirm": True, "dr_database_force": True})))
    runner.start()
    try:
        wait_until(lambda: gate.waiting() or not runner.is_alive(), 180, "the restore at the gate")
        assert gate.waiting(), outcome.get("run") and outcome["run"].stdout[-3000:]
        assert split_platform.worker_pid() is None, "the workers were not stopped before the restore"
        assert terminate_every_client_backend(split_platform.pg) >= 1
    finally:
        gate.close()
        runner.join(180)
    cut = outcome["run"]
    assert cut.rc != 0
    assert "PostgreSQL" in " ".join(_failures(cut)), cut.stdout[-3000:]
    assert split_platform.worker_pid() is None
    hold = _snapshot.database_snapshot(split_platform.params)["workers_hold"]
    assert hold["open"] and hold["recovery"].startswith(backup["id"] + "@") and hold["recovery"] != held[0][1]
    # The health check warns about it (one indexed read); the service stays healthy.
    health = _health.postgres_health(split_platform.params)
    assert health["healthy"] and "recovery {0} stopped the workers".format(hold["recovery"]) in health["message"]

    # --check says what the next run does, and changes nothing. The stopped worker's own keys are left out: its last
    # stalled-check key expires by itself (a TTL of stalledInterval), whenever that falls.
    before = without_keys(_state(split_platform), *WORKER_OWN_KEYS)
    looked = split_platform.play("dr_database.yml", {"confirm": True}, check=True)
    assert looked.rc == 0, looked.stdout[-3000:]
    assert "they would be started and its hold closed" in looked.result("Nothing to do")["msg"]
    assert_unchanged(before, without_keys(_state(split_platform), *WORKER_OWN_KEYS))
    assert split_platform.worker_pid() is None

    # The same command without the force flag: green, the workers running again, the hold closed, and it says so.
    again = split_platform.play("dr_database.yml", {"confirm": True})
    assert again.rc == 0, again.stdout[-3000:]
    line = again.result("Nothing to do")["msg"]
    assert "Recovery {0} stopped the workers".format(hold["recovery"]) in line
    assert "they are started now and its hold closed" in line
    assert "were started again and its hold closed" in again.result("Say what happened")["msg"]
    new_pid = split_platform.worker_pid()
    assert new_pid and new_pid != pid
    assert not _snapshot.database_snapshot(split_platform.params)["workers_hold"]["open"]
    assert split_platform.sql(HOLD_ROWS)[-2:] == [("dr_workers_stopped", hold["recovery"]),
                                                  ("dr_workers_started", hold["recovery"])]
    # Data intact: the live database is what it was before the forced run (its audit log aside).
    tables_after = {t: f for t, f in _snapshot.database_snapshot(split_platform.params)["tables"].items()
                    if t != TABLE_AUDIT}
    assert tables_after == tables_before
    assert not [name for name in split_platform.databases() if name.startswith("cerniq_restore_")]
