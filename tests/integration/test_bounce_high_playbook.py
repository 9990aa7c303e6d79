"""bounce_high.yml (runbook 4.1) for real, against the Instantly fake: the database's bounced addresses, the plan,
check mode and refusal, the pause with the bounced leads marked, a second run, the resume, and the cool-down."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_COMM_LOG, TABLE_LEADS
from tests.support.seed import TENANT_ID
from tests.support.snapshots import assert_unchanged, platform_state
from tests.support.vendors import (
    INSTANTLY_KEY,
    INSTANTLY_SERVER,
    assert_traffic_matches_openapi,
    campaign_ids,
    campaign_status,
    changes,
)

TENANT = str(TENANT_ID)


def _bounced_in_hot(fake):
    hot = campaign_ids(fake)["hot"]
    return [lead["email"] for lead in fake.snapshot()["leads"] if lead["campaign"] == hot and lead["status"] == -1]


@pytest.fixture()
def bounce(platform, instantly):
    """Two leads the hot campaign bounced (a COLD one, a REPLIED one), a bystander, and yesterday's bounces the
    platform already recorded."""
    bounced = _bounced_in_hot(instantly)
    leads = {name: str(uuid.uuid4()) for name in ("cold", "replied", "bystander")}
    platform.sql("INSERT INTO " + TABLE_LEADS + " (lead_id, tenant_id, engagement_stage, email) VALUES "
                 "(%s, %s, 'COLD', %s), (%s, %s, 'REPLIED', %s), (%s, %s, 'COLD', 'ok@firma.example.ro')",
                 (leads["cold"], TENANT, bounced[0], leads["replied"], TENANT, bounced[1], leads["bystander"], TENANT))
    now = datetime.now(timezone.utc)
    rows = [(leads["cold"], "SENT", bounced[0], None, 2), (leads["replied"], "SENT", bounced[1], None, 3),
            (leads["bystander"], "SENT", "ok@firma.example.ro", None, 1)]
    rows += [(None, "BOUNCED", "gone@old-firma.example.ro", "550 5.1.1 mailbox unavailable", h) for h in (1, 2, 3)]
    rows += [(None, "BOUNCED", "full@firma.example.ro", "452 4.2.2 mailbox full", 5)]
    for lead_id, status, email, why, hours in rows:
        platform.sql("INSERT INTO " + TABLE_COMM_LOG + " (tenant_id, lead_id, channel, direction, status, email, "
                     "bounce_reason, campaign_id, created_at) VALUES (%s, %s, 'EMAIL', 'OUTBOUND', %s, %s, %s, "
                     "'camp-x', %s)", (TENANT, lead_id, status, email, why, now - timedelta(hours=hours)))

    def play(check=False, **extravars):
        base = {"cerniq_instantly_base_url": instantly.url, "cerniq_instantly_api_key": INSTANTLY_KEY,
                "cerniq_vendor_allow_http": "true"}
        base.update(extravars)
        return platform.play("bounce_high.yml", extravars=base, check=check)

    return dict(play=play, leads=leads, bounced=bounced)


def test_pause_marks_and_resumes_only_what_the_guard_paused(platform, instantly, instantly_spec, bounce):
    ids = campaign_ids(instantly)
    before = platform_state(platform)

    checked = bounce["play"](check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    shown = checked.result("Show the bounced addresses")["msg"]
    assert shown[1:] == ["3 x gone@old-firma.example.ro (550 5.1.1 mailbox unavailable)",
                         "1 x full@firma.example.ro (452 4.2.2 mailbox full)"], shown
    rates = checked.result("Show each campaign's bounce rate")["msg"]
    assert "RO SMB Q3 - Bucuresti ({0}): active, 210 bounced of 4200 sent = 5.0 % - OVER 3.0 % -> pause".format(
        ids["hot"]) in rates, rates
    plan = checked.result("What this run will change")["msg"]
    assert plan[0].startswith("pause RO SMB Q3 - Bucuresti") and plan[1].startswith(
        "mark 2 communication log row(s) BOUNCED; move 1 lead(s)"), plan
    assert_unchanged(before, platform_state(platform))
    assert changes(instantly) == []

    refused = bounce["play"]()
    assert refused.rc != 0 and "Nothing was changed" in refused.stdout
    assert_unchanged(before, platform_state(platform))
    assert changes(instantly) == []

    run = bounce["play"](confirm="true", reason="INC-42")
    assert run.rc == 0, run.stdout[-3000:]
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy", "draft", "paused")] == [2, 1, 0, 2]
    stages = dict(platform.sql("SELECT lead_id::text, engagement_stage FROM " + TABLE_LEADS))
    leads = bounce["leads"]
    assert [stages[leads[k]] for k in ("cold", "replied", "bystander")] == ["DEAD", "REPLIED", "COLD"]
    assert platform.sql("SELECT lower(email) FROM " + TABLE_COMM_LOG + " WHERE status = 'BOUNCED' AND "
                        "campaign_id = 'camp-x' AND bounce_reason LIKE 'instantly:%%' ORDER BY 1") == sorted(
        [(bounce["bounced"][0],), (bounce["bounced"][1],)])
    actions = [(row[1], row[2], row[4]) for row in platform.audit()]
    assert actions == [("instantly_deliverability_guard", "pause_campaigns", "INC-42"),
                       ("instantly_deliverability_guard", "mark_bounced_leads", "INC-42")], actions
    stats = run.stats["artifact_data"]["bounce_high"]
    assert (stats["paused"], stats["log_rows_marked"], stats["leads_dead"]) == ([ids["hot"]], 2, 1)

    before, vendor_before = platform_state(platform), instantly.snapshot()
    again = bounce["play"](confirm="true")
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed_tasks == []
    assert_unchanged(before, platform_state(platform))
    assert instantly.snapshot() == vendor_before

    resumed = bounce["play"](resume="true", confirm="true")
    assert resumed.rc == 0, resumed.stdout[-3000:]
    # Only the campaign the guard paused comes back; the one paused by a person stays paused.
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy", "paused")] == [1, 1, 2]
    assert resumed.result("Summary")["msg"]["done"][-1] == "1 campaign(s) resumed: {0}".format(ids["hot"])
    # Every request of the five runs, and every answer, as Instantly's OpenAPI document describes them.
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_pause_all_holds_a_cooldown_that_refuses_resume(platform, instantly, bounce):
    ids = campaign_ids(instantly)
    held = bounce["play"](bounce_high_pause_all="true", bounce_high_mark_bounced_leads="false", confirm="true")
    assert held.rc == 0, held.stdout[-3000:]
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy")] == [2, 2]
    refused = bounce["play"](resume="true", confirm="true")
    assert refused.rc != 0 and "cool-down until" in refused.stdout
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy")] == [2, 2]
