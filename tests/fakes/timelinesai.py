"""Fake of the TimelinesAI Public API (``openapi/timelinesai-public-api.yaml``) for the operations the collection
uses, plus delivery of the account webhooks of ``openapi/timelinesai-webhooks.yaml``.

Run it: ``python -m tests.fakes.timelinesai --port 18081 --api-key TOKEN [--seed demo|empty] [--phones N]``;
it prints the API base URL (``http://127.0.0.1:18081/integrations/api``) once listening.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

from tests.fakes._server import (
    FakeServer,
    Handler,
    Problem,
    Request,
    Response,
    base_cli,
    json_response,
    reason,
    text_response,
    unlocked,
)

BASE_PATH = "/integrations/api"
MESSAGE_STATUSES = ("Sending", "Sent", "Delivered", "Read", "Failed", "Pending")
ACCOUNT_EVENTS = (
    "whatsapp:account:connected",
    "whatsapp:account:disconnected",
    "whatsapp:account:suspended",
    "whatsapp:account:resumed",
)
# error_code -> HTTP status, from the comments on ErrorResponse.error_code
ERROR_CODE_BY_STATUS = {
    400: "validation_error",
    401: "invalid_token",
    403: "permission_denied",
    404: "not_found",
    405: "not_supported",
    409: "account_inactive",
    422: "template_variables_mismatch",
    429: "rate_limit_exceeded",
    500: "internal_error",
}
# rate-limits.mdx documents this body for 429 (no error_code); the envelope variant is configurable
DOCS_429_BODY = {"error": "Too Many Requests", "message": "Rate limit exceeded. Please retry after a short delay."}
HTML_404 = (
    '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Page not found | TimelinesAI</title>'
    "</head>\n<body><h1>404</h1><p>The page you are looking for does not exist.</p></body>\n</html>\n"
)
# validation_error messages per JSON Schema keyword of the document
TIMELINES_MESSAGES = {
    "type": "must be a {}",
    "enum": "must be one of the allowed values",
    "maxLength": "must be at most {} characters",
    "minLength": "must be at least {} characters",
    "maximum": "must be at most {}",
    "minimum": "must be at least {}",
    "additionalProperties": "is not allowed",
}
TL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S %z"
TZ_RO = timezone(timedelta(hours=3))  # EEST; seeds are fixed so the demo is reproducible
_PHONE_RE = re.compile(r"^\+?[1-9]\d{6,14}$")


def tl_time(dt: datetime | None = None) -> str:
    """TimelinesAI's timestamp format: ``YYYY-MM-DD HH:MM:SS +ZZZZ`` (not ISO)."""
    return (dt or datetime.now(UTC).astimezone()).strftime(TL_TIME_FORMAT)


def parse_tl_time(text: str) -> datetime:
    return datetime.strptime(text, TL_TIME_FORMAT)


def phone_number(n: int) -> str:
    return f"+40700{n:06d}"


def account_jid(n: int) -> str:
    return f"40700{n:06d}@s.whatsapp.net"


def build_demo_state(phones: int = 20, disconnected: Iterable[int] = (7, 19)) -> dict[str, Any]:
    """``phones`` accounts ``+40700000001``.. with JIDs ``40700000001@s.whatsapp.net``..; the ones numbered in
    ``disconnected`` (default 7 and 19, the platform seed's offline and banned phones) are disconnected."""
    down = {n for n in disconnected if 1 <= n <= phones}
    base = datetime(2026, 3, 2, 9, 0, 0, tzinfo=TZ_RO)
    accounts = []
    for n in range(1, phones + 1):
        account = {
            "id": account_jid(n),
            "phone": phone_number(n),
            "connected_on": tl_time(base + timedelta(days=n % 28, minutes=7 * n)),
            "status": "disconnected" if n in down else "active",
            "owner_name": f"Sales {n:02d}",
            "owner_email": f"sales{n:02d}@cerniq-demo.example",
            "account_name": f"Cerniq Sales {n:02d}" if n % 5 else "",
        }
        if n in down:
            account["disconnected_on"] = tl_time(base + timedelta(days=40, hours=n))
        accounts.append(account)
    state = build_empty_state()
    state["accounts"] = accounts
    state["workspace"]["seats"] = {"total": max(phones, 1), "used": phones, **_period(base)}
    state["workspace"]["messaging_quota"] = {"total": 2000 * max(phones, 1), "used": 0, **_period(base)}
    return state


