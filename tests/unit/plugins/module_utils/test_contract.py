"""The contract's date and key rules: pure functions, no servers needed."""

from datetime import date, datetime, timezone

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

pytestmark = pytest.mark.compat

TZ = "Europe/Bucharest"


def test_business_day_is_bucharest_not_utc():
    # 22:30 UTC on 24 Nov is 00:30 on 25 Nov in Bucharest (UTC+2 in winter).
    now = datetime(2026, 11, 24, 22, 30, tzinfo=timezone.utc)
    assert contract.business_day(TZ, now) == date(2026, 11, 25)
    assert contract.business_day("UTC", now) == date(2026, 11, 24)


def test_business_day_bounds_cover_dst_days():
    start, end = contract.business_day_bounds(date(2026, 3, 29), TZ)  # clocks go forward: a 23-hour day
    assert (end - start).total_seconds() == 23 * 3600
    start, end = contract.business_day_bounds(date(2026, 10, 25), TZ)  # clocks go back: a 25-hour day
    assert (end - start).total_seconds() == 25 * 3600
    assert start == datetime(2026, 10, 24, 21, 0, tzinfo=timezone.utc)  # midnight at UTC+3 (summer time)


def test_quota_key_expires_48h_after_its_day_started():
    day = date(2026, 11, 25)
    start = contract.business_day_bounds(day, TZ)[0]
    assert contract.quota_key_expire_at(day, TZ) == int(start.timestamp()) + 172800


def test_quota_key_round_trip_and_scan_pattern():
    key = contract.quota_key("phone_07", date(2026, 11, 25))
    assert key == "quota:wa:phone_07:2026-11-25"
    assert contract.parse_quota_key(key) == ("phone_07", date(2026, 11, 25))
    assert contract.parse_quota_key("quota:wa:phone_07:yesterday") is None
    assert contract.quota_key_pattern(date(2026, 11, 24)) == "quota:wa:*:2026-11-24"


def test_unknown_time_zone_names_a_valid_one():
    with pytest.raises(CerniqError, match="Europe/Bucharest"):
        contract.business_day("Mars/Olympus")


def test_followup_job_ids_are_valid_bullmq_ids():
    job_id = contract.followup_job_id("4f1c", 1764000000000)
    assert ":" not in job_id and not job_id.isdigit()
