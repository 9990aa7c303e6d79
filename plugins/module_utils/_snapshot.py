# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Figures of a database's contract tables (rows, newest created_at, content checksum), taken in one snapshot.

The backup manifest records them (in the very snapshot pg_dump reads, see _backup.py), DR verification compares a
restored database with them, and tests prove with them that check mode changed nothing.

Checksum: the sum, modulo 2^64, of the first 64 bits of md5(row::text) over every row. Order-independent, so it
needs no sort (1M rows: 1.7 s, against 2.9 s for md5(string_agg(md5(row::text) ORDER BY pk)); hashtextextended
would take 0.9 s but is an internal hash a later PostgreSQL may change, and a manifest must verify years later).
A sum, unlike XOR, still changes when a row is duplicated. row::text depends on session settings, so every
snapshot pins them (SNAPSHOT_SETTINGS).
"""

from __future__ import annotations

import contextlib
import json

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    ALL_TABLES,
    AUDIT_TARGET_WORKERS,
    AUDIT_WORKERS_HELD,
    AUDIT_WORKERS_RELEASED,
    TABLE_AUDIT,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_tables

CHECKSUM_METHOD = "sum64(md5(row::text)) mod 2^64, TimeZone=UTC, DateStyle=ISO"
# The column whose newest value each figure reports, where a table has it.
CREATED_AT_COLUMN = "created_at"
# Session settings row::text depends on; pinned so the same rows give the same checksum on any server.
SNAPSHOT_SETTINGS = (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("IntervalStyle", "postgres"),
                     ("extra_float_digits", "1"), ("bytea_output", "hex"))
# Our marker in a database's COMMENT: what cerniq.outreach did to it (restored from a backup, kept after a swap).
MARKER_KEY = "cerniq_outreach"
_TWO_TO_64 = 2 ** 64

try:
    from psycopg2 import sql as pgsql
    from psycopg2.extensions import ISOLATION_LEVEL_REPEATABLE_READ
except ImportError:  # require_libraries() reports it in the module
    pgsql = None
    ISOLATION_LEVEL_REPEATABLE_READ = None


def parse_marker(comment):
    """Our marker (a dict) from a database comment, or None when the comment is not ours."""
    if not comment:
        return None
    try:
        value = json.loads(comment)
    except ValueError:
        return None
    if isinstance(value, dict) and MARKER_KEY in value:
        return value
    return None


def pin_session(cur):
    for name, value in SNAPSHOT_SETTINGS:
        cur.execute("SELECT set_config(%s, %s, true)", (name, value))


def _figures_statement(tables, with_created_at, checksum):
    ident = pgsql.Identifier
    parts = []
    for table in tables:
        newest = (pgsql.SQL("max(t.{0})::text").format(ident(CREATED_AT_COLUMN)) if table in with_created_at
                  else pgsql.SQL("NULL::text"))
        total = (pgsql.SQL("coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)")
                 if checksum else pgsql.SQL("NULL::numeric"))
        parts.append(pgsql.SQL("SELECT {0}::text, count(*), {1}, {2} FROM {3} AS t").format(
            pgsql.Literal(table), newest, total, ident(table)))
    return pgsql.SQL(" UNION ALL ").join(parts)


def table_figures(cur, tables, checksum=True):
    """{table: {"rows", "max_created_at", "checksum"}} read on `cur`, in whatever snapshot its transaction holds.

    One statement for every table. `max_created_at` is None where the table has no created_at column (or no rows);
    `checksum` is 16 hex digits, or None when `checksum` is false.
    """
    pin_session(cur)
    cur.execute("SELECT table_name::text FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND column_name = %s AND table_name = ANY(%s)", (CREATED_AT_COLUMN, list(tables)))
    with_created_at = {row[0] for row in cur.fetchall()}
    cur.execute(_figures_statement(tables, with_created_at, checksum))
    figures = {}
    for table, rows, newest, total in cur.fetchall():
        figures[table] = dict(rows=rows, max_created_at=newest,
                              checksum=None if total is None else "{0:016x}".format(int(total) % _TWO_TO_64))
    return {table: figures[table] for table in tables}


def database_facts(cur):
    """Name, size and our marker (parsed COMMENT) of the database `cur` is connected to."""
    cur.execute("SELECT d.datname::text, pg_database_size(d.oid), shobj_description(d.oid, 'pg_database'), "
                "split_part(current_setting('server_version'), ' ', 1) FROM pg_database d "
                "WHERE d.datname = current_database()")
    name, size, comment, version = cur.fetchone()
    return dict(name=name, size_bytes=size, marker=parse_marker(comment), server_version=version)


def workers_hold(cur):
    """A recovery's hold on the workers, read from ops_audit_log on the connection of `cur` (one read on the target
    index): the latest held/released row, as dict(open, recovery, at, actor, hosts); None when no recovery ever
    recorded one there (or the database has no audit table)."""
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE_AUDIT,))
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT action, after, at, actor FROM " + TABLE_AUDIT + " WHERE target = %s AND action = ANY(%s) "
                "ORDER BY at DESC, id DESC LIMIT 1",
                (AUDIT_TARGET_WORKERS, [AUDIT_WORKERS_HELD, AUDIT_WORKERS_RELEASED]))
    row = cur.fetchone()
    if row is None:
        return None
    action, after, at, actor = row
    after = after if isinstance(after, dict) else {}
    return dict(open=action == AUDIT_WORKERS_HELD, recovery=after.get("recovery"), hosts=after.get("hosts") or [],
                at=at.isoformat() if at is not None else None, actor=actor)


@contextlib.contextmanager
def snapshot_cursor(params, require=ALL_TABLES):
    """A cursor in a REPEATABLE READ, READ ONLY transaction: every figure it reads comes from one snapshot."""
    conn = postgres_connect(params, require, writable=False)
    try:
        with postgres_errors(params, conn):
            conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
            with conn.cursor() as cur:
                yield cur
            conn.rollback()
    finally:
        conn.close()


def database_snapshot(params, tables=None, checksum=True, allow_missing_tables=False):
    """The result of db_snapshot_info: the database's facts and each table's figures, from one snapshot.

    With `allow_missing_tables`, a table that does not exist is listed in `missing_tables` instead of failing (a
    damaged database that a recovery is about to replace).
    """
    tables = validate_tables(tables)
    with snapshot_cursor(params, require=() if allow_missing_tables else tables) as cur:
        database = database_facts(cur)
        database["exists"] = True
        cur.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NULL", (tables,))
        missing = [row[0] for row in cur.fetchall()]
        figures = table_figures(cur, [t for t in tables if t not in missing], checksum)
        hold = workers_hold(cur)
    return dict(changed=False, database=database, tables=figures, missing_tables=missing, workers_hold=hold,
                where=postgres_where(params), checksum_method=CHECKSUM_METHOD if checksum else None)


def compare_figures(expected, actual, compare_checksums=True):
    """Differences between two {table: figures} maps, one line each; [] when they agree.

    A table missing on either side is a difference; checksums are compared only where both sides have one.
    """
    differences = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            differences.append("{0}: in the manifest, missing from the database".format(table))
            continue
        if table not in expected:
            differences.append("{0}: in the database, not in the manifest".format(table))
            continue
        want, have = expected[table], actual[table]
        for field in ("rows", "max_created_at", "checksum"):
            if field == "checksum" and (not compare_checksums or want.get(field) is None or have.get(field) is None):
                continue
            if want.get(field) != have.get(field):
                differences.append("{0}: {1} {2} expected, {3} found".format(
                    table, field, want.get(field), have.get(field)))
    return differences