def _period(base: datetime) -> dict[str, str]:
    start = base.replace(day=1, hour=0, minute=0, second=0)
    return {"period_start": tl_time(start), "period_end": tl_time(start + timedelta(days=31))}


def build_empty_state() -> dict[str, Any]:
    base = datetime(2026, 3, 2, 9, 0, 0, tzinfo=TZ_RO)
    return {
        "workspace": {
            "workspace_id": "cerniq-demo",
            "display_name": "Cerniq Demo",
            "plan": "Business",
            "seats": {"total": 1, "used": 0, **_period(base)},
            "messaging_quota": {"total": 2000, "used": 0, **_period(base)},
            "api_calls_quota": {"total": 200_000, "used": 0, **_period(base)},
            "non_recurring_quota": {"remaining_balance": 0, "last_updated_at": tl_time(base)},
        },
        "accounts": [],
        "messages": {},
        "chats": {},
        "webhooks": [],
        "next_webhook_id": 789456,
        "next_chat_id": 1000001,
    }


def seed_state(seed: str, phones: int = 20) -> dict[str, Any]:
    if seed == "demo":
        return build_demo_state(phones)
    if seed == "empty":
        return build_empty_state()
    raise ValueError(f"unknown seed {seed!r}; expected 'demo' or 'empty'")


class ApiError(Exception):
    def __init__(self, status: int, message: str, error_code: str | None = None, errors: list | None = None):
        super().__init__(message)
        self.status, self.message, self.error_code, self.errors = status, message, error_code, errors


def _validation(field: str, msg: str) -> ApiError:
    return ApiError(400, f"Invalid request: {field} {msg}", "validation_error", [{"fields": [field], "msg": msg}])


def _normalize_phone(value: str) -> str:
    digits = re.sub(r"[\s\-()]", "", value)
    return digits if digits.startswith("+") else "+" + digits


def _valid_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    userinfo = parts.netloc.rpartition("@")[0]
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not re.search(r"\s", value)
        and not re.search(r"[+=]", userinfo)
    )


