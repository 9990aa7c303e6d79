# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""TimelinesAI Public API: WhatsApp account status matched to our phones, the onboarding test send, and the
account-disconnected webhook registration.

The vendor's facts are spelled here once, from its OpenAPI documents (tests/fakes/openapi/timelinesai-*.yaml).
The runbook's https://api.timelines.ai/v1/accounts/{id}/status does not exist: account status comes from
GET /whatsapp_accounts, one list for the whole workspace.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_reading,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._http import VendorClient, VendorSettings
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_e164, validate_phone_id

SETTINGS = VendorSettings("TimelinesAI API", "cerniq_timelinesai_base_url", "cerniq_timelinesai_api_token",
                          "CERNIQ_TIMELINESAI_API_TOKEN")
RATE_PERIOD = 60.0

# The account status is binary on purpose (the vendor's words): suspended, banned and paused read "disconnected".
ACCOUNT_ACTIVE = "active"
ACCOUNT_DISCONNECTED = "disconnected"
ACCOUNT_MISSING = "missing"

MESSAGE_SENT = "Sent"
MESSAGE_DELIVERED = "Delivered"
MESSAGE_READ = "Read"
MESSAGE_FAILED = "Failed"
# What each `wait_for` accepts as the end of a test send; Failed ends it either way.
WAIT_FOR_STATUSES = {
    "sent": (MESSAGE_SENT, MESSAGE_DELIVERED, MESSAGE_READ),
    "delivered": (MESSAGE_DELIVERED, MESSAGE_READ),
}
MAX_TEXT = 2000
MAX_LABEL = 64
TEST_MESSAGE_TEXT = "cerniq.outreach test message"

EVENT_ACCOUNT_DISCONNECTED = "whatsapp:account:disconnected"
# WebhookEventType of the Public API document.
WEBHOOK_EVENT_TYPES = (
    "message:new", "message:sent:new", "message:received:new",
    "whatsapp:account:connected", EVENT_ACCOUNT_DISCONNECTED, "whatsapp:account:suspended",
    "whatsapp:account:resumed",
    "chat:new", "chat:incoming:new", "chat:outgoing:new", "chat:responsible:assigned", "chat:responsible:unassigned",
    "call:incoming:missed", "call:incoming:ended", "call:outgoing:ended", "message:reaction",
    "waba:message:received", "waba:message:delivered", "waba:message:failed", "waba:message:read",
    "waba:chat:incoming", "waba:chat:outgoing", "waba:chat:assigned", "waba:chat:unassigned", "waba:chat:closed",
    "waba:chat:reopened", "waba:account:active", "waba:account:disabled", "waba:account:disconnected",
    "waba:template:approved", "waba:template:rejected", "waba:template:disabled",
)
MAX_WEBHOOK_URL = 4096


def timelinesai_client(params, **kwargs):
    rate_limit = params.get("timelinesai_rate_limit")
    if rate_limit is None or int(rate_limit) < 1:
        raise CerniqError("timelinesai_rate_limit must be at least 1 request per minute, got {0!r}".format(rate_limit))
    return VendorClient(SETTINGS, params.get("timelinesai_base_url"), params.get("timelinesai_api_token"),
                        allow_http=params.get("allow_http", False), timeout=params.get("vendor_timeout"),
                        retries=params.get("vendor_retries"), rate_windows=((int(rate_limit), RATE_PERIOD),),
                        **kwargs)


def normalize_phone(value):
    """'+40 700-000 001' and '40700000001' both read '+40700000001'."""
    digits = re.sub(r"\D", "", str(value or ""))
    return "+" + digits if digits else ""


def account_status(raw):
    """The vendor documents `active` and shows `Active` in its example: compare without case; anything else is
    disconnected (suspended, banned and paused accounts all read disconnected)."""
    return ACCOUNT_ACTIVE if str(raw or "").strip().lower() == ACCOUNT_ACTIVE else ACCOUNT_DISCONNECTED


