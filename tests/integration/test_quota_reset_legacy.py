"""The quota reset registered the runbook's way (1.1 step 2, 3.2 step 4): a LEGACY repeatable job written by a real
Node BullMQ 5 `Queue.add('reset', {}, {repeat: {pattern: '0 0 * * *'}})`. It is recognised (and reported as such),
no second schedule is ever created beside it, and an explicit migration replaces it by our job scheduler."""

from __future__ import annotations

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_repeat import read_schedulers, schedule_summary
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    DEFAULT_TIMEZONE,
    QUEUE_QUOTA_RESET,
    QUOTA_RESET_CRON,
    QUOTA_RESET_SCHEDULER_ID,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.cores import run
from tests.support.producers import node_legacy_repeat

QUEUE_KEYS = "{0}:{1}:*".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET)
OURS = dict(id=QUOTA_RESET_SCHEDULER_ID, pattern=QUOTA_RESET_CRON, tz=DEFAULT_TIMEZONE, job_name="reset")


def node_legacy_add(platform, queue=QUEUE_QUOTA_RESET, pattern=QUOTA_RESET_CRON, tz=None):
    """The runbook's registration, by the real Node BullMQ 5 (tests/node); returns what Node reported."""
    return node_legacy_repeat(platform.redis, queue, pattern, tz)


def reset_queue_state(platform):
    """Every key of the reset queue with its exact serialized value (DUMP): byte-level 'nothing changed'."""
    r = platform.r(2)
    return {key: r.dump(key) for key in sorted(r.scan_iter(match=QUEUE_KEYS, count=1000))
            if not key.endswith(":events")}


@pytest.fixture()
def legacy_reset(platform):
    """The reset queue holding only the runbook's legacy registration (no tz, as the runbook writes it)."""
    r = platform.r(2)
    stale = list(r.scan_iter(match=QUEUE_KEYS))
    if stale:
        r.delete(*stale)
    return node_legacy_add(platform)


def test_the_runbook_registration_is_read_as_a_legacy_repeatable_job(platform, legacy_reset):
    (view,) = read_schedulers(platform.r(2), [QUEUE_QUOTA_RESET])[QUEUE_QUOTA_RESET]
    (node_view,) = legacy_reset["repeatables"]
    assert view["legacy"] is True and view["key_format"] == "hash"
    assert view["id"] == legacy_reset["repeatJobKey"] == node_view["key"]
    assert (view["name"], view["pattern"], view["tz"], view["every"]) == ("reset", QUOTA_RESET_CRON, None, None)
    # The next job is the one Node created, at the time Node computed.
    assert view["next_job_id"] == legacy_reset["id"] and view["next_ms"] == node_view["next"]
    assert platform.r(2).exists("{0}:{1}:{2}".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET, view["next_job_id"]))
    assert "legacy repeatable job {0} (0 0 * * *, no tz".format(view["id"]) in schedule_summary(view)


def test_keep_never_creates_a_second_schedule_beside_the_legacy_one(platform, legacy_reset):
    before = reset_queue_state(platform)
    for check_mode in (True, False):
        result = run(platform, check_mode=check_mode, queue=QUEUE_QUOTA_RESET,
                     scheduler=dict(OURS, other_schedules="keep"))
        assert result["changed"] is False and result["scheduler"]["registration"] == "legacy"
        assert result["scheduler"]["created"] is False
        assert "already has legacy repeatable job {0}".format(legacy_reset["repeatJobKey"]) in result["msg"]
        assert reset_queue_state(platform) == before
    assert platform.audit() == []


