# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Archive of the communication log (runbook 8.1 step 2): rows older than the cutoff move to the archive table in
keyed batches, each batch one atomic statement in its own short transaction, so the run can be killed at any moment
and re-run: every row is in exactly one of the two tables all the time.

The runbook's INSERT-then-DELETE is two transactions over the whole backlog: rows that age past the cutoff between
them are deleted without having been copied, a failure between them leaves every row in both tables, and the DELETE
holds its row locks for as long as it takes. And its fixed column list would drop the values of any column the
production table has beyond it: whole rows move here, the columns read from the catalog at run time, and a run whose
archive table lacks a live column (or has it with another type) is refused before its first batch.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import datetime, timedelta, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_reading,
    postgres_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    ARCHIVE_AFTER_DAYS,
    TABLE_AUDIT,
    TABLE_COMM_LOG,
    TABLE_COMM_LOG_ARCHIVE,
    platform_zone,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    from psycopg2 import errors as pg_errors
    from psycopg2 import sql
except ImportError:  # the module reports the missing library before any of this runs
    pg_errors = sql = None

MODULE = "comm_log_archive"
# Ids per batch, chosen with `python -m bench.archive --sweep`: least PostgreSQL CPU per row of the sizes tried, and
# batches under 250 ms of locks even on a loaded 2-CPU host (20,000 went to 370 ms).
DEFAULT_BATCH_SIZE = 10000
MAX_BATCH_SIZE = 100000
DEFAULT_LOCK_TIMEOUT = 2.0
DEFAULT_BATCH_TIMEOUT = 10.0
# One archive run at a time, across every controller: a session-level advisory lock on this name.
RUN_LOCK_NAME = "cerniq.outreach.comm_log_archive"
# How many conflicting ids an error message lists.
_SHOWN_IDS = 10


# The audit actions of a run (its summary, written at its end) and of each committed batch.
ACTION_RUN = "comm_log_archive"
ACTION_BATCH = "comm_log_archive_batch"

# Rows older than the cutoff still in the live log, and when the archive last ran (the audit log: the last finished
# run's summary, and the last committed batch - a run killed midway leaves batches without a summary); a figure
# fragment (outreach_stats_info and the evening check use it too). Newest audit rows first: the primary key's index
# finds them without reading the whole log.
BACKLOG_FIGURE = (
    "SELECT jsonb_build_object('rows', count(*), 'first_id', min(id), 'last_id', max(id), "
    "'oldest', min(created_at), 'newest', max(created_at), "
    "'last_run', (SELECT jsonb_build_object('at', at, 'actor', actor, 'rows_moved', after -> 'rows_moved', "
    "'complete', after -> 'complete', 'cutoff', after -> 'cutoff') FROM " + TABLE_AUDIT + " WHERE action = '"
    + ACTION_RUN + "' ORDER BY id DESC LIMIT 1), "
    "'last_batch_at', (SELECT at FROM " + TABLE_AUDIT + " WHERE action = '" + ACTION_BATCH + "' ORDER BY id DESC "
    "LIMIT 1)) "
    "FROM " + TABLE_COMM_LOG + " WHERE created_at < %(archive_cutoff)s")

# The columns of both tables as the catalog has them now (a production table may have more than our DDL): name, type
# with its modifier, NOT NULL, has a default, generated, identity ALWAYS; one row per column of either table.
COLUMNS_SQL = (
    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef, "
    "a.attgenerated <> '', a.attidentity = 'a' "
    "FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid "
    "WHERE a.attrelid IN (to_regclass(%(live)s), to_regclass(%(archive)s)) AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY c.relname, a.attnum")

# Every batch takes a window of ids [lo, hi): the old rows in it leave the live log and enter the archive in one
# statement, which also finds where the next window starts (the next old row's id), so sparse ids cost nothing.
_NEXT_ID = ("(SELECT min(id) FROM " + TABLE_COMM_LOG + " WHERE id >= %(hi)s AND created_at < %(archive_cutoff)s)")
_WINDOW = "id >= %(lo)s AND id < %(hi)s AND created_at < %(archive_cutoff)s"

# The batch statements, with {columns} (every column of the live table, quoted identifiers), {insert_into} (the
# archive table and that column list), {arch_row} and {moved_row} filled in by ArchiveColumns.statements().
# The usual case: a plain INSERT, as cheap as the runbook's (ON CONFLICT's speculative insertion costs about as much
# again). A row already archived makes it fail; the window is then retried with the careful statement.
_FAST_BATCH = (
    "WITH moved AS (DELETE FROM " + TABLE_COMM_LOG + " WHERE " + _WINDOW + " RETURNING *), "
    "archived AS ({insert_into} SELECT {columns} FROM moved) "
    "SELECT count(*), count(*), min(id), max(id), '{{}}'::bigint[], " + _NEXT_ID + " FROM moved")