def whatsapp_accounts(client):
    body = client.request("GET", "/whatsapp_accounts")
    accounts = ((body or {}).get("data") or {}).get("whatsapp_accounts") if isinstance(body, dict) else None
    if not isinstance(accounts, list):
        raise CerniqError("{0}: GET /whatsapp_accounts answered without data.whatsapp_accounts: the API changed or "
                          "{1} points elsewhere".format(SETTINGS.name, SETTINGS.url_setting))
    return [dict(id=a.get("id"), phone=normalize_phone(a.get("phone")), status=account_status(a.get("status")),
                 status_raw=a.get("status"), connected_on=a.get("connected_on"), account_name=a.get("account_name"),
                 owner_name=a.get("owner_name"), owner_email=a.get("owner_email"))
            for a in accounts if isinstance(a, dict)]


def _phones(params, phone_ids=None):
    """Our phones, one query for any number of them; unknown ids are an error."""
    ids = [validate_phone_id(p) for p in phone_ids or []]
    with postgres_reading(params, require=(contract.TABLE_PHONES,)) as cur:
        cur.execute("SELECT id, phone_number, phone_label, timelinesai_account_id, status, is_enabled FROM " +
                    contract.TABLE_PHONES + " WHERE %(all)s OR id = ANY(%(ids)s) ORDER BY id",
                    {"all": not ids, "ids": ids})
        rows = cur.fetchall()
    phones = [dict(phone_id=r[0], phone_number=r[1], phone_label=r[2], timelinesai_account_id=r[3], db_status=r[4],
                   is_enabled=r[5]) for r in rows]
    unknown = sorted(set(ids) - {p["phone_id"] for p in phones})
    if unknown:
        raise CerniqError("phone(s) {0} not in {1}: check the ids".format(", ".join(unknown), contract.TABLE_PHONES))
    return phones


def match_accounts(phones, accounts):
    """Pair each phone with its TimelinesAI account: by account id (JID) first, then by phone number."""
    by_id = {a["id"]: a for a in accounts if a.get("id")}
    by_phone = {a["phone"]: a for a in accounts if a.get("phone")}
    matched_ids = set()
    out = []
    for phone in phones:
        account = by_id.get(phone["timelinesai_account_id"]) or by_phone.get(normalize_phone(phone["phone_number"]))
        entry = dict(phone)
        if account is None:
            entry.update(vendor_account_id=None, vendor_status=ACCOUNT_MISSING, connected=False,
                         account_id_mismatch=False, connected_on=None)
        else:
            matched_ids.add(account["id"])
            entry.update(vendor_account_id=account["id"], vendor_status=account["status"],
                         connected=account["status"] == ACCOUNT_ACTIVE, connected_on=account["connected_on"],
                         account_id_mismatch=account["id"] != phone["timelinesai_account_id"])
        out.append(entry)
    by_phone_id = {p["vendor_account_id"]: p["phone_id"] for p in out if p["vendor_account_id"]}
    described = [dict(a, phone_id=by_phone_id.get(a["id"])) for a in accounts]
    return out, described, matched_ids


def account_info(params, *, phone_ids=None):
    """TimelinesAI's WhatsApp accounts matched to wa_phone_numbers: connected, disconnected, missing, unknown."""
    client = timelinesai_client(params)
    phones = _phones(params, phone_ids)
    accounts = whatsapp_accounts(client)
    matched, described, matched_ids = match_accounts(phones, accounts)
    # Filtered by phone, an account of another phone is not "unknown": it is just not asked about.
    unknown = [] if phone_ids else [a for a in described if a["id"] not in matched_ids]
    result = dict(
        changed=False, phones=matched, accounts=described,
        connected=[p["phone_id"] for p in matched if p["vendor_status"] == ACCOUNT_ACTIVE],
        disconnected=[p["phone_id"] for p in matched if p["vendor_status"] == ACCOUNT_DISCONNECTED],
        missing=[p["phone_id"] for p in matched if p["vendor_status"] == ACCOUNT_MISSING],
        account_id_mismatch=[p["phone_id"] for p in matched if p["account_id_mismatch"]],
        unknown_accounts=[dict(id=a["id"], phone=a["phone"], status=a["status"]) for a in unknown],
        api=client.figures())
    result["counts"] = dict(phones=len(matched), accounts=len(accounts), connected=len(result["connected"]),
                            disconnected=len(result["disconnected"]), missing=len(result["missing"]),
                            unknown_accounts=len(unknown))
    return result


