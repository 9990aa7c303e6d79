"""outreach_stats_info against real PostgreSQL: every figure recomputed from the raw rows, business-day bounds."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils import _stats as stats
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.playbooks import MODULE_DEFAULTS
from tests.support.seed import TENANT_ID

SMALL = dict(phones=6, leads=600, reviews=120, old_log_rows=250, jobs_per_phone=0, followups=0, dlq_entries=0,
             offline=("phone_03",), banned=("phone_05",), drift_phone="phone_03", leak_phone="phone_01",
             no_ttl_phone="phone_02")
TZ = contract.DEFAULT_TIMEZONE


def log_row(platform, created_at, channel="EMAIL", direction="OUTBOUND", status="SENT", lead_id=None, email=None,
            bounce_reason=None, phone_id=None, quota_cost=0):
    platform.sql("INSERT INTO gold_communication_log (tenant_id, lead_id, phone_id, channel, direction, status, email, "
                 "bounce_reason, quota_cost, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                 (str(TENANT_ID), lead_id, phone_id, channel, direction, status, email, bounce_reason, quota_cost,
                  created_at))


def today_bounds():
    return contract.business_day_bounds(contract.business_day(TZ), TZ)


def test_figures_match_the_raw_rows(platform):
    facts = platform.seed(**SMALL)
    start, end = today_bounds()
    leads = [str(row[0]) for row in facts["leads"]]
    # The seed stamps every lead with now: move them all to yesterday, then bring some back into today.
    platform.sql("UPDATE gold_lead_journey SET updated_at = %s - interval '1 hour'", (start,))
    # Replies: two leads answer by message (one of them twice), one more is moved to REPLIED by a person.
    for lead in (leads[0], leads[0], leads[1]):
        log_row(platform, start + timedelta(seconds=1), "WHATSAPP", "INBOUND", "DELIVERED", lead_id=lead)
    platform.sql("UPDATE gold_lead_journey SET engagement_stage = 'REPLIED', updated_at = %s WHERE lead_id IN "
                 "(%s, %s)", (start + timedelta(seconds=5), leads[1], leads[2]))
    platform.sql("UPDATE gold_lead_journey SET updated_at = %s + interval '1 minute' WHERE engagement_stage "
                 "= 'CONVERTED' AND lead_id = ANY(%s::uuid[])", (start, leads[:200]))
    result = stats.outreach_stats(platform.params)

    log = platform.sql("SELECT lead_id, channel, direction, status, created_at FROM gold_communication_log")
    today = [r for r in log if start <= r[4] < end]
    sent = [r for r in today if r[2] == "OUTBOUND" and r[3] in contract.LOG_SENT_STATUSES]
    assert result["contacted"] == dict(
        leads=len({r[0] for r in sent if r[0]}), whatsapp=len({r[0] for r in sent if r[0] and r[1] == "WHATSAPP"}),
        email=len({r[0] for r in sent if r[0] and r[1] == "EMAIL"}), messages=len(sent))
    assert result["contacted"]["leads"] > 0
    assert result["replied"] == dict(leads=3, inbound_messages=2, moved_to_replied=2)
    journey = platform.sql("SELECT engagement_stage, updated_at FROM gold_lead_journey")
    assert result["converted"]["leads"] == sum(1 for s, at in journey if s == "CONVERTED" and start <= at < end) > 0
    reviews = platform.sql("SELECT status, resolved_at FROM human_review_queue")
    assert result["reviews_resolved"]["total"] == sum(
        1 for s, at in reviews if s in ("RESOLVED", "AUTO_APPROVED") and at and start <= at < end)
    assert result["reviews_pending"]["pending"] == sum(1 for s, _at in reviews if s == "PENDING")
    assert set(result["reviews_pending"]["by_priority"]) == set(contract.REVIEW_PRIORITIES)
    assert result["archive_backlog"]["rows"] == SMALL["old_log_rows"]
    per_phone = {p["phone_id"]: p["sent"] for p in result["whatsapp_per_phone"]["phones"]}
    assert per_phone == {pid: facts["wa_counts"].get(pid, 0) for pid in (p[0] for p in facts["phones"])}
    assert [p["phone_id"] for p in result["whatsapp_per_phone"]["phones"]][:2] == ["phone_01", "phone_02"]
    assert result["day"] == contract.business_day(TZ).isoformat() and result["changed"] is False
    assert len(result["summary"]) == len(stats.FIGURES)


def test_only_the_figures_asked_for_are_computed(platform):
    platform.seed(**SMALL)
    result = stats.outreach_stats(platform.params, figures=["contacted", "bounces"])
    assert result["figures"] == ["contacted", "bounces"]
    assert {"contacted", "bounces"} <= set(result)
    assert not set(result) & (set(stats.FIGURES) - {"contacted", "bounces"})


def test_the_business_day_is_the_platform_s_not_utc(platform):
    start, _end = today_bounds()
    lead_before, lead_after = uuid.uuid4(), uuid.uuid4()
    log_row(platform, start - timedelta(minutes=1), lead_id=str(lead_before))
    log_row(platform, start + timedelta(seconds=1), lead_id=str(lead_after))
    result = stats.outreach_stats(platform.params, figures=["contacted"])
    assert result["contacted"]["leads"] == 1
    yesterday = stats.outreach_stats(platform.params, figures=["contacted"], day="yesterday")
    assert yesterday["contacted"]["leads"] == 1 and yesterday["day_end"] == start.isoformat()
    # Bucharest midnight is 21:00 or 22:00 UTC, never 00:00.
    assert start.hour in (21, 22)


def test_bounces_list_the_most_frequent_addresses_and_the_rate(platform):
    now = datetime.now(timezone.utc)
    for email, reason, times in (("a@x.ro", "550 5.1.1", 3), ("b@x.ro", "552 mailbox full", 1),
                                 ("c@x.ro", "550 5.1.1", 2), ("d@x.ro", "550 5.1.1", 1)):
        for _n in range(times):
            log_row(platform, now - timedelta(hours=2), status="BOUNCED", email=email, bounce_reason=reason)
    log_row(platform, now - timedelta(hours=30), status="BOUNCED", email="old@x.ro", bounce_reason="550")
    for _n in range(13):
        log_row(platform, now - timedelta(hours=3), status="DELIVERED", email="ok@x.ro")
    result = stats.outreach_stats(platform.params, figures=["bounces"], bounce_top=3)
    bounces = result["bounces"]
    assert bounces["bounced"] == 7 and bounces["sent"] == 20 and bounces["rate_percent"] == 35.0
    assert [(t["email"], t["count"]) for t in bounces["top"]] == [("a@x.ro", 3), ("c@x.ro", 2), ("b@x.ro", 1)]
    wider = stats.outreach_stats(platform.params, figures=["bounces"], bounce_window="2d")
    assert wider["bounces"]["bounced"] == 8


@pytest.mark.parametrize("options, message", [
    (dict(figures=["contacted", "revenue"]), "unknown figure\\(s\\) 'revenue'"),
    (dict(bounce_top=0), "bounce_top is 0"),
    (dict(bounce_top=-3), "bounce_top is -3"),
    (dict(archive_after_days=0), "archive_after_days is 0"),
    (dict(day="2999-01-01"), "day 2999-01-01 is in the future"),
    (dict(day="Monday"), "day 'Monday' is not 'today'"),
    (dict(breaches_since="2999-01-01T00:00"), "is in the future"),
    (dict(bounce_window="a day"), "bounce_window 'a day' is not a duration"),
])
def test_bad_input_is_one_clear_error(platform, options, message):
    with pytest.raises(CerniqError, match=message):
        stats.outreach_stats(platform.params, **options)


def test_module_through_ansible_in_check_mode(platform, tmp_path):
    platform.seed(**SMALL)
    playbook = tmp_path / "stats.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Evening figures", "hosts": "db", "gather_facts": False,
        "module_defaults": MODULE_DEFAULTS,
        "roles": [{"role": "cerniq.outreach.platform"}],
        "tasks": [{"name": "Figures", "cerniq.outreach.outreach_stats_info": {
            "figures": ["contacted", "archive_backlog", "whatsapp_per_phone"], "bounce_top": "5"}}]}]))
    run = platform.play(str(playbook), check=True)
    assert run.rc == 0, run.stdout
    result = run.result("Figures")
    assert result["changed"] is False and result["archive_backlog"]["rows"] == SMALL["old_log_rows"]
    assert len(result["whatsapp_per_phone"]["phones"]) == SMALL["phones"] and "bounces" not in result
