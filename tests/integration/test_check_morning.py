"""check_morning.yml (runbook 1.1) for real: seeded faults each found with its exact figure, a clean platform all
pass, check mode and a second run changing nothing, TimelinesAI down, part of the checks by tag."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    DEFAULT_TIMEZONE,
    QUEUE_QUOTA_RESET,
    TABLE_REVIEWS,
    business_day,
    phone_queue,
    quota_key,
)
from tests.fakes import timelinesai as timelinesai_fake
from tests.support.producers import add_waiting_and_due
from tests.support.seed import TENANT_ID
from tests.support.snapshots import assert_unchanged, platform_state
from tests.support.vendors import TIMELINES_TOKEN, assert_traffic_matches_openapi

CHECKS = ["phones", "quota_reset", "reviews", "queues", "sla", "timelinesai", "drift"]
# Small thresholds, written as an AWX survey sends them (strings).
THRESHOLDS = {"check_morning_queue_waiting_warn": "50", "check_morning_queue_waiting_fail": "500",
              "check_morning_pending_reviews_warn": "5", "check_morning_dlq_warn": "10"}
CLEAN = dict(offline=(), banned=(), drift_phone="", leak_phone="", no_ttl_phone="", stale_yesterday_keys=False)


def add_reviews(platform, rows):
    """rows: (priority, status, sla_due_at offset from now, resolved_at offset or None)."""
    now = datetime.now(timezone.utc)
    for priority, status, due, resolved in rows:
        platform.sql("INSERT INTO " + TABLE_REVIEWS + " (tenant_id, reason, priority, status, assigned_to, sla_due_at, "
                     "created_at, resolved_at) VALUES (%s, 'pricing_question', %s, %s, %s, %s, %s, %s)",
                     (str(TENANT_ID), priority, status, "ana" if status == "ASSIGNED" else None, now + due,
                      now - timedelta(hours=6), now + resolved if resolved is not None else None))


# 3 URGENT pending and 2 HIGH assigned past their SLA; 4 NORMAL pending in time; 1 LOW resolved after its SLA.
REVIEWS = ([("URGENT", "PENDING", timedelta(hours=-1), None)] * 3 +
           [("HIGH", "ASSIGNED", timedelta(minutes=-30), None)] * 2 +
           [("NORMAL", "PENDING", timedelta(hours=5), None)] * 4 +
           [("LOW", "RESOLVED", timedelta(hours=-3), timedelta(hours=-1))])


@pytest.fixture()
def faulty(platform, timelines):
    """8 phones: phone_04 OFFLINE in the DB (Redis still says ACTIVE), phone_06 BANNED, phone_02's counter 7 ahead of
    the log, phone_03's counter without TTL; TimelinesAI agrees about 4 and 6; two queues in trouble."""
    facts = platform.seed(phones=8, leads=200, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=12,
                          offline=("phone_04",), banned=("phone_06",), drift_phone="phone_04", leak_phone="phone_02",
                          leak_extra=7, no_ttl_phone="phone_03")
    timelines.reset(timelinesai_fake.build_demo_state(phones=8, disconnected=(4, 6)))
    add_reviews(platform, REVIEWS)
    add_waiting_and_due(platform.redis, phone_queue("phone_01"), waiting=60)
    add_waiting_and_due(platform.redis, phone_queue("phone_02"), due_delayed=2)
    return facts


def run_morning(platform, timelines, report_dir, check=False, tags=None, **extra):
    extravars = {"cerniq_timelinesai_base_url": timelines.base_url, "cerniq_timelinesai_api_token": TIMELINES_TOKEN,
                 "cerniq_vendor_allow_http": True, "cerniq_report_dir": str(report_dir)}
    extravars.update(THRESHOLDS)
    extravars.update(extra)
    return platform.play("check_morning.yml", extravars=extravars, check=check, tags=tags)


def report_of(run):
    return run.result("The report, and where")["ansible_facts"]["check_morning_report"]


def by_name(report):
    return {check["name"]: check for check in report["checks"]}


def test_every_seeded_fault_is_found_with_its_figure(platform, faulty, timelines, tmp_path):
    run = run_morning(platform, timelines, tmp_path)

    assert run.rc != 0, "a failed check must fail the play"
    assert "Failed: phones, sla, drift" in run.stdout
    report = report_of(run)
    checks = by_name(report)
    assert [c["name"] for c in report["checks"]] == CHECKS
    assert {name: c["status"] for name, c in checks.items()} == {
        "phones": "fail", "quota_reset": "warn", "reviews": "warn", "queues": "warn", "sla": "fail",
        "timelinesai": "pass", "drift": "fail"}
    assert checks["phones"]["figure"] == "2 of 8 not ACTIVE: OFFLINE phone_04; BANNED phone_06"
    assert checks["quota_reset"]["data"]["present"] == 6 and checks["quota_reset"]["data"]["missing"] == []
    assert checks["quota_reset"]["data"]["without_ttl"] == ["phone_03"]
    assert checks["quota_reset"]["data"]["scheduler"]["id"] == "quota-reset-daily"
    assert checks["reviews"]["data"]["pending"] == 7 and checks["reviews"]["data"]["assigned"] == 2
    assert checks["sla"]["data"]["open"] == 5 and checks["sla"]["data"]["since"] == 6
    assert checks["sla"]["data"]["open_by_priority"] == {"URGENT": 3, "HIGH": 2, "NORMAL": 0, "LOW": 0}
    queues = checks["queues"]["data"]
    assert (queues["waiting"], queues["dlq"]) == (60, 12)
    assert queues["queues"][0]["name"] == phone_queue("phone_01") and queues["queues"][0]["waiting"] == 60
    assert "backed up: q:wa:phone_01 (60 waiting)" in checks["queues"]["details"]
    assert any(line.startswith("delayed jobs due, no worker") and "q:wa:phone_02 (2)" in line
               for line in checks["queues"]["details"])
    assert checks["drift"]["data"] == {"status_drift": ["phone_04"], "counter_leaks": ["phone_02"]}
    assert "phone_02 (Redis" in checks["drift"]["figure"]
    assert checks["timelinesai"]["data"]["connected"] == 6

    # The console table, the JSON report and the AWX stats tell the same story.
    table = run.result("Show the morning check")["msg"]
    assert "phones       FAIL    2 of 8 not ACTIVE" in table
    report_file = tmp_path / "check_morning-{0}.json".format(business_day(DEFAULT_TIMEZONE))
    assert len(report_file.read_text().splitlines()) == 1
    written = json.loads(report_file.read_text())
    assert written["overall"] == "fail" and written["failed"] == ["phones", "sla", "drift"]
    # The summary says where the report landed (on the controller): the file just read, by its full path.
    assert "Report: {0}".format(report_file) in table.splitlines(), table
    assert by_name(written)["drift"]["data"] == checks["drift"]["data"]
    stats = run.result("Hand the verdicts to AWX")["ansible_stats"]["data"]["check_morning"]
    assert stats["counts"] == {"pass": 1, "warn": 3, "fail": 3, "skip": 0}
    assert stats["checks"]["sla"]["status"] == "fail"


