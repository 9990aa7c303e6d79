"""Contract tests of the vendor fakes (tests/fakes): every request sent and every response returned is validated
against the vendors' OpenAPI documents with openapi-core; what a document does not describe (unknown routes,
injected 500s, the TimelinesAI 429) is checked against the shape the vendor documents elsewhere.

Self-contained: the fakes run in-process on free ports; no other fixture of the suite is used.
"""

from __future__ import annotations

import filecmp
import json
import re
import select
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml
from openapi_core import OpenAPI
from openapi_core.contrib.requests import (
    RequestsOpenAPIRequest,
    RequestsOpenAPIResponse,
    RequestsOpenAPIWebhookRequest,
)
from openapi_core.exceptions import OpenAPIError

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:  # run standalone too, not only under the suite's rootdir conftest
    sys.path.insert(0, str(REPO_ROOT))

from tests.fakes import OPENAPI_DIR, Fault, InstantlyFake, TimelinesAIFake  # noqa: E402
from tests.fakes import instantly as instantly_mod  # noqa: E402
from tests.fakes import timelinesai as timelinesai_mod  # noqa: E402

SHARED_VENDORS = REPO_ROOT.parent / "shared" / "reference" / "vendors"
SPEC_FILES = ("instantly-api-v2.subset.json", "timelinesai-public-api.yaml", "timelinesai-webhooks.yaml")
INSTANTLY_SERVER = "https://api.instantly.ai"
TIMELINES_SERVER = "https://app.timelines.ai"  # + /integrations/api, as in the document's servers[0]
INSTANTLY_KEY = "inst-test-key"
TIMELINES_TOKEN = "4d2d0239-e28c-4f4a-8a4d-3a3ca40056b8"
TL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$")
DEFAULT_TOKEN = object()
FASTIFY_ERROR = {
    "type": "object",
    "required": ["statusCode", "error", "message"],
    "properties": {"statusCode": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}},
}


# ---- specs and clients -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def instantly_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(OPENAPI_DIR / SPEC_FILES[0]))


@pytest.fixture(scope="session")
def timelines_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(OPENAPI_DIR / SPEC_FILES[1]))


@pytest.fixture(scope="session")
def webhooks_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(OPENAPI_DIR / SPEC_FILES[2]))