# --- test send --------------------------------------------------------------------------------------------------

def _sender(params, phone_id, sender_phone):
    if phone_id:
        phone = _phones(params, [phone_id])[0]
        return dict(phone_id=phone["phone_id"], phone_number=phone["phone_number"],
                    timelinesai_account_id=phone["timelinesai_account_id"])
    number = validate_e164(normalize_phone(sender_phone) if sender_phone else sender_phone)
    return dict(phone_id=None, phone_number=number, timelinesai_account_id=None)


def send_test_message(params, *, phone_id=None, sender_phone=None, to, text=TEST_MESSAGE_TEXT, label=None,
                      wait_for="sent", wait_timeout=60.0, poll_interval=2.0, reason=None, check_mode=False,
                      sleep=time.sleep, clock=time.monotonic):
    """Send one WhatsApp message from one of our accounts and poll it until it is sent, delivered or failed.

    Never in check mode: everything is validated (the phone, its account at TimelinesAI, the numbers) and the
    result says what would be sent.
    """
    if bool(phone_id) == bool(sender_phone):
        raise CerniqError("give exactly one of phone_id (e.g. phone_07) or sender_phone (E.164)")
    recipient = validate_e164(to)
    if wait_for not in WAIT_FOR_STATUSES:
        raise CerniqError("wait_for must be one of {0}, got {1!r}".format(", ".join(WAIT_FOR_STATUSES), wait_for))
    # An empty text (text: "" in a playbook) sends the default rather than an empty message.
    text = text or TEST_MESSAGE_TEXT
    if len(text) > MAX_TEXT:
        raise CerniqError("text is {0} characters; TimelinesAI takes at most {1}".format(len(text), MAX_TEXT))
    if label and len(label) > MAX_LABEL:
        raise CerniqError("label is {0} characters; TimelinesAI takes at most {1}".format(len(label), MAX_LABEL))
    if float(wait_timeout) <= 0 or float(poll_interval) <= 0:
        raise CerniqError("wait_timeout and poll_interval must be positive numbers of seconds")
    client = timelinesai_client(params, sleep=sleep, clock=clock)
    sender = _sender(params, phone_id, sender_phone)
    who = sender["phone_id"] or sender["phone_number"]
    accounts = whatsapp_accounts(client)
    account = next((a for a in accounts if sender["timelinesai_account_id"] and
                    a["id"] == sender["timelinesai_account_id"]), None) or \
        next((a for a in accounts if a["phone"] == normalize_phone(sender["phone_number"])), None)
    if account is None:
        raise CerniqError("{0} ({1}) is not a WhatsApp account of this TimelinesAI workspace ({2} account(s) there): "
                          "connect it in TimelinesAI (scan the QR code) first; nothing was sent".format(
                              who, sender["phone_number"], len(accounts)))
    if account["status"] != ACCOUNT_ACTIVE:
        raise CerniqError("{0} ({1}) is disconnected at TimelinesAI (status {2!r}): reconnect it (scan the QR code) "
                          "before the test send; nothing was sent".format(who, account["phone"], account["status_raw"]))
    plan = dict(sender=who, sender_phone=account["phone"], sender_account_id=account["id"], to=recipient,
                text=text)
    if check_mode:
        return dict(changed=False, skipped=True, would_send=plan, api=client.figures(),
                    msg="check mode: no test message sent (would send from {0} {1} to {2})".format(
                        who, account["phone"], recipient))
    conn = postgres_connect(params, require=(contract.TABLE_AUDIT,))
    try:
        body = {"phone": recipient, "whatsapp_account_phone": account["phone"], "text": text}
        if label:
            body["label"] = label
        accepted = client.request("POST", "/messages", json_body=body, idempotent=False)
        uid = ((accepted or {}).get("data") or {}).get("message_uid") if isinstance(accepted, dict) else None
        if not uid:
            raise CerniqError("{0}: POST /messages answered without data.message_uid; the message may have been "
                              "accepted: check the chat with {1} in TimelinesAI".format(SETTINGS.name, recipient),
                              changed=True)
        audit = AuditTrail(conn, "timelinesai_message", params.get("audit_actor"))
        try:
            with postgres_errors(params, conn):
                audit.record("test_send", "timelinesai:" + (sender["phone_id"] or account["phone"]), reason, None,
                             dict(message_uid=uid, sender_phone=account["phone"], sender_account_id=account["id"],
                                  to=recipient))
                conn.commit()
        except CerniqError as exc:
            raise CerniqError("test message {0} was sent, but its audit row could not be written: {1}".format(
                uid, exc.msg), changed=True, message_uid=uid) from exc
    finally:
        conn.close()
    return _poll(client, uid, plan, wait_for, float(wait_timeout), max(float(poll_interval),
                 RATE_PERIOD / int(params["timelinesai_rate_limit"])), sleep, clock)


