# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform's figures for the morning and evening checks (runbook 1.1, 1.2, 3.1 step 3, 4.1 step 2).

Every figure asked for is counted by PostgreSQL in one read-only statement (one subquery each), whatever the number
of leads, phones or messages; the per-phone WhatsApp counts come from the same query the quota modules use.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._archive import BACKLOG_FIGURE, archive_cutoff
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import postgres_reading
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    ARCHIVE_AFTER_DAYS,
    CHANNEL_EMAIL,
    CHANNEL_WHATSAPP,
    DIRECTION_INBOUND,
    DIRECTION_OUTBOUND,
    LOG_BOUNCED,
    LOG_SENT_STATUSES,
    PENDING_FOLLOWUP_CONDITION,
    REVIEW_AUTO_APPROVED,
    REVIEW_RESOLVED,
    STAGE_CONVERTED,
    STAGE_REPLIED,
    TABLE_AUDIT,
    TABLE_COMM_LOG,
    TABLE_LEADS,
    TABLE_PHONES,
    TABLE_REVIEWS,
    business_day,
    business_day_bounds,
    parse_day,
    parse_duration,
    parse_instant,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._quota import load_phones
from ansible_collections.cerniq.outreach.plugins.module_utils._reviews import (
    REVIEW_FIGURES,
    SQL_VALUES,
    complete_breaches,
    complete_open,
    select_figures,
)

_TODAY = "created_at >= %(day_start)s AND created_at < %(day_end)s"

# Each a scalar subquery returning jsonb (see _reviews.select_figures).
STATS_FIGURES = {
    # Leads a message left the platform for today (bounced included: they were contacted, the address failed).
    "contacted": (
        "SELECT jsonb_build_object('leads', count(DISTINCT lead_id), "
        "'whatsapp', count(DISTINCT lead_id) FILTER (WHERE channel = %(whatsapp)s), "
        "'email', count(DISTINCT lead_id) FILTER (WHERE channel = %(email)s), 'messages', count(*)) "
        "FROM " + TABLE_COMM_LOG + " WHERE direction = %(outbound)s AND status = ANY(%(sent_statuses)s) AND "
        + _TODAY),
    # A reply is an inbound message or a lead moved to REPLIED today; a lead doing both counts once.
    "replied": (
        "SELECT jsonb_build_object('leads', count(DISTINCT lead_id), "
        "'inbound_messages', count(DISTINCT lead_id) FILTER (WHERE source = 'log'), "
        "'moved_to_replied', count(DISTINCT lead_id) FILTER (WHERE source = 'journey')) "
        "FROM (SELECT lead_id, 'log' AS source FROM " + TABLE_COMM_LOG + " WHERE direction = %(inbound)s "
        "AND lead_id IS NOT NULL AND " + _TODAY + " UNION ALL SELECT lead_id, 'journey' FROM " + TABLE_LEADS +
        " WHERE engagement_stage = %(replied_stage)s AND updated_at >= %(day_start)s AND updated_at < %(day_end)s) "
        "AS replies"),
    "converted": (
        "SELECT jsonb_build_object('leads', count(*)) FROM " + TABLE_LEADS + " WHERE engagement_stage = "
        "%(converted_stage)s AND updated_at >= %(day_start)s AND updated_at < %(day_end)s"),
    "reviews_resolved": (
        "SELECT jsonb_build_object('total', count(*), 'resolved', count(*) FILTER (WHERE status = %(resolved)s), "
        "'auto_approved', count(*) FILTER (WHERE status = %(auto_approved)s)) FROM " + TABLE_REVIEWS +
        " WHERE status IN (%(resolved)s, %(auto_approved)s) AND resolved_at >= %(day_start)s "
        "AND resolved_at < %(day_end)s"),
    "reviews_pending": REVIEW_FIGURES["open_by_priority"],
    "sla_breaches": REVIEW_FIGURES["sla_breaches"],
    # Rows the archive should have moved (runbook 1.2 step 3: "verify it ran").
    "archive_backlog": BACKLOG_FIGURE,
    # Runbook 6.2 step 4: what followup_reschedule would (re)schedule, counted without walking Redis.
    "pending_followups": (
        "SELECT jsonb_build_object('leads', count(*), 'next_due', min(next_action_at), 'last_due', "
        "max(next_action_at)) FROM " + TABLE_LEADS + " WHERE " + PENDING_FOLLOWUP_CONDITION),
    # Runbook 4.1 step 2: bounced addresses of the window, the most frequent first.
    "bounces": (
        "SELECT jsonb_build_object('bounced', (SELECT count(*) FROM " + TABLE_COMM_LOG + " WHERE channel = %(email)s "
        "AND status = %(bounced)s AND created_at >= %(bounce_since)s), "
        "'sent', (SELECT count(*) FROM " + TABLE_COMM_LOG + " WHERE channel = %(email)s AND direction = %(outbound)s "
        "AND status = ANY(%(sent_statuses)s) AND created_at >= %(bounce_since)s), "
        "'top', (SELECT coalesce(jsonb_agg(jsonb_build_object('email', email, 'bounce_reason', bounce_reason, "
        "'count', n) ORDER BY n DESC, email, bounce_reason), '[]'::jsonb) FROM (SELECT email, bounce_reason, "
        "count(*) AS n FROM " + TABLE_COMM_LOG + " WHERE channel = %(email)s AND status = %(bounced)s "
        "AND created_at >= %(bounce_since)s GROUP BY email, bounce_reason "
        "ORDER BY count(*) DESC, email, bounce_reason LIMIT %(bounce_top)s) AS top_bounces))"),
}
# Runbook 3.1 step 3, counted by the quota modules' own query.
PER_PHONE = "whatsapp_per_phone"
FIGURES = tuple(STATS_FIGURES) + (PER_PHONE,)
_TABLES = {"contacted": (TABLE_COMM_LOG,), "replied": (TABLE_COMM_LOG, TABLE_LEADS), "converted": (TABLE_LEADS,),
           "reviews_resolved": (TABLE_REVIEWS,), "reviews_pending": (TABLE_REVIEWS,),
           "sla_breaches": (TABLE_REVIEWS,), "archive_backlog": (TABLE_COMM_LOG, TABLE_AUDIT),
           "bounces": (TABLE_COMM_LOG,), "pending_followups": (TABLE_LEADS,),
           PER_PHONE: (TABLE_PHONES, TABLE_COMM_LOG)}

