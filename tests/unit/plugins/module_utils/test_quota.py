"""The quota rules that need no server: input checks, which days may be written or reset, the write plan."""

from datetime import date, datetime, timezone

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _quota as quota
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

TZ = "Europe/Bucharest"
# 23:30 UTC on 24 Nov 2026 is 01:30 on 25 Nov in Bucharest.
LATE_EVENING_UTC = datetime(2026, 11, 24, 23, 30, tzinfo=timezone.utc)


def test_reason_must_say_something():
    assert quota.validate_reason("  INC-1  ") == "INC-1"
    for blank in (None, "", "   "):
        with pytest.raises(CerniqError, match="reason is required"):
            quota.validate_reason(blank)


def test_writable_days_are_today_and_yesterday_in_the_platform_zone():
    day, expire_at = quota.writable_day("2026-11-25", TZ, now=LATE_EVENING_UTC)
    assert day == date(2026, 11, 25)
    assert expire_at == int(datetime(2026, 11, 24, 22, 0, tzinfo=timezone.utc).timestamp()) + 172800
    assert quota.writable_day("2026-11-24", TZ, now=LATE_EVENING_UTC)[0] == date(2026, 11, 24)
    with pytest.raises(CerniqError, match="expired"):
        quota.writable_day("2026-11-23", TZ, now=LATE_EVENING_UTC)
    with pytest.raises(CerniqError, match="in the future"):
        quota.writable_day("2026-11-26", TZ, now=LATE_EVENING_UTC)


def test_a_reset_takes_only_past_days():
    assert quota.resettable_day("2026-11-24", TZ, now=LATE_EVENING_UTC) == date(2026, 11, 24)
    # In UTC it is still the 24th, but the business day is the 25th: the 24th is already past.
    with pytest.raises(CerniqError, match="is today"):
        quota.resettable_day("2026-11-25", TZ, now=LATE_EVENING_UTC)
    with pytest.raises(CerniqError, match="in the future"):
        quota.resettable_day("2026-12-01", TZ, now=LATE_EVENING_UTC)
    with pytest.raises(CerniqError, match="needs date"):
        quota.resettable_day(None, TZ, now=LATE_EVENING_UTC)


def test_the_write_plan_follows_the_compare_and_set_script():
    keys = ["k_same", "k_diff_ttl", "k_diff_nottl", "k_missing", "k_same_nottl", "k_garbage"]
    before = [("5", 100), ("5", 100), ("5", -1), (None, -2), ("9", -1), ("abc", 50)]
    plan = {p["key"]: p for p in quota.plan_counter_writes(keys, before, [5, 7, 7, 0, 9, 4])}
    assert not plan["k_same"]["value_changed"] and not plan["k_same"]["gains_expiry"]
    assert plan["k_diff_ttl"]["value_changed"] and not plan["k_diff_ttl"]["gains_expiry"]  # KEEPTTL
    assert plan["k_diff_nottl"]["gains_expiry"] and plan["k_diff_nottl"]["ttl_repaired"]
    assert plan["k_missing"]["value_changed"] and plan["k_missing"]["gains_expiry"]
    assert plan["k_missing"]["before"] is None and plan["k_missing"]["after"] == 0
    assert not plan["k_same_nottl"]["value_changed"] and plan["k_same_nottl"]["ttl_repaired"]
    assert plan["k_garbage"]["before"] == "abc" and plan["k_garbage"]["after"] == 4
    repair_only = quota.plan_counter_writes(["a", "b"], [("3", -1), (None, -2)], [None, None])
    assert [p["ttl_repaired"] for p in repair_only] == [True, False]
    assert [p["value_changed"] for p in repair_only] == [False, False]


def test_a_counter_entry_flags_leaks_beyond_the_tolerance():
    phone = dict(phone_id="phone_05", limit=200, status="ACTIVE", db_count=100)
    entry = quota.describe_counter(phone, "k", "115", 3600, None, 1_000_000, 1_100_000, tolerance=10)
    assert (entry["value"], entry["difference"], entry["leak"], entry["used_percent"]) == (115, 15, True, 57.5)
    assert quota.describe_counter(phone, "k", "105", 3600, None, 0, 0, tolerance=10)["leak"] is False
    no_ttl = quota.describe_counter(dict(phone, limit=0), "k", "x", -1, None, 0, 0)
    assert no_ttl["no_ttl"] and no_ttl["used_percent"] is None and "not an integer" in no_ttl["problem"]
