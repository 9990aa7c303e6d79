"""wa_phone_status: Redis status keys regenerated from the database (runbook 6.2 step 3) on real servers."""

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._phone_status import sync_status_keys
from tests.support.snapshots import assert_unchanged, platform_state


def test_missing_and_drifting_keys_are_rewritten_from_the_db(platform):
    platform.seed(phones=6, leads=50, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0,
                  offline=("phone_04",), banned=("phone_06",), drift_phone="phone_04", leak_phone="phone_02",
                  no_ttl_phone="phone_03")
    redis = platform.r(0)
    redis.delete(contract.phone_status_key("phone_05"))
    result = sync_status_keys(platform.params, want_diff=True)
    assert result["phones"] == 6 and result["changed"] is True
    assert {(c["phone_id"], c["before"], c["after"]) for c in result["corrected"]} == {
        ("phone_04", "ACTIVE", "OFFLINE"), ("phone_05", None, "ACTIVE")}
    assert redis.get(contract.phone_status_key("phone_04")) == "OFFLINE"
    assert redis.get(contract.phone_status_key("phone_06")) == "BANNED"
    assert result["diff"]["after"] == {"phone:status:phone_04": "OFFLINE", "phone:status:phone_05": "ACTIVE"}
    audit = platform.audit("phone_status_sync")
    assert len(audit) == 1 and audit[0][6] == {"phone_04": "OFFLINE", "phone_05": "ACTIVE"}
    again = sync_status_keys(platform.params)
    assert again["changed"] is False and again["corrected"] == []


def test_check_mode_reports_and_writes_nothing(platform):
    platform.seed(phones=3, leads=10, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, offline=(),
                  banned=(), drift_phone="phone_01", leak_phone="phone_02", no_ttl_phone="phone_03")
    platform.r(0).delete(contract.phone_status_key("phone_02"))
    before = platform_state(platform)
    result = sync_status_keys(platform.params, check_mode=True)
    assert result["corrected_count"] == 1
    assert_unchanged(before, platform_state(platform))


def test_unknown_phone_is_refused(platform):
    with pytest.raises(CerniqError, match="unknown phone"):
        sync_status_keys(platform.params, phone_ids=["phone_99"])