@pytest.fixture(scope="session")
def timelines_doc() -> dict[str, Any]:
    return yaml.safe_load((OPENAPI_DIR / SPEC_FILES[1]).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def webhooks_doc() -> dict[str, Any]:
    return yaml.safe_load((OPENAPI_DIR / SPEC_FILES[2]).read_text(encoding="utf-8"))


def component_schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema as a standalone JSON Schema whose internal $refs still resolve."""
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


class Contract:
    """Calls a fake over HTTP and validates the exchange against the vendor's OpenAPI document, as if it had
    been sent to the vendor's real server URL."""

    def __init__(self, fake, spec: OpenAPI, server_root: str, token: str):
        self.fake, self.spec, self.server_root, self.token = fake, spec, server_root, token
        self.validated = 0

    def call(
        self,
        method: str,
        path: str,
        *,
        token: Any = DEFAULT_TOKEN,
        request_valid: bool = True,
        response_documented: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        token = self.token if token is DEFAULT_TOKEN else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = requests.request(
            method, self.fake.url + self.fake.base_path + path, headers=headers, timeout=10, **kwargs
        )
        self.check(resp, request_valid=request_valid, response_documented=response_documented)
        return resp

    def openapi_request(self, resp: requests.Response) -> RequestsOpenAPIRequest:
        prepared = resp.request.copy()
        prepared.url = prepared.url.replace(self.fake.url, self.server_root, 1)
        return RequestsOpenAPIRequest(prepared)

    def check(self, resp: requests.Response, *, request_valid: bool = True, response_documented: bool = True):
        oreq = self.openapi_request(resp)
        if request_valid:
            self.spec.validate_request(oreq)
        else:  # the test sends a request the document forbids, on purpose: prove the validator sees it too
            with pytest.raises(OpenAPIError):
                self.spec.validate_request(oreq)
        if response_documented:
            self.spec.validate_response(oreq, RequestsOpenAPIResponse(resp))
            self.validated += 1
        else:
            with pytest.raises(OpenAPIError):
                self.spec.validate_response(oreq, RequestsOpenAPIResponse(resp))


@pytest.fixture(scope="module")
def instantly_server():
    with InstantlyFake(api_key=INSTANTLY_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def timelines_server():
    with TimelinesAIFake(api_key=TIMELINES_TOKEN) as fake:
        yield fake


@pytest.fixture()
def instantly(instantly_server) -> InstantlyFake:
    instantly_server.reset(instantly_mod.build_demo_state())
    return instantly_server


@pytest.fixture()
def timelines(timelines_server) -> TimelinesAIFake:
    timelines_server.reset(timelinesai_mod.build_demo_state())
    return timelines_server


@pytest.fixture()
def inst(instantly, instantly_spec) -> Contract:
    return Contract(instantly, instantly_spec, INSTANTLY_SERVER, INSTANTLY_KEY)


@pytest.fixture()
def tl(timelines, timelines_spec) -> Contract:
    return Contract(timelines, timelines_spec, TIMELINES_SERVER, TIMELINES_TOKEN)


def admin(fake, method: str, path: str, body: Any = None) -> Any:
    resp = requests.request(method, f"{fake.url}/__fake__{path}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def campaign_ids(fake: InstantlyFake) -> dict[str, str]:
    by_name = {c["name"]: c["id"] for c in fake.snapshot()["campaigns"]}
    return {
        "hot": by_name["RO SMB Q3 - Bucuresti"],
        "healthy": by_name["RO Enterprise Q3"],
        "draft": by_name["Q4 Nurture (draft)"],
        "paused": by_name["Q2 Reactivation"],
    }


# ---- the documents themselves --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SPEC_FILES)
def test_openapi_copies_are_byte_identical_to_shared_reference(name):
    if not SHARED_VENDORS.is_dir():
        pytest.skip(f"{SHARED_VENDORS} not present (clean clone without shared/)")
    assert filecmp.cmp(OPENAPI_DIR / name, SHARED_VENDORS / name, shallow=False)


@pytest.mark.parametrize(
    ("fake_cls", "doc_name", "unlisted"),
    [
        (InstantlyFake, SPEC_FILES[0], {("GET", "/api/v2/accounts")}),
        (TimelinesAIFake, SPEC_FILES[1], set()),
    ],
)
def test_every_served_route_is_an_operation_of_the_document(fake_cls, doc_name, unlisted):
    text = (OPENAPI_DIR / doc_name).read_text(encoding="utf-8")
    doc = json.loads(text) if doc_name.endswith(".json") else yaml.safe_load(text)
    operations = {(m.upper(), p) for p, item in doc["paths"].items() for m in item if m != "parameters"}
    served = {(method, re.sub(r"\{\w+\}", "{}", tpl)) for method, tpl, _handler in fake_cls().routes()}
    documented = {(m, re.sub(r"\{\w+\}", "{}", p)) for m, p in operations}
    # GET /api/v2/accounts is served although the subset lacks it (the collection needs it); once the subset
    # carries it, drop it from `unlisted` so the tests validate it with openapi-core like the rest.
    assert served - documented == set(unlisted)
    assert not (unlisted & operations)


# ---- seed builders -------------------------------------------------------------------------------------------


def test_instantly_demo_seed_has_the_promised_shape():
    state = instantly_mod.build_demo_state()
    statuses = sorted(c["status"] for c in state["campaigns"])
    assert len(state["campaigns"]) == 4 and statuses == [0, 1, 1, 2]
    hot = [
        cid
        for cid, row in state["analytics"].items()
        if row["emails_sent_count"] >= 100 and instantly_mod.bounce_rate(row) > 0.03
    ]
    assert len(hot) == 1
    bounced = [lead for lead in state["leads"] if lead["campaign"] == hot[0] and lead["status"] == -1]
    assert 200 < len(bounced) <= 300  # three pages at the maximum limit of 100
    draft = next(c["id"] for c in state["campaigns"] if c["status"] == 0)
    assert draft not in state["analytics"]


@pytest.mark.parametrize("phones", [1, 5, 20, 50])
def test_timelines_demo_seed_scales_with_phones(phones):
    accounts = timelinesai_mod.build_demo_state(phones)["accounts"]
    assert [a["phone"] for a in accounts] == [f"+40700{n:06d}" for n in range(1, phones + 1)]
    assert [a["id"] for a in accounts] == [f"40700{n:06d}@s.whatsapp.net" for n in range(1, phones + 1)]
    assert sum(a["status"] == "disconnected" for a in accounts) == len({7, 19} & set(range(1, phones + 1)))


# ---- Instantly: auth and routing -----------------------------------------------------------------------------


def test_instantly_auth_failures_are_documented_401s(inst):
    missing = inst.call("GET", "/api/v2/campaigns", token=None, request_valid=False)
    assert missing.status_code == 401
    assert missing.json() == {"statusCode": 401, "error": "Unauthorized", "message": "Missing Authorization header"}
    wrong = inst.call("GET", "/api/v2/campaigns", token="not-the-key")
    assert wrong.status_code == 401 and wrong.json()["error"] == "Unauthorized"
    empty = inst.call("POST", f"/api/v2/campaigns/{campaign_ids(inst.fake)['hot']}/pause", token="")
    assert empty.status_code == 401
    assert inst.fake.snapshot()["campaigns"][0]["status"] == 1  # nothing changed without auth


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v2/campaign/019cad8f-ac00-7000-8000-019cad8fac00/resume"),
        ("GET", "/api/v2/campaign/019cad8f-ac00-7000-8000-019cad8fac00/analytics"),
        ("POST", "/api/v2/campaigns/019cad8f-ac00-7000-8000-019cad8fac00/resume"),
        ("PUT", "/api/v2/campaigns"),
    ],
)
def test_instantly_unknown_route_is_a_fastify_404(instantly, method, path):
    resp = requests.request(method, instantly.url + path, headers={"Authorization": f"Bearer {INSTANTLY_KEY}"})
    assert resp.status_code == 404
    assert resp.json() == {"message": f"Route {method}:{path} not found", "error": "Not Found", "statusCode": 404}
    assert resp.text.startswith('{"message":"Route ')  # compact, as Fastify serialises


# ---- Instantly: campaigns ------------------------------------------------------------------------------------


def test_instantly_campaign_cursor_pagination(inst):
    seen, cursor, pages = [], None, []
    while True:
        params = {"limit": 1} | ({"starting_after": cursor} if cursor else {})
        page = inst.call("GET", "/api/v2/campaigns", params=params).json()
        pages.append(page)
        if not page["items"]:
            break
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_starting_after"]
    assert len(pages) == 5 and len(seen) == len(set(seen)) == 4
    assert pages[3]["next_starting_after"] == seen[-1]  # the last page with data still carries a cursor
    assert "next_starting_after" not in pages[4]  # only the empty page ends
    assert seen == sorted(seen)


def test_instantly_campaign_filters(inst):
    ids = campaign_ids(inst.fake)
    paused = inst.call("GET", "/api/v2/campaigns", params={"status": 2, "limit": 100}).json()["items"]
    assert [c["id"] for c in paused] == [ids["paused"]]
    not_active = inst.call("GET", "/api/v2/campaigns", params={"exclude_status": 1, "limit": 100}).json()["items"]
    assert {c["id"] for c in not_active} == {ids["draft"], ids["paused"]}
    found = inst.call("GET", "/api/v2/campaigns", params={"search": "enterprise"}).json()["items"]
    assert [c["id"] for c in found] == [ids["healthy"]]
    too_big = inst.call(
        "GET", "/api/v2/campaigns", params={"limit": 101}, request_valid=False, response_documented=False
    )
    assert too_big.status_code == 400
    jsonschema.validate(too_big.json(), FASTIFY_ERROR)
    assert too_big.json()["message"] == "querystring/limit must be <= 100"


def test_instantly_get_campaign_and_404(inst):
    ids = campaign_ids(inst.fake)
    campaign = inst.call("GET", f"/api/v2/campaigns/{ids['hot']}").json()
    assert campaign["id"] == ids["hot"] and campaign["status"] == 1
    missing = inst.call("GET", f"/api/v2/campaigns/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.json() == {"statusCode": 404, "error": "Not Found", "message": "Campaign not found"}
    assert inst.call("POST", f"/api/v2/campaigns/{uuid.uuid4()}/pause").status_code == 404
    assert inst.call("POST", f"/api/v2/campaigns/{uuid.uuid4()}/activate").status_code == 404
    assert inst.call("GET", f"/api/v2/campaigns/{uuid.uuid4()}/sending-status").status_code == 404


def test_instantly_pause_and_activate_without_body(inst):
    ids = campaign_ids(inst.fake)
    paused = inst.call("POST", f"/api/v2/campaigns/{ids['hot']}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == 2
    assert set(paused.json()) >= {"id", "name", "status", "campaign_schedule", "timestamp_created"}
    assert inst.call("GET", f"/api/v2/campaigns/{ids['hot']}").json()["status"] == 2
    resumed = inst.call("POST", f"/api/v2/campaigns/{ids['paused']}/activate").json()
    assert resumed["status"] == 1 and resumed["id"] == ids["paused"]
    started = inst.call("POST", f"/api/v2/campaigns/{ids['draft']}/activate").json()
    assert started["status"] == 1
    sent = inst.fake.requests(method="POST", path=r"/(pause|activate)$")
    assert len(sent) == 3 and all(r["body_size"] == 0 and r["json"] is None for r in sent)


def test_instantly_empty_json_body_rejection_is_opt_in(inst):
    ids = campaign_ids(inst.fake)
    headers = {"Content-Type": "application/json"}
    assert inst.call("POST", f"/api/v2/campaigns/{ids['hot']}/pause", headers=headers).status_code == 200
    admin(inst.fake, "POST", "/config", {"reject_empty_json_body": True})
    # activate documents a 400 whose schema is a copy of the 404 one (statusCode enum [404]): no real 400
    # body can satisfy it, so the shape is checked instead
    rejected = inst.call("POST", f"/api/v2/campaigns/{ids['hot']}/activate", headers=headers, response_documented=False)
    assert rejected.status_code == 400
    jsonschema.validate(rejected.json(), FASTIFY_ERROR)
    assert "Body cannot be empty" in rejected.json()["message"]


def test_instantly_sending_status(inst):
    ids = campaign_ids(inst.fake)
    paused = inst.call("GET", f"/api/v2/campaigns/{ids['paused']}/sending-status").json()
    assert paused["diagnostics"] is None and paused["summary"]["status"] == "campaign_paused"
    draft = inst.call("GET", f"/api/v2/campaigns/{ids['draft']}/sending-status").json()
    assert draft["diagnostics"] is None and draft["summary"]["status"] == "campaign_draft"
    healthy = inst.call(
        "GET", f"/api/v2/campaigns/{ids['healthy']}/sending-status", params={"with_ai_summary": "true"}
    ).json()
    assert healthy["diagnostics"]["status"] == "healthy" and healthy["summary"]["ai_summary"]
    assert healthy["diagnostics"]["campaign_id"] == ids["healthy"]
    admin(inst.fake, "POST", f"/campaigns/{ids['hot']}", {"status": -2})
    protected = inst.call("GET", f"/api/v2/campaigns/{ids['hot']}/sending-status").json()
    assert protected["diagnostics"]["status"] == protected["summary"]["status"] == "campaign_bounce_protect"
    admin(inst.fake, "POST", f"/campaigns/{ids['healthy']}", {"sending_status": "daily_limit_met"})
    limited = inst.call("GET", f"/api/v2/campaigns/{ids['healthy']}/sending-status").json()
    assert limited["diagnostics"]["campaign_daily_limit"]["limit_hit"] is True


# ---- Instantly: analytics ------------------------------------------------------------------------------------


def test_instantly_analytics_array(inst):
    ids = campaign_ids(inst.fake)
    rows = inst.call("GET", "/api/v2/campaigns/analytics").json()
    assert {r["campaign_id"] for r in rows} == {ids["hot"], ids["healthy"], ids["paused"]}
    one = inst.call("GET", "/api/v2/campaigns/analytics", params={"id": ids["hot"]}).json()
    assert len(one) == 1 and one[0]["campaign_id"] == ids["hot"]
    assert one[0]["emails_sent_count"] >= 100 and instantly_mod.bounce_rate(one[0]) > 0.03
    assert all(instantly_mod.bounce_rate(r) < 0.03 for r in rows if r["campaign_id"] != ids["hot"])
    two = inst.call("GET", "/api/v2/campaigns/analytics", params={"ids": [ids["healthy"], ids["paused"]]}).json()
    assert sorted(r["campaign_id"] for r in two) == sorted([ids["healthy"], ids["paused"]])
    assert inst.fake.requests(path="analytics$")[-1]["query"]["ids"] == [ids["healthy"], ids["paused"]]
    assert inst.call("GET", "/api/v2/campaigns/analytics", params={"id": ids["draft"]}).json() == []
    inst.call("POST", f"/api/v2/campaigns/{ids['hot']}/pause")
    assert inst.call("GET", "/api/v2/campaigns/analytics", params={"id": ids["hot"]}).json()[0]["campaign_status"] == 2
    bad = inst.call("GET", "/api/v2/campaigns/analytics", params={"start_date": "2026-04-07", "end_date": "2026-04-01"})
    assert bad.status_code == 400 and bad.json() == {"message": "Start Date must be earlier than End Date"}


def test_instantly_analytics_overview_and_daily(inst):
    ids = campaign_ids(inst.fake)
    rows = inst.call("GET", "/api/v2/campaigns/analytics").json()
    overview = inst.call("GET", "/api/v2/campaigns/analytics/overview").json()
    assert isinstance(overview, dict) and "campaign_id" not in overview
    assert overview["emails_sent_count"] == sum(r["emails_sent_count"] for r in rows)
    assert overview["bounced_count"] == sum(r["bounced_count"] for r in rows)
    assert "total_interested" in overview
    hot = inst.call("GET", "/api/v2/campaigns/analytics/overview", params={"id": ids["hot"]}).json()
    assert hot["bounced_count"] == next(r["bounced_count"] for r in rows if r["campaign_id"] == ids["hot"])
    paused = inst.call("GET", "/api/v2/campaigns/analytics/overview", params={"campaign_status": 2}).json()
    paused_row = next(r for r in rows if r["campaign_id"] == ids["paused"])
    assert paused["emails_sent_count"] == paused_row["emails_sent_count"]
    daily = inst.call("GET", "/api/v2/campaigns/analytics/daily", params={"campaign_id": ids["hot"]}).json()
    assert len(daily) == 3 and daily == sorted(daily, key=lambda d: d["date"]) and "bounced" not in daily[0]
    ranged = inst.call(
        "GET", "/api/v2/campaigns/analytics/daily", params={"start_date": "2026-03-11", "end_date": "2026-03-11"}
    ).json()
    assert [d["date"] for d in ranged] == ["2026-03-11"]


# ---- Instantly: leads ----------------------------------------------------------------------------------------


def test_instantly_bounced_leads_span_three_pages(inst):
    hot = campaign_ids(inst.fake)["hot"]
    sizes, seen, cursor = [], [], None
    while True:
        body = {"campaign": hot, "filter": "FILTER_VAL_BOUNCED", "limit": 100}
        if cursor:
            body["starting_after"] = cursor
        page = inst.call("POST", "/api/v2/leads/list", json=body).json()
        sizes.append(len(page["items"]))
        if not page["items"]:
            assert "next_starting_after" not in page
            break
        assert page["next_starting_after"] == page["items"][-1]["id"]
        seen += page["items"]
        cursor = page["next_starting_after"]
    assert sizes == [100, 100, 10, 0]
    assert all(lead["status"] == -1 and lead["campaign"] == hot for lead in seen)
    assert [lead["id"] for lead in seen] == sorted({lead["id"] for lead in seen})


def test_instantly_leads_filters_and_validation(inst):
    ids = campaign_ids(inst.fake)
    everything = inst.call("POST", "/api/v2/leads/list", json={"campaign": ids["healthy"], "limit": 100}).json()
    assert {lead["status"] for lead in everything["items"]} > {-1}
    email = everything["items"][0]["email"]
    by_contact = inst.call("POST", "/api/v2/leads/list", json={"contacts": [email]}).json()["items"]
    assert [lead["email"] for lead in by_contact] == [email]
    default_page = inst.call("POST", "/api/v2/leads/list", json={}).json()
    assert len(default_page["items"]) == instantly_mod.DEFAULT_PAGE_LIMIT
    for bad_limit in (0, 101):
        resp = inst.call("POST", "/api/v2/leads/list", json={"limit": bad_limit}, request_valid=False)
        assert resp.status_code == 400 and resp.json()["error"] == "Bad Request"
    invalid = requests.post(
        inst.fake.url + "/api/v2/leads/list",
        data=b"{not json",
        headers={"Authorization": f"Bearer {INSTANTLY_KEY}", "Content-Type": "application/json"},
    )
    assert invalid.status_code == 400
    jsonschema.validate(invalid.json(), FASTIFY_ERROR)


# ---- Instantly: block list -----------------------------------------------------------------------------------


def test_instantly_block_list(inst):
    domain = inst.call("POST", "/api/v2/block-lists-entries", json={"bl_value": "spammy.example"}).json()
    assert domain["is_domain"] is True and domain["bl_value"] == "spammy.example"
    email = inst.call("POST", "/api/v2/block-lists-entries", json={"bl_value": "bounce@firma.example.ro"}).json()
    assert email["is_domain"] is False
    again = inst.call("POST", "/api/v2/block-lists-entries", json={"bl_value": "spammy.example"}).json()
    assert again["id"] == domain["id"]
    missing = inst.call("POST", "/api/v2/block-lists-entries", json={"value": "x.example"}, request_valid=False)
    assert missing.status_code == 400 and "bl_value" in missing.json()["message"]
    bulk = inst.call(
        "POST",
        "/api/v2/block-lists-entries/bulk-create",
        json={"bl_values": ["a1.example", "x@b2.example", "not a domain"]},
    ).json()
    assert (bulk["valid_count"], bulk["invalid_count"], len(bulk["items"])) == (2, 1, 2)
    too_few = inst.call("POST", "/api/v2/block-lists-entries/bulk-create", json={"bl_values": []}, request_valid=False)
    assert too_few.status_code == 400

    listed, cursor = [], None
    while True:
        params = {"limit": 2} | ({"starting_after": cursor} if cursor else {})
        page = inst.call("GET", "/api/v2/block-lists-entries", params=params).json()
        if not page["items"]:
            break
        listed += page["items"]
        cursor = page["next_starting_after"]
    assert len(listed) == 2 + 4  # seeded + created (duplicates not doubled)
    domains = inst.call("GET", "/api/v2/block-lists-entries", params={"domains_only": "true", "limit": 100})
    assert all(e["is_domain"] for e in domains.json()["items"]) and len(domains.json()["items"]) == 3
    found = inst.call("GET", "/api/v2/block-lists-entries", params={"search": "spammy"}).json()["items"]
    assert [e["id"] for e in found] == [domain["id"]]
    deleted = inst.call("DELETE", "/api/v2/block-lists-entries", params={"search": "example"}).json()
    assert isinstance(deleted, list) and {e["bl_value"] for e in deleted} >= {"spammy.example", "a1.example"}
    assert inst.call("GET", "/api/v2/block-lists-entries", params={"search": "spammy"}).json()["items"] == []


# ---- Instantly: accounts (not in the subset document) ------------------------------------------------------

UPSTREAM_ACCOUNT_LIST = {  # required fields of listAccount's 200 in the full upstream api_v2.json
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "email",
                    "timestamp_created",
                    "timestamp_updated",
                    "first_name",
                    "last_name",
                    "organization",
                    "warmup_status",
                    "provider_code",
                    "setup_pending",
                    "is_managed_account",
                ],
                "properties": {
                    "status": {"enum": [1, 2, 3, -1, -2, -3]},
                    "warmup_status": {"enum": [0, 1, -1, -2, -3]},
                    "provider_code": {"enum": [1, 2, 3, 4, 8, 11]},
                },
            },
        },
        "next_starting_after": {"type": "string"},
    },
}