class TimelinesAIFake(FakeServer):
    """TimelinesAI Public API fake, served under ``/integrations/api``.

    Constructor: ``TimelinesAIFake(api_key="test-key", seed="demo", phones=20, disconnected=(7, 19), state=None,
    state_file=None, port=0, host="127.0.0.1", rate_limit=None, rate_window=1.0, config=None)``.

    Config (constructor ``config=`` or ``POST /__fake__/config``):
    ``unauthorized_body`` ``"json"`` (error envelope, default) or ``"text"`` (plain ``Unauthorized``);
    ``rate_limit_body`` ``"docs"`` (rate-limits.mdx body, default) or ``"envelope"`` (``rate_limit_exceeded``);
    ``disconnected_sender`` ``"reject"`` (400 ``validation_error``, default) or ``"fail"`` (accepted, then Failed);
    ``message_progression`` ``"polls"`` (default) or ``"time"``; ``message_statuses`` (default Sending, Sent,
    Delivered); ``polls_per_step`` (1); ``seconds_per_step`` (2.0); ``failing_recipients`` (phones whose messages
    end Failed); ``max_webhooks`` (10); ``webhook_timeout`` (5 s).

    Extra admin routes: ``POST /__fake__/accounts/{phone|jid}/status`` ``{"status": "disconnected"|"active",
    "event": optional event type, "wait": true}`` flips the account and POSTs the account webhook;
    ``POST /__fake__/messages/{uid}/status`` ``{"status": "Failed"}``; ``GET|DELETE /__fake__/deliveries``;
    ``POST /__fake__/reset`` ``{"seed": "demo", "phones": 5}``.
    """

    vendor = "timelinesai"
    base_path = BASE_PATH
    openapi_document = "timelinesai-public-api.yaml"
    default_config = {
        "unauthorized_body": "json",
        "rate_limit_body": "docs",
        "disconnected_sender": "reject",
        "message_progression": "polls",
        "message_statuses": ["Sending", "Sent", "Delivered"],
        "polls_per_step": 1,
        "seconds_per_step": 2.0,
        "failing_recipients": [],
        "max_webhooks": 10,
        "webhook_timeout": 5.0,
    }

    def __init__(
        self,
        *,
        seed: str = "demo",
        phones: int = 20,
        disconnected: Iterable[int] = (7, 19),
        state: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        if state is None and kwargs.get("state_file") is None:
            state = build_demo_state(phones, disconnected) if seed == "demo" else seed_state(seed, phones)
        self.deliveries: list[dict[str, Any]] = []
        super().__init__(state=state, **kwargs)

    # ---- vendor shapes ----

    def error_response(self, status: int, message: str | None = None, error_code: str | None = None) -> Response:
        body: dict[str, Any] = {"status": "error", "message": message or reason(status)}
        code = error_code or ERROR_CODE_BY_STATUS.get(status) or ("internal_error" if status >= 500 else None)
        if code:
            body["error_code"] = code
        return json_response(status, body)

    def unauthorized(self, req: Request, *, missing: bool) -> Response:
        if self.config["unauthorized_body"] == "text":
            return text_response(401, "Unauthorized")
        if missing:
            return self.error_response(401, "Authorization header is missing", "missing_credentials")
        return self.error_response(401, "Invalid or expired token", "invalid_token")

    def rate_limited_response(self, retry_after: int | float | None) -> Response:
        if self.config["rate_limit_body"] == "envelope":
            resp = self.error_response(429, DOCS_429_BODY["message"], "rate_limit_exceeded")
        else:
            resp = json_response(429, DOCS_429_BODY)
        if retry_after is not None:
            resp.headers["Retry-After"] = str(retry_after)
        return resp

    def route_not_found(self, req: Request) -> Response:
        return text_response(404, HTML_404, "text/html; charset=utf-8")

    def invalid_json(self, req: Request) -> Response:
        return self.error_response(400, "Request body is not valid JSON", "validation_error")

    def invalid_request(self, req: Request, problems: list[Problem]) -> Response:
        first = problems[0]
        if first.keyword == "required":
            field, msg = ".".join(map(str, (*first.path, first.value))), "field required"
        else:
            field, msg = (
                ".".join(map(str, first.path)) or first.location,
                TIMELINES_MESSAGES.get(first.keyword, "is invalid"),
            )
        error = _validation(field, msg.format(first.value))
        body = {"status": "error", "message": error.message, "error_code": error.error_code, "errors": error.errors}
        return json_response(400, body)

    def before_handler(self, req: Request) -> Response | None:
        self.state["workspace"]["api_calls_quota"]["used"] += 1
        return None

    def empty_state(self) -> dict[str, Any]:
        return build_empty_state()

    def normalize_state(self, state: dict[str, Any]) -> dict[str, Any]:
        merged = {**build_empty_state(), **state}
        merged["webhooks"] = sorted(merged["webhooks"], key=lambda w: w["id"])
        return merged

    def seed_from_admin(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if "seed" in body:
            if body["seed"] == "demo":
                return build_demo_state(int(body.get("phones", 20)), body.get("disconnected", (7, 19)))
            return seed_state(body["seed"])
        return super().seed_from_admin(body)

    # ---- routing ----

    def routes(self) -> Iterable[tuple[str, str, Handler]]:
        wrap = self._wrap
        return [
            ("GET", "/whatsapp_accounts", wrap(self.list_accounts)),
            ("POST", "/messages", wrap(self.send_message)),
            ("GET", "/messages/{message_uid}", wrap(self.get_message)),
            ("GET", "/messages/{message_uid}/status_history", wrap(self.message_status_history)),
            ("GET", "/workspace", wrap(self.workspace)),
            ("GET", "/webhooks", wrap(self.list_webhooks)),
            ("POST", "/webhooks", wrap(self.create_webhook)),
            ("GET", "/webhooks/{webhook_id}", wrap(self.get_webhook)),
            ("PUT", "/webhooks/{webhook_id}", wrap(self.update_webhook)),
            ("DELETE", "/webhooks/{webhook_id}", wrap(self.delete_webhook)),
        ]

    def admin_routes(self) -> Iterable[tuple[str, str, Handler]]:
        return [
            ("POST", "/accounts/{account}/status", self._admin_account_status),
            ("POST", "/messages/{uid}/status", self._admin_message_status),
            ("GET", "/deliveries", lambda r: json_response(200, self.deliveries)),
            ("DELETE", "/deliveries", self._admin_clear_deliveries),
        ]

    def _wrap(self, fn: Handler) -> Handler:
        def run(req: Request) -> Response:
            try:
                return fn(req)
            except ApiError as exc:
                resp = self.error_response(exc.status, exc.message, exc.error_code)
                if exc.errors:
                    body = json.loads(resp.body)
                    body["errors"] = exc.errors
                    resp = json_response(exc.status, body)
                return resp

        return run

    @staticmethod
    def ok(data: Any) -> Response:
        return json_response(200, {"status": "ok", "data": data})

    # ---- accounts ----

    @staticmethod
    def public_account(account: dict[str, Any]) -> dict[str, Any]:
        keys = ("id", "phone", "connected_on", "status", "owner_name", "owner_email", "account_name")
        return {k: account[k] for k in keys}

    def find_account(self, ref: str) -> dict[str, Any] | None:
        ref = ref.strip()
        phone = _normalize_phone(ref) if "@" not in ref else None
        for account in self.state["accounts"]:
            if account["id"] == ref or (phone and account["phone"] == phone):
                return account
        return None

    def list_accounts(self, req: Request) -> Response:
        return self.ok({"whatsapp_accounts": [self.public_account(a) for a in self.state["accounts"]]})

    # ---- messages ----

    def send_message(self, req: Request) -> Response:
        body = req.json  # its fields' types and lengths are the document's, checked before the handler runs
        phone = body["phone"]
        if not _PHONE_RE.match(re.sub(r"[\s\-()]", "", phone)):
            raise _validation("phone", "must be a phone number in international format")
        if not (body.get("text") or body.get("file_uid") or body.get("attachment_template_id")):
            raise ApiError(400, "A message must have text, an attachment, or both", "validation_error")
        if body.get("file_uid"):
            raise ApiError(404, f"File {body['file_uid']} not found", "not_found")  # the fake stores no files
        if "attachment_template_id" in body:
            raise ApiError(404, f"Template {body['attachment_template_id']} not found", "not_found")
        sender = self._sender(body.get("whatsapp_account_phone"))
        quota = self.state["workspace"]["messaging_quota"]
        if quota["used"] + 1 > quota["total"]:
            raise ApiError(403, "Message sending quota exceeded for the current period", "quota_exceeded")
        quota["used"] += 1
        recipient = _normalize_phone(phone)
        chat_key = f"{sender['id']}|{recipient}"
        if chat_key not in self.state["chats"]:
            self.state["chats"][chat_key] = self.state["next_chat_id"]
            self.state["next_chat_id"] += 1
        now = tl_time()
        uid = str(uuid.uuid4())
        statuses = list(self.config["message_statuses"])
        if sender["status"] != "active" or recipient in self.config["failing_recipients"]:
            # invalid number / disconnected sender: WhatsApp-side failure after acceptance
            statuses = [statuses[0], "Failed"]
        info = {
            "uid": uid,
            "chat_id": self.state["chats"][chat_key],
            "timestamp": now,
            "received_timestamp": now,
            "sender_phone": sender["phone"],
            "sender_name": sender["account_name"] or sender["owner_name"],
            "recipient_phone": recipient,
            "recipient_name": body.get("chat_name") or recipient,
            "from_me": True,
            "text": body["text"],
            "status": statuses[0],
            "origin": "Public API",
            "has_attachment": False,
            "message_type": "whatsapp",
            "reactions": {"users": [], "reactions": {}, "total": 0},
            "data": {},
            "created_by": self.state["workspace"]["display_name"],
        }
        self.state["messages"][uid] = {
            "info": info,
            "created": time.time(),
            "polls": 0,
            "statuses": statuses,
            "forced": None,
            "history": [{"status": statuses[0], "timestamp": now}],
            "label": body.get("label"),
        }
        return self.ok({"message_uid": uid})

    def _sender(self, requested: str | None) -> dict[str, Any]:
        if requested is not None:
            account = self.find_account(requested)
            if account is None:
                raise ApiError(404, f"WhatsApp account {requested} not found in the workspace", "not_found")
            if account["status"] != "active" and self.config["disconnected_sender"] == "reject":
                raise ApiError(400, f"WhatsApp account {account['phone']} is not connected", "validation_error")
            return account
        connected = [a for a in self.state["accounts"] if a["status"] == "active"]
        if not connected:
            raise ApiError(400, "No connected WhatsApp account in the workspace", "validation_error")
        return max(connected, key=lambda a: parse_tl_time(a["connected_on"]))

    def _message(self, uid: str) -> dict[str, Any]:
        record = self.state["messages"].get(uid)
        if record is None:
            raise ApiError(404, f"Message {uid} not found", "not_found")
        return record

    def _advance(self, record: dict[str, Any], *, poll: bool) -> str:
        if record["forced"]:
            return record["forced"]
        statuses = record["statuses"]
        if self.config["message_progression"] == "time":
            step = int((time.time() - record["created"]) / max(float(self.config["seconds_per_step"]), 1e-6))
        else:
            step = record["polls"] // max(int(self.config["polls_per_step"]), 1)
            if poll:
                record["polls"] += 1
        step = min(step, len(statuses) - 1)
        reached = [h["status"] for h in record["history"]]
        for status in statuses[len(reached) : step + 1]:
            record["history"].append({"status": status, "timestamp": tl_time()})
        record["info"]["status"] = record["history"][-1]["status"]
        return record["info"]["status"]

    def get_message(self, req: Request) -> Response:
        record = self._message(req.params["message_uid"])
        self._advance(record, poll=True)
        return self.ok(record["info"])

    def message_status_history(self, req: Request) -> Response:
        record = self._message(req.params["message_uid"])
        self._advance(record, poll=False)
        return self.ok(record["history"])

    def set_message_status(self, uid: str, status: str) -> dict[str, Any]:
        """Force a message's status (``Failed`` typically); it stops progressing."""
        if status not in MESSAGE_STATUSES:
            raise ValueError(f"status must be one of {MESSAGE_STATUSES}")
        with self._lock:
            record = self.state["messages"].get(uid)
            if record is None:
                raise KeyError(f"no message {uid}")
            record["forced"] = status
            record["history"].append({"status": status, "timestamp": tl_time()})
            record["info"]["status"] = status
            return dict(record["info"])

    # ---- workspace ----

    def workspace(self, req: Request) -> Response:
        return self.ok(self.state["workspace"])

    # ---- webhooks ----

    def _live_webhooks(self) -> list[dict[str, Any]]:
        return [w for w in self.state["webhooks"] if not w.get("deleted")]

    @staticmethod
    def public_webhook(hook: dict[str, Any]) -> dict[str, Any]:
        return {k: hook[k] for k in ("id", "event_type", "enabled", "url", "errors_counter")}

    def _webhook(self, raw_id: str) -> dict[str, Any]:
        hook = next((w for w in self._live_webhooks() if str(w["id"]) == raw_id), None)
        if hook is None:
            raise ApiError(404, f"Webhook {raw_id} not found", "not_found")
        return hook

    @staticmethod
    def _check_webhook_url(body: dict[str, Any]) -> dict[str, Any]:
        # the fields' presence, types and the event enum are the document's; the URL's shape is in its prose only
        if "url" in body and not _valid_url(body["url"]):
            raise _validation("url", "must be a valid http(s) URL")
        return body

    def list_webhooks(self, req: Request) -> Response:
        return self.ok([self.public_webhook(w) for w in sorted(self._live_webhooks(), key=lambda w: w["id"])])

    def create_webhook(self, req: Request) -> Response:
        body = self._check_webhook_url(req.json)
        existing = next(
            (w for w in self.state["webhooks"] if (w["event_type"], w["url"]) == (body["event_type"], body["url"])),
            None,
        )
        if existing is not None:
            # idempotent on (event_type, url): restore a deleted one, re-enable a disabled one, else no-op
            existing["deleted"] = False
            existing["enabled"] = True
            return self.ok(self.public_webhook(existing))
        if len(self._live_webhooks()) >= int(self.config["max_webhooks"]):
            raise ApiError(
                400, f"Webhooks limit reached ({self.config['max_webhooks']} per workspace)", "validation_error"
            )
        hook = {
            "id": self.state["next_webhook_id"],
            "event_type": body["event_type"],
            "url": body["url"],
            "enabled": body.get("enabled", True),
            "errors_counter": 0,
            "deleted": False,
        }
        self.state["next_webhook_id"] += 1
        self.state["webhooks"].append(hook)
        return self.ok(self.public_webhook(hook))

    def get_webhook(self, req: Request) -> Response:
        return self.ok(self.public_webhook(self._webhook(req.params["webhook_id"])))

    def update_webhook(self, req: Request) -> Response:
        hook = self._webhook(req.params["webhook_id"])
        body = self._check_webhook_url(req.json)
        for key in ("event_type", "url", "enabled"):
            if key in body:
                hook[key] = body[key]
        return self.ok(self.public_webhook(hook))

    def delete_webhook(self, req: Request) -> Response:
        hook = self._webhook(req.params["webhook_id"])
        hook["deleted"] = True
        hook["enabled"] = False
        # the document gives this 200 no body; the API's other deletions answer SimpleOKResponse
        return json_response(200, {"status": "ok", "message": "Webhook deleted"})

    # ---- account status flips and webhook delivery ----

    def account_payload(self, account: dict[str, Any], event_type: str) -> dict[str, Any]:
        """The ``AccountData`` body of the account webhooks."""
        info = self.public_account(account)
        if account.get("disconnected_on") and account["status"] != "active":
            info["disconnected_on"] = account["disconnected_on"]
        return {"event_type": event_type, "whatsapp_account": info}

    def set_account_status(
        self, ref: str, status: str, *, event: str | None = None, wait: bool = True
    ) -> dict[str, Any]:
        """Flip an account to ``disconnected`` or ``active`` and POST the account webhook (``whatsapp:account:
        disconnected`` or ``...:connected`` unless ``event`` says otherwise) to every enabled subscriber.

        Returns ``{"account": ..., "payload": ..., "deliveries": [...]}``; with ``wait=False`` deliveries go on in
        a background thread and ``deliveries`` lists only the target URLs."""
        if status not in ("active", "disconnected"):
            raise ValueError("status must be 'active' or 'disconnected'")
        event = event or ("whatsapp:account:connected" if status == "active" else "whatsapp:account:disconnected")
        if event not in ACCOUNT_EVENTS:
            raise ValueError(f"event must be one of {ACCOUNT_EVENTS}")
        with self._lock:
            account = self.find_account(ref)
            if account is None:
                raise KeyError(f"no WhatsApp account {ref}")
            now = tl_time()
            if status == "active" and account["status"] != "active":
                account["connected_on"] = now
                account.pop("disconnected_on", None)
            elif status == "disconnected" and account["status"] != "disconnected":
                account["disconnected_on"] = now
            account["status"] = status
            payload = self.account_payload(account, event)
            targets = [dict(w) for w in self._live_webhooks() if w["enabled"] and w["event_type"] == event]
        # delivered outside the lock: a receiver may call back into the fake before answering
        if wait:
            deliveries = [self._deliver(hook, payload) for hook in targets]
        else:
            threading.Thread(target=lambda: [self._deliver(hook, payload) for hook in targets], daemon=True).start()
            deliveries = [{"webhook_id": hook["id"], "url": hook["url"], "pending": True} for hook in targets]
        return {"account": self.public_account(account), "payload": payload, "deliveries": deliveries}

    def _deliver(self, hook: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(
            hook["url"], data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        result: dict[str, Any] = {
            "webhook_id": hook["id"],
            "url": hook["url"],
            "event_type": payload["event_type"],
            "payload": payload,
            "time": time.time(),
            "status_code": None,
            "error": None,
        }
        try:
            with urllib.request.urlopen(request, timeout=float(self.config["webhook_timeout"])) as resp:
                result["status_code"] = resp.status
        except urllib.error.HTTPError as exc:
            result["status_code"], result["error"] = exc.code, f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            result["error"] = str(getattr(exc, "reason", exc))
        ok = result["status_code"] is not None and 200 <= result["status_code"] < 300
        with self._lock:
            live = next((w for w in self.state["webhooks"] if w["id"] == hook["id"]), None)
            if live is not None:
                # consecutive failures; TimelinesAI emails the owner but never disables the webhook
                live["errors_counter"] = 0 if ok else live["errors_counter"] + 1
            self.deliveries.append(result)
        return result

    @unlocked
    def _admin_account_status(self, req: Request) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        result = self.set_account_status(
            req.params["account"],
            body.get("status", "disconnected"),
            event=body.get("event"),
            wait=bool(body.get("wait", True)),
        )
        return json_response(200, result)

    def _admin_message_status(self, req: Request) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        return json_response(200, self.set_message_status(req.params["uid"], body.get("status", "Failed")))

    def _admin_clear_deliveries(self, req: Request) -> Response:
        self.deliveries.clear()
        return json_response(200, [])

    def reset(self, state: dict[str, Any] | None = None) -> None:
        with self._lock:
            super().reset(state)
            self.deliveries.clear()


def main(argv: list[str] | None = None) -> int:
    parser = base_cli("python -m tests.fakes.timelinesai", "Local fake of the TimelinesAI Public API.")
    parser.add_argument("--phones", type=int, default=20, help="number of WhatsApp accounts in the demo seed")
    parser.add_argument("--disconnected", default="7,19", help="comma-separated account numbers seeded disconnected")
    parser.add_argument("--unauthorized-body", choices=("json", "text"), default="json")
    args = parser.parse_args(argv)
    fake = TimelinesAIFake(
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        seed=args.seed,
        phones=args.phones,
        disconnected=[int(n) for n in args.disconnected.split(",") if n.strip()],
        state_file=args.state_file,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
        config={"unauthorized_body": args.unauthorized_body},
    )
    fake.verbose = args.verbose
    fake.serve_foreground()
    return 0


if __name__ == "__main__":
    sys.exit(main())
