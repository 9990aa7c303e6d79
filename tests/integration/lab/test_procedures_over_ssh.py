"""The procedures on real hosts over SSH (tests/support/lab.py): bare Debian hosts, an unprivileged user with sudo.

Service-level work runs once on the controller (this test process's Python); host-level work runs on the DB primary's
host with the Python the host_python role provisioned there from a wheelhouse the controller downloaded. In the HA
topology the primary and the master are asked at run time, and a standby or replica is refused.
"""

from __future__ import annotations

import json

import pytest

from tests.support.lab import RESET_DIRS

pytestmark = pytest.mark.lab

VENV_PYTHON = "/opt/cerniq/venv/bin/python"
BANNED = "phone_02"


def _report_vars(tmp_path):
    return {"cerniq_report_dir": str(tmp_path / "reports")}


HOST_PYTHON_CHANGES = ("Download the wheels", "Copy the wheelhouse", "Create the virtualenv", "Install the pinned",
                       "Check that the collection's libraries import")


def _host_python_changes(run):
    return [r["_task"] for r in run.results() if r.get("changed") and r["_task"].startswith(HOST_PYTHON_CHANGES)]


def test_backup_provisions_the_collections_python_on_the_db_host_only_and_writes_as_root(lab_single):
    lab = lab_single
    # reset() keeps /opt (the virtualenv an earlier test provisioned): this test starts from a host without it.
    lab.reset(wipe=RESET_DIRS + ("/opt",))
    first = lab.play("backup_database.yml")
    assert first.rc == 0, first.stdout[-4000:]
    # The virtualenv exists on the DB host, imports the libraries; the host's own Python still lacks them.
    lab.run("db-1", [VENV_PYTHON, "-c", "import redis, psycopg2, bullmq"])
    bare = lab.run("db-1", ["/usr/bin/python3", "-c", "import redis"], check=False)
    assert bare.returncode != 0
    for other in ("redis-1", "workers-1"):
        assert not lab.hosts[other].path("/opt/cerniq").exists()
    backups = [p for p in lab.hosts["db-1"].path("/backups/daily").iterdir()
               if not p.is_symlink() and (p / "manifest.json").exists()]
    assert len(backups) == 1
    manifest = json.loads((backups[0] / "manifest.json").read_text())
    assert manifest["tables"]
    # A second run takes a new backup (by design) but leaves the virtualenv alone.
    second = lab.play("backup_database.yml")
    assert second.rc == 0, second.stdout[-4000:]
    assert _host_python_changes(first)
    assert _host_python_changes(second) == []
    # Check mode on the provisioned host: nothing changes on any host, nor in the services.
    before = lab.digest()
    checked = lab.play("backup_database.yml", check=True)
    assert checked.rc == 0, checked.stdout[-4000:]
    assert lab.digest() == before


def test_service_procedures_run_once_on_the_controller(lab_single, tmp_path):
    lab = lab_single
    lab.reset()
    health = lab.play("stack_health.yml")
    assert health.rc == 0, health.stdout[-4000:]
    morning = lab.play("check_morning.yml", extravars=dict(_report_vars(tmp_path),
                                                           check_morning_fail_on_failed_checks=False))
    assert morning.rc == 0, morning.stdout[-4000:]
    # Every module task ran delegated to the controller, once.
    module_events = [e for e in morning.events if e.get("event") == "runner_on_ok"
                     and (e["event_data"].get("resolved_action") or "").startswith("cerniq.outreach.")]
    assert module_events
    delegated = [e["event_data"]["res"].get("_ansible_delegated_vars", {}).get("ansible_delegated_host")
                 for e in module_events]
    assert set(delegated) == {"localhost"}
    # Once: one result per task, for the first host of the group only.
    assert {e["event_data"]["host"] for e in module_events} == {"db-1"}
    assert len(module_events) == len({e["event_data"]["task_uuid"] for e in module_events})
    # The report landed on the controller, where the operator reads it; nothing was written on the hosts for it.
    reports = list((tmp_path / "reports").glob("check_morning-*.json"))
    assert len(reports) == 1
    for host in lab.hosts.values():
        assert not any(host.path("/var/lib/cerniq").rglob("check_morning-*"))


