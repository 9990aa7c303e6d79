"""Job templates launched the way AWX launches them (tests/support/awx.py) against the lab's hosts over SSH.

The inventory is the lab's (the hosts, the SSH settings, the controller's directories) without what an AWX inventory
does not hold: the services' passwords come from the credentials' injectors (env/envvars), the SSH user from the
Machine credential (-u), the audit actor from AWX's meta variables (awx_user_name, awx_job_id). The morning check
and the ban work from the controller against the services on the hosts' addresses; the workers' status logs in to
workers-1 over SSH.
"""

from __future__ import annotations

import json

import pytest

from tests.support.awx import JOB_ID, USER, build_ee, launch
from tests.support.every_playbook import _assert_same_state
from tests.support.lab import DB_PASSWORD, DB_SUPERUSER_PASSWORD, LAB_USER, REDIS_PASSWORD
from tests.support.vendors import TIMELINES_TOKEN

pytestmark = pytest.mark.lab

SECRETS = (REDIS_PASSWORD, DB_PASSWORD, DB_SUPERUSER_PASSWORD, TIMELINES_TOKEN)


@pytest.fixture(scope="module")
def awx_ee(tmp_path_factory):
    """The built artifact installed as the execution environment's collection, and the project checkout."""
    return build_ee(tmp_path_factory.mktemp("awx-lab"))


def _launch(awx_ee, tmp_path, lab, timelines, template_name, answers, job_type):
    inventory = lab.inventory(extra_vars={"cerniq_timelinesai_base_url": timelines.base_url,
                                          "cerniq_vendor_allow_http": True})
    # The workers' environment file holds the Redis password: in AWX it would come from a credential too, and
    # no job launched here starts workers.
    del inventory["all"]["vars"]["cerniq_workers_environment"]
    inputs = {"CERNIQ Redis": {"username": "", "password": REDIS_PASSWORD},
              "CERNIQ PostgreSQL": {"password": DB_PASSWORD},
              "CERNIQ TimelinesAI": {"api_token": TIMELINES_TOKEN}}
    pdd = tmp_path / "job-{0}-{1}".format(template_name.split()[-1], job_type)
    job = launch(awx_ee, pdd, template_name, answers, inventory, inputs, job_type=job_type, remote_user=LAB_USER,
                 env={"ANSIBLE_BECOME_ALLOW_SAME_USER": "1"})  # as Lab.play: a become on the controller fails
    assert job.rc == 0 and job.status == "successful", job.stdout[-4000:]
    assert ("--check" in job.command) == (job_type == "check") and "--diff" in job.command
    assert job.command[job.command.index("-u") + 1] == LAB_USER
    for secret in SECRETS:
        assert secret not in (pdd / "inventory" / "hosts").read_text()
        assert secret not in (pdd / "env" / "extravars").read_text()
        assert secret not in job.everything_written(), "a secret in the job's output or events"
    return job


def test_morning_check_and_phone_banned_launched_as_awx_over_ssh(awx_ee, tmp_path, lab_single, timelines):
    """The morning check as a check job (no report) then a run job (the report on the controller, none on a host);
    the workers' status as a check job on workers-1 over SSH; phone_banned as a check job (the plan shown,
    lab.state() unchanged) then confirmed: the ban's audit row on the primary names the AWX user and job."""
    lab = lab_single
    lab.reset()
    before = lab.state()
    morning = {"check_morning_fail_on_failed_checks": "false", "check_morning_overnight": "15h",
               "check_morning_timelinesai": "true"}
    checked = _launch(awx_ee, tmp_path, lab, timelines, "cerniq check_morning", morning, "check")
    assert not (checked.pdd / "reports").exists(), "check mode wrote the report"
    ran = _launch(awx_ee, tmp_path, lab, timelines, "cerniq check_morning", morning, "run")
    (report,) = (ran.pdd / "reports").glob("check_morning-*.json")
    checks = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    assert {"phones", "drift", "queues", "reviews", "sla"} <= set(checks)
    # Seeded: phone_04 OFFLINE in the database, connected at TimelinesAI (asked with the injected token).
    assert checks["phones"]["status"] == "fail" and "phone_04" in checks["phones"]["figure"], checks["phones"]
    assert checks["timelinesai"]["status"] != "skip", checks["timelinesai"]
    for host in lab.hosts.values():
        assert not any(host.path("/var/lib/cerniq").rglob("check_morning-*")), host.name
    before = _assert_same_state(lab, before, "the morning check")

    # The two templates above work from the controller (service-level, delegated): the workers' status logs in to
    # workers-1 over SSH as the Machine credential's user (-u; the inventory names none, root is refused there).
    workers = _launch(awx_ee, tmp_path, lab, timelines, "cerniq workers", {"workers_action": "status"}, "check")
    on_host = {e["event_data"]["task"] for e in workers.events if e.get("event") == "runner_on_ok"
               and e["event_data"].get("host") == "workers-1"
               and "_ansible_delegated_vars" not in e["event_data"].get("res", {})}
    # A shell task on the host itself (the pid file and ps), not an action run by the controller.
    assert "Read the pid file and whether that process lives" in on_host, workers.stdout[-3000:]
    before = _assert_same_state(lab, before, "the workers' status as a check job")

    ban = {"phone_banned_phone": "phone_02", "phone_banned_reason": "INC-LAB-AWX banned by WhatsApp",
           "confirm": "false"}
    plan = _launch(awx_ee, tmp_path, lab, timelines, "cerniq phone_banned", ban, "check")
    shown = [res["msg"][0] for res in plan.ok_results("What this run will change")]
    assert shown and shown[0].startswith("phone_02 (") and shown[0].endswith("-> BANNED in both"), shown
    _assert_same_state(lab, before, "phone_banned as a check job")
    banned = _launch(awx_ee, tmp_path, lab, timelines, "cerniq phone_banned", dict(ban, confirm="true"), "run")
    assert banned.ok_results("Ban the phone, release its leads, cancel its pending jobs (one audited change)")
    rows = lab.sql("SELECT actor, reason FROM ops_audit_log WHERE module = 'wa_phone' AND target LIKE %s",
                   ("%phone_02%",))
    assert rows == [("{0} (awx job {1})".format(USER, JOB_ID), "INC-LAB-AWX banned by WhatsApp")], rows
    assert lab.sql("SELECT status FROM wa_phone_numbers WHERE id = 'phone_02'") == [("BANNED",)]
