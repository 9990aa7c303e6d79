# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WhatsApp phones: the `wa_phone_numbers` row and `phone:status:{id}` in Redis, kept consistent.

A change runs in one PostgreSQL transaction that is committed only after Redis (and, for a ban, BullMQ) accepted
theirs, so a failure on either side leaves nothing half-done. Reads are one SQL query and one pipeline per Redis db
for any number of phones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections import Counter
from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import cancel_pending_jobs
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_depths
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_reading,
    redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    DEFAULT_DAILY_QUOTA,
    PHONE_STATUSES,
    RELEASABLE_STAGES,
    TABLE_AUDIT,
    TABLE_LEADS,
    TABLE_PHONES,
    business_day,
    phone_queue,
    phone_sort_key,
    phone_status_key,
    quota_key,
    quota_key_expire_at,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._quota import (
    describe_counter,
    read_keys,
    wrong_type_message,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import (
    validate_account_id,
    validate_count,
    validate_e164,
    validate_label,
    validate_phone_id,
    validate_phone_ids,
    validate_phone_status,
    validate_tenant,
)

MODULE_NAME = "wa_phone"
STATUS_ACTIVE, STATUS_OFFLINE, STATUS_BANNED = PHONE_STATUSES
# The columns wa_phone manages, in the order a diff shows them; `id` and the timestamps are the database's.
MANAGED_COLUMNS = ("phone_number", "tenant_id", "phone_label", "timelinesai_account_id", "daily_quota_limit",
                   "is_enabled", "status")
PHONE_COLUMNS = ("id",) + MANAGED_COLUMNS + ("status_changed_at", "created_at")
DEFAULT_LEAD_IDS_CAP = 100
QUEUE_STATES_SHOWN = ("wait", "paused", "active", "delayed", "prioritized", "waiting-children", "completed",
                      "failed", "due_delayed")
PENDING_QUEUE_STATES = ("wait", "paused", "delayed", "prioritized")


# --- Input ------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PhoneRequest:
    """What one wa_phone call asks: which phone (phone_id and/or phone_number), the columns to set (None: leave as
    it is) and what a ban also does. The module's options with its defaults; raw as asked: phone_request() checks it.

    A test builds one with keyword options; the module's parameters give one through from_params.
    """

    phone_id: str | None = None
    phone_number: str | None = None
    tenant_id: str | None = None
    label: str | None = None
    timelinesai_account_id: str | None = None
    daily_quota_limit: int | None = None
    enabled: bool | None = None
    status: str | None = None
    release_leads: bool = True
    cancel_jobs: bool = True
    lead_ids_cap: int | None = DEFAULT_LEAD_IDS_CAP
    reason: str | None = None

    @classmethod
    def from_params(cls, params):
        return cls(**{field.name: params[field.name] for field in dataclasses.fields(cls)
                      if params.get(field.name) is not None})


def phone_request(request):
    """(phone_id or None, the validated columns asked for (only those given), the cap on lead ids shown).

    Everything is checked here, before the first connection, so bad input changes nothing.
    """
    wanted = {}
    phone_id = request.phone_id
    if phone_id is not None:
        phone_id = validate_phone_id(phone_id)
    if request.phone_number is not None:
        wanted["phone_number"] = validate_e164(request.phone_number)
    if phone_id is None and "phone_number" not in wanted:
        raise CerniqError("give phone_id (e.g. phone_07) or phone_number (E.164) to say which phone")
    if request.tenant_id is not None:
        wanted["tenant_id"] = validate_tenant(request.tenant_id)
    if request.label is not None:
        wanted["phone_label"] = validate_label(request.label)
    if request.timelinesai_account_id is not None:
        wanted["timelinesai_account_id"] = validate_account_id(request.timelinesai_account_id,
                                                               wanted.get("phone_number"))
    if request.daily_quota_limit is not None:
        wanted["daily_quota_limit"] = validate_count(request.daily_quota_limit, "daily_quota_limit")
    if request.enabled is not None:
        wanted["is_enabled"] = bool(request.enabled)
    if request.status is not None:
        wanted["status"] = validate_phone_status(request.status)
    cap = DEFAULT_LEAD_IDS_CAP if request.lead_ids_cap is None else validate_count(request.lead_ids_cap,
                                                                                   "lead_ids_cap")
    return phone_id, wanted, cap


@dataclasses.dataclass(frozen=True)
class _PhoneChange:
    """One wa_phone change as planned from what was read, for _apply: the row before (None: a new phone) and after,
    the changed columns, Redis' status before, and the leads and jobs a ban releases and cancels (None: not asked)."""

    request: PhoneRequest
    current: dict | None
    target: dict
    changes: dict
    redis_status: str | None
    released: dict | None
    cancelled: dict | None
    queue: str
    lead_ids_cap: int
    counter_key: str
    expire_at: int


def field_changes(current, wanted):
    """{column: (before, after)} for every asked-for column whose value differs from the row's."""
    return {column: (current.get(column), wanted[column]) for column in MANAGED_COLUMNS
            if column in wanted and current.get(column) != wanted[column]}


# --- Rows -------------------------------------------------------------------------------------------------------

def _row_dict(row):
    phone = dict(zip(PHONE_COLUMNS, row))
    phone["tenant_id"] = str(phone["tenant_id"])
    for column in ("status_changed_at", "created_at"):
        if phone.get(column) is not None:
            phone[column] = phone[column].isoformat()
    return phone


def _find_phone(cur, phone_id, phone_number, lock):
    cur.execute("SELECT " + ", ".join(PHONE_COLUMNS) + " FROM " + TABLE_PHONES +
                " WHERE id = %s OR phone_number = %s ORDER BY id" + (" FOR UPDATE" if lock else ""),
                (phone_id, phone_number))
    rows = [_row_dict(r) for r in cur.fetchall()]
    if len(rows) > 1:
        by_id = next(r for r in rows if r["id"] == phone_id)
        other = next(r for r in rows if r["id"] != phone_id)
        raise CerniqError("{0} has number {1}, but {2} belongs to {3}: one number, one phone; nothing changed".format(
            phone_id, by_id["phone_number"], phone_number, other["id"]))
    if rows and phone_id and rows[0]["id"] != phone_id:
        raise CerniqError("{0} belongs to {1}, not to {2}: nothing changed".format(phone_number, rows[0]["id"],
                                                                                   phone_id))
    return rows[0] if rows else None


def _new_phone(cur, phone_id, wanted):
    required = [name for name, column in (("phone_number", "phone_number"), ("tenant_id", "tenant_id"),
                                          ("label", "phone_label")) if column not in wanted]
    if required:
        raise CerniqError("unknown phone {0}: not in {1}. To onboard it give {2}; to change an existing phone "
                          "check the id or number (cerniq.outreach.wa_phone_info lists them)".format(
                              phone_id or wanted.get("phone_number"), TABLE_PHONES, ", ".join(required)))
    if phone_id is None:
        # Only for the report: the real insert takes the column default, which may have moved on by then.
        cur.execute("SELECT cerniq_next_phone_id()")
        phone_id = cur.fetchone()[0]
    phone = dict(id=phone_id, timelinesai_account_id=None, daily_quota_limit=DEFAULT_DAILY_QUOTA, is_enabled=True,
                 status=STATUS_ACTIVE, status_changed_at=None, created_at=None)
    phone.update(wanted)
    return phone


def _insert_phone(cur, phone, id_given):
    """Insert the row; without an id the column default takes the next phone_NN."""
    columns = (("id",) if id_given else ()) + MANAGED_COLUMNS
    cur.execute("INSERT INTO " + TABLE_PHONES + " (" + ", ".join(columns) + ") VALUES (" +
                ", ".join(["%s"] * len(columns)) + ") RETURNING " + ", ".join(PHONE_COLUMNS),
                [phone[c] for c in columns])
    return _row_dict(cur.fetchone())


def _update_phone(cur, phone_id, changes):
    assignments = ["{0} = %s".format(column) for column in changes]
    values = [after for _before, after in changes.values()]
    if "status" in changes:
        assignments.append("status_changed_at = now()")
    cur.execute("UPDATE " + TABLE_PHONES + " SET " + ", ".join(assignments) + " WHERE id = %s RETURNING " +
                ", ".join(PHONE_COLUMNS), values + [phone_id])
    return _row_dict(cur.fetchone())


def _releasable_leads(cur, phone_id, cap, release):
    """Leads of the phone in a releasable stage: count, count by stage, the first `cap` ids; with release,
    unassigns them too."""
    where = " WHERE assigned_phone_id = %(phone)s AND engagement_stage = ANY(%(stages)s)"
    if release:
        source = ("WITH leads AS (UPDATE " + TABLE_LEADS + " SET assigned_phone_id = NULL, assigned_at = NULL, "
                  "updated_at = now()" + where + " RETURNING lead_id, engagement_stage) ")
    else:
        source = "WITH leads AS (SELECT lead_id, engagement_stage FROM " + TABLE_LEADS + where + ") "
    cur.execute(source + "SELECT count(*), (array_agg(lead_id::text ORDER BY lead_id))[1:%(cap)s], "
                "(SELECT coalesce(jsonb_object_agg(engagement_stage, n), '{}'::jsonb) FROM "
                "(SELECT engagement_stage, count(*) AS n FROM leads GROUP BY engagement_stage) AS staged) FROM leads",
                dict(phone=phone_id, stages=list(RELEASABLE_STAGES), cap=cap))
    count, ids, by_stage = cur.fetchone()
    return dict(count=count, by_stage={stage: by_stage.get(stage, 0) for stage in RELEASABLE_STAGES},
                lead_ids=ids or [], truncated=count > len(ids or []), stages=list(RELEASABLE_STAGES))


# --- wa_phone ---------------------------------------------------------------------------------------------------

def ensure_phone(params, request, check_mode=False, want_diff=False):
    """The wa_phone module: onboard, update or change the status of one phone (a PhoneRequest); a ban also releases
    leads and cancels the phone's pending BullMQ jobs. Returns the result dict (changed, phone, released, cancelled,
    diff)."""
    phone_request(request)  # every option checked before the first connection
    conn = postgres_connect(params, require=(TABLE_PHONES, TABLE_LEADS, TABLE_AUDIT))
    try:
        with postgres_errors(params, conn), conn.cursor() as cur:
            # Timestamps in the result read as the platform's clock, like the info modules'.
            cur.execute("SET TIME ZONE %s", (params["timezone"],))
        return _ensure_phone(conn, params, request, check_mode, want_diff)
    finally:
        conn.close()


def _ensure_phone(conn, params, request, check_mode, want_diff):
    phone_id, wanted, cap = phone_request(request)
    ban = wanted.get("status") == STATUS_BANNED
    tz_name = params["timezone"]
    redis_db = params["redis_db"]
    where = redis_where(params, redis_db)
    with postgres_errors(params, conn), conn.cursor() as cur:
        current = _find_phone(cur, phone_id, wanted.get("phone_number"), lock=not check_mode)
        if current is None:
            target = _new_phone(cur, phone_id, wanted)
            changes = {column: (None, target[column]) for column in MANAGED_COLUMNS}
        else:
            if "tenant_id" in wanted and wanted["tenant_id"] != current["tenant_id"]:
                raise CerniqError("tenant mismatch: {0} belongs to tenant {1}, not {2}; nothing changed".format(
                    current["id"], current["tenant_id"], wanted["tenant_id"]))
            if "timelinesai_account_id" in wanted and "phone_number" not in wanted:
                validate_account_id(wanted["timelinesai_account_id"], current["phone_number"])
            target = dict(current)
            changes = field_changes(current, wanted)
            target.update({column: after for column, (_before, after) in changes.items()})
    created = current is None
    pid = target["id"]
    status_key = phone_status_key(pid)
    day = business_day(tz_name)
    counter_key = quota_key(pid, day)
    client = redis_client(params, redis_db)
    with redis_errors(where):
        pipe = client.pipeline(transaction=False)
        pipe.get(status_key)
        pipe.exists(counter_key)
        redis_status, counter_exists = pipe.execute(raise_on_error=False)
    if isinstance(redis_status, Exception):
        raise CerniqError("{0}: {1} is not a string ({2}); it should hold the phone's status. Inspect it and "
                          "delete it, then re-run; nothing changed".format(where, status_key, redis_status))
    redis_changes = redis_status != target["status"]

    released = cancelled = None
    if ban and request.release_leads and not created:
        with postgres_errors(params, conn), conn.cursor() as cur:
            released = _releasable_leads(cur, pid, cap, release=False)
    queue = phone_queue(pid)
    if ban and request.cancel_jobs and not created:
        cancelled = cancel_pending_jobs(params, queue, check_mode=True)
    changed = bool(created or changes or redis_changes or (released and released["count"])
                   or (cancelled and cancelled["cancelled"]))

    after_phone = dict(target, redis_status=target["status"])
    before_phone = dict(current, redis_status=redis_status) if current else {}
    if changed and not check_mode:
        after_phone, released, cancelled, counter_created = _apply(conn, params, client, where, _PhoneChange(
            request=request, current=current, target=target, changes=changes, redis_status=redis_status,
            released=released, cancelled=cancelled, queue=queue, lead_ids_cap=cap, counter_key=counter_key,
            expire_at=quota_key_expire_at(day, tz_name)))
    else:
        conn.rollback()
        counter_created = created and not counter_exists

    result = dict(changed=changed, phone_id=after_phone["id"], created=created, phone=after_phone,
                  changes=sorted(changes) + (["redis_status"] if redis_changes else []),
                  status_changed=created or "status" in changes, quota_key=counter_key,
                  quota_key_created=bool(counter_created), released=released, cancelled=cancelled,
                  queue=queue if cancelled is not None else None)
    if want_diff:
        result["diff"] = dict(before=_diff_view(before_phone), after=_diff_view(after_phone, released, cancelled))
    return result


def _apply(conn, params, client, where, change):
    """DB first (uncommitted), then Redis, then BullMQ, then the audit row and the commit; undo Redis on failure."""
    current, changes, redis_status, cancelled = change.current, change.changes, change.redis_status, change.cancelled
    counter_key, released = change.counter_key, change.released
    with postgres_errors(params, conn), conn.cursor() as cur:
        if current is None:
            row = _insert_phone(cur, change.target, id_given=change.request.phone_id is not None)
        elif changes:
            row = _update_phone(cur, change.target["id"], changes)
        else:
            row = dict(current)
        pid = row["id"]
        if released is not None:
            released = _releasable_leads(cur, pid, change.lead_ids_cap, release=True)
    status_key = phone_status_key(pid)
    counter_created = False
    try:
        with redis_errors(where):
            pipe = client.pipeline(transaction=True)
            pipe.set(status_key, row["status"])
            if current is None:
                counter_key = quota_key(pid, business_day(params["timezone"]))
                pipe.set(counter_key, 0, nx=True, exat=change.expire_at)
            replies = pipe.execute()
        counter_created = current is None and bool(replies[1])
        if cancelled is not None:
            cancelled = cancel_pending_jobs(params, change.queue, check_mode=False)
        with postgres_errors(params, conn):
            AuditTrail(conn, MODULE_NAME, params.get("audit_actor")).record(
                _audit_action(current, changes, released, cancelled), pid, change.request.reason,
                _audit_view(current, redis_status) if current else None,
                dict(_audit_view(row, row["status"]), changes=sorted(changes), released=released,
                     cancelled=cancelled, quota_key_created=counter_created))
            conn.commit()
    except Exception:
        # Whatever failed (also outside the bullmq package's Redis errors), the phone must not stay half-changed;
        # the error being raised is the one to report, so undoing stays quiet.
        if not conn.closed:
            with contextlib.suppress(Exception):
                conn.rollback()
        _undo_redis(client, where, status_key, redis_status, counter_key if counter_created else None)
        raise
    return dict(row, redis_status=row["status"]), released, cancelled, counter_created


def _undo_redis(client, where, status_key, previous_status, created_counter):
    """Put Redis back as it was, best effort: the database change it went with was rolled back, and the error
    that got us here is the one to report."""
    with contextlib.suppress(CerniqError), redis_errors(where):
        pipe = client.pipeline(transaction=True)
        if previous_status is None:
            pipe.delete(status_key)
        else:
            pipe.set(status_key, previous_status)
        if created_counter:
            pipe.delete(created_counter)
        pipe.execute()


def _audit_action(current, changes, released, cancelled):
    if current is None:
        return "phone_onboard"
    if changes.get("status", (None, None))[1] == STATUS_BANNED or released or cancelled:
        return "phone_ban"
    if "status" in changes:
        return "phone_status"
    return "phone_update"


def _audit_view(phone, redis_status):
    view = {column: phone.get(column) for column in MANAGED_COLUMNS}
    view["redis_status"] = redis_status
    return view


def _diff_view(phone, released=None, cancelled=None):
    if not phone:
        return {}
    view = {column: phone.get(column) for column in ("id",) + MANAGED_COLUMNS}
    view["redis_status"] = phone.get("redis_status")
    if released is not None:
        view["released_leads"] = released["count"]
    if cancelled is not None:
        view["cancelled_jobs"] = cancelled["cancelled"]
    return view


# --- wa_phone_info ----------------------------------------------------------------------------------------------

def phones_info(params, *, phone_ids=None, statuses=None, tenant_id=None, quota_warn_percent=90, now=None):
    """Every phone (or a filter) with DB and Redis status, drift, today's quota and queue depths.

    One SQL query, one pipeline on the platform db and one on the BullMQ db, whatever the number of phones.
    """
    tz_name = params["timezone"]
    phone_ids = validate_phone_ids(phone_ids)
    statuses = sorted({validate_phone_status(s) for s in statuses or []}) or None
    tenant_id = validate_tenant(tenant_id) if tenant_id else None
    quota_warn_percent = validate_count(quota_warn_percent, "quota_warn_percent")
    now = now or datetime.now(timezone.utc)
    day = business_day(tz_name, now)
    with postgres_reading(params, require=(TABLE_PHONES,)) as cur:
        # The status/tenant filter is a column, so an id that exists but is filtered out is not "unknown".
        cur.execute("SELECT " + ", ".join(PHONE_COLUMNS) + ", (%(all_statuses)s OR status = ANY(%(statuses)s))"
                    " AND (%(tenant)s::uuid IS NULL OR tenant_id = %(tenant)s::uuid) FROM " + TABLE_PHONES +
                    " WHERE %(all_ids)s OR id = ANY(%(ids)s) ORDER BY length(id), id",
                    dict(all_ids=not phone_ids, ids=phone_ids or [], all_statuses=not statuses,
                         statuses=statuses or [], tenant=tenant_id))
        rows = cur.fetchall()
    if phone_ids:
        unknown = sorted(set(phone_ids) - {r[0] for r in rows}, key=phone_sort_key)
        if unknown:
            raise CerniqError("unknown phone(s) {0}: not in {1} (cerniq.outreach.wa_phone_info without phone_ids "
                              "lists them all)".format(", ".join(unknown), TABLE_PHONES))
    phones = [_row_dict(r[:-1]) for r in rows if r[-1]]

    where = redis_where(params, params["redis_db"])
    status_keys = [phone_status_key(p["id"]) for p in phones]
    counter_keys = [quota_key(p["id"], day) for p in phones]
    replies = read_keys(redis_client(params), where, status_keys + counter_keys)
    redis_statuses, counters = replies[:len(phones)], replies[len(phones):]
    queues = [phone_queue(p["id"]) for p in phones]
    depths = queue_depths(redis_client(params, params["bullmq_db"]), queues) if phones else {}

    now_ts = int(time.time())
    expire_at = quota_key_expire_at(day, tz_name)
    entries = []
    for phone, status_key, redis_status, key, counter, queue in zip(phones, status_keys, redis_statuses,
                                                                    counter_keys, counters, queues):
        entries.append(_phone_entry(phone, status_key, redis_status, key, counter, queue, depths[queue], now_ts,
                                    expire_at, where))
    return dict(changed=False, date=day.isoformat(), timezone=tz_name, phones=entries,
                summary=phones_summary(entries, quota_warn_percent))


def _phone_entry(phone, status_key, status_read, key, counter, queue, depth, now_ts, expire_at, where):
    problems = []
    redis_status, _ttl, wrong_type = status_read
    if wrong_type:
        problems.append("{0} is a {1}, not a string holding the phone's status".format(status_key, wrong_type))
        drift = "unreadable"
    elif redis_status is None:
        drift = "missing"
    elif redis_status != phone["status"]:
        drift = "differs"
    else:
        drift = None
    value, ttl, wrong_type = counter
    quota = describe_counter(dict(phone_id=phone["id"], limit=phone["daily_quota_limit"], status=phone["status"]),
                             key, value, ttl, wrong_type and wrong_type_message(where, key, wrong_type), now_ts,
                             expire_at)
    for item in ("phone_id", "status"):
        quota.pop(item)
    if quota["problem"]:
        problems.append(quota["problem"])
    queue_view = {state: depth[state] for state in QUEUE_STATES_SHOWN}
    queue_view.update(name=queue, pending=sum(depth[s] for s in PENDING_QUEUE_STATES), is_paused=depth["is_paused"],
                      version=depth["version"], exists=depth["exists"])
    return dict(phone, status_key=status_key, redis_status=redis_status, drift=drift is not None, drift_reason=drift,
                quota=quota, queue=queue_view, problems=problems)


def phones_summary(entries, quota_warn_percent):
    by_status = Counter(e["status"] for e in entries)
    return dict(
        total=len(entries),
        by_status={status: by_status.get(status, 0) for status in PHONE_STATUSES},
        drifted=[e["id"] for e in entries if e["drift"]],
        missing_redis_status=[e["id"] for e in entries if e["drift_reason"] == "missing"],
        quota_warn_percent=quota_warn_percent,
        over_quota_percent=[e["id"] for e in entries
                            if e["quota"]["used_percent"] is not None
                            and e["quota"]["used_percent"] >= quota_warn_percent],
        quota_without_ttl=[e["id"] for e in entries if e["quota"]["no_ttl"]],
        quota_used_today=sum(e["quota"]["value"] or 0 for e in entries),
        pending_jobs=sum(e["queue"]["pending"] for e in entries),
        active_jobs=sum(e["queue"]["active"] for e in entries),
        problems=[p for e in entries for p in e["problems"]],
    )
