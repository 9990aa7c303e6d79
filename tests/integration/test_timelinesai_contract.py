"""Contract of the TimelinesAI fake (tests/fakes/timelinesai.py): every request sent and every response
returned is validated against TimelinesAI's public API document with openapi-core; what the document does not
describe (the HTML 404) is checked against what the vendor serves."""

from __future__ import annotations

import time
import uuid

import jsonschema
import pytest
import requests

from tests.fakes import timelinesai as timelinesai_mod
from tests.support.vendor_contract import TIMELINES_TIME, admin, component_schema
from tests.support.vendors import TIMELINES_TOKEN

# ---- seed builder -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("phones", [1, 5, 20, 50])
def test_timelines_demo_seed_scales_with_phones(phones):
    accounts = timelinesai_mod.build_demo_state(phones)["accounts"]
    assert [a["phone"] for a in accounts] == [f"+40700{n:06d}" for n in range(1, phones + 1)]
    assert [a["id"] for a in accounts] == [f"40700{n:06d}@s.whatsapp.net" for n in range(1, phones + 1)]
    assert sum(a["status"] == "disconnected" for a in accounts) == len({7, 19} & set(range(1, phones + 1)))


# ---- accounts, auth, routing --------------------------------------------------------------------------------------


def test_timelines_whatsapp_accounts(tl):
    accounts = tl.call("GET", "/whatsapp_accounts").json()["data"]["whatsapp_accounts"]
    assert len(accounts) == 20
    assert [a["phone"] for a in accounts] == [f"+407000000{n:02d}" for n in range(1, 21)]
    assert accounts[0]["id"] == "40700000001@s.whatsapp.net"
    required = {"id", "phone", "connected_on", "status", "owner_name", "owner_email", "account_name"}
    assert all(set(a) == required for a in accounts)
    assert {a["phone"] for a in accounts if a["status"] == "disconnected"} == {"+40700000007", "+40700000019"}
    assert {a["status"] for a in accounts} == {"active", "disconnected"}
    assert all(TIMELINES_TIME.match(a["connected_on"]) for a in accounts)
    admin(tl.fake, "POST", "/reset", {"seed": "demo", "phones": 5})
    assert len(tl.call("GET", "/whatsapp_accounts").json()["data"]["whatsapp_accounts"]) == 5


def test_timelines_auth_failures(tl, timelines_doc):
    error_schema = component_schema(timelines_doc, "ErrorResponse")
    missing = tl.call("GET", "/whatsapp_accounts", token=None, request_valid=False)
    assert missing.status_code == 401
    jsonschema.validate(missing.json(), error_schema)
    assert missing.json()["error_code"] == "missing_credentials"
    wrong = tl.call("GET", "/workspace", token="revoked")
    assert wrong.status_code == 401 and wrong.json()["error_code"] == "invalid_token"
    admin(tl.fake, "POST", "/config", {"unauthorized_body": "text"})
    plain = tl.call("GET", "/workspace", token="revoked")
    assert plain.status_code == 401 and plain.text == "Unauthorized"
    assert plain.headers["Content-Type"].startswith("text/plain")


@pytest.mark.parametrize(
    "path",
    ["/integrations/api/whatsapp_accounts/", "/v1/accounts/40700000001/status", "/integrations/api/accounts"],
)
def test_timelines_bad_path_is_html_404(timelines, path):
    resp = requests.get(timelines.url + path, headers={"Authorization": f"Bearer {TIMELINES_TOKEN}"}, timeout=5)
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html") and resp.text.startswith("<!DOCTYPE html>")


# ---- messages -----------------------------------------------------------------------------------------------------


def test_timelines_send_and_poll_progression(tl):
    sent = tl.call(
        "POST",
        "/messages",
        json={"phone": "+40751234567", "whatsapp_account_phone": "+40700000003", "text": "Bună ziua!"},
    )
    assert sent.json()["status"] == "ok"
    uid = sent.json()["data"]["message_uid"]
    uuid.UUID(uid)
    polled = [tl.call("GET", f"/messages/{uid}").json()["data"] for _attempt in range(4)]
    assert [m["status"] for m in polled] == ["Sending", "Sent", "Delivered", "Delivered"]
    message = polled[-1]
    assert message["sender_phone"] == "+40700000003" and message["recipient_phone"] == "+40751234567"
    assert message["from_me"] is True and message["origin"] == "Public API" and message["text"] == "Bună ziua!"
    assert TIMELINES_TIME.match(message["timestamp"])
    history = tl.call("GET", f"/messages/{uid}/status_history").json()["data"]
    assert [h["status"] for h in history] == ["Sending", "Sent", "Delivered"]
    again = tl.call(
        "POST", "/messages", json={"phone": "+40751234567", "whatsapp_account_phone": "+40700000003", "text": "again"}
    ).json()["data"]["message_uid"]
    assert tl.call("GET", f"/messages/{again}").json()["data"]["chat_id"] == message["chat_id"]


