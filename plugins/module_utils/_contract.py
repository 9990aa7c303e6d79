# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The platform contract: every table, column set, status value, Redis key and date rule, spelled once.

docs/platform-contract.md tells the same story for people; schema/platform.sql is the DDL.
No other file in the collection spells a key template, a table name or a business-day rule. The checks of values
it defines (phone ids, E.164 numbers, tables, ...) live just above it, in _validate.py.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

try:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
except ImportError:  # pragma: no cover - Python < 3.9 targets are not supported; modules report it clearly
    ZoneInfo = None
    ZoneInfoNotFoundError = Exception

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

# --- PostgreSQL -------------------------------------------------------------------------------------------------

TABLE_PHONES = "wa_phone_numbers"
TABLE_LEADS = "gold_lead_journey"
TABLE_COMM_LOG = "gold_communication_log"
TABLE_COMM_LOG_ARCHIVE = "gold_communication_log_archive"
TABLE_REVIEWS = "human_review_queue"
TABLE_QUOTA_USAGE = "wa_quota_usage"
TABLE_AUDIT = "ops_audit_log"
ALL_TABLES = (TABLE_PHONES, TABLE_LEADS, TABLE_COMM_LOG, TABLE_COMM_LOG_ARCHIVE, TABLE_REVIEWS,
              TABLE_QUOTA_USAGE, TABLE_AUDIT)
# A recovery's hold on the workers (dr_database.yml), kept in the live database's ops_audit_log: the recovery records
# AUDIT_WORKERS_HELD on AUDIT_TARGET_WORKERS before it stops the workers and AUDIT_WORKERS_RELEASED once they run
# again. The latest of the two on that target (one read on the target index) says whether a recovery that stopped
# the workers has not finished; workers stopped any other way (workers.yml) leave no such row.
AUDIT_TARGET_WORKERS = "bullmq workers"
AUDIT_WORKERS_HELD = "dr_workers_stopped"
AUDIT_WORKERS_RELEASED = "dr_workers_started"

# The columns schema/platform.sql creates. A production table may have more: comm_log_archive reads both tables'
# columns from the catalog at run time and moves whole rows, never this list.
COMM_LOG_COLUMNS = ("id", "tenant_id", "lead_id", "phone_id", "channel", "direction", "status", "email",
                    "bounce_reason", "campaign_id", "quota_cost", "created_at")

PHONE_STATUSES = ("ACTIVE", "OFFLINE", "BANNED")
ENGAGEMENT_STAGES = ("COLD", "CONTACTED_WA", "CONTACTED_EMAIL", "REPLIED", "CONVERTED", "DEAD")
# A banned phone gives back only the leads it has not yet talked to beyond a first WhatsApp contact.
RELEASABLE_STAGES = ("COLD", "CONTACTED_WA")
CHANNEL_WHATSAPP = "WHATSAPP"
CHANNEL_EMAIL = "EMAIL"
CHANNELS = (CHANNEL_WHATSAPP, CHANNEL_EMAIL)
DIRECTIONS = ("OUTBOUND", "INBOUND")
LOG_STATUSES = ("QUEUED", "SENT", "DELIVERED", "READ", "FAILED", "BOUNCED")
REVIEW_PRIORITIES = ("URGENT", "HIGH", "NORMAL", "LOW")
REVIEW_STATUSES = ("PENDING", "ASSIGNED", "RESOLVED", "AUTO_APPROVED")
# The same values by name, so code (and the SQL parameters it passes) never spells them again.
STAGE_COLD, STAGE_CONTACTED_WA, STAGE_CONTACTED_EMAIL, STAGE_REPLIED, STAGE_CONVERTED, STAGE_DEAD = ENGAGEMENT_STAGES
DIRECTION_OUTBOUND, DIRECTION_INBOUND = DIRECTIONS
LOG_QUEUED, LOG_SENT, LOG_DELIVERED, LOG_READ, LOG_FAILED, LOG_BOUNCED = LOG_STATUSES
# The message left the platform, whatever happened to it afterwards: the lead counts as contacted.
LOG_SENT_STATUSES = (LOG_SENT, LOG_DELIVERED, LOG_READ, LOG_BOUNCED)
PRIORITY_URGENT, PRIORITY_HIGH, PRIORITY_NORMAL, PRIORITY_LOW = REVIEW_PRIORITIES
REVIEW_PENDING, REVIEW_ASSIGNED, REVIEW_RESOLVED, REVIEW_AUTO_APPROVED = REVIEW_STATUSES
REVIEW_OPEN_STATUSES = (REVIEW_PENDING, REVIEW_ASSIGNED)
# Auto-approve never touches anything above the lowest priority: a person reviews those.
AUTO_APPROVE_PRIORITY = PRIORITY_LOW
# A WhatsApp message that counts against the phone's daily quota.
QUOTA_COST_COUNTED = 1