DEFAULT_BOUNCE_TOP = 20


def _validate(figures, bounce_top, archive_after_days):
    figures = list(dict.fromkeys(figures or FIGURES))
    unknown = [f for f in figures if f not in FIGURES]
    if unknown:
        raise CerniqError("unknown figure(s) {0}: choose from {1}".format(
            ", ".join(repr(f) for f in unknown), ", ".join(FIGURES)))
    if bounce_top is None or bounce_top < 1:
        raise CerniqError("bounce_top is {0}: give how many bounced addresses to list, 1 or more".format(bounce_top))
    if archive_after_days is None or archive_after_days < 1:
        raise CerniqError("archive_after_days is {0}: give the archive's age in days, 1 or more (the runbook keeps "
                          "{1})".format(archive_after_days, ARCHIVE_AFTER_DAYS))
    return figures


def outreach_stats(params, *, figures=None, day="today", breaches_since="24h", bounce_window="24h",
                   bounce_top=DEFAULT_BOUNCE_TOP, archive_after_days=ARCHIVE_AFTER_DAYS, now=None):
    """outreach_stats_info: the figures asked for, for the business day `day` in the platform's time zone."""
    tz_name = params["timezone"]
    now = now or datetime.now(timezone.utc)
    figures = _validate(figures, bounce_top, archive_after_days)
    the_day = parse_day(day, tz_name, "day")
    if the_day > business_day(tz_name, now):
        raise CerniqError("day {0} is in the future in {1}: give today, yesterday or a past YYYY-MM-DD".format(
            the_day.isoformat(), tz_name))
    day_start, day_end = business_day_bounds(the_day, tz_name)
    args = dict(SQL_VALUES, day_start=day_start, day_end=day_end, whatsapp=CHANNEL_WHATSAPP, email=CHANNEL_EMAIL,
                outbound=DIRECTION_OUTBOUND, inbound=DIRECTION_INBOUND, sent_statuses=list(LOG_SENT_STATUSES),
                bounced=LOG_BOUNCED, replied_stage=STAGE_REPLIED, converted_stage=STAGE_CONVERTED,
                resolved=REVIEW_RESOLVED, auto_approved=REVIEW_AUTO_APPROVED,
                breaches_since=parse_instant(breaches_since, tz_name, "breaches_since", now=now),
                bounce_since=now - parse_duration(bounce_window, "bounce_window"), bounce_top=bounce_top,
                archive_cutoff=archive_cutoff(tz_name, archive_after_days, now))
    tables = sorted({t for f in figures for t in _TABLES[f]})
    with postgres_reading(params, require=tables) as cur:
        result = select_figures(cur, {f: STATS_FIGURES[f] for f in figures if f in STATS_FIGURES}, args)
        if PER_PHONE in figures:
            phones = load_phones(cur, day=the_day, tz_name=tz_name, count_log=True)
            result[PER_PHONE] = dict(total=sum(p["db_count"] for p in phones), phones=[
                dict(phone_id=p["phone_id"], sent=p["db_count"], limit=p["limit"], status=p["status"])
                for p in phones])
    _complete(result, args)
    return dict(result, changed=False, day=the_day.isoformat(), day_start=day_start.isoformat(),
                day_end=day_end.isoformat(), timezone=tz_name, figures=figures, summary=_summary(result, the_day))