def test_instantly_accounts_list(inst):
    emails, cursor = [], None
    while True:
        params = {"limit": 2} | ({"starting_after": cursor} if cursor else {})
        resp = inst.call("GET", "/api/v2/accounts", params=params, request_valid=False, response_documented=False)
        page = resp.json()
        jsonschema.validate(page, UPSTREAM_ACCOUNT_LIST)
        if not page["items"]:
            break
        last = page["items"][-1]
        assert page["next_starting_after"] == f"{last['timestamp_created']}&{last['email']}"
        emails += [a["email"] for a in page["items"]]
        cursor = page["next_starting_after"]
    assert len(emails) == 3
    errored = inst.call(
        "GET", "/api/v2/accounts", params={"status": -1}, request_valid=False, response_documented=False
    ).json()["items"]
    assert [a["email"] for a in errored] == ["cristina@mail2.example.com"]


# ---- Instantly: faults, rate limit, admin ------------------------------------------------------------------


def test_instantly_injected_faults(inst):
    ids = campaign_ids(inst.fake)
    fake = inst.fake
    fake.add_fault(429, retry_after=3)
    limited = inst.call("GET", "/api/v2/campaigns")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json() == {"statusCode": 429, "error": "Too Many Requests", "message": "Rate limit exceeded"}
    fake.add_fault(429)
    assert "Retry-After" not in inst.call("GET", "/api/v2/campaigns").headers
    fake.add_fault(401)
    assert inst.call("GET", "/api/v2/campaigns").status_code == 401
    fake.add_fault(404)
    assert inst.call("GET", f"/api/v2/campaigns/{ids['hot']}").status_code == 404
    fake.add_fault(402)
    assert inst.call("GET", "/api/v2/campaigns").json()["error"] == "Payment Required"
    fake.add_fault(500, times=2, method="GET", path=r"/sending-status$")
    assert inst.call("GET", "/api/v2/campaigns").status_code == 200  # not matched: untouched
    for _attempt in range(2):
        crashed = inst.call("GET", f"/api/v2/campaigns/{ids['hot']}/sending-status", response_documented=False)
        assert crashed.status_code == 500
        assert crashed.json() == {
            "statusCode": 500,
            "error": "Internal Server Error",
            "message": "Internal Server Error",
        }
    assert inst.call("GET", f"/api/v2/campaigns/{ids['hot']}/sending-status").status_code == 200
    fake.add_fault("malformed")
    broken = inst.call("GET", "/api/v2/campaigns", response_documented=False)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    fake.add_fault("delay", seconds=0.3)
    started = time.monotonic()
    assert inst.call("GET", "/api/v2/campaigns").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert fake.faults == []
    statuses = [r["status"] for r in fake.requests()]
    assert statuses.count(429) == 2 and statuses.count(500) == 2
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "explode"})