def test_migration_replaces_the_legacy_job_by_our_scheduler_check_mode_first(platform, legacy_reset):
    r = platform.r(2)
    legacy_key = legacy_reset["repeatJobKey"]
    before = reset_queue_state(platform)
    plan = run(platform, check_mode=True, queue=QUEUE_QUOTA_RESET, scheduler=dict(OURS, other_schedules="migrate"))
    assert plan["changed"] is True and [m["id"] for m in plan["scheduler"]["migrated"]] == [legacy_key]
    assert reset_queue_state(platform) == before and platform.audit() == []

    done = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(OURS, other_schedules="migrate"),
               reason="move the runbook's reset to a job scheduler")
    assert done["changed"] is True and done["scheduler"]["registration"] == "legacy"
    repeat = "{0}:{1}:repeat".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET)
    # One schedule left, ours; the legacy hash and its next delayed job are gone.
    assert [member for member, _score in r.zrange(repeat, 0, -1, withscores=True)] == [QUOTA_RESET_SCHEDULER_ID]
    assert not r.exists(repeat + ":" + legacy_key, "{0}:{1}:{2}".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET,
                                                                        legacy_reset["id"]))
    delayed = r.zrange("{0}:{1}:delayed".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET), 0, -1)
    assert len(delayed) == 1 and delayed[0].startswith("repeat:{0}:".format(QUOTA_RESET_SCHEDULER_ID))
    (ours,) = read_schedulers(r, [QUEUE_QUOTA_RESET])[QUEUE_QUOTA_RESET]
    assert (ours["legacy"], ours["pattern"], ours["tz"], ours["name"]) == (False, QUOTA_RESET_CRON, DEFAULT_TIMEZONE,
                                                                           "reset")
    (migrated,) = platform.audit("bullmq_migrate_legacy_repeat")
    assert migrated[5]["id"] == legacy_key and migrated[6]["removed"] is True and migrated[6]["next_job_removed"]
    assert migrated[6]["replaced_by"] == QUOTA_RESET_SCHEDULER_ID
    assert len(platform.audit("bullmq_upsert_scheduler")) == 1

    again = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(OURS, other_schedules="migrate"))
    assert again["changed"] is False and again["scheduler"]["registration"] == "scheduler"


def test_a_legacy_job_beside_our_scheduler_is_reported_and_migration_removes_it(platform, legacy_reset):
    run(platform, queue=QUEUE_QUOTA_RESET, scheduler=OURS)  # the state two registrations leave: two resets a night
    kept = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(OURS, other_schedules="keep"))
    assert kept["changed"] is False and kept["scheduler"]["registration"] == "scheduler+legacy"
    assert [s["id"] for s in kept["scheduler"]["other_schedules"]] == [legacy_reset["repeatJobKey"]]
    migrated = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(OURS, other_schedules="migrate"))
    assert migrated["changed"] is True
    assert [s["id"] for s in read_schedulers(platform.r(2), [QUEUE_QUOTA_RESET])[QUEUE_QUOTA_RESET]] == [
        QUOTA_RESET_SCHEDULER_ID]


def test_migration_is_refused_beside_another_job_scheduler(platform, legacy_reset):
    run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(OURS, id="someone-elses-reset"))
    before = reset_queue_state(platform)
    with pytest.raises(CerniqError, match="not migrating.*job scheduler someone-elses-reset.*Nothing was changed"):
        run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(OURS, other_schedules="migrate"))
    assert reset_queue_state(platform) == before


# --- The morning check (runbook 1.1 step 2) and quota_reset.yml (3.2 step 4) on the runbook's registration --------

CLEAN = dict(offline=(), banned=(), drift_phone="", leak_phone="", no_ttl_phone="", stale_yesterday_keys=False)


def morning_quota(platform, tmp_path):
    play = platform.play("check_morning.yml", tags="quota", extravars={"cerniq_report_dir": str(tmp_path),
                                                                       "check_morning_timelinesai": "false"})
    (check,) = play.result("The report, and where")["ansible_facts"]["check_morning_report"]["checks"]
    return play, check