def _poll(client, uid, plan, wait_for, wait_timeout, interval, sleep, clock):
    started = clock()
    seen = []
    while True:
        body = client.request("GET", "/messages/{0}".format(uid), hints={
            404: "message {0} is unknown to TimelinesAI".format(uid)})
        status = (((body or {}).get("data") or {}).get("status") if isinstance(body, dict) else None) or "unknown"
        if not seen or seen[-1] != status:
            seen.append(status)
        elapsed = round(clock() - started, 3)
        result = dict(changed=True, message_uid=uid, status=status, statuses=seen, elapsed_seconds=elapsed,
                      api=client.figures(), **plan)
        if status == MESSAGE_FAILED:
            raise CerniqError("test message {0} from {1} ({2}) to {3} ended Failed at TimelinesAI: the number may "
                              "not be on WhatsApp, or the account lost its session; check the chat in "
                              "TimelinesAI".format(uid, plan["sender"], plan["sender_phone"], plan["to"]), **result)
        if status in WAIT_FOR_STATUSES[wait_for]:
            result["delivered"] = status in WAIT_FOR_STATUSES["delivered"]
            return result
        if elapsed + interval > wait_timeout:
            raise CerniqError("test message {0} from {1} ({2}) to {3} is still {4!r} after {5:g} s: WhatsApp has not "
                              "confirmed it; check the chat in TimelinesAI or raise wait_timeout".format(
                                  uid, plan["sender"], plan["sender_phone"], plan["to"], status, elapsed), **result)
        sleep(interval)


# --- webhooks ---------------------------------------------------------------------------------------------------

def redact_url(url):
    """`scheme://host[:port]/…`: a receiver's secret lives in its path, query or user:password@, never shown."""
    try:
        parts = urlsplit((url or "").strip())
        host, port = parts.hostname, parts.port
    except (ValueError, AttributeError):
        return "<url not shown>"
    if not parts.scheme or not host or re.search(r"[\s\x00-\x1f]", parts.scheme + host):
        return "<url not shown>"
    netloc = "[{0}]".format(host) if ":" in host else host
    if port:
        netloc += ":{0}".format(port)
    hidden = parts.path not in ("", "/") or parts.query or parts.fragment
    return "{0}://{1}/{2}".format(parts.scheme, netloc, "…" if hidden else "")


