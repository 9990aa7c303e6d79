"""Contract of the Instantly fake (tests/fakes/instantly.py): every request sent and every response returned is
validated against Instantly's OpenAPI subset with openapi-core; what the subset does not describe (unknown
routes, the accounts list) is checked against the shape Instantly documents elsewhere."""

from __future__ import annotations

import uuid

import jsonschema
import pytest
import requests

from tests.fakes import instantly as instantly_mod
from tests.support.vendor_contract import admin
from tests.support.vendors import INSTANTLY_KEY, campaign_ids

FASTIFY_ERROR = {
    "type": "object",
    "required": ["statusCode", "error", "message"],
    "properties": {"statusCode": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}},
}


# ---- seed builder -------------------------------------------------------------------------------------------------


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


# ---- auth and routing ---------------------------------------------------------------------------------------------


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


# ---- campaigns ----------------------------------------------------------------------------------------------------


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


# ---- analytics ----------------------------------------------------------------------------------------------------


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


# ---- leads --------------------------------------------------------------------------------------------------------


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


# ---- block list ---------------------------------------------------------------------------------------------------


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


# ---- accounts (not in the subset document) ------------------------------------------------------------------------


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
