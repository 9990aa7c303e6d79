"""Fake of the Instantly API v2, limited to the operations of ``openapi/instantly-api-v2.subset.json``
(plus ``GET /api/v2/accounts``, which the collection needs but the subset does not carry).

Run it: ``python -m tests.fakes.instantly --port 18080 --api-key KEY [--seed demo|empty]``.
"""

from __future__ import annotations

import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from tests.fakes._server import FakeServer, Handler, Problem, Request, Response, base_cli, json_response, reason

ORGANIZATION_ID = "0198f0a2-5c1e-7b3a-9d4e-2f6a8b0c1d2e"
OWNER_ID = "0198f0a2-5c1e-7b3a-9d4e-2f6a8b0c1d2f"

CAMPAIGN_STATUS_NAMES = {
    0: "Draft",
    1: "Active",
    2: "Paused",
    3: "Completed",
    4: "Running Subsequences",
    -99: "Account Suspended",
    -1: "Accounts Unhealthy",
    -2: "Bounce Protect",
}
# sending-status `status` for every campaign state that is not "active"
_SENDING_STATUS_BY_CAMPAIGN_STATUS = {
    0: "campaign_draft",
    2: "campaign_paused",
    3: "campaign_completed",
    4: "campaign_running_subsequences",
    -2: "campaign_bounce_protect",
    -1: "campaign_accounts_unhealthy",
    -99: "campaign_account_suspended",
}
_SENDING_STATUS_MESSAGES = {
    "campaign_paused": "The campaign is paused.",
    "campaign_draft": "The campaign has not been launched yet.",
    "campaign_completed": "The campaign has completed.",
    "campaign_running_subsequences": "The campaign is only running subsequences.",
    "campaign_bounce_protect": "The campaign was paused automatically because of a high bounce rate.",
    "campaign_accounts_unhealthy": "The campaign was paused because its sending accounts have errors.",
    "campaign_account_suspended": "The workspace account is suspended.",
    "out_of_schedule": "The campaign is outside its sending schedule.",
    "daily_limit_met": "The campaign daily limit has been reached.",
    "healthy": "The campaign is sending normally.",
}
LEAD_FILTERS: dict[str, Callable[[dict], bool]] = {
    "FILTER_VAL_BOUNCED": lambda lead: lead["status"] == -1,
    "FILTER_VAL_UNSUBSCRIBED": lambda lead: lead["status"] == -2,
    "FILTER_VAL_SKIPPED": lambda lead: lead["status"] == -3,
    "FILTER_VAL_COMPLETED": lambda lead: lead["status"] == 3,
    "FILTER_VAL_ACTIVE": lambda lead: lead["status"] == 1,
    "FILTER_VAL_CONTACTED": lambda lead: lead.get("timestamp_last_contact") is not None,
    "FILTER_VAL_NOT_CONTACTED": lambda lead: lead.get("timestamp_last_contact") is None,
}
# Counters only the overview endpoint returns.
OVERVIEW_ONLY = ("total_interested", "total_meeting_booked", "total_meeting_completed", "total_closed")
ANALYTICS_COUNTERS = (
    "leads_count",
    "contacted_count",
    "emails_sent_count",
    "new_leads_contacted_count",
    "open_count",
    "open_count_unique",
    "open_count_unique_by_step",
    "reply_count",
    "reply_count_unique",
    "reply_count_unique_by_step",
    "reply_count_automatic",
    "reply_count_automatic_unique",
    "reply_count_automatic_unique_by_step",
    "link_click_count",
    "link_click_count_unique",
    "link_click_count_unique_by_step",
    "bounced_count",
    "unsubscribed_count",
    "completed_count",
    "total_opportunities",
    "total_opportunity_value",
)
# Fastify validates a request with Ajv against the schema the document was generated from; Ajv's messages per keyword
AJV_MESSAGES = {
    "type": "must be {}",
    "minimum": "must be >= {}",
    "maximum": "must be <= {}",
    "exclusiveMinimum": "must be > {}",
    "exclusiveMaximum": "must be < {}",
    "enum": "must be equal to one of the allowed values",
    "const": "must be equal to constant",
    "required": "must have required property '{}'",
    "additionalProperties": "must NOT have additional properties",
    "minItems": "must NOT have fewer than {} items",
    "maxItems": "must NOT have more than {} items",
    "minLength": "must NOT have fewer than {} characters",
    "maxLength": "must NOT have more than {} characters",
    "pattern": 'must match pattern "{}"',
    "format": 'must match format "{}"',
}
DEFAULT_PAGE_LIMIT = 10  # undocumented upstream; clients should always send `limit`
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$", re.IGNORECASE)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$")