def validate_webhook_url(url, allow_http):
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
        if parts.port is None:  # reading the port raises on a bad one
            pass
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", text):
        raise CerniqError("webhook url {0} ({1} characters) is not an http(s) URL".format(redact_url(text), len(text)))
    if len(text) > MAX_WEBHOOK_URL:
        raise CerniqError("webhook url is {0} characters; TimelinesAI takes at most {1}".format(
            len(text), MAX_WEBHOOK_URL))
    if parts.scheme == "http" and not allow_http:
        raise CerniqError("webhook url {0} is plain http://: TimelinesAI would post account events unencrypted. Use "
                          "https://, or set allow_http=true for a local receiver only".format(redact_url(text)))
    return text


def _public_webhook(hook):
    # The URL redacted: results, diffs and audit rows never hold the receiver's secret.
    return dict(id=hook.get("id"), event_type=hook.get("event_type"), url=redact_url(hook.get("url")),
                enabled=hook.get("enabled"), errors_counter=hook.get("errors_counter"))


def webhook(params, *, url, event_type=EVENT_ACCOUNT_DISCONNECTED, state="present", enabled=True, reason=None,
            check_mode=False, want_diff=False):
    """Make the (event type, url) subscription present and enabled/disabled, or absent. GET first: no call when
    it already is as asked."""
    if event_type not in WEBHOOK_EVENT_TYPES:
        raise CerniqError("event_type {0!r} is not a TimelinesAI webhook event".format(event_type))
    if state not in ("present", "absent"):
        raise CerniqError("state must be present or absent, got {0!r}".format(state))
    target = validate_webhook_url(url, params.get("allow_http", False))
    client = timelinesai_client(params)
    conn = postgres_connect(params, require=(contract.TABLE_AUDIT,))
    try:
        body = client.request("GET", "/webhooks")
        hooks = body.get("data") if isinstance(body, dict) else None
        if not isinstance(hooks, list):
            raise CerniqError("{0}: GET /webhooks answered without a data list: the API changed or {1} points "
                              "elsewhere".format(SETTINGS.name, SETTINGS.url_setting))
        current = next((h for h in hooks if h.get("event_type") == event_type and h.get("url") == target), None)
        before = _public_webhook(current) if current else {}
        action, after = None, before
        if state == "present" and current is None:
            action = "webhook_create"
            after = dict(id=None, event_type=event_type, url=redact_url(target), enabled=enabled, errors_counter=0)
        elif state == "present" and bool(current.get("enabled")) != enabled:
            action = "webhook_update"
            after = dict(before, enabled=enabled)
        elif state == "absent" and current is not None:
            action = "webhook_delete"
            after = {}
        if action and not check_mode:
            if action == "webhook_create":
                answer = client.request("POST", "/webhooks",
                                        json_body={"event_type": event_type, "url": target, "enabled": enabled})
                after = _public_webhook((answer or {}).get("data") or after)
            elif action == "webhook_update":
                answer = client.request("PUT", "/webhooks/{0}".format(current["id"]), json_body={"enabled": enabled})
                after = _public_webhook((answer or {}).get("data") or after)
            else:
                client.request("DELETE", "/webhooks/{0}".format(current["id"]))
            audit = AuditTrail(conn, "timelinesai_webhook", params.get("audit_actor"))
            try:
                with postgres_errors(params, conn):
                    audit.record(action, "timelinesai:webhook:{0}".format(event_type), reason, before or None,
                                 after or None)
                    conn.commit()
            except CerniqError as exc:
                raise CerniqError("the TimelinesAI webhook change ({0}) was made, but its audit row could not be "
                                  "written: {1}".format(action, exc.msg), changed=True) from exc
        result = dict(changed=action is not None, webhook=after or None, action=action or "none",
                      api=client.figures())
        if after and after.get("errors_counter"):
            result["warnings"] = ["the receiver {0} failed {1} delivery(ies) in a row: check it answers 2xx within "
                                  "5 s".format(redact_url(target), after["errors_counter"])]
        if want_diff:
            result["diff"] = dict(before=before, after=after)
        return result
    finally:
        conn.close()
