"""instantly_campaign, instantly_campaign_info and the deliverability guard against the Instantly fake and the
session's PostgreSQL: state changes, idempotence, check mode, diff, audit, the bounced-lead marking, and the
contract (every request the cores sent and every response they got, validated against the OpenAPI document)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _instantly as instantly_mod
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.fakes import instantly as instantly_fake
from tests.support.vendors import (
    INSTANTLY_KEY,
    INSTANTLY_SERVER,
    assert_traffic_matches_openapi,
    campaign_ids,
    campaign_status,
    changes,
    vendor_params,
)

TENANT = "5b1f0c1e-0000-4000-8000-00000000c3e1"


@pytest.fixture()
def params(platform, instantly):
    return vendor_params(platform.params, instantly=instantly)


def audit_rows(platform, module):
    return platform.sql("SELECT action, target, reason, before, after FROM ops_audit_log WHERE module = %s "
                        "ORDER BY id", (module,))


# ---- instantly_campaign_info ---------------------------------------------------------------------------------


def test_info_names_every_status_and_computes_the_bounce_rate(params, instantly, instantly_spec):
    ids = campaign_ids(instantly)
    result = instantly_mod.campaign_info(params)
    by_id = {c["id"]: c for c in result["campaigns"]}
    assert set(by_id) == set(ids.values()) and result["changed"] is False
    hot = by_id[ids["hot"]]
    assert (hot["status"], hot["status_name"], hot["emails_sent"], hot["bounced"]) == (1, "active", 4200, 210)
    assert hot["bounce_rate_percent"] == 5.0 and hot["analytics"]["reply_count"] == 52
    assert by_id[ids["healthy"]]["bounce_rate_percent"] == 1.0
    draft = by_id[ids["draft"]]
    assert (draft["status_name"], draft["has_analytics"], draft["bounce_rate_percent"]) == ("draft", False, 0.0)
    assert by_id[ids["paused"]]["status_name"] == "paused"
    # one page of campaigns, the empty page that ends the walk, one analytics call for all of them
    assert [(r["method"], r["path"]) for r in instantly.requests()] == [
        ("GET", "/api/v2/campaigns"), ("GET", "/api/v2/campaigns"), ("GET", "/api/v2/campaigns/analytics")]
    assert result["api"]["requests"] == 3
    assert assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER) == 3


def test_info_status_names_cover_the_vendor_enum():
    assert instantly_mod.STATUS_NAMES == {0: "draft", 1: "active", 2: "paused", 3: "completed",
                                          4: "running_subsequences", -99: "account_suspended",
                                          -1: "accounts_unhealthy", -2: "bounce_protect"}
    assert set(instantly_mod.STATUS_NAMES) == set(instantly_fake.CAMPAIGN_STATUS_NAMES)


def test_info_follows_the_bounced_leads_cursor_to_the_empty_page(params, instantly, instantly_spec):
    hot = campaign_ids(instantly)["hot"]
    result = instantly_mod.campaign_info(params, id=hot, include_bounced_leads=True, since="7d")
    (campaign,) = result["campaigns"]
    expected = sorted(lead["email"] for lead in instantly.snapshot()["leads"]
                      if lead["campaign"] == hot and lead["status"] == -1)
    assert sorted(lead["email"] for lead in campaign["bounced_leads"]) == expected and len(expected) == 210
    pages = instantly.requests(path="/leads/list$")
    assert [len(p["json"].get("starting_after") or "") > 0 for p in pages] == [False, True, True, True]
    assert all(p["json"]["filter"] == "FILTER_VAL_BOUNCED" and p["json"]["limit"] == 100 for p in pages)
    analytics = instantly.requests(path="/analytics$")[0]["query"]
    assert analytics["ids"] == [hot] and analytics["start_date"][0].endswith("Z")
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_info_by_name_and_clear_errors(params, instantly):
    ids = campaign_ids(instantly)
    found = instantly_mod.campaign_info(params, name="ro enterprise q3")
    assert [c["id"] for c in found["campaigns"]] == [ids["healthy"]]
    with pytest.raises(CerniqError, match="no Instantly campaign is named 'Nope'"):
        instantly_mod.campaign_info(params, name="Nope")
    with pytest.raises(CerniqError, match="is not an Instantly campaign id"):
        instantly_mod.campaign_info(params, id="campaign-7")
    unknown = str(uuid.uuid4())
    with pytest.raises(CerniqError) as err:
        instantly_mod.campaign_info(params, id=unknown)
    assert "answered 404 Not Found: Campaign not found" in err.value.msg
    assert "Campaign not found. No campaign {0} in this Instantly workspace".format(unknown) in err.value.msg


# ---- instantly_campaign --------------------------------------------------------------------------------------


def test_pause_reads_first_changes_once_and_audits(params, platform, instantly, instantly_spec):
    hot = campaign_ids(instantly)["hot"]
    first = instantly_mod.set_campaign_state(params, state="paused", id=hot, reason="bounce:high",
                                             want_diff=True)
    assert first["changed"] is True and first["campaign"]["status_name"] == "paused"
    assert first["diff"]["before"]["status_name"] == "active" and first["diff"]["after"]["status"] == 2
    assert campaign_status(instantly, hot) == 2
    (pause,) = changes(instantly)
    assert pause["path"] == "/api/v2/campaigns/{0}/pause".format(hot) and pause["body_size"] == 0
    assert audit_rows(platform, "instantly_campaign") == [
        ("campaign_pause", "instantly:campaign:" + hot, "bounce:high",
         {"id": hot, "name": "RO SMB Q3 - Bucuresti", "status": 1, "status_name": "active"},
         {"id": hot, "name": "RO SMB Q3 - Bucuresti", "status": 2, "status_name": "paused"})]

    second = instantly_mod.set_campaign_state(params, state="paused", id=hot)
    assert second["changed"] is False and len(changes(instantly)) == 1
    assert len(audit_rows(platform, "instantly_campaign")) == 1
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_check_mode_predicts_without_sending(params, platform, instantly):
    ids = campaign_ids(instantly)
    predicted = instantly_mod.set_campaign_state(params, state="active", id=ids["draft"], check_mode=True,
                                                 want_diff=True)
    assert predicted["changed"] is True and predicted["campaign"]["status_name"] == "active"
    assert predicted["diff"]["before"]["status_name"] == "draft"
    assert changes(instantly) == [] and campaign_status(instantly, ids["draft"]) == 0
    assert audit_rows(platform, "instantly_campaign") == []
    real = instantly_mod.set_campaign_state(params, state="active", name="Q2 reactivation")
    assert real["changed"] is True and campaign_status(instantly, ids["paused"]) == 1
    assert [r["path"].rsplit("/", 1)[1] for r in changes(instantly)] == ["activate"]


@pytest.mark.parametrize(("status", "state", "changed"), [
    (0, "paused", False), (3, "paused", False), (4, "active", False), (4, "paused", True), (-2, "paused", True),
    (-2, "active", True), (-1, "active", True), (3, "active", True)])
def test_what_counts_as_already_there(params, instantly, status, state, changed):
    hot = campaign_ids(instantly)["hot"]
    instantly.state["campaigns"][[c["id"] for c in instantly.state["campaigns"]].index(hot)]["status"] = status
    assert instantly_mod.set_campaign_state(params, state=state, id=hot)["changed"] is changed
    assert len(changes(instantly)) == int(changed)


def test_unknown_campaign_changes_nothing(params, platform, instantly):
    before = instantly.snapshot()["campaigns"]
    with pytest.raises(CerniqError, match="No campaign .* in this Instantly workspace"):
        instantly_mod.set_campaign_state(params, state="paused", id=str(uuid.uuid4()))
    with pytest.raises(CerniqError, match="is not an Instantly campaign id"):
        instantly_mod.set_campaign_state(params, state="paused", id="'; DROP TABLE x")
    assert instantly.snapshot()["campaigns"] == before and changes(instantly) == []
    assert audit_rows(platform, "instantly_campaign") == []


def test_unreachable_audit_database_stops_before_the_vendor(params, instantly):
    with pytest.raises(CerniqError, match="cannot reach PostgreSQL"):
        instantly_mod.set_campaign_state(dict(params, db_port=1), state="paused",
                                         id=campaign_ids(instantly)["hot"])
    assert instantly.requests() == []


# ---- deliverability guard ------------------------------------------------------------------------------------


def hot_bounced_emails(fake):
    hot = campaign_ids(fake)["hot"]
    return [lead["email"] for lead in fake.snapshot()["leads"] if lead["campaign"] == hot and lead["status"] == -1]


def seed_bounce_story(platform, bounced):
    """Leads and log rows around some of the hot campaign's bounced addresses; returns their ids by role."""
    lead = {name: str(uuid.uuid4()) for name in ("only", "partial", "replied", "prior", "bystander", "whatsapp")}
    platform.sql(
        "INSERT INTO gold_lead_journey (lead_id, tenant_id, engagement_stage, email) VALUES "
        "(%s, %s, 'COLD', %s), (%s, %s, 'CONTACTED_EMAIL', %s), (%s, %s, 'REPLIED', %s), "
        "(%s, %s, 'CONTACTED_EMAIL', %s), (%s, %s, 'COLD', 'someone@else.example'), "
        "(%s, %s, 'CONTACTED_WA', %s)",
        (lead["only"], TENANT, bounced[0], lead["partial"], TENANT, bounced[1], lead["replied"], TENANT, bounced[2],
         lead["prior"], TENANT, bounced[3], lead["bystander"], TENANT, lead["whatsapp"], TENANT, bounced[7]))
    now = datetime.now(timezone.utc)
    rows = [
        (lead["only"], "EMAIL", "SENT", bounced[0], now - timedelta(hours=2)),
        (lead["partial"], "EMAIL", "SENT", bounced[1], now - timedelta(hours=3)),
        (lead["partial"], "EMAIL", "SENT", "partial.other@else.example", now - timedelta(days=2)),
        (lead["replied"], "EMAIL", "QUEUED", bounced[2], now - timedelta(hours=1)),
        (lead["prior"], "EMAIL", "SENT", bounced[3], now - timedelta(hours=4)),
        (lead["prior"], "EMAIL", "BOUNCED", "prior.old@else.example", now - timedelta(days=5)),
        (None, "EMAIL", "DELIVERED", bounced[4], now - timedelta(hours=5)),
        (None, "EMAIL", "SENT", bounced[5], now - timedelta(days=60)),
        (None, "EMAIL", "SENT", bounced[6].upper(), now - timedelta(hours=6)),
        (lead["whatsapp"], "EMAIL", "SENT", bounced[7], now - timedelta(hours=6)),
        (lead["bystander"], "EMAIL", "SENT", "someone@else.example", now - timedelta(hours=1)),
        (lead["only"], "WHATSAPP", "SENT", None, now - timedelta(hours=1)),
    ]
    for lead_id, channel, status, email, created in rows:
        platform.sql("INSERT INTO gold_communication_log (tenant_id, lead_id, channel, direction, status, email, "
                     "campaign_id, created_at) VALUES (%s, %s, %s, 'OUTBOUND', %s, %s, 'camp-x', %s)",
                     (TENANT, lead_id, channel, status, email, created))
    return lead


