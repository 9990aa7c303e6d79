"""phone_onboard.yml (runbook 2.3) for real, against the TimelinesAI fake: onboarding, the test send, the webhook,
check mode, a second run, and refusals that change nothing."""

from __future__ import annotations

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    business_day,
    phone_status_key,
    quota_key,
    quota_key_expire_at,
)
from tests.fakes import timelinesai as timelinesai_fake
from tests.support.seed import TENANT_ID
from tests.support.snapshots import assert_unchanged, platform_state
from tests.support.vendors import TIMELINES_TOKEN, assert_traffic_matches_openapi

NUMBER = "+40700000021"
ACCOUNT = "40700000021@s.whatsapp.net"
TEST_TO = "+40712345678"
HOOK_URL = "http://127.0.0.1:9/cerniq/timelinesai"


@pytest.fixture()
def onboard(platform, timelines):
    platform.seed(phones=4, leads=0, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, offline=(),
                  banned=(), drift_phone="", leak_phone="", no_ttl_phone="")
    timelines.reset(timelinesai_fake.build_demo_state(phones=21))
    timelines.clear_requests()

    def play(check=False, **extravars):
        base = {"cerniq_timelinesai_base_url": timelines.base_url, "cerniq_timelinesai_api_token": TIMELINES_TOKEN,
                "cerniq_vendor_allow_http": "true", "phone_onboard_phone_number": NUMBER,
                "phone_onboard_label": "Sales 21", "phone_onboard_tenant_id": str(TENANT_ID), "test_number": TEST_TO}
        base.update(extravars)
        return platform.play("phone_onboard.yml", extravars=base, check=check)

    return play


def _state(platform):
    return (platform.sql("SELECT * FROM wa_phone_numbers ORDER BY id"),
            sorted(platform.r(0).scan_iter(count=1000)), platform.audit())


def test_onboard_check_mode_then_real_then_again(platform, timelines, timelines_spec, onboard):
    before = _state(platform)
    checked = onboard(check=True, phone_onboard_webhook_url=HOOK_URL)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert _state(platform) == before
    assert timelines.requests("POST") == []
    done = checked.result("Summary")["msg"]["done"]
    assert done[0].startswith("Check mode") and "phone_05 (+40700000021, Sales 21) would be onboarded" in done[1], done

    run = onboard(phone_onboard_webhook_url=HOOK_URL)
    assert run.rc == 0, run.stdout[-3000:]
    row = platform.sql("SELECT id, phone_number, phone_label, timelinesai_account_id, status, daily_quota_limit, "
                       "is_enabled FROM wa_phone_numbers WHERE phone_number = %s", (NUMBER,))
    assert row == [("phone_05", NUMBER, "Sales 21", ACCOUNT, "ACTIVE", 200, True)]
    r0 = platform.r(0)
    assert r0.get(phone_status_key("phone_05")) == "ACTIVE"
    day = business_day("Europe/Bucharest")
    counter = quota_key("phone_05", day)
    assert r0.get(counter) == "0"
    assert r0.expiretime(counter) == quota_key_expire_at(day, "Europe/Bucharest")
    sends = timelines.requests("POST", "/messages$")
    assert [s["json"] for s in sends] == [{"phone": TEST_TO, "whatsapp_account_phone": NUMBER,
                                           "text": "cerniq.outreach onboarding test message"}]
    assert [h["url"] for h in timelines.snapshot()["webhooks"]] == [HOOK_URL]
    assert [a[2] for a in platform.audit()] == ["phone_onboard", "test_send", "webhook_create"]
    summary = run.result("Summary")["msg"]
    assert any(line.startswith("test message ") and ": Sent after" in line for line in summary["done"]), summary
    assert run.stats["artifact_data"]["phone_onboard"]["created"] is True
    assert_traffic_matches_openapi(timelines, timelines_spec, "https://app.timelines.ai")

    before, vendor_writes = platform_state(platform), [r for r in timelines.requests() if r["method"] != "GET"]
    again = onboard(phone_onboard_webhook_url=HOOK_URL)
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed_tasks == []
    assert len(timelines.requests("POST", "/messages$")) == 1
    assert_unchanged(before, platform_state(platform))
    assert [r for r in timelines.requests() if r["method"] != "GET"] == vendor_writes, "the second run wrote"
    assert "nothing changed in this run" in " ".join(again.result("Summary")["msg"]["done"])


def test_skip_test_send_from_a_survey_string(platform, timelines, onboard):
    run = onboard(skip_test_send="true", test_number="")
    assert run.rc == 0, run.stdout[-3000:]
    assert platform.sql("SELECT id FROM wa_phone_numbers WHERE phone_number = %s", (NUMBER,)) == [("phone_05",)]
    assert timelines.requests("POST") == []
    assert "test send skipped (skip_test_send=true)" in run.result("Summary")["msg"]["done"]


@pytest.mark.parametrize("extravars, message", [
    ({"phone_onboard_phone_number": "+40700000099"}, "TimelinesAI lists no WhatsApp account with number +40700000099"),
    ({"disconnect": True}, "reconnect it (scan the QR code"),
    ({"phone_onboard_phone_number": "0040700000021"}, "is not E.164"),
    ({"test_number": "12"}, "is not E.164"),
    ({"test_number": ""}, "-e test_number=<E.164>"),
])
def test_bad_input_changes_nothing_and_sends_nothing(platform, timelines, onboard, extravars, message):
    if extravars.pop("disconnect", False):
        timelines.set_account_status(NUMBER, "disconnected")
    before = _state(platform)
    run = onboard(**extravars)
    assert run.rc != 0
    assert message in run.stdout, run.stdout[-3000:]
    assert _state(platform) == before
    assert timelines.requests("POST") == []
