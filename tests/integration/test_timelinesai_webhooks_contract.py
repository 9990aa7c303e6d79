"""The TimelinesAI fake's webhooks: subscriptions through the public API, and every delivery a real receiver
gets validated against TimelinesAI's webhooks document."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jsonschema
import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIWebhookRequest

from tests.support.vendor_contract import TIMELINES_TIME, admin, component_schema


def test_timelines_webhook_crud_and_idempotency(tl, timelines_doc):
    url = "https://hooks.example.com/tl/disconnected"
    created = tl.call(
        "POST", "/webhooks", json={"event_type": "whatsapp:account:disconnected", "url": url, "enabled": True}
    ).json()["data"]
    assert created["errors_counter"] == 0 and created["enabled"] is True and isinstance(created["id"], int)
    again = tl.call("POST", "/webhooks", json={"event_type": "whatsapp:account:disconnected", "url": url}).json()
    assert again["data"]["id"] == created["id"]
    other = tl.call("POST", "/webhooks", json={"event_type": "whatsapp:account:connected", "url": url}).json()
    assert other["data"]["id"] != created["id"]
    listed = tl.call("GET", "/webhooks").json()["data"]
    assert [w["id"] for w in listed] == sorted([created["id"], other["data"]["id"]])
    hook = f"/webhooks/{created['id']}"
    assert tl.call("GET", hook).json()["data"]["url"] == url
    disabled = tl.call("PUT", hook, json={"enabled": False}).json()["data"]
    assert disabled["enabled"] is False and disabled["url"] == url and disabled["event_type"] == created["event_type"]
    re_enabled = tl.call("POST", "/webhooks", json={"event_type": "whatsapp:account:disconnected", "url": url})
    assert re_enabled.json()["data"] == {**created, "enabled": True}
    deleted = tl.call("DELETE", hook)
    assert deleted.status_code == 200 and deleted.json()["status"] == "ok"
    gone = tl.call("GET", hook)
    assert gone.status_code == 404
    jsonschema.validate(gone.json(), component_schema(timelines_doc, "ErrorResponse"))
    assert tl.call("PUT", hook, json={"enabled": True}).status_code == 404
    assert tl.call("DELETE", hook).status_code == 404
    restored = tl.call("POST", "/webhooks", json={"event_type": "whatsapp:account:disconnected", "url": url})
    assert restored.json()["data"]["id"] == created["id"] and restored.json()["data"]["enabled"] is True
    assert tl.call("GET", "/webhooks/not-a-number").status_code == 404


def test_timelines_webhook_validation_and_limit(tl):
    bad_url = tl.call("POST", "/webhooks", json={"event_type": "message:new", "url": "ftp://x"})
    assert bad_url.status_code == 400
    assert bad_url.json()["errors"] == [{"fields": ["url"], "msg": "must be a valid http(s) URL"}]
    userinfo = tl.call("POST", "/webhooks", json={"event_type": "message:new", "url": "https://a+b=c@x.example/h"})
    assert userinfo.status_code == 400
    bad_event = tl.call(
        "POST", "/webhooks", json={"event_type": "chat:created", "url": "https://x.example/h"}, request_valid=False
    )
    assert bad_event.status_code == 400 and bad_event.json()["errors"][0]["fields"] == ["event_type"]
    for n in range(10):
        assert (
            tl.call(
                "POST", "/webhooks", json={"event_type": "message:new", "url": f"https://x.example/{n}"}
            ).status_code
            == 200
        )
    eleventh = tl.call("POST", "/webhooks", json={"event_type": "message:new", "url": "https://x.example/11"})
    assert eleventh.status_code == 400 and "limit" in eleventh.json()["message"]


class Receiver:
    """A webhook receiver on a free port that records every POST; ``/fail...`` paths answer 500."""

    def __init__(self) -> None:
        received = self.received = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(500 if self.path.startswith("/fail") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def receiver():
    rcv = Receiver()
    yield rcv
    rcv.close()


def validate_webhook(spec: OpenAPI, doc: dict[str, Any], delivery: dict[str, Any]) -> dict[str, Any]:
    payload = json.loads(delivery["body"])
    prepared = requests.Request(
        "POST",
        "https://receiver.example/hook",
        data=delivery["body"],
        headers={"Content-Type": delivery["headers"]["Content-Type"]},
    ).prepare()
    spec.validate_request(RequestsOpenAPIWebhookRequest(prepared, payload["event_type"]))
    jsonschema.validate(payload, component_schema(doc, "AccountData"))
    return payload


def test_timelines_account_flip_delivers_documented_webhooks(tl, receiver, webhooks_spec, webhooks_doc):
    def subscribe(event: str, path: str, enabled: bool = True) -> int:
        body = {"event_type": event, "url": receiver.url + path, "enabled": enabled}
        return tl.call("POST", "/webhooks", json=body).json()["data"]["id"]

    subscribe("whatsapp:account:disconnected", "/down")
    subscribe("whatsapp:account:connected", "/up")
    subscribe("whatsapp:account:disconnected", "/paused-hook", enabled=False)
    subscribe("message:new", "/messages")
    failing = subscribe("whatsapp:account:disconnected", "/fail")

    result = admin(tl.fake, "POST", "/accounts/+40700000003/status", {"status": "disconnected"})
    assert sorted(d["status_code"] for d in result["deliveries"]) == [200, 500]
    assert [r["path"] for r in receiver.received] in (["/down", "/fail"], ["/fail", "/down"])
    payload = validate_webhook(webhooks_spec, webhooks_doc, receiver.received[0])
    assert payload["event_type"] == "whatsapp:account:disconnected"
    account = payload["whatsapp_account"]
    assert (account["id"], account["phone"], account["status"]) == (
        "40700000003@s.whatsapp.net",
        "+40700000003",
        "disconnected",
    )
    assert TIMELINES_TIME.match(account["disconnected_on"]) and TIMELINES_TIME.match(account["connected_on"])
    assert set(receiver.received[0]["headers"]) & {"Authorization", "X-Signature"} == set()  # no signature

    listed = tl.call("GET", "/whatsapp_accounts").json()["data"]["whatsapp_accounts"]
    assert next(a for a in listed if a["phone"] == "+40700000003")["status"] == "disconnected"
    refused = tl.call(
        "POST", "/messages", json={"phone": "+40751234567", "whatsapp_account_phone": "+40700000003", "text": "x"}
    )
    assert refused.status_code == 400
    hooks = {w["id"]: w for w in tl.call("GET", "/webhooks").json()["data"]}
    assert hooks[failing]["errors_counter"] == 1 and hooks[failing]["enabled"] is True  # never auto-disabled

    receiver.received.clear()
    tl.fake.set_account_status("40700000003@s.whatsapp.net", "active")
    assert [r["path"] for r in receiver.received] == ["/up"]
    up = validate_webhook(webhooks_spec, webhooks_doc, receiver.received[0])
    assert up["event_type"] == "whatsapp:account:connected" and up["whatsapp_account"]["status"] == "active"
    assert "disconnected_on" not in up["whatsapp_account"]

    receiver.received.clear()
    pending = admin(tl.fake, "POST", "/accounts/40700000005/status", {"status": "disconnected", "wait": False})
    assert len(pending["deliveries"]) == 2 and all(d["pending"] for d in pending["deliveries"])
    deadline = time.monotonic() + 5
    while len(receiver.received) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(r["path"] for r in receiver.received) == ["/down", "/fail"]
    deadline = time.monotonic() + 5
    while len(admin(tl.fake, "GET", "/deliveries")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(admin(tl.fake, "GET", "/deliveries")) == 5
    suspended = tl.fake.set_account_status("+40700000006", "disconnected", event="whatsapp:account:suspended")
    assert suspended["deliveries"] == [] and suspended["payload"]["event_type"] == "whatsapp:account:suspended"
    unknown = requests.post(f"{tl.fake.url}/__fake__/accounts/+40799999999/status", json={}, timeout=5)
    assert unknown.status_code == 400