DEFAULT_DAILY_QUOTA = 200
ARCHIVE_AFTER_DAYS = 90

# --- Redis ------------------------------------------------------------------------------------------------------

DEFAULT_REDIS_DB = 0
DEFAULT_BULLMQ_DB = 2
BULLMQ_PREFIX = "bull"
QUOTA_KEY_TTL_SECONDS = 172800

_PHONE_STATUS_KEY = "phone:status:{phone_id}"
_QUOTA_KEY = "quota:wa:{phone_id}:{day}"
_QUOTA_KEY_RE = re.compile(r"^quota:wa:(?P<phone_id>[^:]+):(?P<day>\d{4}-\d{2}-\d{2})\Z")
_PHONE_QUEUE = "q:wa:{phone_id}"

QUEUE_QUOTA_RESET = "quota:guardian:reset"
QUOTA_RESET_SCHEDULER_ID = "quota-reset-daily"
QUOTA_RESET_CRON = "0 0 * * *"
QUEUE_FOLLOWUP = "outreach:followup"
DLQ_LIST_KEY = "bull:dlq:outreach"
# Every application dead-letter list (runbook 8.1 step 3 trims them all).
DLQ_LIST_PATTERN = "bull:dlq:*"
PHONE_QUEUE_PATTERN = "q:wa:*"

PHONE_ID_RE = re.compile(r"^phone_[0-9]{2,}\Z")
E164_RE = re.compile(r"^\+[1-9][0-9]{7,14}\Z")
# An Instantly campaign id (a UUID); the `campaign` label of a bounce:high alert.
CAMPAIGN_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
DEFAULT_TIMEZONE = "Europe/Bucharest"


def phone_sort_key(phone_id):
    """phone_02 < phone_10 < phone_100, as people count."""
    digits = phone_id.rpartition("_")[2]
    return (len(digits), phone_id)


def phone_status_key(phone_id):
    return _PHONE_STATUS_KEY.format(phone_id=phone_id)


def quota_key(phone_id, day):
    return _QUOTA_KEY.format(phone_id=phone_id, day=day.isoformat())


def quota_key_pattern(day):
    """SCAN MATCH pattern for every phone's counter of one business day."""
    return _QUOTA_KEY.format(phone_id="*", day=day.isoformat())


def parse_quota_key(key):
    """(phone_id, date) for a quota key, None for anything else."""
    match = _QUOTA_KEY_RE.match(key)
    if not match:
        return None
    return match.group("phone_id"), date.fromisoformat(match.group("day"))


def phone_queue(phone_id):
    return _PHONE_QUEUE.format(phone_id=phone_id)


# A lead whose follow-up is pending: due in the future and its sequence not paused (runbook 6.2 step 4).
PENDING_FOLLOWUP_CONDITION = "next_action_at IS NOT NULL AND next_action_at > now() AND sequence_paused = false"


def followup_job_id(lead_id, due_ms):
    """Deterministic BullMQ job id of a lead's follow-up: re-adding it is a no-op (no ':', not all digits)."""
    return "fu-{0}-{1}".format(lead_id, due_ms)


# --- Business day -----------------------------------------------------------------------------------------------