def test_instantly_rate_limit(inst):
    inst.fake.set_rate_limit(3, window=60)
    codes = [inst.call("GET", "/api/v2/campaigns").status_code for _attempt in range(4)]
    assert codes == [200, 200, 200, 429]
    admin(inst.fake, "POST", "/rate_limit", {"limit": 2, "window": 0.3, "retry_after": 1})
    assert [inst.call("GET", "/api/v2/campaigns").status_code for _attempt in range(2)] == [200, 200]
    limited = inst.call("GET", "/api/v2/campaigns")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["message"] == "Rate limit exceeded"
    time.sleep(0.35)
    assert inst.call("GET", "/api/v2/campaigns").status_code == 200
    assert admin(inst.fake, "POST", "/rate_limit", {"limit": None}) == {"limit": None}


def test_instantly_admin_api_drives_another_process_view(inst, tmp_path):
    fake = inst.fake
    ids = campaign_ids(fake)
    assert admin(fake, "GET", "/health") == {"ok": True, "vendor": "instantly"}
    admin(fake, "POST", "/faults", [{"kind": "500", "path": "/campaigns$"}, {"kind": 429, "retry_after": 7}])
    assert len(admin(fake, "GET", "/faults")) == 2
    assert inst.call("GET", "/api/v2/campaigns", response_documented=False).status_code == 500
    assert inst.call("GET", f"/api/v2/campaigns/{ids['hot']}").headers["Retry-After"] == "7"
    assert admin(fake, "GET", "/faults") == []
    bad = requests.post(f"{fake.url}/__fake__/faults", json={"kind": "teleport"}, timeout=5)
    assert bad.status_code == 400

    records = admin(fake, "GET", "/requests")
    assert len(records) == 2 and all(r["authorization"] and r["authorized"] for r in records)
    assert INSTANTLY_KEY not in json.dumps(records) and all("authorization" not in r["headers"] for r in records)
    assert admin(fake, "GET", "/requests?method=GET&path=/campaigns$")[0]["status"] == 500
    admin(fake, "DELETE", "/requests")
    assert admin(fake, "GET", "/requests") == []

    state = admin(fake, "GET", "/state")
    state["campaigns"] = [c for c in state["campaigns"] if c["id"] == ids["paused"]]
    admin(fake, "POST", "/state", state)
    assert [c["id"] for c in inst.call("GET", "/api/v2/campaigns").json()["items"]] == [ids["paused"]]
    admin(fake, "POST", "/reset", {"seed": "empty"})
    assert inst.call("GET", "/api/v2/campaigns").json() == {"items": []}
    admin(fake, "POST", "/reset", {"seed": "demo"})
    assert len(inst.call("GET", "/api/v2/campaigns", params={"limit": 10}).json()["items"]) == 4

    seed_file = tmp_path / "instantly.json"
    seeded = instantly_mod.build_demo_state(bounced_leads=5)
    seed_file.write_text(json.dumps(seeded), encoding="utf-8")
    with InstantlyFake(api_key=None, state_file=seed_file) as other:
        other_contract = Contract(other, inst.spec, INSTANTLY_SERVER, "any-token-works")
        hot = other_contract.call("GET", "/api/v2/campaigns/analytics").json()
        assert min(r["bounced_count"] for r in hot) == 5