# After a conflict or a row lock the fast statement could not get: rows another session holds are left for the next
# run (SKIP LOCKED) instead of waited for; a row whose id is already archived is kept there only when its content is
# identical (a runbook run that died between its INSERT and its DELETE); anything else is returned as a clash and
# the batch rolled back.
_CAREFUL_BATCH = (
    "WITH batch AS (SELECT id FROM " + TABLE_COMM_LOG + " WHERE " + _WINDOW + " FOR UPDATE SKIP LOCKED), "
    "moved AS (DELETE FROM " + TABLE_COMM_LOG + " AS live USING batch WHERE live.id = batch.id "
    "RETURNING live.*), "
    "kept AS ({insert_into} SELECT {columns} FROM moved "
    "ON CONFLICT (id) DO NOTHING RETURNING id), "
    "counts AS (SELECT (SELECT count(*) FROM moved) AS moved, (SELECT count(*) FROM kept) AS kept), "
    "clash AS (SELECT moved.id FROM moved JOIN " + TABLE_COMM_LOG_ARCHIVE + " AS arch ON arch.id = moved.id "
    "WHERE (SELECT moved > kept FROM counts) AND {arch_row} IS DISTINCT FROM {moved_row}) "
    "SELECT counts.moved, counts.kept, (SELECT min(id) FROM moved), (SELECT max(id) FROM moved), "
    "(SELECT coalesce(array_agg(id ORDER BY id), '{{}}') FROM clash), " + _NEXT_ID + " FROM counts")

# Held by each batch before its statement, until its commit: no ALTER TABLE can change either table between the
# batch's column check and its statement (ROW EXCLUSIVE is what the DELETE and INSERT take anyway).
_LOCK_TABLES_SQL = "LOCK TABLE " + TABLE_COMM_LOG + ", " + TABLE_COMM_LOG_ARCHIVE + " IN ROW EXCLUSIVE MODE"


class ArchiveColumns(object):
    """Both tables' columns read from the catalog; whole rows move, or the run is refused before its first batch."""

    def __init__(self, rows):
        self.live = [r[1:] for r in rows if r[0] == TABLE_COMM_LOG]
        self.archive = dict((r[1], r[2:]) for r in rows if r[0] == TABLE_COMM_LOG_ARCHIVE)
        self.signature = tuple(tuple(r) for r in rows)

    @classmethod
    def read(cls, cur):
        cur.execute(COLUMNS_SQL, dict(live=TABLE_COMM_LOG, archive=TABLE_COMM_LOG_ARCHIVE))
        return cls(cur.fetchall())

    @property
    def names(self):
        return [c[0] for c in self.live]

    @property
    def archive_only(self):
        live = set(self.names)
        return [name for name in self.archive if name not in live]

    def problems(self):
        """Why whole rows cannot move, in words; empty when they can."""
        problems = []
        missing = ["{0} ({1})".format(name, kind) for name, kind in ((c[0], c[1]) for c in self.live)
                   if name not in self.archive]
        if missing:
            problems.append("{0} lacks column(s) {1} of {2}".format(TABLE_COMM_LOG_ARCHIVE, ", ".join(missing),
                                                                    TABLE_COMM_LOG))
        differ = ["{0} ({1} live, {2} archive)".format(name, kind, self.archive[name][0])
                  for name, kind in ((c[0], c[1]) for c in self.live)
                  if name in self.archive and self.archive[name][0] != kind]
        if differ:
            problems.append("column(s) with another type in {0}: {1}".format(TABLE_COMM_LOG_ARCHIVE, ", ".join(differ)))
        generated = [name for name in self.names if name in self.archive and self.archive[name][3]]
        if generated:
            problems.append("column(s) {0} of {1} are generated, so cannot take the live values".format(
                ", ".join(generated), TABLE_COMM_LOG_ARCHIVE))
        required = [name for name in self.archive_only if self.archive[name][1] and not self.archive[name][2]]
        if required:
            problems.append("column(s) {0} of {1} are NOT NULL without a default and not in {2}".format(
                ", ".join(required), TABLE_COMM_LOG_ARCHIVE, TABLE_COMM_LOG))
        for name in ("id", "created_at"):
            if name not in self.names:
                problems.append("{0} has no {1} column (the batches are windows of id, the cutoff is on "
                                "created_at)".format(TABLE_COMM_LOG, name))
        return problems

    def check(self, before_batch=None):
        problems = self.problems()
        if problems:
            when = ("before batch {0}: the tables changed during the run; that batch was rolled back".format(
                before_batch) if before_batch else "before the first batch")
            raise CerniqError("refusing to archive, {0}: {1}. Nothing of it moved: every column of {2} must exist in "
                              "{3} with the same type, or its values would be lost; ALTER the archive table to match "
                              "and re-run".format(when, "; ".join(problems), TABLE_COMM_LOG, TABLE_COMM_LOG_ARCHIVE),
                              columns=self.names, archive_only_columns=self.archive_only)
        return self

    def statements(self):
        """(fast, careful) batch statements over every live column, identifiers quoted by psycopg2."""
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in self.names)
        overriding = any(self.archive[name][4] for name in self.names)
        insert_into = sql.SQL("INSERT INTO {0} ({1}){2}").format(
            sql.Identifier(TABLE_COMM_LOG_ARCHIVE), columns,
            sql.SQL(" OVERRIDING SYSTEM VALUE" if overriding else ""))

        def row(alias):
            return sql.SQL("ROW({0})").format(sql.SQL(", ").join(sql.Identifier(alias, name) for name in self.names))

        parts = dict(columns=columns, insert_into=insert_into, arch_row=row("arch"), moved_row=row("moved"))
        return sql.SQL(_FAST_BATCH).format(**parts), sql.SQL(_CAREFUL_BATCH).format(**parts)

    def plan(self):
        return dict(columns=self.names, column_types=dict((c[0], c[1]) for c in self.live),
                    archive_only_columns=self.archive_only)