def db_state(platform):
    return (platform.sql("SELECT id, status, bounce_reason FROM gold_communication_log ORDER BY id"),
            platform.sql("SELECT lead_id::text, engagement_stage FROM gold_lead_journey ORDER BY lead_id"))


def test_guard_pauses_the_bouncing_campaign_and_marks_its_leads(params, platform, instantly,
                                                                instantly_spec):
    ids = campaign_ids(instantly)
    bounced = hot_bounced_emails(instantly)
    lead = seed_bounce_story(platform, bounced)
    untouched_db = db_state(platform)

    predicted = instantly_mod.deliverability_guard(params, reason="bounce:high", check_mode=True, want_diff=True)
    assert db_state(platform) == untouched_db and changes(instantly) == []
    assert platform.audit() == []

    result = instantly_mod.deliverability_guard(params, reason="bounce:high", want_diff=True)
    for key in ("changed", "paused", "over_threshold", "log_rows_marked", "leads_dead", "leads_kept",
                "bounced_addresses", "diff"):
        assert predicted[key] == result[key], key
    assert result["changed"] is True and result["paused"] == [ids["hot"]] == result["over_threshold"]
    assert campaign_status(instantly, ids["hot"]) == 2 and campaign_status(instantly, ids["healthy"]) == 1
    assert result["bounced_addresses"] == 210 and result["block_list_added"] == []
    judged = {c["id"]: c for c in result["campaigns"]}
    assert judged[ids["healthy"]]["action"] == "none" and judged[ids["hot"]]["action"] == "pause"

    marked = platform.sql("SELECT lower(email), status, bounce_reason FROM gold_communication_log "
                          "WHERE status = 'BOUNCED' AND bounce_reason IS NOT NULL ORDER BY 1")
    reason = "instantly: bounced in campaign " + ids["hot"]
    assert marked == sorted((e, "BOUNCED", reason) for e in (bounced[0], bounced[1], bounced[2], bounced[3],
                                                             bounced[6], bounced[7]))
    assert result["log_rows_marked"] == 6
    stages = dict(platform.sql("SELECT lead_id::text, engagement_stage FROM gold_lead_journey"))
    assert stages[lead["only"]] == stages[lead["prior"]] == "DEAD"
    assert stages[lead["partial"]] == "CONTACTED_EMAIL" and stages[lead["bystander"]] == "COLD"
    assert stages[lead["replied"]] == "REPLIED" and stages[lead["whatsapp"]] == "CONTACTED_WA"
    assert sorted(result["leads_dead"]) == sorted([lead["only"], lead["prior"]])
    assert sorted(k["lead_id"] for k in result["leads_kept"]) == sorted([lead["replied"], lead["whatsapp"]])
    assert platform.sql("SELECT count(*) FROM gold_communication_log WHERE status = 'DELIVERED'") == [(1,)]

    audit = {row[0]: row for row in audit_rows(platform, "instantly_deliverability_guard")}
    assert set(audit) == {"pause_campaigns", "mark_bounced_leads"}
    assert audit["pause_campaigns"][4]["campaign_ids"] == [ids["hot"]]
    assert audit["pause_campaigns"][4]["bounce_rates"] == {ids["hot"]: 5.0}
    assert len(audit["mark_bounced_leads"][4]["log_ids"]) == 6
    assert sorted(audit["mark_bounced_leads"][4]["lead_ids_dead"]) == sorted(result["leads_dead"])

    again = instantly_mod.deliverability_guard(params, reason="bounce:high")
    assert again["changed"] is False and again["paused"] == [] and again["log_rows_marked"] == 0
    assert again["over_threshold"] == [ids["hot"]] and len(changes(instantly)) == 1
    assert len(audit_rows(platform, "instantly_deliverability_guard")) == 2
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_guard_threshold_and_minimum_sends(params, instantly):
    ids = campaign_ids(instantly)
    lenient = instantly_mod.deliverability_guard(params, max_bounce_rate=5.0, mark_bounced_leads=False,
                                                 check_mode=True)
    assert lenient["over_threshold"] == []  # 5.0 % is not above 5.0 %
    strict = instantly_mod.deliverability_guard(params, max_bounce_rate=0.5, mark_bounced_leads=False,
                                                check_mode=True)
    # the paused campaign bounces too, but is not sending: flagged, not paused
    assert sorted(strict["over_threshold"]) == sorted([ids["hot"], ids["healthy"], ids["paused"]])
    assert sorted(strict["paused"]) == sorted([ids["hot"], ids["healthy"]])
    few_sends = instantly_mod.deliverability_guard(params, max_bounce_rate=0.5, min_emails_sent=2000,
                                                   mark_bounced_leads=False, check_mode=True)
    assert few_sends["over_threshold"] == [ids["hot"]]
    scoped = instantly_mod.deliverability_guard(params, campaign_ids=[ids["healthy"]], mark_bounced_leads=False,
                                                check_mode=True)
    assert scoped["over_threshold"] == [] and [c["id"] for c in scoped["campaigns"]] == [ids["healthy"]]
    assert changes(instantly) == []


