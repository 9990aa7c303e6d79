"""wa_phone input checks and the summary, without servers."""

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _phones as phones
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

TENANT = "5b1f0c1e-0000-4000-8000-00000000c3e1"


def test_a_full_onboarding_request_is_normalised():
    phone_id, wanted, cap = phones.phone_request(phones.PhoneRequest(
        phone_number="+40712345021", tenant_id=TENANT.upper(), label="  Sales 21 ",
        timelinesai_account_id="40712345021@s.whatsapp.net", daily_quota_limit="180", enabled=True, status="banned"))
    assert phone_id is None and cap == phones.DEFAULT_LEAD_IDS_CAP
    assert wanted == dict(phone_number="+40712345021", tenant_id=TENANT, phone_label="Sales 21",
                          timelinesai_account_id="40712345021@s.whatsapp.net", daily_quota_limit=180,
                          is_enabled=True, status="BANNED")


def test_a_request_from_module_parameters_takes_its_options_and_keeps_defaults_for_unset_ones():
    params = dict(phone_id="phone_07", status="BANNED", label=None, lead_ids_cap=None, release_leads=False,
                  state="present", confirm=True, redis_host="127.0.0.1")
    assert phones.PhoneRequest.from_params(params) == phones.PhoneRequest(phone_id="phone_07", status="BANNED",
                                                                          release_leads=False)


def test_only_the_given_fields_are_wanted():
    assert phones.phone_request(phones.PhoneRequest(phone_id="phone_07", status="OFFLINE", lead_ids_cap=None)) == \
        ("phone_07", dict(status="OFFLINE"), phones.DEFAULT_LEAD_IDS_CAP)


@pytest.mark.parametrize(("options", "message"), [
    ({}, "give phone_id .* or phone_number"),
    (dict(phone_id="phone-7"), "phone_NN"),
    (dict(phone_number="+0712345678"), "E.164"),
    (dict(phone_id="phone_07", tenant_id="nope"), "not a UUID"),
    (dict(phone_id="phone_07", label=""), "label must not be empty"),
    (dict(phone_id="phone_07", timelinesai_account_id="a b"), "empty or has spaces"),
    (dict(phone_number="+40712345021", timelinesai_account_id="40799999999@s.whatsapp.net"),
     "belongs to \\+40799999999, not to \\+40712345021"),
    (dict(phone_id="phone_07", daily_quota_limit=-1), "non-negative"),
    (dict(phone_id="phone_07", status="DELETED"), "is not one of ACTIVE, OFFLINE, BANNED"),
    (dict(phone_id="phone_07", lead_ids_cap=-2), "lead_ids_cap"),
])
def test_bad_requests_fail_before_any_connection(options, message):
    with pytest.raises(CerniqError, match=message):
        phones.phone_request(phones.PhoneRequest(**options))


def test_field_changes_list_only_what_differs():
    current = dict(phone_number="+40700000001", tenant_id=TENANT, phone_label="Sales 01", status="ACTIVE",
                   daily_quota_limit=200, is_enabled=True, timelinesai_account_id=None)
    assert phones.field_changes(current, dict(phone_label="Sales 01", status="BANNED", daily_quota_limit=200)) == \
        {"status": ("ACTIVE", "BANNED")}


def test_summary_counts_statuses_drift_and_busy_phones():
    def entry(pid, status, drift_reason, used_percent, no_ttl=False, pending=0):
        return dict(id=pid, status=status, drift=drift_reason is not None, drift_reason=drift_reason, problems=[],
                    quota=dict(used_percent=used_percent, no_ttl=no_ttl, value=used_percent),
                    queue=dict(pending=pending, active=0))

    summary = phones.phones_summary([entry("phone_01", "ACTIVE", None, 95.0, pending=4),
                                     entry("phone_02", "OFFLINE", "differs", 10.0, no_ttl=True),
                                     entry("phone_03", "ACTIVE", "missing", None)], 90)
    assert summary["by_status"] == {"ACTIVE": 2, "OFFLINE": 1, "BANNED": 0}
    assert summary["drifted"] == ["phone_02", "phone_03"] and summary["missing_redis_status"] == ["phone_03"]
    assert summary["over_quota_percent"] == ["phone_01"] and summary["quota_without_ttl"] == ["phone_02"]
    assert summary["pending_jobs"] == 4