FIRST_ID_SQL = "SELECT min(id) FROM " + TABLE_COMM_LOG + " WHERE created_at < %(archive_cutoff)s"


def archive_cutoff(tz_name, older_than_days, now=None):
    """Calendar days in the platform's zone (a DST change does not move the cutoff by an hour), as UTC."""
    now = (now or datetime.now(timezone.utc)).astimezone(platform_zone(tz_name))
    return (now - timedelta(days=older_than_days)).astimezone(timezone.utc)


def _validate(older_than_days, batch_size, max_runtime, lock_timeout, batch_timeout):
    if older_than_days is None or older_than_days < 1:
        raise CerniqError("older_than_days is {0}: archive rows at least 1 day old (the runbook keeps {1})".format(
            older_than_days, ARCHIVE_AFTER_DAYS))
    if batch_size is None or not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise CerniqError("batch_size is {0}: use 1 to {1} (default {2}; larger batches hold their locks longer)"
                          .format(batch_size, MAX_BATCH_SIZE, DEFAULT_BATCH_SIZE))
    if max_runtime is not None and max_runtime <= 0:
        raise CerniqError("max_runtime is {0}: give the seconds after which no new batch starts, more than 0"
                          .format(max_runtime))
    for name, value in (("lock_timeout", lock_timeout), ("batch_timeout", batch_timeout)):
        if value is None or value <= 0:
            raise CerniqError("{0} is {1}: give seconds, more than 0".format(name, value))