def test_guard_blocks_bounced_addresses_in_batches_of_1000(params, platform, instantly,
                                                           instantly_spec):
    instantly.reset(instantly_fake.build_demo_state(bounced_leads=1100))
    result = instantly_mod.deliverability_guard(params, block_bounced=True, mark_bounced_leads=False)
    assert len(result["block_list_added"]) == 1100
    bulk = instantly.requests(method="POST", path="/bulk-create$")
    assert [len(r["json"]["bl_values"]) for r in bulk] == [1000, 100]
    blocked = {e["bl_value"] for e in instantly.snapshot()["block_list"]}
    assert set(result["block_list_added"]) <= blocked
    assert [len(r["json"]["bl_values"]) for r in bulk] and len(instantly.requests(path="/leads/list$")) == 12
    again = instantly_mod.deliverability_guard(params, block_bounced=True, mark_bounced_leads=False)
    assert again["block_list_added"] == [] and again["changed"] is False
    assert len(instantly.requests(method="POST", path="/bulk-create$")) == 2
    (block_audit,) = [r for r in audit_rows(platform, "instantly_deliverability_guard") if r[0] == "block_bounced"]
    assert block_audit[4]["added"] == 1100
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_pause_all_holds_a_cooldown_and_resume_needs_the_flag(params, platform, instantly,
                                                              instantly_spec):
    ids = campaign_ids(instantly)
    held = instantly_mod.deliverability_guard(params, pause_all=True, cooldown="24h", mark_bounced_leads=False,
                                              reason="INC-1 reputation")
    assert sorted(held["paused"]) == sorted([ids["hot"], ids["healthy"]])
    until = datetime.fromisoformat(held["cooldown_until"])
    assert timedelta(hours=23, minutes=59) < until - datetime.now(timezone.utc) <= timedelta(hours=24)
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy", "paused", "draft")] == [2, 2, 2, 0]

    with pytest.raises(CerniqError, match="cool-down until .*ignore_cooldown=true"):
        instantly_mod.deliverability_guard(params, resume=True)
    assert campaign_status(instantly, ids["hot"]) == 2

    # someone resumed one by hand meanwhile; the campaign paused before the guard stays paused
    instantly_mod.set_campaign_state(params, state="active", id=ids["healthy"])
    preview = instantly_mod.deliverability_guard(params, resume=True, ignore_cooldown=True, check_mode=True)
    assert preview["resumed"] == [ids["hot"]] and campaign_status(instantly, ids["hot"]) == 2
    resumed = instantly_mod.deliverability_guard(params, resume=True, ignore_cooldown=True, reason="INC-1 closed")
    assert resumed["resumed"] == [ids["hot"]] and resumed["changed"] is True
    assert resumed["left_alone"] == [{"id": ids["healthy"], "why": "status is active, not paused"}]
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy", "paused")] == [1, 1, 2]
    assert instantly_mod.deliverability_guard(params, resume=True)["changed"] is False
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_resume_after_the_cooldown_ends(params, platform, instantly):
    ids = campaign_ids(instantly)
    instantly_mod.deliverability_guard(params, pause_all=True, cooldown="1h", mark_bounced_leads=False)
    later = datetime.now(timezone.utc) + timedelta(hours=1, minutes=1)
    result = instantly_mod.deliverability_guard(params, resume=True, now=later)
    assert sorted(result["resumed"]) == sorted([ids["hot"], ids["healthy"]])