def test_check_mode_and_a_second_run_change_nothing(platform, faulty, timelines, timelines_spec, tmp_path):
    before = platform_state(platform)
    checked = run_morning(platform, timelines, tmp_path / "reports", check=True,
                          check_morning_fail_on_failed_checks="false")
    assert checked.rc == 0, checked.stdout[-3000:]
    assert not (tmp_path / "reports").exists(), "check mode wrote the report"
    assert "No report file written" in checked.result("Show the morning check")["msg"]
    assert_unchanged(before, platform_state(platform))

    first = run_morning(platform, timelines, tmp_path / "reports", check_morning_fail_on_failed_checks="false")
    assert first.rc == 0, first.stdout[-3000:]
    assert first.changed_tasks == [] and len(list((tmp_path / "reports").iterdir())) == 1
    before = platform_state(platform)
    second = run_morning(platform, timelines, tmp_path / "reports", check_morning_fail_on_failed_checks="false")
    assert second.rc == 0 and second.changed_tasks == []
    # A read-only check: no key, no row, not even an audit row (so nothing is excluded from the comparison).
    assert_unchanged(before, platform_state(platform))
    assert platform.audit() == []
    # What the three runs asked TimelinesAI is what its OpenAPI document describes.
    assert_traffic_matches_openapi(timelines, timelines_spec, "https://app.timelines.ai")


def test_a_clean_platform_passes_every_check(platform, timelines, tmp_path):
    platform.seed(phones=5, leads=100, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, **CLEAN)
    timelines.reset(timelinesai_fake.build_demo_state(phones=5, disconnected=()))
    run = run_morning(platform, timelines, tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    report = report_of(run)
    assert {c["name"]: c["status"] for c in report["checks"]} == dict.fromkeys(CHECKS, "pass")
    assert report["next"] == [] and "Nothing to do." in run.result("Show the morning check")["msg"]


def test_missing_reset_and_timelinesai_down_are_failed_checks_not_a_crash(platform, timelines, tmp_path):
    platform.seed(phones=5, leads=100, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, **CLEAN)
    today = business_day(DEFAULT_TIMEZONE)
    platform.r(0).delete(quota_key("phone_02", today))
    platform.r(2).delete(*platform.r(2).scan_iter(match="{0}:{1}:*".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET)))
    timelines.add_fault(500, path="/whatsapp_accounts", times=10)
    try:
        run = run_morning(platform, timelines, tmp_path)
    finally:
        timelines.clear_faults()
    assert run.rc != 0
    checks = by_name(report_of(run))
    assert checks["quota_reset"]["status"] == "fail"
    assert checks["quota_reset"]["data"]["missing"] == ["phone_02"]
    assert checks["quota_reset"]["data"]["scheduler"] is None
    assert "no quota-reset-daily scheduler" in checks["quota_reset"]["figure"]
    assert checks["timelinesai"]["status"] == "fail"
    assert checks["timelinesai"]["figure"].startswith("TimelinesAI could not be read")
    assert checks["phones"]["status"] == "pass"
    # A counter that is gone while messages were logged today is also a counter off the log.
    assert checks["drift"]["status"] == "warn" and checks["drift"]["data"]["counter_leaks"] == ["phone_02"]


def test_tags_run_part_of_the_check_and_timelinesai_can_be_switched_off(platform, faulty, timelines, tmp_path):
    run = run_morning(platform, timelines, tmp_path, tags="sla", check_morning_write_report="false")
    assert [c["name"] for c in report_of(run)["checks"]] == ["sla"]
    assert run.rc != 0  # the SLA check failed
    assert not list(tmp_path.iterdir())

    run = run_morning(platform, timelines, tmp_path, tags="phones,timelinesai", check_morning_timelinesai="false",
                      check_morning_banned_fails="true")
    checks = by_name(report_of(run))
    assert list(checks) == ["phones", "timelinesai"]
    assert checks["timelinesai"]["status"] == "skip"
    assert checks["phones"]["status"] == "fail" and checks["phones"]["data"]["banned"] == ["phone_06"]