# ---- TimelinesAI: accounts, auth, routing --------------------------------------------------------------------


def test_timelines_whatsapp_accounts(tl):
    accounts = tl.call("GET", "/whatsapp_accounts").json()["data"]["whatsapp_accounts"]
    assert len(accounts) == 20
    assert [a["phone"] for a in accounts] == [f"+407000000{n:02d}" for n in range(1, 21)]
    assert accounts[0]["id"] == "40700000001@s.whatsapp.net"
    required = {"id", "phone", "connected_on", "status", "owner_name", "owner_email", "account_name"}
    assert all(set(a) == required for a in accounts)
    assert {a["phone"] for a in accounts if a["status"] == "disconnected"} == {"+40700000007", "+40700000019"}
    assert {a["status"] for a in accounts} == {"active", "disconnected"}
    assert all(TL_TIME.match(a["connected_on"]) for a in accounts)
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


# ---- TimelinesAI: messages -----------------------------------------------------------------------------------


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
    assert TL_TIME.match(message["timestamp"])
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


# ---- TimelinesAI: webhooks -----------------------------------------------------------------------------------


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
    assert TL_TIME.match(account["disconnected_on"]) and TL_TIME.match(account["connected_on"])
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


# ---- TimelinesAI: faults and rate limit ----------------------------------------------------------------------