@pytest.mark.parametrize(("options", "message"), [
    (dict(max_bounce_rate=0), "max_bounce_rate is a percentage"),
    (dict(min_emails_sent=0), "min_emails_sent must be at least 1"),
    (dict(cooldown="soon"), "cooldown 'soon' is not a duration"),
    (dict(resume=True, pause_all=True), "resume cannot be combined"),
    (dict(campaigns=["not-an-id"]), "is not an Instantly campaign id"),
    (dict(campaigns=["00000000-0000-4000-8000-00000000abcd"]), "no campaign 00000000-.* nothing was changed"),
])
def test_guard_bad_input_changes_nothing(params, platform, instantly, options, message):
    options = dict(options)
    campaigns = options.pop("campaigns", None)
    with pytest.raises(CerniqError, match=message):
        instantly_mod.deliverability_guard(params, campaign_ids=campaigns, **options)
    assert changes(instantly) == [] and platform.audit() == []


def test_api_key_never_reaches_the_record_or_a_message(params, instantly):
    instantly_mod.campaign_info(params)
    assert all(r["authorization"] and r["authorized"] for r in instantly.requests())
    assert INSTANTLY_KEY not in str(instantly.requests())


def test_a_pause_failing_midway_reports_and_audits_what_already_changed(params, platform, instantly):
    ids = campaign_ids(instantly)
    instantly.add_fault(500, times=10, path="/{0}/pause$".format(ids["healthy"]))
    with pytest.raises(CerniqError) as err:
        instantly_mod.deliverability_guard(dict(params, vendor_retries=0), max_bounce_rate=0.5,
                                           mark_bounced_leads=False)
    assert err.value.msg.startswith("Instantly API: POST /api/v2/campaigns/{0}/pause answered 500".format(
        ids["healthy"]))
    assert err.value.msg.endswith("Before this failure, 1 campaign(s) were set paused (audited): " + ids["hot"])
    assert err.value.details["changed"] is True
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy")] == [2, 1]
    (row,) = audit_rows(platform, "instantly_deliverability_guard")
    assert row[0] == "pause_campaigns" and row[4]["campaign_ids"] == [ids["hot"]]
