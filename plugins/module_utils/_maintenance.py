# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VACUUM (ANALYZE) of the platform's tables (runbook 8.1 step 1), outside a transaction, only where it has work."""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_reading,
    postgres_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    TABLE_AUDIT,
    TABLE_COMM_LOG,
    TABLE_LEADS,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_tables

MODULE = "db_maintenance"
# The runbook's two; the archive table is worth adding after a large archive run.
DEFAULT_TABLES = (TABLE_COMM_LOG, TABLE_LEADS)
DEFAULT_LOCK_TIMEOUT = 30.0

# What pg_stat_user_tables says about each table, and whether this user may VACUUM it (owner, a member of the
# owner's role, the database owner or a superuser; anyone else only gets a WARNING from VACUUM and nothing done).
STATS_SQL = (
    "SELECT t.name, c.oid IS NOT NULL, "
    "coalesce(pg_has_role(c.relowner, 'USAGE') OR pg_has_role(d.datdba, 'USAGE') "
    "OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false), pg_get_userbyid(c.relowner), "
    "jsonb_build_object('live_tuples', s.n_live_tup, 'dead_tuples', s.n_dead_tup, "
    "'changed_since_analyze', s.n_mod_since_analyze, 'inserted_since_vacuum', s.n_ins_since_vacuum, "
    "'last_vacuum', greatest(s.last_vacuum, s.last_autovacuum), 'last_manual_vacuum', s.last_vacuum, "
    "'last_analyze', greatest(s.last_analyze, s.last_autoanalyze), 'vacuum_count', s.vacuum_count, "
    "'autovacuum_count', s.autovacuum_count, 'total_bytes', pg_total_relation_size(c.oid)) "
    "FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, n) "
    "LEFT JOIN pg_class AS c ON c.oid = to_regclass(t.name) "
    "LEFT JOIN pg_stat_user_tables AS s ON s.relid = c.oid "
    "CROSS JOIN pg_database AS d WHERE d.datname = current_database() ORDER BY t.n")


def vacuum_statement(tables, analyze):
    # The names are contract constants (validated above), never user text.
    return "VACUUM {0}{1}".format("(ANALYZE) " if analyze else "", ", ".join(tables))


def why_vacuum(stats, analyze):
    """The reasons a table has work for VACUUM (ANALYZE); empty when it has none."""
    reasons = []
    if stats.get("dead_tuples"):
        reasons.append("{0} dead tuple(s)".format(stats["dead_tuples"]))
    if stats.get("inserted_since_vacuum"):
        reasons.append("{0} row(s) inserted since the last vacuum".format(stats["inserted_since_vacuum"]))
    if analyze and stats.get("changed_since_analyze"):
        reasons.append("{0} row(s) changed since the last analyze".format(stats["changed_since_analyze"]))
    if stats.get("last_vacuum") is None:
        reasons.append("never vacuumed")
    if analyze and stats.get("last_analyze") is None:
        reasons.append("never analyzed")
    return reasons


def _read_stats(cur, params, tables):
    cur.execute(STATS_SQL, (tables,))
    stats = {}
    for name, exists, may_vacuum, owner, figures in cur.fetchall():
        if not exists:
            raise CerniqError("{0}: table {1} missing; load schema/platform.sql (see docs/platform-contract.md)"
                              .format(postgres_where(params), name))
        if not may_vacuum:
            raise CerniqError("{0}: user {1} may not VACUUM {2} (owner {3}): connect as the table owner (or a member "
                              "of its role) or the database owner".format(
                                  postgres_where(params), params["db_user"], name, owner))
        stats[name] = figures
    return stats


def vacuum_tables(params, *, tables=DEFAULT_TABLES, analyze=True, force=False, lock_timeout=DEFAULT_LOCK_TIMEOUT,
                  check_mode=False):
    """db_maintenance: VACUUM (ANALYZE) the tables that have work (every one with `force`), outside a transaction."""
    tables = validate_tables(tables)
    if lock_timeout is None or lock_timeout <= 0:
        raise CerniqError("lock_timeout is {0}: give the seconds VACUUM may wait for its lock, more than 0".format(
            lock_timeout))
    if check_mode:
        with postgres_reading(params, require=tables) as cur:
            before = _read_stats(cur, params, tables)
        return _result(tables, analyze, force, before, None)
    conn = postgres_connect(params, require=tuple(tables) + (TABLE_AUDIT,))
    try:
        # VACUUM refuses to run inside a transaction block.
        conn.autocommit = True
        with postgres_errors(params, conn), conn.cursor() as cur:
            cur.execute("SELECT set_config('TimeZone', %s, false), set_config('lock_timeout', %s, false)",
                        (params["timezone"], "{0}ms".format(int(lock_timeout * 1000))))
            before = _read_stats(cur, params, tables)
            plan = _plan(tables, analyze, force, before)
            if not plan:
                return _result(tables, analyze, force, before, None)
            cur.execute(vacuum_statement(plan, analyze))
            after = _read_stats(cur, params, tables)
            result = _result(tables, analyze, force, before, after)
            # VACUUM committed itself; its audit row follows at once.
            AuditTrail(conn, MODULE, params.get("audit_actor")).record(
                "vacuum_analyze" if analyze else "vacuum", ",".join(plan), None,
                before={t: before[t] for t in plan}, after=dict(statement=result["statements"][0],
                                                                tables={t: after[t] for t in plan}))
            return result
    finally:
        conn.close()


def _plan(tables, analyze, force, stats):
    return [t for t in tables if force or why_vacuum(stats[t], analyze)]


def _result(tables, analyze, force, before, after):
    plan = _plan(tables, analyze, force, before)
    report = []
    for table in tables:
        reasons = why_vacuum(before[table], analyze)
        entry = dict(table=table, vacuumed=table in plan, reasons=reasons or (["forced"] if force else []),
                     before=before[table])
        if after is not None:
            entry["after"] = after[table]
        report.append(entry)
    statements = [vacuum_statement(plan, analyze)] if plan else []
    verb = "ran" if after is not None else "would run"
    msg = "{0} {1}".format(verb, statements[0]) if plan else "nothing to do: no dead tuples, no change since the " \
                                                             "last vacuum/analyze in {0}".format(", ".join(tables))
    diff_before = {e["table"]: dict(dead_tuples=e["before"].get("dead_tuples"),
                                    last_vacuum=e["before"].get("last_vacuum")) for e in report if e["vacuumed"]}
    diff_after = {e["table"]: dict(dead_tuples=(e.get("after") or {}).get("dead_tuples", 0),
                                   last_vacuum=(e.get("after") or {}).get("last_vacuum", "now"))
                  for e in report if e["vacuumed"]}
    return dict(changed=bool(plan), tables=report, statements=statements, msg=msg,
                diff=dict(before=diff_before, after=diff_after))