def test_timelines_faults_and_rate_limit(tl, timelines_doc):
    error_schema = component_schema(timelines_doc, "ErrorResponse")
    tl.fake.add_fault(500, path="/whatsapp_accounts$")
    crashed = tl.call("GET", "/whatsapp_accounts", response_documented=False)
    assert crashed.status_code == 500 and crashed.json()["error_code"] == "internal_error"
    jsonschema.validate(crashed.json(), error_schema)
    tl.fake.add_fault(404, method="POST")
    assert tl.call("GET", "/workspace").status_code == 200
    assert tl.call("POST", "/messages", json={"phone": "+40751234567", "text": "x"}).status_code == 404
    tl.fake.add_fault(429, retry_after=2)
    limited = tl.call("GET", "/workspace", response_documented=False)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json() == timelinesai_mod.DOCS_429_BODY
    tl.fake.add_fault("malformed")
    with pytest.raises(ValueError):
        tl.call("GET", "/webhooks", response_documented=False).json()
    tl.fake.add_fault("delay", seconds=0.2, path="/workspace")
    started = time.monotonic()
    assert tl.call("GET", "/workspace").status_code == 200 and time.monotonic() - started >= 0.2

    admin(tl.fake, "POST", "/rate_limit", {"limit": 2, "window": 60})
    assert [tl.call("GET", "/workspace").status_code for _attempt in range(2)] == [200, 200]
    assert tl.call("GET", "/workspace", response_documented=False).json() == timelinesai_mod.DOCS_429_BODY
    admin(tl.fake, "POST", "/config", {"rate_limit_body": "envelope"})
    envelope = tl.call("GET", "/workspace", response_documented=False).json()
    assert envelope["error_code"] == "rate_limit_exceeded"
    jsonschema.validate(envelope, error_schema)


# ---- CLI -----------------------------------------------------------------------------------------------------


def _run_cli(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    ready = select.select([proc.stdout], [], [], 15)[0]
    if not ready:
        proc.kill()
        pytest.fail(f"{args[0]} printed no URL within 15 s")
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize(
    ("module", "auth_flag", "path", "count"),
    [
        ("tests.fakes.instantly", "--api-key", "/api/v2/campaigns?limit=100", lambda body: len(body["items"])),
        (
            "tests.fakes.timelinesai",
            "--api-token",
            "/whatsapp_accounts",
            lambda body: len(body["data"]["whatsapp_accounts"]),
        ),
    ],
)
def test_cli_serves_in_foreground_until_sigterm(module, auth_flag, path, count):
    proc, url = _run_cli([module, "--port", "0", auth_flag, "cli-secret", "--seed", "demo", "--phones", "3"])
    try:
        assert re.match(r"^http://127\.0\.0\.1:\d+(/integrations/api)?$", url), url
        resp = requests.get(url + path, headers={"Authorization": "Bearer cli-secret"}, timeout=5)
        assert resp.status_code == 200
        assert count(resp.json()) == (4 if "instantly" in module else 3)
        assert requests.get(url + path, timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()
