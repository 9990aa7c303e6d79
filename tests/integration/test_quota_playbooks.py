"""quota_exhausted.yml (runbook 3.1) and quota_reset.yml (3.2) for real: exact lists and counters, bad input and
check mode changing nothing, confirm before every deletion or adjustment, audit rows, and second runs that change
nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    DEFAULT_TIMEZONE,
    QUEUE_QUOTA_RESET,
    QUOTA_RESET_CRON,
    QUOTA_RESET_SCHEDULER_ID,
    business_day,
    quota_key,
    quota_key_expire_at,
)
from tests.support.snapshots import assert_unchanged, platform_state

# 6 phones, 190 WhatsApp messages logged today on each ACTIVE one (limit 200): phone_02's counter is 10 ahead of the
# log (200: exhausted, and a leak), phone_03's counter has no TTL, phone_04 is OFFLINE.
QUOTA_PLAN = dict(phones=6, leads=100, wa_messages_today=190, old_log_rows=0, reviews=0, jobs_per_phone=0,
                  dlq_entries=0, offline=("phone_04",), banned=(), drift_phone="", leak_phone="phone_02",
                  leak_extra=10, no_ttl_phone="phone_03")


@pytest.fixture()
def quota_scenario(platform):
    return platform.seed(**QUOTA_PLAN)


def today():
    return business_day(DEFAULT_TIMEZONE)


# --- quota_exhausted --------------------------------------------------------------------------------------------

def test_usage_and_leaks_are_listed_exactly_and_nothing_changes(platform, quota_scenario):
    before = platform_state(platform)
    run = platform.play("quota_exhausted.yml")
    assert run.rc == 0, run.stdout[-3000:]
    table = run.result("Show usage against limit")["msg"].splitlines()
    assert table[0].startswith("{0}: 960 of 1000 messages used by 5 ACTIVE phone(s); 1 exhausted, 4 from 90 %, "
                               "1 leak(s)".format(today()))
    assert table[2].split() == ["phone_02", "200/200", "100.0%", "190", "EXHAUSTED", "LEAK", "+10"]
    assert [line.split()[0] for line in table[3:]] == ["phone_01", "phone_03", "phone_05", "phone_06"]
    assert table[4].endswith("NEAR NO TTL")
    assert not any(line.startswith("phone_04") for line in table), "an OFFLINE phone is not in the usage list"
    stats = run.result("Hand the figures to AWX")["ansible_stats"]["data"]["quota_exhausted"]
    assert stats["exhausted"] == ["phone_02"] and stats["near"] == ["phone_01", "phone_03", "phone_05", "phone_06"]
    assert stats["leaks"] == ["phone_02"] and stats["adjusted"] is False
    assert "re-run with -e quota_exhausted_resync=true" in run.result("Summary")["msg"]
    assert run.changed_tasks == []
    assert_unchanged(before, platform_state(platform))


@pytest.mark.parametrize("extravars, message", [
    ({"phone": "phone_02", "quota_value": "many", "reason": "INC-1"}, 'got "many"'),
    ({"phone": "phone_02", "quota_value": "-5", "reason": "INC-1"}, 'got "-5"'),
    ({"phone": "phone_02", "quota_value": "150"}, 'reason (got "")'),
    ({"quota_value": "150", "reason": "INC-1"}, 'phone (got "")'),
    ({"phone": "phone_02", "quota_value": "150", "reason": "INC-1", "quota_exhausted_resync": "true"},
     "one change per run"),
    ({"phone": "phone_77", "quota_value": "150", "reason": "INC-1", "confirm": "true"},
     "phone_77 is not in wa_phone_numbers"),
])
def test_bad_input_stops_before_any_change(platform, quota_scenario, extravars, message):
    before = platform_state(platform)
    run = platform.play("quota_exhausted.yml", extravars=extravars)
    assert run.rc != 0
    assert message in run.stdout
    assert_unchanged(before, platform_state(platform))


def test_emergency_adjustment_needs_confirm_is_audited_and_idempotent(platform, quota_scenario):
    key = quota_key("phone_02", today())
    ask = {"phone": "phone_02", "quota_value": "150", "reason": "INC-4711 double-counted sends"}
    before = platform_state(platform)

    checked = platform.play("quota_exhausted.yml", extravars=ask, check=True, diff=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert checked.result("What this run will change")["msg"] == [
        "set {0} from 200 to 150 (limit 200; reason: INC-4711 double-counted sends)".format(key)]
    assert "Would set {0} from 200 to 150".format(key) in checked.result("Summary")["msg"]
    refused = platform.play("quota_exhausted.yml", extravars=ask)
    assert refused.rc != 0 and "Nothing was changed" in refused.stdout
    assert_unchanged(before, platform_state(platform))

    expiry_before = platform.r(0).expiretime(key)
    done = platform.play("quota_exhausted.yml", extravars=dict(ask, confirm="true"))
    assert done.rc == 0, done.stdout[-3000:]
    assert done.changed_tasks == ["Set the counter by hand (emergency adjustment, audited)"]
    assert platform.r(0).get(key) == "150"
    assert platform.r(0).expiretime(key) == expiry_before, "the counter kept its expiry"
    (audit,) = platform.audit("quota_set")
    assert audit[3] == key and audit[4] == "INC-4711 double-counted sends"
    assert audit[5]["value"] == 200 and audit[6]["value"] == 150
    assert platform.r(0).get(quota_key("phone_01", today())) == "190", "another phone's counter changed"

    before = platform_state(platform)
    again = platform.play("quota_exhausted.yml", extravars=dict(ask, confirm="true"))
    assert again.rc == 0 and again.changed_tasks == []
    assert "already holds 150" in again.result("Summary")["msg"]
    assert_unchanged(before, platform_state(platform))


def test_resync_recounts_only_the_leaking_counters_from_the_log(platform, quota_scenario):
    run = platform.play("quota_exhausted.yml", extravars={"quota_exhausted_resync": "yes", "confirm": "yes"})
    assert run.rc == 0, run.stdout[-3000:]
    assert run.result("What this run will change")["msg"] == ["recount from the log, phone_02: 200 -> 190"]
    assert platform.r(0).get(quota_key("phone_02", today())) == "190"
    (audit,) = platform.audit("quota_sync")
    assert audit[5]["counters"] == {"phone_02": 200} and audit[6]["counters"] == {"phone_02": 190}
    before = platform_state(platform)
    again = platform.play("quota_exhausted.yml", extravars={"quota_exhausted_resync": "yes", "confirm": "yes"})
    assert again.rc == 0 and again.changed_tasks == []
    assert "every counter matches" in again.result("Summary")["msg"]
    assert_unchanged(before, platform_state(platform))


# --- quota_reset --------------------------------------------------------------------------------------------------

@pytest.fixture()
def reset_scenario(platform, quota_scenario):
    """Yesterday's counters left behind by the seed (150, no TTL) and one from three days ago (no TTL)."""
    platform.r(0).set(quota_key("phone_01", today() - timedelta(days=3)), 77)
    return quota_scenario