def uuid7(ms: int, seq: int = 0) -> str:
    """A UUIDv7 laid out like Instantly's ids (ms timestamp first), deterministic for seeding: ids sort by
    (ms, seq), which is the order Instantly's cursors walk."""
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (seq & 0xFFF) << 64 | 0b10 << 62
    value |= (seq * 0x9E3779B97F4A7C15 + ms) & ((1 << 62) - 1)
    return str(uuid.UUID(int=value))


def iso_ms(ms: int) -> str:
    dt = datetime.fromtimestamp(ms / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _ms(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp() * 1000)


def _now_ms() -> int:
    return int(time.time() * 1000)


# ---- seed data -------------------------------------------------------------------------------------------------


def make_campaign(cid: str, name: str, status: int, created: str, **overrides: Any) -> dict[str, Any]:
    campaign = {
        "id": cid,
        "name": name,
        "status": status,
        "pl_value": 100,
        "is_evergreen": False,
        "campaign_schedule": {
            "start_date": created[:10],
            "end_date": None,
            "schedules": [
                {
                    "name": "Business hours RO",
                    "timing": {"from": "09:00", "to": "17:00"},
                    "days": {"0": False, "1": True, "2": True, "3": True, "4": True, "5": True, "6": False},
                    "timezone": "Europe/Bucharest",
                }
            ],
        },
        "sequences": [
            {
                "steps": [
                    {
                        "type": "email",
                        "delay": 2,
                        "delay_unit": "days",
                        "variants": [{"subject": "Hello {{firstName}}", "body": "Hi {{firstName}},\n\n..."}],
                    },
                    {
                        "type": "email",
                        "delay": 3,
                        "delay_unit": "days",
                        "variants": [{"subject": "Re: Hello {{firstName}}", "body": "Following up ..."}],
                    },
                ]
            }
        ],
        "email_list": ["ana@mail.example.com", "bogdan@mail.example.com"],
        "email_tag_list": [],
        "daily_limit": 100,
        "daily_max_leads": 100,
        "email_gap": 10,
        "random_wait_max": 10,
        "stop_on_reply": True,
        "stop_on_auto_reply": False,
        "stop_for_company": False,
        "link_tracking": False,
        "open_tracking": False,
        "text_only": True,
        "first_email_text_only": True,
        "prioritize_new_leads": False,
        "match_lead_esp": False,
        "insert_unsubscribe_header": True,
        "allow_risky_contacts": False,
        "disable_bounce_protect": False,
        # `not_sending_status` is left out, not null: the document's enum [1, 2, 3, 4, 99] rejects null
        "organization": ORGANIZATION_ID,
        "owned_by": OWNER_ID,
        "timestamp_created": created,
        "timestamp_updated": created,
    }
    campaign.update(overrides)
    return campaign


def _counters(sent: int, bounced: int, leads: int, contacted: int, replies: int) -> dict[str, Any]:
    return {
        "leads_count": leads,
        "contacted_count": contacted,
        "emails_sent_count": sent,
        "new_leads_contacted_count": contacted,
        "open_count": 0,
        "open_count_unique": 0,
        "open_count_unique_by_step": 0,
        "reply_count": replies,
        "reply_count_unique": replies,
        "reply_count_unique_by_step": replies,
        "reply_count_automatic": replies // 5,
        "reply_count_automatic_unique": replies // 5,
        "reply_count_automatic_unique_by_step": replies // 5,
        "link_click_count": 0,
        "link_click_count_unique": 0,
        "link_click_count_unique_by_step": 0,
        "bounced_count": bounced,
        "unsubscribed_count": replies // 10,
        "completed_count": contacted // 2,
        "total_opportunities": replies // 4,
        "total_opportunity_value": float(replies // 4 * 500),
        "total_interested": replies // 3,
        "total_meeting_booked": replies // 6,
        "total_meeting_completed": replies // 8,
        "total_closed": replies // 12,
    }


def _lead(ms: int, seq: int, campaign_id: str, status: int, n: int, *, contacted: bool) -> dict[str, Any]:
    domain = f"firma{n % 97:02d}.example.ro"
    created = iso_ms(ms)
    last_contact = iso_ms(ms + 86_400_000) if contacted else None
    return {
        "id": uuid7(ms, seq),
        "timestamp_created": created,
        "timestamp_updated": last_contact or created,
        "organization": ORGANIZATION_ID,
        "campaign": campaign_id,
        "status": status,
        "email": f"contact{n:04d}@{domain}",
        "first_name": f"Contact{n:04d}",
        "last_name": "Demo",
        "company_name": f"Firma {n % 97:02d} SRL",
        "email_open_count": 0,
        "email_reply_count": 0,
        "email_click_count": 0,
        "company_domain": domain,
        "status_summary": {"domain_complete": False} if status != -1 else {"domain_complete": True},
        "lt_interest_status": 0,
        "verification_status": -1 if status == -1 else 1,
        "list_id": None,
        "upload_method": "api",
        "timestamp_last_contact": last_contact,
        "esp_code": 1,
    }


def build_demo_state(*, bounced_leads: int = 210, other_leads: int = 15) -> dict[str, Any]:
    """Four campaigns: an active one whose bounce rate is 5 % over 4200 sends (``bounced_leads`` bounced leads,
    210 = three pages at limit 100), a healthy active one, a never-sent draft and a paused one; three sender
    accounts and a small block list."""
    base = _ms("2026-03-02T08:00:00.000Z")
    day = 86_400_000
    ids = [uuid7(base + i * day, 0) for i in range(4)]
    hot, healthy, draft, paused = ids
    campaigns = [
        make_campaign(hot, "RO SMB Q3 - Bucuresti", 1, iso_ms(base)),
        make_campaign(healthy, "RO Enterprise Q3", 1, iso_ms(base + day)),
        make_campaign(draft, "Q4 Nurture (draft)", 0, iso_ms(base + 2 * day)),
        make_campaign(paused, "Q2 Reactivation", 2, iso_ms(base + 3 * day)),
    ]
    hot_sent = max(bounced_leads * 20, 100)  # 5 %
    analytics = {
        hot: _counters(sent=hot_sent, bounced=bounced_leads, leads=1500, contacted=1300, replies=52),
        healthy: _counters(sent=1800, bounced=18, leads=700, contacted=640, replies=40),
        paused: _counters(sent=950, bounced=9, leads=400, contacted=380, replies=12),
    }
    leads: list[dict[str, Any]] = []
    n = 0
    lead_ms = base + 3_600_000
    for cid, bounced in ((hot, bounced_leads), (healthy, 18), (paused, 9)):
        for i in range(bounced + other_leads):
            n += 1
            status = -1 if i < bounced else (3 if i % 3 == 0 else 1)
            leads.append(_lead(lead_ms + n * 1000, 0, cid, status, n, contacted=True))
    for _unsent in range(other_leads):
        n += 1
        leads.append(_lead(lead_ms + n * 1000, 0, draft, 1, n, contacted=False))
    daily = {
        cid: [
            {
                "date": f"2026-03-{10 + d:02d}",
                "sent": counters["emails_sent_count"] // 10,
                "contacted": counters["contacted_count"] // 10,
                "new_leads_contacted": counters["new_leads_contacted_count"] // 10,
                "opened": 0,
                "unique_opened": 0,
                "replies": counters["reply_count"] // 10,
                "unique_replies": counters["reply_count_unique"] // 10,
                "replies_automatic": 0,
                "unique_replies_automatic": 0,
                "clicks": 0,
                "unique_clicks": 0,
                "opportunities": 0,
                "unique_opportunities": 0,
            }
            for d in range(3)
        ]
        for cid, counters in analytics.items()
    }
    accounts = [
        _account("ana@mail.example.com", "Ana", "Popescu", base - 30 * day, status=1, score=96),
        _account("bogdan@mail.example.com", "Bogdan", "Ionescu", base - 29 * day, status=1, score=88),
        _account("cristina@mail2.example.com", "Cristina", "Marin", base - 10 * day, status=-1, score=41),
    ]
    block_list = [
        _block_entry("competitor.example", base - day, 0),
        _block_entry("do-not-contact@example.org", base - day, 1),
    ]
    return {
        "organization_id": ORGANIZATION_ID,
        "campaigns": campaigns,
        "analytics": analytics,
        "daily_analytics": daily,
        "sending_status": {},
        "leads": leads,
        "accounts": accounts,
        "block_list": block_list,
    }


def _account(email: str, first: str, last: str, ms: int, *, status: int, score: int) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp_created": iso_ms(ms),
        "timestamp_updated": iso_ms(ms),
        "first_name": first,
        "last_name": last,
        "warmup": {"limit": 40, "increment": "disabled", "reply_rate": 0.1},
        "daily_limit": 30,
        "status": status,
        "enable_slow_ramp": True,
        "organization": ORGANIZATION_ID,
        "warmup_status": 1,
        "provider_code": 2,
        "setup_pending": False,
        "is_managed_account": False,
        "stat_warmup_score": score,
        "sending_gap": 10,
        "tracking_domain_name": None,
        "tracking_domain_status": None,
    }


def _block_entry(value: str, ms: int, seq: int) -> dict[str, Any]:
    return {
        "id": uuid7(ms, seq),
        "timestamp_created": iso_ms(ms),
        "organization_id": ORGANIZATION_ID,
        "bl_value": value,
        "is_domain": "@" not in value,
    }


def build_empty_state() -> dict[str, Any]:
    return {
        "organization_id": ORGANIZATION_ID,
        "campaigns": [],
        "analytics": {},
        "daily_analytics": {},
        "sending_status": {},
        "leads": [],
        "accounts": [],
        "block_list": [],
    }


# ---- server ----------------------------------------------------------------------------------------------------


class BadRequest(Exception):
    pass


def _paginate(items: list[dict], key: Callable[[dict], str], limit: int, starting_after: str | None) -> dict:
    # Like Instantly: any page with data carries a cursor (even the last one); only an empty page has none.
    if starting_after:
        items = [item for item in items if key(item) > starting_after]
    page = items[:limit]
    out: dict[str, Any] = {"items": page}
    if page:
        out["next_starting_after"] = key(page[-1])
    return out


def _limit(raw: Any, where: str) -> int:
    if raw is None:
        return DEFAULT_PAGE_LIMIT
    try:
        value = int(raw)
        if isinstance(raw, float | bool) or str(raw).strip() != str(value):
            raise ValueError
    except (TypeError, ValueError):
        raise BadRequest(f"{where}/limit must be integer") from None
    if value < 1:
        raise BadRequest(f"{where}/limit must be >= 1")
    if value > 100:
        raise BadRequest(f"{where}/limit must be <= 100")
    return value


def _bool_arg(value: str | None) -> bool | None:
    if value is None:
        return None
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise BadRequest("querystring must be boolean")


class InstantlyFake(FakeServer):
    """Instantly API v2 fake.

    Constructor: ``InstantlyFake(api_key="test-key", seed="demo", state=None, state_file=None, port=0,
    host="127.0.0.1", rate_limit=None, rate_window=1.0, config=None)``. ``seed`` is ``demo`` or ``empty`` and is
    used when neither ``state`` nor ``state_file`` is given.

    Config (``POST /__fake__/config``): ``reject_empty_json_body`` (bool, default False) answers 400 like
    Fastify does for a POST whose Content-Type is JSON but whose body is empty.

    Extra admin routes: ``POST /__fake__/campaigns/{id}`` merges ``{"status": -2, ...}`` into the campaign; the
    keys ``analytics`` (counters) and ``sending_status`` (a sending-status code) go to those tables.
    ``POST /__fake__/reset`` with ``{"seed": "demo"|"empty"}`` reseeds.
    """

    vendor = "instantly"
    base_path = ""
    openapi_document = "instantly-api-v2.subset.json"
    # the collection lists the sender accounts, which the subset document does not carry (upstream `listAccount`)
    undocumented_routes = frozenset({("GET", "/api/v2/accounts")})
    # the document's 400 of activate is a copy of its 404 (statusCode enum [404]): no real 400 body can meet it
    undocumented_responses = frozenset({("POST", "/api/v2/campaigns/{id}/activate", 400)})
    default_config = {"reject_empty_json_body": False}

    def __init__(self, *, seed: str = "demo", state: dict[str, Any] | None = None, **kwargs: Any):
        if state is None and kwargs.get("state_file") is None:
            state = seed_state(seed)
        self._counter = 0
        super().__init__(state=state, **kwargs)

    # ---- vendor shapes ----

    def error_response(self, status: int, message: str | None = None) -> Response:
        default = {
            401: "Invalid API key",
            402: "Workspace does not have an active paid plan",
            404: "Resource not found",
            429: "Rate limit exceeded",
        }
        text = message or default.get(status, reason(status))
        return json_response(status, {"statusCode": status, "error": reason(status), "message": text})

    def unauthorized(self, req: Request, *, missing: bool) -> Response:
        return self.error_response(401, "Missing Authorization header" if missing else "Invalid API key")

    def route_not_found(self, req: Request) -> Response:
        # Fastify's default not-found handler
        return json_response(
            404, {"message": f"Route {req.method}:{req.path} not found", "error": "Not Found", "statusCode": 404}
        )

    def invalid_json(self, req: Request) -> Response:
        return self.error_response(400, "Body is not valid JSON but content-type is set to 'application/json'")

    def invalid_request(self, req: Request, problems: list[Problem]) -> Response:
        # Fastify stops at the first error: "querystring/limit must be <= 100", "body must have required property 'x'"
        first = problems[0]
        where = "/".join(map(str, (first.location, *first.path)))
        return self.error_response(400, f"{where} {AJV_MESSAGES.get(first.keyword, 'is invalid').format(first.value)}")

    def before_handler(self, req: Request) -> Response | None:
        ctype = req.headers.get("content-type", "")
        if self.config.get("reject_empty_json_body") and not req.body and "application/json" in ctype:
            return self.error_response(400, "Body cannot be empty when content-type is set to 'application/json'")
        return None

    def empty_state(self) -> dict[str, Any]:
        return build_empty_state()

    def normalize_state(self, state: dict[str, Any]) -> dict[str, Any]:
        merged = {**build_empty_state(), **state}
        for name in ("campaigns", "leads", "block_list"):
            merged[name] = sorted(merged[name], key=lambda item: item["id"])
        merged["accounts"] = sorted(merged["accounts"], key=_account_cursor)
        return merged

    def seed_from_admin(self, body: dict[str, Any]) -> dict[str, Any] | None:
        if "seed" in body:
            return seed_state(body["seed"])
        return super().seed_from_admin(body)

    # ---- routing ----

    def routes(self) -> Iterable[tuple[str, str, Handler]]:
        wrap = self._wrap
        return [
            ("GET", "/api/v2/campaigns", wrap(self.list_campaigns)),
            ("GET", "/api/v2/campaigns/analytics", wrap(self.campaign_analytics)),
            ("GET", "/api/v2/campaigns/analytics/overview", wrap(self.campaign_analytics_overview)),
            ("GET", "/api/v2/campaigns/analytics/daily", wrap(self.campaign_analytics_daily)),
            ("GET", "/api/v2/campaigns/{id}", wrap(self.get_campaign)),
            ("POST", "/api/v2/campaigns/{id}/pause", wrap(self.pause_campaign)),
            ("POST", "/api/v2/campaigns/{id}/activate", wrap(self.activate_campaign)),
            ("GET", "/api/v2/campaigns/{id}/sending-status", wrap(self.sending_status)),
            ("POST", "/api/v2/leads/list", wrap(self.list_leads)),
            ("GET", "/api/v2/block-lists-entries", wrap(self.list_block_list)),
            ("POST", "/api/v2/block-lists-entries", wrap(self.create_block_list_entry)),
            ("DELETE", "/api/v2/block-lists-entries", wrap(self.delete_block_list_entries)),
            ("POST", "/api/v2/block-lists-entries/bulk-create", wrap(self.bulk_create_block_list)),
            ("GET", "/api/v2/accounts", wrap(self.list_accounts)),
        ]

    def admin_routes(self) -> Iterable[tuple[str, str, Handler]]:
        return [("POST", "/campaigns/{id}", self._admin_patch_campaign)]

    def _wrap(self, fn: Handler) -> Handler:
        def run(req: Request) -> Response:
            try:
                return fn(req)
            except BadRequest as exc:
                return self.error_response(400, str(exc))

        return run

    def _new_id(self) -> str:
        self._counter += 1
        return uuid7(_now_ms(), self._counter)

    def _campaign(self, cid: str) -> dict[str, Any] | None:
        return next((c for c in self.state["campaigns"] if c["id"] == cid), None)

    def _campaign_not_found(self) -> Response:
        return self.error_response(404, "Campaign not found")

    # ---- campaigns ----

    def list_campaigns(self, req: Request) -> Response:
        limit = _limit(req.arg("limit"), "querystring")
        items = self.state["campaigns"]
        if search := req.arg("search"):
            items = [c for c in items if search.lower() in c["name"].lower()]
        for name, keep in (("status", True), ("exclude_status", False)):
            if (raw := req.arg(name)) is not None:  # one of the document's enum: checked before the handler runs
                items = [c for c in items if (c["status"] == float(raw)) is keep]
        if tag_ids := req.arg("tag_ids"):
            wanted_tags = set(tag_ids.split(","))
            items = [c for c in items if wanted_tags & set(c.get("email_tag_list") or [])]
        return json_response(200, _paginate(items, lambda c: c["id"], limit, req.arg("starting_after")))

    def get_campaign(self, req: Request) -> Response:
        campaign = self._campaign(req.params["id"])
        return json_response(200, campaign) if campaign else self._campaign_not_found()

    def _set_status(self, req: Request, status: int) -> Response:
        campaign = self._campaign(req.params["id"])
        if campaign is None:
            return self._campaign_not_found()
        campaign["status"] = status
        campaign["timestamp_updated"] = iso_ms(_now_ms())
        return json_response(200, campaign)

    def bounce_protect(self, campaign_id: str) -> dict[str, Any]:
        """Instantly's own pause on high bounces: the campaign's status becomes -2 ("Bounce Protect" in the OpenAPI
        document's status enum), its sending-status `campaign_bounce_protect`; /activate sets it to 1 again."""
        campaign = self._campaign(campaign_id)
        if campaign is None:
            raise KeyError(campaign_id)
        campaign["status"] = -2
        campaign["timestamp_updated"] = iso_ms(_now_ms())
        return campaign

    def pause_campaign(self, req: Request) -> Response:
        return self._set_status(req, 2)

    def activate_campaign(self, req: Request) -> Response:
        return self._set_status(req, 1)

    def sending_status(self, req: Request) -> Response:
        campaign = self._campaign(req.params["id"])
        if campaign is None:
            return self._campaign_not_found()
        with_ai = _bool_arg(req.arg("with_ai_summary")) or False
        code = _SENDING_STATUS_BY_CAMPAIGN_STATUS.get(campaign["status"])
        if code is None:
            code = self.state["sending_status"].get(campaign["id"], "healthy")
        healthy = code == "healthy"
        updated = iso_ms(_now_ms())
        last_send = None if campaign["id"] not in self.state["analytics"] else campaign["timestamp_updated"]
        summary: dict[str, Any] = {
            "status": code,
            "status_message": _SENDING_STATUS_MESSAGES.get(code, code.replace("_", " ")),
            "issue_started_at": None if healthy else campaign["timestamp_updated"],
            "last_healthy_send_at": last_send,
        }
        if with_ai:
            summary["ai_summary"] = summary["status_message"]
        diagnostics: dict[str, Any] | None = None
        # Instantly leaves diagnostics null while a campaign is draft or paused (starter-kit gotcha)
        if campaign["status"] not in (0, 2):
            daily = campaign.get("daily_limit") or 0
            diagnostics = {
                "campaign_id": campaign["id"],
                "last_updated": updated,
                "status": code,
                "issue_tracking": {
                    "current_status_code": None if healthy else code,
                    "issue_first_seen_at": None if healthy else campaign["timestamp_updated"],
                    "consecutive_loops_with_issue": 0 if healthy else 3,
                    "last_healthy_send_at": last_send,
                },
                "accounts_summary": {
                    "total_connected": len(campaign.get("email_list") or []),
                    "available": len(campaign.get("email_list") or []) if healthy else 0,
                    "unavailable": {"daily_limit_hit": 0, "slow_ramp_limit_hit": 0, "disconnected": 0},
                },
                "campaign_daily_limit": {"limit": daily, "sent": 0, "limit_hit": code == "daily_limit_met"},
                "schedule_status": {"in_schedule": code != "out_of_schedule"},
            }
        return json_response(200, {"diagnostics": diagnostics, "summary": summary})

    # ---- analytics ----

    def _selected_campaigns(self, req: Request) -> list[dict[str, Any]]:
        start, end = req.arg("start_date"), req.arg("end_date")
        for value in (start, end):
            if value is not None and not _DATE_RE.match(value):
                raise _AnalyticsError("Invalid date format")
        if start and end and start[:10] > end[:10]:
            raise _AnalyticsError("Start Date must be earlier than End Date")
        wanted = req.args("ids")
        if single := req.arg("id"):
            wanted.append(single)
        campaigns = self.state["campaigns"]
        if wanted:
            campaigns = [c for c in campaigns if c["id"] in wanted]
        if (raw := req.arg("campaign_status")) is not None:
            campaigns = [c for c in campaigns if str(c["status"]) == raw.split(".")[0]]
        return campaigns

    def _analytics_route(self, fn: Callable[[Request], Any]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            try:
                return json_response(200, fn(req))
            except _AnalyticsError as exc:
                return json_response(400, {"message": str(exc)})  # analytics 400s carry only `message`

        return run

    def campaign_analytics(self, req: Request) -> Response:
        def build(req: Request) -> list[dict[str, Any]]:
            exclude_total = _bool_arg(req.arg("exclude_total_leads_count")) or False
            rows = []
            # a campaign that has not sent anything has no analytics row: `?id=<draft>` gives []
            for campaign in self._selected_campaigns(req):
                counters = self.state["analytics"].get(campaign["id"])
                if counters is None:
                    continue
                row = {
                    "campaign_name": campaign["name"],
                    "campaign_id": campaign["id"],
                    "campaign_status": campaign["status"],
                    "campaign_is_evergreen": bool(campaign.get("is_evergreen")),
                }
                row.update({k: counters.get(k, 0) for k in ANALYTICS_COUNTERS})
                if exclude_total:
                    row["leads_count"] = 0
                rows.append(row)
            return rows

        return self._analytics_route(build)(req)

    def campaign_analytics_overview(self, req: Request) -> Response:
        def build(req: Request) -> dict[str, Any]:
            totals: dict[str, Any] = {k: 0 for k in ANALYTICS_COUNTERS if k != "leads_count"}
            totals.update({k: 0 for k in OVERVIEW_ONLY})
            for campaign in self._selected_campaigns(req):
                counters = self.state["analytics"].get(campaign["id"]) or {}
                for key in totals:
                    totals[key] += counters.get(key, 0)
            return totals

        return self._analytics_route(build)(req)

    def campaign_analytics_daily(self, req: Request) -> Response:
        def build(req: Request) -> list[dict[str, Any]]:
            self._selected_campaigns(req)  # date validation
            start, end = req.arg("start_date"), req.arg("end_date")
            cid = req.arg("campaign_id")
            by_date: dict[str, dict[str, Any]] = {}
            campaigns = [c for c in self.state["campaigns"] if cid in (None, c["id"])]
            if (raw := req.arg("campaign_status")) is not None:
                campaigns = [c for c in campaigns if str(c["status"]) == raw.split(".")[0]]
            for campaign in campaigns:
                for entry in self.state["daily_analytics"].get(campaign["id"], []):
                    if (start and entry["date"] < start[:10]) or (end and entry["date"] > end[:10]):
                        continue
                    acc = by_date.setdefault(entry["date"], {"date": entry["date"]})
                    for key, value in entry.items():
                        if key != "date":
                            acc[key] = acc.get(key, 0) + value
            return [by_date[d] for d in sorted(by_date)]

        return self._analytics_route(build)(req)

    # ---- leads ----

    def list_leads(self, req: Request) -> Response:
        body = req.json if req.body else {}
        limit = body.get("limit", DEFAULT_PAGE_LIMIT)
        leads = self.state["leads"]
        if campaign := body.get("campaign"):
            leads = [lead for lead in leads if lead.get("campaign") == campaign]
        if list_id := body.get("list_id"):
            leads = [lead for lead in leads if lead.get("list_id") == list_id]
        if predicate := LEAD_FILTERS.get(body.get("filter") or ""):
            leads = [lead for lead in leads if predicate(lead)]
        if ids := body.get("ids"):
            leads = [lead for lead in leads if lead["id"] in ids]
        if excluded := body.get("excluded_ids"):
            leads = [lead for lead in leads if lead["id"] not in excluded]
        if contacts := body.get("contacts"):
            wanted = {c.lower() for c in contacts}
            leads = [lead for lead in leads if (lead.get("email") or "").lower() in wanted]
        if search := body.get("search"):
            needle = search.lower()
            leads = [
                lead
                for lead in leads
                if any(needle in (lead.get(f) or "").lower() for f in ("first_name", "last_name", "email"))
            ]
        return json_response(200, _paginate(leads, lambda lead: lead["id"], limit, body.get("starting_after")))

    # ---- block list ----

    def list_block_list(self, req: Request) -> Response:
        limit = _limit(req.arg("limit"), "querystring")
        entries = self.state["block_list"]
        domains_only = _bool_arg(req.arg("domains_only"))
        if domains_only:
            entries = [e for e in entries if e["is_domain"]]
        if search := req.arg("search"):
            entries = [e for e in entries if search.lower() in e["bl_value"].lower()]
        return json_response(200, _paginate(entries, lambda e: e["id"], limit, req.arg("starting_after")))

    def _add_block_entry(self, value: str) -> dict[str, Any]:
        value = value.strip().lower()
        existing = next((e for e in self.state["block_list"] if e["bl_value"] == value), None)
        if existing:
            return existing
        entry = _block_entry(value, _now_ms(), 0)
        entry["id"] = self._new_id()
        self.state["block_list"].append(entry)
        self.state["block_list"].sort(key=lambda e: e["id"])
        return entry

    @staticmethod
    def _valid_block_value(value: Any) -> bool:
        return isinstance(value, str) and bool(_EMAIL_RE.match(value.strip()) or _DOMAIN_RE.match(value.strip()))

    def create_block_list_entry(self, req: Request) -> Response:
        value = req.json["bl_value"]
        if not self._valid_block_value(value):
            raise BadRequest("bl_value must be a valid email or domain")
        return json_response(200, self._add_block_entry(value))

    def bulk_create_block_list(self, req: Request) -> Response:
        items, invalid = [], 0
        for value in req.json["bl_values"]:
            if self._valid_block_value(value):
                items.append(self._add_block_entry(value))
            else:
                invalid += 1
        return json_response(200, {"items": items, "valid_count": len(items), "invalid_count": invalid})

    def delete_block_list_entries(self, req: Request) -> Response:
        domains_only = _bool_arg(req.arg("domains_only"))
        search = (req.arg("search") or "").lower()
        doomed = [
            e
            for e in self.state["block_list"]
            if (not domains_only or e["is_domain"]) and (not search or search in e["bl_value"].lower())
        ]
        self.state["block_list"] = [e for e in self.state["block_list"] if e not in doomed]
        return json_response(200, doomed)

    # ---- accounts (not in the subset document; shape of the upstream `listAccount`) ----

    def list_accounts(self, req: Request) -> Response:
        limit = _limit(req.arg("limit"), "querystring")
        accounts = self.state["accounts"]
        if search := req.arg("search"):
            accounts = [a for a in accounts if search.lower() in a["email"].lower()]
        if (status := req.arg("status")) is not None:
            accounts = [a for a in accounts if str(a["status"]) == status]
        if (provider := req.arg("provider_code")) is not None:
            accounts = [a for a in accounts if str(a["provider_code"]) == provider]
        return json_response(200, _paginate(accounts, _account_cursor, limit, req.arg("starting_after")))

    # ---- admin ----

    def _admin_patch_campaign(self, req: Request) -> Response:
        campaign = self._campaign(req.params["id"])
        if campaign is None:
            return json_response(404, {"error": f"no campaign {req.params['id']}"})
        patch = dict(req.json or {})
        if "analytics" in patch:
            self.state["analytics"].setdefault(campaign["id"], {}).update(patch.pop("analytics"))
        if "sending_status" in patch:
            self.state["sending_status"][campaign["id"]] = patch.pop("sending_status")
        if "status" in patch and patch["status"] not in CAMPAIGN_STATUS_NAMES:
            raise ValueError(f"status must be one of {sorted(CAMPAIGN_STATUS_NAMES)}")
        campaign.update(patch)
        campaign["timestamp_updated"] = iso_ms(_now_ms())
        return json_response(200, campaign)


class _AnalyticsError(Exception):
    pass


def _account_cursor(account: dict[str, Any]) -> str:
    return f"{account['timestamp_created']}&{account['email']}"


def seed_state(seed: str) -> dict[str, Any]:
    if seed == "demo":
        return build_demo_state()
    if seed == "empty":
        return build_empty_state()
    raise ValueError(f"unknown seed {seed!r}; expected 'demo' or 'empty'")


def bounce_rate(analytics_row: dict[str, Any]) -> float:
    """``bounced_count / emails_sent_count`` as Instantly's own ops template computes it (0 when nothing sent)."""
    sent = analytics_row.get("emails_sent_count") or 0
    return (analytics_row.get("bounced_count") or 0) / sent if sent else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = base_cli("python -m tests.fakes.instantly", "Local fake of the Instantly API v2.")
    parser.add_argument("--phones", type=int, help="accepted for symmetry with the TimelinesAI fake; ignored")
    args = parser.parse_args(argv)
    fake = InstantlyFake(
        host=args.host,
        port=args.port,
        api_key=args.api_key or None,
        seed=args.seed,
        state_file=args.state_file,
        rate_limit=args.rate_limit,
        rate_window=args.rate_window,
    )
    fake.verbose = args.verbose
    fake.serve_foreground()
    return 0


__all__ = [
    "CAMPAIGN_STATUS_NAMES",
    "InstantlyFake",
    "bounce_rate",
    "build_demo_state",
    "build_empty_state",
    "main",
    "seed_state",
    "uuid7",
]

if __name__ == "__main__":
    sys.exit(main())