def archive_comm_log(params, *, older_than_days=ARCHIVE_AFTER_DAYS, batch_size=DEFAULT_BATCH_SIZE, max_runtime=None,
                     lock_timeout=DEFAULT_LOCK_TIMEOUT, batch_timeout=DEFAULT_BATCH_TIMEOUT, check_mode=False,
                     now=None):
    """comm_log_archive: move every live row older than the cutoff (fixed once, so the run ends) to the archive."""
    _validate(older_than_days, batch_size, max_runtime, lock_timeout, batch_timeout)
    cutoff = archive_cutoff(params["timezone"], older_than_days, now)
    if check_mode:
        with postgres_reading(params, require=(TABLE_COMM_LOG, TABLE_COMM_LOG_ARCHIVE, TABLE_AUDIT)) as cur:
            columns = ArchiveColumns.read(cur).check()
            cur.execute(BACKLOG_FIGURE, dict(archive_cutoff=cutoff))
            backlog = cur.fetchone()[0]
        rows = backlog["rows"]
        planned = -(-rows // batch_size)
        return dict(columns.plan(), changed=rows > 0, cutoff=cutoff.isoformat(), would_move=backlog, rows_moved=0,
                    batches=0, batches_planned=planned, rows_remaining=rows, complete=rows == 0,
                    msg="would move {0} row(s) older than {1} in {2} batch(es) of up to {3}, whole rows: {4} "
                    "column(s) ({5})".format(rows, cutoff.isoformat(timespec="seconds"), planned, batch_size,
                                             len(columns.names), ", ".join(columns.names)),
                    diff=dict(before=dict(rows_older_than_cutoff=rows), after=dict(rows_older_than_cutoff=0)))
    run = _ArchiveRun(params, older_than_days, cutoff, batch_size, max_runtime, lock_timeout, batch_timeout)
    return run.execute()


class _ArchiveRun(object):
    def __init__(self, params, older_than_days, cutoff, batch_size, max_runtime, lock_timeout, batch_timeout):
        self.params = params
        self.older_than_days = older_than_days
        self.cutoff = cutoff
        self.batch_size = batch_size
        self.max_runtime = max_runtime
        self.lock_timeout = lock_timeout
        self.batch_timeout = batch_timeout
        self.run_id = str(uuid.uuid4())
        self.batches = []
        self.duplicates = 0
        self.columns = None
        self.statements = None

    @property
    def rows_moved(self):
        return sum(b["rows"] for b in self.batches)

    def execute(self):
        conn = postgres_connect(self.params, require=(TABLE_COMM_LOG, TABLE_COMM_LOG_ARCHIVE, TABLE_AUDIT))
        started = time.monotonic()
        try:
            with self._progress_on_failure():
                with postgres_errors(self.params, conn):
                    self._take_run_lock(conn)
                    self._set_timeouts(conn)
                    self._read_columns(conn)
                    stopped_early = self._move_batches(conn, started)
                    remaining = self._remaining(conn)
                    summary = self._summary(remaining, stopped_early, time.monotonic() - started)
                    AuditTrail(conn, MODULE, self.params.get("audit_actor")).record(
                        ACTION_RUN, TABLE_COMM_LOG, "rows older than {0} days".format(self.older_than_days),
                        before=dict(rows_older_than_cutoff=self.rows_moved + remaining),
                        after=dict((k, v) for k, v in summary.items() if k not in ("diff", "msg", "changed")))
                    conn.commit()
        finally:
            conn.close()
        return summary

    def _take_run_lock(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (RUN_LOCK_NAME,))
            if not cur.fetchone()[0]:
                cur.execute(
                    "SELECT a.pid, a.application_name, a.client_addr, a.backend_start, a.usename "
                    "FROM pg_locks AS l JOIN pg_stat_activity AS a USING (pid) WHERE l.locktype = 'advisory' "
                    "AND l.granted AND l.objsubid = 1 "
                    "AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended(%s, 0)", (RUN_LOCK_NAME,))
                holder = cur.fetchone()
                who = ("backend pid {0} ({1}, from {2}, user {3}, connected since {4})".format(
                    holder[0], holder[1] or "no application name", holder[2] or "local socket", holder[4],
                    holder[3].isoformat(timespec="seconds")) if holder else "another session")
                raise CerniqError("another comm_log_archive run is in progress on {0}: {1} holds the archive lock. "
                                  "Wait for it to finish (runs never overlap); if that session is stuck, end it with "
                                  "pg_terminate_backend and re-run: every batch is atomic".format(
                                      postgres_where(self.params), who))
        # The lock is the session's; committing keeps it and leaves no transaction open while batches run.
        conn.commit()

    def _set_timeouts(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                        ("{0}ms".format(int(self.lock_timeout * 1000)), "{0}ms".format(int(self.batch_timeout * 1000))))
        conn.commit()

    def _read_columns(self, conn):
        """Refuse before the first batch unless every live column has its twin, same type, in the archive."""
        with conn.cursor() as cur:
            self.columns = ArchiveColumns.read(cur).check()
        conn.commit()
        self.statements = self.columns.statements()

    def _recheck_columns(self, conn, cur):
        """In the batch's transaction, with both tables locked against DDL until its commit: still the same columns?"""
        cur.execute(_LOCK_TABLES_SQL)
        now = ArchiveColumns.read(cur)
        if now.signature != self.columns.signature:
            try:
                now.check(before_batch=len(self.batches) + 1)
            except CerniqError:
                conn.rollback()
                raise
            self.columns = now
            self.statements = now.statements()

    def _move_batches(self, conn, started):
        trail = AuditTrail(conn, MODULE, self.params.get("audit_actor"))
        with conn.cursor() as cur, self._batch_errors():
            cur.execute(FIRST_ID_SQL, dict(archive_cutoff=self.cutoff))
            low = cur.fetchone()[0]
        conn.commit()
        while low is not None:
            if self.max_runtime and time.monotonic() - started >= self.max_runtime:
                return True
            batch_started = time.perf_counter()
            window = dict(lo=low, hi=low + self.batch_size, archive_cutoff=self.cutoff)
            with conn.cursor() as cur:
                moved, kept, first_id, last_id, clashes, low = self._execute_batch(conn, cur, window)
                if clashes:
                    conn.rollback()
                    raise CerniqError(
                        "{0} row(s) of {1} are already in {2} with different content (ids {3}{4}): this batch was "
                        "rolled back and nothing of it moved. Compare those rows in both tables and remove the wrong "
                        "copy, then re-run".format(len(clashes), TABLE_COMM_LOG, TABLE_COMM_LOG_ARCHIVE,
                                                   ", ".join(str(i) for i in clashes[:_SHOWN_IDS]),
                                                   ", ..." if len(clashes) > _SHOWN_IDS else ""))
                if not moved:
                    conn.rollback()
                    continue
                batch = dict(batch=len(self.batches) + 1, rows=moved, first_id=first_id, last_id=last_id,
                             already_archived=moved - kept)
                # The batch's audit row commits with the batch: the log is complete even if the run is killed.
                trail.record(ACTION_BATCH, TABLE_COMM_LOG, None,
                             before=dict(table=TABLE_COMM_LOG, first_id=first_id, last_id=last_id),
                             after=dict(batch, table=TABLE_COMM_LOG_ARCHIVE, run_id=self.run_id,
                                        cutoff=self.cutoff.isoformat()))
            conn.commit()
            batch["seconds"] = time.perf_counter() - batch_started
            self.batches.append(batch)
            self.duplicates += moved - kept
        return False

    def _remaining(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM " + TABLE_COMM_LOG + " WHERE created_at < %s", (self.cutoff,))
            return cur.fetchone()[0]

    def _summary(self, remaining, stopped_early, seconds):
        moved = self.rows_moved
        longest = max((b["seconds"] for b in self.batches), default=0.0)
        complete = remaining == 0
        if complete:
            why = ""
        elif stopped_early:
            why = "; max_runtime reached, re-run to move the rest"
        else:
            why = "; other sessions held those rows, re-run to move them"
        return dict(
            changed=moved > 0, cutoff=self.cutoff.isoformat(), run_id=self.run_id, rows_moved=moved,
            batches=len(self.batches), batch_size=self.batch_size,
            first_id=self.batches[0]["first_id"] if self.batches else None,
            last_id=self.batches[-1]["last_id"] if self.batches else None,
            already_archived=self.duplicates, rows_remaining=remaining, complete=complete, columns=self.columns.names,
            longest_batch_ms=round(longest * 1000), seconds=round(seconds, 3),
            msg="moved {0} row(s) older than {1} in {2} batch(es), {3} left{4}".format(
                moved, self.cutoff.isoformat(timespec="seconds"), len(self.batches), remaining, why),
            diff=dict(before=dict(rows_older_than_cutoff=moved + remaining),
                      after=dict(rows_older_than_cutoff=remaining)))

    def _execute_batch(self, conn, cur, window):
        """One window, the fast statement first; (moved, kept, first id, last id, clashing ids, next window start)."""
        with self._batch_errors():
            self._recheck_columns(conn, cur)
            try:
                cur.execute(self.statements[0], window)
            except (pg_errors.UniqueViolation, pg_errors.LockNotAvailable):
                conn.rollback()
                self._recheck_columns(conn, cur)
                cur.execute(self.statements[1], window)
        return cur.fetchone()

    @contextlib.contextmanager
    def _batch_errors(self):
        number = len(self.batches) + 1
        try:
            yield
        except pg_errors.LockNotAvailable as exc:
            raise CerniqError("batch {0} waited more than lock_timeout ({1} s) for a lock on {2} (another session "
                              "holds the table, e.g. DDL or VACUUM FULL) and was rolled back; re-run when the table "
                              "is free".format(number, self.lock_timeout, TABLE_COMM_LOG)) from exc
        except pg_errors.QueryCanceled as exc:
            raise CerniqError("batch {0} ran longer than batch_timeout ({1} s) or was cancelled, and was rolled back: "
                              "lower batch_size (now {2}) or raise batch_timeout".format(
                                  number, self.batch_timeout, self.batch_size)) from exc

    @contextlib.contextmanager
    def _progress_on_failure(self):
        """A failure after some batches committed says how far the archive got (and that a re-run finishes it)."""
        try:
            yield
        except CerniqError as exc:
            if not self.batches:
                raise
            raise CerniqError("{0} (before that, {1} row(s) moved in {2} committed batch(es) up to id {3}; each batch "
                              "is atomic: re-run to finish)".format(exc.msg, self.rows_moved, len(self.batches),
                                                                    self.batches[-1]["last_id"]),
                              rows_moved=self.rows_moved, batches=len(self.batches)) from exc
