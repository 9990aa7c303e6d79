# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The human review queue (runbook 5.1): depth, SLA breaches, the bottleneck named; emergency assignment that two
operators can run at the same time without taking the same item; auto-approve of old LOW items only when asked.

Figures are SQL fragments that each return one jsonb value; `select_figures` puts the ones asked for into a single
statement, so any set of figures costs one round trip (outreach_stats_info reuses the review fragments).
"""

from __future__ import annotations

from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_reading,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    AUTO_APPROVE_PRIORITY,
    PRIORITY_URGENT,
    REVIEW_ASSIGNED,
    REVIEW_AUTO_APPROVED,
    REVIEW_OPEN_STATUSES,
    REVIEW_PENDING,
    REVIEW_PRIORITIES,
    REVIEW_RESOLVED,
    TABLE_AUDIT,
    TABLE_REVIEWS,
    parse_duration,
    parse_instant,
    platform_zone,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_count

MODULE_INFO = "review_queue_info"
MODULE_CHANGE = "review_queue"

# The contract's values, handed to every statement as parameters.
SQL_VALUES = dict(pending=REVIEW_PENDING, assigned=REVIEW_ASSIGNED, resolved=REVIEW_RESOLVED,
                  auto_approved=REVIEW_AUTO_APPROVED, open=list(REVIEW_OPEN_STATUSES),
                  priorities=list(REVIEW_PRIORITIES))

# A bottleneck claim about shares needs enough items to mean something.
BOTTLENECK_MIN_ITEMS = 10
BOTTLENECK_SHARE = 0.5
# Waiting longer than this for a row or advisory lock means something else is wrong: say so instead of hanging.
LOCK_TIMEOUT = "5s"

_Q = TABLE_REVIEWS

# Each fragment is a scalar subquery returning jsonb. Parameters: window_start, breaches_since and SQL_VALUES.
REVIEW_FIGURES = {
    # Runbook 5.1 step 1: depth by priority and status of the items created in the window.
    "depth_window": (
        "SELECT coalesce(jsonb_agg(jsonb_build_object('priority', priority, 'status', status, 'count', n) "
        "ORDER BY array_position(%(priorities)s::text[], priority), status), '[]'::jsonb) "
        "FROM (SELECT priority, status, count(*) AS n FROM " + _Q + " WHERE created_at >= %(window_start)s "
        "GROUP BY priority, status) AS depth"),
    # Every open item, whenever created: pending, assigned, unassigned, breached and the oldest pending one.
    "open_by_priority": (
        "SELECT coalesce(jsonb_object_agg(priority, jsonb_build_object("
        "'pending', pending, 'assigned', assigned, 'unassigned', unassigned, 'breached', breached, "
        "'oldest_pending_id', oldest.id, 'oldest_pending_created_at', oldest.created_at, "
        "'oldest_pending_age_seconds', floor(extract(epoch FROM now() - oldest.created_at))::bigint)), '{}'::jsonb) "
        "FROM (SELECT priority, count(*) FILTER (WHERE status = %(pending)s) AS pending, "
        "count(*) FILTER (WHERE status = %(assigned)s) AS assigned, "
        "count(*) FILTER (WHERE assigned_to IS NULL) AS unassigned, "
        "count(*) FILTER (WHERE sla_due_at < now()) AS breached "
        "FROM " + _Q + " WHERE status = ANY(%(open)s) GROUP BY priority) AS open_items "
        "LEFT JOIN LATERAL (SELECT id, created_at FROM " + _Q + " AS item WHERE item.status = %(pending)s "
        "AND item.priority = open_items.priority ORDER BY created_at, id LIMIT 1) AS oldest ON true"),
    # What the unassigned work is about (runbook 5.1 step 2: "specific reason type?").
    "reasons_pending": (
        "SELECT coalesce(jsonb_agg(jsonb_build_object('reason', reason, 'count', n) ORDER BY n DESC, reason), "
        "'[]'::jsonb) FROM (SELECT reason, count(*) AS n FROM " + _Q + " WHERE status = %(pending)s "
        "GROUP BY reason) AS reasons"),
    # Who holds the assigned work ("users not assigned?").
    "reviewers": (
        "SELECT coalesce(jsonb_agg(jsonb_build_object('reviewer', assigned_to, 'assigned', n, 'breached', breached, "
        "'oldest_assigned_at', oldest) ORDER BY n DESC, assigned_to), '[]'::jsonb) "
        "FROM (SELECT assigned_to, count(*) AS n, count(*) FILTER (WHERE sla_due_at < now()) AS breached, "
        "min(assigned_at) AS oldest FROM " + _Q + " WHERE status = %(assigned)s AND assigned_to IS NOT NULL "
        "GROUP BY assigned_to) AS held"),
    # Open items past their SLA now, and every item whose SLA ran out since `breaches_since` before it was resolved.
    "sla_breaches": (
        "SELECT jsonb_build_object('open', coalesce(sum(open_n), 0), 'since', coalesce(sum(since_n), 0), "
        "'open_by_priority', coalesce(jsonb_object_agg(priority, open_n), '{}'::jsonb), "
        "'since_by_priority', coalesce(jsonb_object_agg(priority, since_n), '{}'::jsonb)) "
        "FROM (SELECT priority, count(*) FILTER (WHERE status = ANY(%(open)s)) AS open_n, "
        "count(*) FILTER (WHERE sla_due_at >= %(breaches_since)s "
        "AND (resolved_at IS NULL OR resolved_at > sla_due_at)) AS since_n "
        "FROM " + _Q + " WHERE sla_due_at < now() "
        "AND (status = ANY(%(open)s) OR sla_due_at >= %(breaches_since)s) GROUP BY priority) AS late"),
}


def select_figures(cur, fragments, args):
    """Run the given {name: fragment} as one statement; returns {name: value}."""
    if not fragments:
        return {}
    names = sorted(fragments)
    pairs = ", ".join("'{0}', ({1})".format(name, fragments[name]) for name in names)
    cur.execute("SELECT jsonb_build_object(" + pairs + ")", args)
    return cur.fetchone()[0]


def complete_breaches(breaches):
    """Every priority present (0 when none), so a playbook can read sla_breaches.open_by_priority.URGENT."""
    return dict(breaches, **{key: {p: (breaches.get(key) or {}).get(p, 0) for p in REVIEW_PRIORITIES}
                             for key in ("open_by_priority", "since_by_priority")})


def complete_open(open_by_priority):
    fields = ("pending", "assigned", "unassigned", "breached")
    result = {}
    for priority in REVIEW_PRIORITIES:
        entry = dict.fromkeys(fields, 0)
        entry.update(oldest_pending_id=None, oldest_pending_created_at=None, oldest_pending_age_seconds=None)
        entry.update((open_by_priority or {}).get(priority, {}))
        result[priority] = entry
    return result


def name_bottlenecks(open_by_priority, reasons_pending, reviewers):
    """Runbook 5.1 step 2 in words, most pressing first: urgent work nobody holds, nobody working, one reason
    swamping the queue, one reviewer holding most of the work."""
    found = []
    urgent = open_by_priority[PRIORITY_URGENT]
    if urgent["pending"]:
        found.append("{0} {1} item(s) pending, {2}".format(
            urgent["pending"], PRIORITY_URGENT,
            "none assigned" if not urgent["assigned"] else "{0} assigned".format(urgent["assigned"])))
    pending = sum(p["pending"] for p in open_by_priority.values())
    assigned = sum(r["assigned"] for r in reviewers)
    if pending and not reviewers:
        found.append("{0} item(s) pending and no reviewer holds any item".format(pending))
    if reasons_pending and pending >= BOTTLENECK_MIN_ITEMS:
        top = reasons_pending[0]
        share = top["count"] / float(pending)
        if share >= BOTTLENECK_SHARE:
            found.append("reason {0} is {1:.0f} % of pending ({2} of {3})".format(
                top["reason"], share * 100, top["count"], pending))
    if reviewers and reviewers[0]["assigned"] >= BOTTLENECK_MIN_ITEMS:
        top = reviewers[0]
        share = top["assigned"] / float(assigned)
        if len(reviewers) == 1 or share >= BOTTLENECK_SHARE:
            found.append("reviewer {0} holds {1} assigned item(s) ({2:.0f} % of assigned, {3} past SLA)".format(
                top["reviewer"], top["assigned"], share * 100, top["breached"]))
    return found


def review_queue_overview(params, *, window="24h", breaches_since="24h"):
    """review_queue_info: the whole picture in one statement."""
    platform_zone(params["timezone"])
    now = datetime.now(timezone.utc)
    window_start = now - parse_duration(window, "window")
    since = parse_instant(breaches_since, params["timezone"], "breaches_since", now=now)
    with postgres_reading(params, require=(TABLE_REVIEWS,)) as cur:
        figures = select_figures(cur, REVIEW_FIGURES, dict(SQL_VALUES, window_start=window_start,
                                                           breaches_since=since))
    open_by_priority = complete_open(figures["open_by_priority"])
    breaches = complete_breaches(figures["sla_breaches"])
    bottlenecks = name_bottlenecks(open_by_priority, figures["reasons_pending"], figures["reviewers"])
    pending = sum(p["pending"] for p in open_by_priority.values())
    assigned = sum(p["assigned"] for p in open_by_priority.values())
    summary = ["{0} pending, {1} assigned, {2} open past SLA, {3} SLA breach(es) since {4}".format(
        pending, assigned, breaches["open"], breaches["since"], since.isoformat(timespec="seconds"))]
    summary.extend(bottlenecks or ["no bottleneck"])
    return dict(changed=False, window_start=window_start.isoformat(), breaches_since=since.isoformat(),
                depth_window=figures["depth_window"], open=open_by_priority, pending=pending, assigned=assigned,
                unassigned_urgent=open_by_priority[PRIORITY_URGENT]["unassigned"], sla_breaches=breaches,
                reasons_pending=figures["reasons_pending"], reviewers=figures["reviewers"],
                bottleneck=bottlenecks[0] if bottlenecks else None, bottlenecks=bottlenecks, summary=summary)


# --- Changes ----------------------------------------------------------------------------------------------------

_HELD = ("SELECT count(*) FROM " + _Q + " WHERE status = %(assigned)s AND assigned_to = %(user)s "
         "AND priority = %(priority)s")
# Most urgent deadline first; items without a deadline after every item with one.
_PICK = ("SELECT id, reason, sla_due_at, created_at FROM " + _Q + " WHERE status = %(pending)s "
         "AND priority = %(priority)s ORDER BY sla_due_at NULLS LAST, created_at, id "
         "LIMIT GREATEST(%(want)s - (" + _HELD + "), 0)")
_ITEMS_JSON = ("coalesce(jsonb_agg(jsonb_build_object('id', id, 'reason', reason, 'sla_due_at', sla_due_at) "
               "ORDER BY sla_due_at NULLS LAST, created_at, id), '[]'::jsonb)")
# The runbook's UPDATE ... LIMIT is not SQL. SKIP LOCKED: a second operator assigning at the same moment takes the
# next items instead of waiting for (and then re-checking) the first one's.
ASSIGN_SQL = (
    "WITH picked AS (" + _PICK + " FOR UPDATE SKIP LOCKED), "
    "taken AS (UPDATE " + _Q + " AS item SET status = %(assigned)s, assigned_to = %(user)s, assigned_at = now() "
    "FROM picked WHERE item.id = picked.id AND item.status = %(pending)s "
    "RETURNING item.id, item.reason, item.sla_due_at, item.created_at) "
    "SELECT (" + _HELD + "), " + _ITEMS_JSON + " FROM taken")
ASSIGN_PREVIEW_SQL = "SELECT (" + _HELD + "), " + _ITEMS_JSON + " FROM (" + _PICK + ") AS picked"

_AUTO_PICK = ("SELECT id FROM " + _Q + " WHERE status = %(pending)s AND priority = %(low)s "
              "AND created_at < %(cutoff)s ORDER BY created_at, id")
AUTO_APPROVE_SQL = (
    "WITH picked AS (" + _AUTO_PICK + " FOR UPDATE SKIP LOCKED), "
    "approved AS (UPDATE " + _Q + " AS item SET status = %(auto_approved)s, resolved_at = now() FROM picked "
    "WHERE item.id = picked.id AND item.status = %(pending)s RETURNING item.id) "
    "SELECT coalesce(jsonb_agg(id ORDER BY id), '[]'::jsonb) FROM approved")
AUTO_APPROVE_PREVIEW_SQL = "SELECT coalesce(jsonb_agg(id ORDER BY id), '[]'::jsonb) FROM (" + _AUTO_PICK + ") AS p"


def _validate_change(params, assign_to, ensure_assigned, priority, auto_approve, older_than):
    """Every option checked before the first statement; returns (user or None, cutoff or None)."""
    user = None
    if assign_to is not None or ensure_assigned is not None:
        if assign_to is None or ensure_assigned is None:
            raise CerniqError("assign_to and ensure_assigned go together: name the reviewer and how many {0} items "
                              "they should hold".format(priority))
        user = assign_to.strip()
        if not user:
            raise CerniqError("assign_to is empty: name the reviewer (their user id) who takes the items")
        validate_count(ensure_assigned, "ensure_assigned")
    if priority not in REVIEW_PRIORITIES:
        raise CerniqError("priority {0!r} is unknown: use one of {1}".format(priority, ", ".join(REVIEW_PRIORITIES)))
    cutoff = None
    if auto_approve:
        if not older_than:
            raise CerniqError("auto_approve needs older_than (e.g. 48h): only {0} items pending longer than that "
                              "are approved".format(AUTO_APPROVE_PRIORITY))
        cutoff = parse_instant(older_than, params["timezone"], "older_than")
    elif older_than:
        raise CerniqError("older_than applies only with auto_approve: true; nothing would be approved")
    if user is None and not auto_approve:
        raise CerniqError("nothing to do: set assign_to with ensure_assigned, or auto_approve: true with older_than")
    return user, cutoff


def change_review_queue(params, *, assign_to=None, ensure_assigned=None, priority=PRIORITY_URGENT,
                        auto_approve=False, older_than=None, reason=None, check_mode=False):
    """review_queue: make `assign_to` hold at least `ensure_assigned` open items of `priority` (taking the most urgent
    pending ones), and/or approve pending LOW items created before `older_than`. One transaction, audited."""
    platform_zone(params["timezone"])
    user, cutoff = _validate_change(params, assign_to, ensure_assigned, priority, auto_approve, older_than)
    args = dict(SQL_VALUES, user=user, priority=priority, want=ensure_assigned or 0, low=AUTO_APPROVE_PRIORITY,
                cutoff=cutoff)
    if check_mode:
        with postgres_reading(params, require=(TABLE_REVIEWS,)) as cur:
            held, picked, approved = _run(cur, args, user, auto_approve, ASSIGN_PREVIEW_SQL, AUTO_APPROVE_PREVIEW_SQL)
    else:
        conn = postgres_connect(params, require=(TABLE_REVIEWS, TABLE_AUDIT))
        try:
            with postgres_errors(params, conn):
                with conn.cursor() as cur:
                    cur.execute("SET LOCAL lock_timeout = %s", (LOCK_TIMEOUT,))
                    if user is not None:
                        # Two runs for the same reviewer would both see "holds 0" and both take N.
                        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                    ("cerniq.outreach.review_queue:{0}:{1}".format(user, priority),))
                    held, picked, approved = _run(cur, args, user, auto_approve, ASSIGN_SQL, AUTO_APPROVE_SQL)
                    _audit(conn, params, user, priority, ensure_assigned, held, picked, cutoff, approved, reason,
                           auto_approve)
                conn.commit()
        finally:
            conn.close()
    return _result(user, priority, ensure_assigned, held, picked, auto_approve, cutoff, approved)


def _run(cur, args, user, auto_approve, assign_sql, approve_sql):
    held, picked, approved = None, [], []
    if user is not None:
        cur.execute(assign_sql, args)
        held, picked = cur.fetchone()
    if auto_approve:
        cur.execute(approve_sql, args)
        approved = cur.fetchone()[0]
    return held, picked, approved


def _audit(conn, params, user, priority, ensure_assigned, held, picked, cutoff, approved, reason, auto_approve):
    trail = AuditTrail(conn, MODULE_CHANGE, params.get("audit_actor"))
    if picked:
        trail.record("review_assign", "{0}:{1}".format(TABLE_REVIEWS, user), reason,
                     before=dict(assigned_to=user, priority=priority, held=held, status=REVIEW_PENDING),
                     after=dict(assigned_to=user, priority=priority, held=held + len(picked),
                                ensure_assigned=ensure_assigned, status=REVIEW_ASSIGNED,
                                ids=[item["id"] for item in picked], count=len(picked)))
    if auto_approve and approved:
        trail.record("review_auto_approve", TABLE_REVIEWS, reason,
                     before=dict(status=REVIEW_PENDING, priority=AUTO_APPROVE_PRIORITY),
                     after=dict(status=REVIEW_AUTO_APPROVED, created_before=cutoff.isoformat(), ids=approved,
                                count=len(approved)))


def _result(user, priority, ensure_assigned, held, picked, auto_approve, cutoff, approved):
    assigned_ids = [item["id"] for item in picked]
    result = dict(changed=bool(assigned_ids or approved), assigned_ids=assigned_ids, auto_approved_ids=approved)
    lines = []
    before, after = {}, {}
    if user is not None:
        held_after = held + len(assigned_ids)
        shortfall = max(0, ensure_assigned - held_after)
        result.update(assigned_to=user, priority=priority, held_before=held, held_after=held_after,
                      shortfall=shortfall, assigned_items=picked)
        lines.append("{0} holds {1} open {2} item(s) (wanted {3}): {4} newly assigned{5}".format(
            user, held_after, priority, ensure_assigned, len(assigned_ids),
            ", {0} short: nothing else pending".format(shortfall) if shortfall else ""))
        for item_id in assigned_ids:
            before[str(item_id)] = dict(status=REVIEW_PENDING, assigned_to=None)
            after[str(item_id)] = dict(status=REVIEW_ASSIGNED, assigned_to=user)
    if auto_approve:
        result.update(auto_approve_cutoff=cutoff.isoformat())
        lines.append("{0} pending {1} item(s) created before {2} auto-approved".format(
            len(approved), AUTO_APPROVE_PRIORITY, cutoff.isoformat(timespec="seconds")))
        for item_id in approved:
            before[str(item_id)] = dict(status=REVIEW_PENDING)
            after[str(item_id)] = dict(status=REVIEW_AUTO_APPROVED)
    result.update(msg="; ".join(lines), diff=dict(before=before, after=after))
    return result