def test_the_morning_check_passes_on_the_legacy_registration_and_warns_on_two(platform, tmp_path):
    platform.seed(phones=3, leads=20, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, **CLEAN)
    r = platform.r(2)
    r.delete(*r.scan_iter(match=QUEUE_KEYS))
    legacy = node_legacy_add(platform)
    play, check = morning_quota(platform, tmp_path)
    assert play.rc == 0, play.stdout[-3000:]
    assert check["status"] == "pass" and check["data"]["registration"] == "legacy"
    assert check["data"]["scheduler"] is None and check["data"]["legacy"][0]["id"] == legacy["repeatJobKey"]
    assert "reset in place as the runbook's legacy repeatable job (0 0 * * *, no tz" in check["figure"]

    run(platform, queue=QUEUE_QUOTA_RESET, scheduler=OURS)  # what the old quota_reset.yml did beside it
    _play, check = morning_quota(platform, tmp_path)
    assert check["status"] == "warn" and check["data"]["registration"] == "scheduler+legacy"
    assert "2 reset schedules on quota:guardian:reset: the reset runs 2 times a night" in check["figure"]
    assert "-e migrate_legacy_reset=true -e confirm=true" in check["next"]


def test_quota_reset_keeps_the_legacy_registration_and_migrates_it_only_when_confirmed(platform):
    platform.seed(phones=3, leads=20, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, **CLEAN)
    r = platform.r(2)
    r.delete(*r.scan_iter(match=QUEUE_KEYS))
    legacy = node_legacy_add(platform)
    before = reset_queue_state(platform)

    kept = platform.play("quota_reset.yml", tags="scheduler", extravars={"confirm": "true"})
    assert kept.rc == 0, kept.stdout[-3000:]
    assert kept.result("Re-create the midnight reset scheduler")["changed"] is False
    summary = kept.result("Summary")["msg"]
    assert "registered as the runbook does it, kept: legacy repeatable job {0}".format(
        legacy["repeatJobKey"]) in summary
    assert reset_queue_state(platform) == before
    stats = kept.result("Hand the figures to AWX")["ansible_stats"]["data"]["quota_reset"]
    assert stats["reset_registration"] == "legacy"

    checked = platform.play("quota_reset.yml", tags="scheduler", check=True,
                            extravars={"migrate_legacy_reset": "true"})
    assert checked.rc == 0, checked.stdout[-3000:]
    assert "remove the legacy repeatable job(s) {0}".format(legacy["repeatJobKey"]) in " ".join(
        checked.result("What this run will change")["msg"])
    refused = platform.play("quota_reset.yml", tags="scheduler", extravars={"migrate_legacy_reset": "true"})
    assert refused.rc != 0 and "Nothing was changed" in refused.stdout
    assert reset_queue_state(platform) == before and platform.audit() == []

    migrated = platform.play("quota_reset.yml", tags="scheduler",
                             extravars={"migrate_legacy_reset": "true", "confirm": "true"})
    assert migrated.rc == 0, migrated.stdout[-3000:]
    assert "replaced by job scheduler {0}".format(QUOTA_RESET_SCHEDULER_ID) in migrated.result("Summary")["msg"]
    assert [s["id"] for s in read_schedulers(r, [QUEUE_QUOTA_RESET])[QUEUE_QUOTA_RESET]] == [
        QUOTA_RESET_SCHEDULER_ID]
    assert len(platform.audit("bullmq_migrate_legacy_repeat")) == 1


def test_dr_redis_keeps_a_restored_legacy_registration_and_adds_no_second_schedule(platform):
    platform.seed(phones=3, leads=20, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, **CLEAN)
    r = platform.r(2)
    r.delete(*r.scan_iter(match=QUEUE_KEYS))
    legacy = node_legacy_add(platform)
    run_dr = platform.play("dr_redis.yml", extravars={"confirm": "true"})
    assert run_dr.rc == 0, run_dr.stdout[-3000:]
    assert run_dr.result("Re-create the quota reset scheduler")["changed"] is False
    repeat = "{0}:{1}:repeat".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET)
    assert r.zrange(repeat, 0, -1) == [legacy["repeatJobKey"]]
    assert "kept the registration there: legacy repeatable job {0}".format(legacy["repeatJobKey"]) in " ".join(
        run_dr.stdout.split())
