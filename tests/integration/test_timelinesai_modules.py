"""timelinesai_account_info, the test send and the webhook registration against the TimelinesAI fake and the
session's PostgreSQL; every exchange validated against the Public API's OpenAPI document."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _timelinesai as tl_mod
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._http import VendorClient
from tests.fakes import timelinesai as timelinesai_fake
from tests.support.vendors import (
    TIMELINES_SERVER,
    TIMELINES_TOKEN,
    assert_traffic_matches_openapi,
    changes,
    seed_phones,
    vendor_params,
)

RECIPIENT = "+40712345678"


@pytest.fixture()
def params(platform, timelines):
    # 600/min spaces polls 0.1 s apart; test_poll_spacing_respects_the_rate_limit checks the spacing itself
    return vendor_params(platform.params, timelines=timelines, timelinesai_rate_limit=600)


def audit_rows(platform, module):
    return platform.sql("SELECT action, target, reason, before, after FROM ops_audit_log WHERE module = %s "
                        "ORDER BY id", (module,))


# ---- timelinesai_account_info --------------------------------------------------------------------------------


def test_accounts_matched_to_phones(params, platform, timelines, timelines_spec):
    seed_phones(platform)
    state = timelinesai_fake.build_demo_state()
    state["accounts"] = [a for a in state["accounts"] if a["phone"] != "+40700000020"]
    state["accounts"][2]["status"] = "Active"  # the document's own example spells it so
    extra = dict(state["accounts"][0], id="40799999999@s.whatsapp.net", phone="+40799999999", status="active")
    state["accounts"].append(extra)
    timelines.reset(state)

    result = tl_mod.account_info(params)
    assert result["changed"] is False
    assert result["disconnected"] == ["phone_07", "phone_19"]
    assert result["missing"] == ["phone_20", "phone_21"]
    assert result["account_id_mismatch"] == ["phone_05"]
    assert "phone_03" in result["connected"] and len(result["connected"]) == 17
    assert result["unknown_accounts"] == [{"id": "40799999999@s.whatsapp.net", "phone": "+40799999999",
                                           "status": "active"}]
    assert result["counts"] == dict(phones=21, accounts=20, connected=17, disconnected=2, missing=2,
                                    unknown_accounts=1)
    by_id = {p["phone_id"]: p for p in result["phones"]}
    assert by_id["phone_07"]["db_status"] == "OFFLINE" and by_id["phone_07"]["connected"] is False
    assert by_id["phone_05"]["vendor_account_id"] == "40700000005@s.whatsapp.net"
    assert by_id["phone_03"]["vendor_status"] == "active"
    assert {a["phone_id"] for a in result["accounts"] if a["id"] == "40700000019@s.whatsapp.net"} == {"phone_19"}
    assert [r["path"] for r in timelines.requests()] == ["/integrations/api/whatsapp_accounts"]
    assert assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER) == 1


def test_account_info_for_some_phones(params, platform, timelines):
    seed_phones(platform)
    result = tl_mod.account_info(params, phone_ids=["phone_07", "phone_01"])
    assert [p["phone_id"] for p in result["phones"]] == ["phone_01", "phone_07"]
    assert result["disconnected"] == ["phone_07"] and result["unknown_accounts"] == []
    with pytest.raises(CerniqError, match="phone_99 not in wa_phone_numbers"):
        tl_mod.account_info(params, phone_ids=["phone_01", "phone_99"])
    with pytest.raises(CerniqError, match="not of the form phone_NN"):
        tl_mod.account_info(params, phone_ids=["+40700000001"])


# ---- test send -----------------------------------------------------------------------------------------------


def test_send_polls_until_sent_and_audits(params, platform, timelines, timelines_spec):
    seed_phones(platform)
    result = tl_mod.send_test_message(params, to=RECIPIENT, phone_id="phone_01", text="onboarding test",
                                      reason="onboarding phone_01", poll_interval=0.05)
    assert result["changed"] is True and result["status"] == "Sent" and result["statuses"] == ["Sending", "Sent"]
    assert result["delivered"] is False and result["sender_phone"] == "+40700000001"
    (send,) = timelines.requests(method="POST")
    assert send["json"] == {"phone": RECIPIENT, "whatsapp_account_phone": "+40700000001", "text": "onboarding test"}
    assert timelines.requests(method="GET")[0]["path"].endswith("/whatsapp_accounts")
    assert len(timelines.requests(path="/messages/")) == 2
    assert audit_rows(platform, "timelinesai_message") == [(
        "test_send", "timelinesai:phone_01", "onboarding phone_01", None,
        {"message_uid": result["message_uid"], "sender_phone": "+40700000001",
         "sender_account_id": "40700000001@s.whatsapp.net", "to": RECIPIENT})]
    assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER)


def test_send_can_wait_for_delivery_and_by_sender_number(params, platform, timelines):
    result = tl_mod.send_test_message(params, to=RECIPIENT, sender_phone="+40 700 000 002", wait_for="delivered",
                                      poll_interval=0.05)
    assert result["statuses"] == ["Sending", "Sent", "Delivered"] and result["delivered"] is True
    assert result["sender"] == "+40700000002"


def test_poll_spacing_respects_the_rate_limit(params, platform, timelines):
    seed_phones(platform)
    tl_mod.send_test_message(dict(params, timelinesai_rate_limit=120), to=RECIPIENT, phone_id="phone_01",
                             poll_interval=0.01)
    # The fake's receipt times: 120 a minute is one call every 0.5 s, whatever poll_interval asked for.
    polls = [r["time"] for r in timelines.requests(path="/messages/")]
    assert len(polls) >= 2 and polls[1] - polls[0] >= 0.5 - 0.02


def test_check_mode_sends_nothing_and_reports_skipped(params, platform, timelines):
    seed_phones(platform)
    result = tl_mod.send_test_message(params, to=RECIPIENT, phone_id="phone_01", check_mode=True)
    assert result["skipped"] is True and result["changed"] is False
    assert result["would_send"]["sender_phone"] == "+40700000001" and result["would_send"]["to"] == RECIPIENT
    assert changes(timelines) == [] and platform.audit() == []


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(phone_id="phone_21"), "phone_21 \\(\\+40700000021\\) is not a WhatsApp account of this TimelinesAI "
                                "workspace \\(20 account\\(s\\) there\\): connect it in TimelinesAI"),
    (dict(phone_id="phone_07"), "phone_07 \\(\\+40700000007\\) is disconnected at TimelinesAI \\(status "
                                "'disconnected'\\): reconnect it"),
    (dict(phone_id="phone_77"), "phone_77 not in wa_phone_numbers"),
    (dict(sender_phone="+40799999999"), "\\+40799999999 \\(\\+40799999999\\) is not a WhatsApp account"),
    (dict(phone_id="phone_01", to="0712345678"), "is not E.164"),
    (dict(phone_id="phone_01", text="x" * 2001), "at most 2000"),
    (dict(phone_id="phone_01", sender_phone="+40700000001"), "exactly one of phone_id"),
])
def test_send_bad_input_sends_nothing(params, platform, timelines, kwargs, message):
    seed_phones(platform)
    kwargs = dict(kwargs)
    to = kwargs.pop("to", RECIPIENT)
    with pytest.raises(CerniqError, match=message):
        tl_mod.send_test_message(params, to=to, **kwargs)
    assert changes(timelines) == [] and platform.audit() == []


def test_a_failed_message_fails_the_send(params, platform, timelines):
    seed_phones(platform)
    timelines.config["failing_recipients"] = [RECIPIENT]
    with pytest.raises(CerniqError) as err:
        tl_mod.send_test_message(params, to=RECIPIENT, phone_id="phone_01", poll_interval=0.05)
    uid = err.value.details["message_uid"]
    assert "test message {0} from phone_01 (+40700000001) to {1} ended Failed".format(uid, RECIPIENT) in err.value.msg
    assert err.value.details["changed"] is True and err.value.details["statuses"] == ["Sending", "Failed"]
    assert len(audit_rows(platform, "timelinesai_message")) == 1


def test_no_outcome_in_time_fails_naming_the_message(params, platform, timelines):
    seed_phones(platform)
    timelines.config.update(message_progression="time", seconds_per_step=60)
    with pytest.raises(CerniqError, match=r"is still 'Sending' after [0-9.]+ s: WhatsApp has not confirmed it"):
        tl_mod.send_test_message(params, to=RECIPIENT, phone_id="phone_01", wait_timeout=0.5, poll_interval=0.1)


def test_a_send_is_not_repeated_after_a_5xx_but_is_after_a_429(params, platform, timelines):
    seed_phones(platform)
    timelines.add_fault(500, method="POST", path="/messages$")
    with pytest.raises(CerniqError) as err:
        tl_mod.send_test_message(params, to=RECIPIENT, phone_id="phone_01")
    assert "answered 500 Internal Server Error" in err.value.msg
    assert "It was not repeated, since the vendor may have acted on it" in err.value.msg
    assert len(timelines.requests(method="POST")) == 1
    timelines.clear_requests()
    timelines.add_fault(429, retry_after=1, method="POST", path="/messages$")
    result = tl_mod.send_test_message(params, to=RECIPIENT, phone_id="phone_01", poll_interval=0.05)
    limited, sent = timelines.requests(method="POST")
    assert result["status"] == "Sent" and (limited["status"], sent["status"]) == (429, 200)
    assert sent["time"] - limited["time"] >= 1.0  # Retry-After: 1


def test_client_rate_limiter_keeps_under_the_vendor_limit(timelines):
    timelines.set_rate_limit(5, 1.0)
    client = VendorClient(tl_mod.SETTINGS, timelines.base_url, TIMELINES_TOKEN, allow_http=True, retries=0,
                          rate_windows=((5, 1.0),))
    for _call in range(12):
        client.request("GET", "/workspace")
    # The fake enforces 5 a second (a sixth within the window gets a 429): all twelve answered 200, and in the
    # fake's receipt times any six calls span at least the window.
    assert [r["status"] for r in timelines.requests()] == [200] * 12
    received = [r["time"] for r in timelines.requests()]
    assert all(received[i + 5] - received[i] >= 1.0 - 0.02 for i in range(len(received) - 5)), received


def test_bad_token_and_wrong_base_url(params, timelines, platform):
    with pytest.raises(CerniqError) as err:
        tl_mod.account_info(dict(params, timelinesai_api_token="wrong-SECRET"))
    assert ("TimelinesAI API: GET /whatsapp_accounts answered 401 Unauthorized: Invalid or expired token; "
            "error_code invalid_token. The token was refused: check cerniq_timelinesai_api_token") in err.value.msg
    assert "wrong-SECRET" not in err.value.msg
    timelines.config["unauthorized_body"] = "text"
    with pytest.raises(CerniqError, match="answered 401 Unauthorized: Unauthorized. The token was refused"):
        tl_mod.account_info(dict(params, timelinesai_api_token="wrong-SECRET"))
    with pytest.raises(CerniqError) as err:
        tl_mod.account_info(dict(params, timelinesai_base_url=timelines.url))
    assert ("answered 404 Not Found: an HTML page (Page not found | TimelinesAI). Check "
            "cerniq_timelinesai_base_url: it must be the API root, e.g. "
            "https://app.timelines.ai/integrations/api") in err.value.msg


def test_rate_limit_option_is_checked(params):
    with pytest.raises(CerniqError, match="timelinesai_rate_limit must be at least 1"):
        tl_mod.account_info(dict(params, timelinesai_rate_limit=0))


# ---- webhooks ------------------------------------------------------------------------------------------------


class Receiver:
    def __init__(self):
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                received.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:{0}/hooks/timelinesai".format(self.httpd.server_address[1])
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def receiver():
    rcv = Receiver()
    yield rcv
    rcv.close()


def test_webhook_is_registered_once_and_delivers(params, platform, timelines, timelines_spec,
                                                 receiver):
    predicted = tl_mod.webhook(params, url=receiver.url, check_mode=True, want_diff=True)
    assert predicted["changed"] is True and predicted["action"] == "webhook_create"
    assert predicted["diff"] == {"before": {}, "after": {"id": None, "event_type": "whatsapp:account:disconnected",
                                                         "url": tl_mod.redact_url(receiver.url), "enabled": True,
                                                         "errors_counter": 0}}
    assert changes(timelines) == [] and platform.audit() == []

    created = tl_mod.webhook(params, url=receiver.url, reason="phone-offline alerts")
    assert created["changed"] is True and created["webhook"]["id"] == 789456
    again = tl_mod.webhook(params, url=receiver.url)
    assert again["changed"] is False and again["action"] == "none"
    assert [(r["method"], r["path"].rsplit("/", 1)[1]) for r in changes(timelines)] == [("POST", "webhooks")]
    (row,) = audit_rows(platform, "timelinesai_webhook")
    assert row[:3] == ("webhook_create", "timelinesai:webhook:whatsapp:account:disconnected", "phone-offline alerts")
    assert row[4]["id"] == 789456 and row[4]["url"] == tl_mod.redact_url(receiver.url)

    timelines.set_account_status("+40700000004", "disconnected")
    assert [p["whatsapp_account"]["phone"] for p in receiver.received] == ["+40700000004"]
    assert receiver.received[0]["event_type"] == "whatsapp:account:disconnected"

    disabled = tl_mod.webhook(params, url=receiver.url, enabled=False, want_diff=True)
    assert disabled["action"] == "webhook_update" and disabled["webhook"]["enabled"] is False
    assert disabled["diff"]["before"]["enabled"] is True
    other = tl_mod.webhook(params, url=receiver.url, event_type="whatsapp:account:suspended")
    assert other["action"] == "webhook_create" and other["webhook"]["id"] != 789456
    removed = tl_mod.webhook(params, url=receiver.url, state="absent")
    assert removed["action"] == "webhook_delete" and removed["webhook"] is None
    assert tl_mod.webhook(params, url=receiver.url, state="absent")["changed"] is False
    hooks = [(w["event_type"], w["enabled"]) for w in timelines.snapshot()["webhooks"] if not w["deleted"]]
    assert hooks == [("whatsapp:account:suspended", True)]
    assert [r[0] for r in audit_rows(platform, "timelinesai_webhook")] == [
        "webhook_create", "webhook_update", "webhook_create", "webhook_delete"]
    assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER)


@pytest.mark.parametrize(("url", "kwargs", "message"), [
    ("http://alerts.example/hook", dict(allow_http=False), "is plain http://"),
    ("ftp://alerts.example/hook", {}, "is not an http\\(s\\) URL"),
    ("https://alerts.example/a hook", {}, "is not an http\\(s\\) URL"),
])
def test_webhook_bad_url_changes_nothing(params, platform, timelines, url, kwargs, message):
    with pytest.raises(CerniqError, match=message):
        tl_mod.webhook(dict(params, **kwargs), url=url)
    with pytest.raises(CerniqError, match="not a TimelinesAI webhook event"):
        tl_mod.webhook(params, url="https://alerts.example/hook", event_type="chat:created")
    assert timelines.requests() == [] and platform.audit() == []