def platform_zone(tz_name):
    if ZoneInfo is None:
        raise CerniqError("Python 3.9 or newer is needed on the managed host (zoneinfo)")
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, KeyError) as exc:
        raise CerniqError("time zone {0!r} is unknown: use an IANA name such as {1}".format(
            tz_name, DEFAULT_TIMEZONE)) from exc


def business_day(tz_name, now=None):
    """The platform's calendar day now, in its time zone: never the controller's local date nor UTC."""
    now = now or datetime.now(timezone.utc)
    return now.astimezone(platform_zone(tz_name)).date()


def business_day_bounds(day, tz_name):
    """[start, end) of a business day as aware UTC datetimes; DST days last 23 or 25 hours.

    In UTC, because Python subtracts two datetimes of the same zone by wall clock and would call every day 24 h.
    """
    zone = platform_zone(tz_name)
    start = datetime.combine(day, time.min, tzinfo=zone).astimezone(timezone.utc)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone).astimezone(timezone.utc)
    return start, end


def quota_key_expire_at(day, tz_name):
    """Absolute expiry (epoch seconds) of a day's quota counter: its day's start plus the contract's 48 h TTL.

    A counter then lives through its own day and the next one, whenever it was (re)created.
    """
    start = business_day_bounds(day, tz_name)[0]
    return int(start.timestamp()) + QUOTA_KEY_TTL_SECONDS


def parse_day(value, tz_name, field="date"):
    """A business day from 'today', 'yesterday' or YYYY-MM-DD."""
    today = business_day(tz_name)
    if value in (None, "", "today"):
        return today
    if value == "yesterday":
        return today - timedelta(days=1)
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise CerniqError("{0} {1!r} is not 'today', 'yesterday' or a YYYY-MM-DD date".format(field, value)) from exc


_DURATION_PART_RE = re.compile(r"(\d+)\s*(w|d|h|m|s)", re.IGNORECASE)
_DURATION_RE = re.compile(r"^\s*(?:\d+\s*[wdhms]\s*)+\Z", re.IGNORECASE)
_DURATION_UNITS = dict(w=604800, d=86400, h=3600, m=60, s=1)


def parse_duration(value, field="duration"):
    """A positive duration written as a playbook would: '24h', '90m', '2d', '1w', '1h30m'."""
    text = str(value if value is not None else "")
    if not _DURATION_RE.match(text):
        raise CerniqError("{0} {1!r} is not a duration: write a number and a unit (s, m, h, d, w), e.g. 24h, 90m, "
                          "2d or 1h30m".format(field, value))
    seconds = sum(int(n) * _DURATION_UNITS[unit.lower()] for n, unit in _DURATION_PART_RE.findall(text))
    if seconds <= 0:
        raise CerniqError("{0} {1!r} must be longer than zero".format(field, value))
    return timedelta(seconds=seconds)


def parse_instant(value, tz_name, field="since", now=None):
    """A moment in the past, as an aware UTC datetime, from what reads well in a playbook.

    A duration ('12h': that long ago), 'today' / 'yesterday' / YYYY-MM-DD (the start of that business day), or an
    ISO 8601 timestamp (without an offset it is read in the platform's time zone). A moment in the future is refused.
    """
    now = now or datetime.now(timezone.utc)
    text = str(value if value is not None else "").strip()
    if _DURATION_RE.match(text):
        return now - parse_duration(text, field)
    if text in ("today", "yesterday") or re.match(r"^\d{4}-\d{2}-\d{2}\Z", text):
        moment = business_day_bounds(parse_day(text, tz_name, field), tz_name)[0]
    else:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError as exc:
            raise CerniqError("{0} {1!r} is not a duration (e.g. 24h), 'today', 'yesterday', a YYYY-MM-DD date or "
                              "an ISO 8601 timestamp".format(field, value)) from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=platform_zone(tz_name))
        moment = moment.astimezone(timezone.utc)
    if moment > now:
        raise CerniqError("{0} {1!r} is in the future ({2} is later than now, {3}): give a past moment".format(
            field, value, moment.isoformat(timespec="seconds"), now.isoformat(timespec="seconds")))
    return moment