def test_timelines_time_progression_and_forced_failure(tl):
    admin(tl.fake, "POST", "/config", {"message_progression": "time", "seconds_per_step": 0.05})
    uid = tl.call("POST", "/messages", json={"phone": "+40751234567", "text": "hi"}).json()["data"]["message_uid"]
    time.sleep(0.2)
    assert tl.call("GET", f"/messages/{uid}").json()["data"]["status"] == "Delivered"
    admin(tl.fake, "POST", "/config", {"message_progression": "polls"})
    other = tl.call("POST", "/messages", json={"phone": "+40751234568", "text": "hi"}).json()["data"]["message_uid"]
    assert admin(tl.fake, "POST", f"/messages/{other}/status", {"status": "Failed"})["status"] == "Failed"
    assert [tl.call("GET", f"/messages/{other}").json()["data"]["status"] for _attempt in range(3)] == ["Failed"] * 3
    assert tl.call("GET", f"/messages/{other}/status_history").json()["data"][-1]["status"] == "Failed"
    admin(tl.fake, "POST", "/config", {"failing_recipients": ["+40751234569"]})
    doomed = tl.call("POST", "/messages", json={"phone": "+40751234569", "text": "x"}).json()["data"]["message_uid"]
    assert [tl.call("GET", f"/messages/{doomed}").json()["data"]["status"] for _attempt in range(3)] == [
        "Sending",
        "Failed",
        "Failed",
    ]
    missing = tl.call("GET", f"/messages/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error_code"] == "not_found"
    assert tl.call("GET", f"/messages/{uuid.uuid4()}/status_history").status_code == 404


def test_timelines_default_sender_is_most_recently_connected(tl):
    accounts = tl.call("GET", "/whatsapp_accounts").json()["data"]["whatsapp_accounts"]
    active = [a for a in accounts if a["status"] == "active"]
    newest = max(active, key=lambda a: timelinesai_mod.parse_tl_time(a["connected_on"]))
    uid = tl.call("POST", "/messages", json={"phone": "+40751234567", "text": "x"}).json()["data"]["message_uid"]
    assert tl.call("GET", f"/messages/{uid}").json()["data"]["sender_phone"] == newest["phone"]


def test_timelines_send_errors(tl, timelines_doc):
    error_schema = component_schema(timelines_doc, "ErrorResponse")
    unknown = tl.call(
        "POST", "/messages", json={"phone": "+40751234567", "whatsapp_account_phone": "+40799999999", "text": "x"}
    )
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "not_found"
    body = {"phone": "+40751234567", "whatsapp_account_phone": "+40700000007", "text": "x"}
    disconnected = tl.call("POST", "/messages", json=body)
    assert disconnected.status_code == 400 and disconnected.json()["error_code"] == "validation_error"
    assert "not connected" in disconnected.json()["message"]
    no_phone = tl.call("POST", "/messages", json={"text": "x"}, request_valid=False)
    assert no_phone.status_code == 400 and no_phone.json()["errors"] == [{"fields": ["phone"], "msg": "field required"}]
    no_content = tl.call("POST", "/messages", json={"phone": "+40751234567"})
    assert no_content.status_code == 400 and "errors" not in no_content.json()
    too_long = tl.call("POST", "/messages", json={"phone": "+40751234567", "text": "x" * 2001}, request_valid=False)
    assert too_long.status_code == 400 and too_long.json()["errors"][0]["fields"] == ["text"]
    for resp in (unknown, disconnected, no_phone, no_content, too_long):
        jsonschema.validate(resp.json(), error_schema)

    admin(tl.fake, "POST", "/config", {"disconnected_sender": "fail"})
    accepted = tl.call(
        "POST", "/messages", json={"phone": "+40751234567", "whatsapp_account_phone": "+40700000007", "text": "x"}
    )
    uid = accepted.json()["data"]["message_uid"]
    assert [tl.call("GET", f"/messages/{uid}").json()["data"]["status"] for _poll in range(2)] == ["Sending", "Failed"]


def test_timelines_workspace_and_quota(tl):
    before = tl.call("GET", "/workspace").json()["data"]
    assert before["workspace_id"] and before["messaging_quota"]["used"] == 0
    for _attempt in range(3):
        tl.call("POST", "/messages", json={"phone": "+40751234567", "text": "x"})
    after = tl.call("GET", "/workspace").json()["data"]
    assert after["messaging_quota"]["used"] == 3
    assert after["api_calls_quota"]["used"] == before["api_calls_quota"]["used"] + 4
    state = tl.fake.snapshot()
    state["workspace"]["messaging_quota"]["total"] = 3
    admin(tl.fake, "POST", "/state", state)
    exhausted = tl.call("POST", "/messages", json={"phone": "+40751234567", "text": "x"})
    assert exhausted.status_code == 403 and exhausted.json()["error_code"] == "quota_exceeded"