def test_ban_over_ssh_then_idempotent_and_check_mode_changes_nothing(lab_single):
    lab = lab_single
    lab.reset()
    before = lab.digest()
    checked = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True}, check=True)
    assert checked.rc == 0, checked.stdout[-4000:]
    assert lab.digest() == before
    banned = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "INC-LAB"})
    assert banned.rc == 0, banned.stdout[-4000:]
    assert lab.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (BANNED,)) == [("BANNED",)]
    assert lab.r().get("phone:status:{0}".format(BANNED)) == "BANNED"
    after = lab.digest()
    again = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "INC-LAB"})
    assert again.rc == 0, again.stdout[-4000:]
    assert again.stats.get("changed", {}) == {}
    assert lab.digest() == after


def test_dr_redis_over_ssh_then_a_second_run_changes_nothing(lab_single):
    lab = lab_single
    lab.reset()
    lab.r(2).flushdb()
    lab.r(0).flushdb()
    first = lab.play("dr_redis.yml", extravars={"confirm": True})
    assert first.rc == 0, first.stdout[-4000:]
    assert lab.r(0).dbsize() > 0
    assert lab.r(2).dbsize() > 0
    settled = lab.digest()
    second = lab.play("dr_redis.yml", extravars={"confirm": True})
    assert second.rc == 0, second.stdout[-4000:]
    assert lab.digest() == settled


def test_ha_the_primary_is_found_at_run_time_and_the_ban_runs_once(lab_ha):
    lab = lab_ha
    lab.reset()
    run = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "INC-HA"})
    assert run.rc == 0, run.stdout[-4000:]
    election = run.result("Find the PostgreSQL primary and the Redis master")
    assert election["db"]["primary"]["name"] == "db-1"
    assert election["redis"]["primary"]["name"] == "redis-1"
    assert {c["role"] for c in election["db"]["candidates"]} == {"primary", "standby"}
    assert {c["role"] for c in election["redis"]["candidates"]} == {"primary", "replica"}
    # Once, not once per db host: one ban in the audit log.
    audited = lab.sql("SELECT count(*) FROM ops_audit_log WHERE module = 'wa_phone' AND target LIKE %s",
                      ("%" + BANNED + "%",))
    assert audited[0][0] == 1, audited
    ban_events = [e for e in run.events if e.get("event") == "runner_on_ok"
                  and (e["event_data"].get("resolved_action") or "") == "cerniq.outreach.wa_phone"
                  and e["event_data"]["res"].get("changed")]
    assert len(ban_events) == 1


def test_ha_a_standby_or_replica_named_as_the_service_is_refused_and_nothing_changes(lab_ha):
    lab = lab_ha
    lab.reset()
    before = lab.digest()
    standby = lab.hosts["db-2"].address
    replica = lab.hosts["redis-2"].address
    refused_db = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "x",
                                                         "cerniq_db_host": standby})
    assert refused_db.rc != 0
    assert "is a standby (pg_is_in_recovery() is true)" in refused_db.stdout
    refused_redis = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "x",
                                                            "cerniq_redis_host": replica})
    assert refused_redis.rc != 0
    assert "is a replica of" in refused_redis.stdout
    assert lab.digest() == before


def test_ha_the_backup_runs_once_on_the_primarys_host(lab_ha):
    lab = lab_ha
    lab.reset()
    run = lab.play("backup_database.yml")
    assert run.rc == 0, run.stdout[-4000:]
    backups = {name: [p for p in lab.hosts[name].path("/backups/daily").glob("*")
                      if not p.is_symlink() and (p / "manifest.json").exists()]
               if lab.hosts[name].path("/backups/daily").exists() else [] for name in ("db-1", "db-2")}
    assert (len(backups["db-1"]), len(backups["db-2"])) == (1, 0)
    assert lab.hosts["db-1"].path(VENV_PYTHON).exists()
    assert not lab.hosts["db-2"].path("/opt/cerniq").exists()
    # One backup, and its copy imported on the controller (off the DB host).
    audited = lab.sql("SELECT action, count(*) FROM ops_audit_log WHERE module = 'db_backup' GROUP BY action "
                      "ORDER BY action")
    assert [count for _action, count in audited] == [1, 1], audited
    assert any(action == "db_backup_import" for action, _count in audited)