def scheduler_hash(platform):
    key = "{0}:{1}:repeat:{2}".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET, QUOTA_RESET_SCHEDULER_ID)
    return platform.r(2).hgetall(key)


def counters_of(platform, day):
    return sorted(platform.r(0).scan_iter(match="quota:wa:*:{0}".format(day.isoformat())))


def test_reset_deletes_past_days_repairs_ttl_and_keeps_today(platform, reset_scenario):
    yesterday, three_ago = today() - timedelta(days=1), today() - timedelta(days=3)
    small = {"quota_reset_days_back": "3"}
    before = platform_state(platform)
    checked = platform.play("quota_reset.yml", extravars=small, check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert checked.result("What this run will change")["msg"] == [
        "5 counter(s) to delete (SCAN + UNLINK, audited) for {0}".format(yesterday),
        "1 counter(s) to delete (SCAN + UNLINK, audited) for {0}".format(three_ago)]
    assert "would be deleted" in checked.result("Summary")["msg"]
    refused = platform.play("quota_reset.yml", extravars=small)
    assert refused.rc != 0 and "Nothing was changed" in refused.stdout
    assert_unchanged(before, platform_state(platform))

    today_counters = {key: platform.r(0).get(key) for key in counters_of(platform, today())}
    done = platform.play("quota_reset.yml", extravars=dict(small, confirm="true"))
    assert done.rc == 0, done.stdout[-3000:]
    assert counters_of(platform, yesterday) == [] and counters_of(platform, three_ago) == []
    assert {key: platform.r(0).get(key) for key in counters_of(platform, today())} == today_counters
    no_ttl_key = quota_key("phone_03", today())
    assert platform.r(0).expiretime(no_ttl_key) == quota_key_expire_at(today(), DEFAULT_TIMEZONE)
    assert [row[6]["keys"] for row in platform.audit("quota_reset")] == [1, 5]
    assert platform.audit("quota_repair_ttl")[0][6]["keys"] == [no_ttl_key]
    assert done.result("Re-create the midnight reset scheduler")["changed"] is False

    before = platform_state(platform)
    again = platform.play("quota_reset.yml", extravars=dict(small, confirm="true"))
    assert again.rc == 0 and again.changed_tasks == []
    assert "none in the last 3 day(s)" in again.result("Summary")["msg"]
    assert_unchanged(before, platform_state(platform))


def test_yesterday_is_kept_until_rolled_up_and_the_scheduler_is_recreated(platform, reset_scenario):
    yesterday = today() - timedelta(days=1)
    platform.sql("DELETE FROM wa_quota_usage WHERE phone_id IN ('phone_02', 'phone_05')")
    platform.r(2).delete(*platform.r(2).scan_iter(match="{0}:{1}:*".format(BULLMQ_PREFIX, QUEUE_QUOTA_RESET)))
    run = platform.play("quota_reset.yml", extravars={"quota_reset_days_back": "3", "confirm": "true"})
    assert run.rc == 0, run.stdout[-3000:]
    summary = run.result("Summary")["msg"]
    assert "NOT rolled up for 2 phone(s) (phone_02, phone_05)" in summary
    assert "Kept yesterday's counters" in summary
    assert len(counters_of(platform, yesterday)) == 5
    assert counters_of(platform, today() - timedelta(days=3)) == []
    stored = scheduler_hash(platform)
    assert stored["pattern"] == QUOTA_RESET_CRON and stored["tz"] == DEFAULT_TIMEZONE
    assert "re-created" in summary
    stats = run.result("Hand the figures to AWX")["ansible_stats"]["data"]["quota_reset"]
    assert stats["rolled_up"] is False and stats["usage_missing"] == ["phone_02", "phone_05"]
    assert stats["scheduler_changed"] is True

    forced = platform.play("quota_reset.yml",
                           extravars={"quota_reset_days_back": "3", "confirm": "true", "quota_reset_force": "true"})
    assert forced.rc == 0, forced.stdout[-3000:]
    assert counters_of(platform, yesterday) == []
    assert forced.result("Re-create the midnight reset scheduler")["changed"] is False