def _complete(result, args):
    """Shapes a playbook can read without guards: every priority present, rates and cutoffs spelled out."""
    if "reviews_pending" in result:
        by_priority = complete_open(result["reviews_pending"])
        result["reviews_pending"] = dict(
            pending=sum(p["pending"] for p in by_priority.values()),
            assigned=sum(p["assigned"] for p in by_priority.values()), by_priority=by_priority)
    if "sla_breaches" in result:
        result["sla_breaches"] = dict(complete_breaches(result["sla_breaches"]),
                                      breaches_since=args["breaches_since"].isoformat())
    if "archive_backlog" in result:
        result["archive_backlog"]["cutoff"] = args["archive_cutoff"].isoformat()
    if "bounces" in result:
        bounces = result["bounces"]
        bounces["rate_percent"] = round(100.0 * bounces["bounced"] / bounces["sent"], 2) if bounces["sent"] else 0.0
        bounces["since"] = args["bounce_since"].isoformat()


def _summary(result, day):
    lines = []
    if "contacted" in result:
        lines.append("contacted on {0}: {1} lead(s) ({2} WhatsApp, {3} e-mail)".format(
            day, result["contacted"]["leads"], result["contacted"]["whatsapp"], result["contacted"]["email"]))
    for name in ("replied", "converted"):
        if name in result:
            lines.append("{0} on {1}: {2} lead(s)".format(name, day, result[name]["leads"]))
    if "reviews_resolved" in result:
        lines.append("reviews resolved on {0}: {1}".format(day, result["reviews_resolved"]["total"]))
    if "reviews_pending" in result:
        pending = result["reviews_pending"]
        lines.append("reviews pending: {0} ({1} assigned)".format(pending["pending"], pending["assigned"]))
    if "sla_breaches" in result:
        lines.append("SLA: {0} open item(s) past due, {1} deadline(s) missed since {2}".format(
            result["sla_breaches"]["open"], result["sla_breaches"]["since"], result["sla_breaches"]["breaches_since"]))
    if "archive_backlog" in result:
        lines.append("live log rows older than the archive cutoff: {0}".format(result["archive_backlog"]["rows"]))
    if "pending_followups" in result:
        lines.append("follow-ups pending (due later, sequence not paused): {0}".format(
            result["pending_followups"]["leads"]))
    if "bounces" in result:
        lines.append("bounced e-mails since {0}: {1} of {2} sent ({3} %)".format(
            result["bounces"]["since"], result["bounces"]["bounced"], result["bounces"]["sent"],
            result["bounces"]["rate_percent"]))
    if PER_PHONE in result:
        lines.append("WhatsApp messages on {0}: {1} over {2} phone(s)".format(
            day, result[PER_PHONE]["total"], len(result[PER_PHONE]["phones"])))
    return lines
