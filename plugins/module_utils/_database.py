# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whole databases: create, drop, restore a backup into a fresh one and verify it, swap it in, mark it.

Statements that act on a database run on a connection to the maintenance database (`postgres`), in autocommit
(CREATE/DROP DATABASE refuse a transaction). What cerniq.outreach did to a database is written as JSON in the
database's COMMENT (the marker, see _snapshot.parse_marker): `restoring` while pg_restore runs, `restored` once the
copy matched its manifest, `verification_failed` when it did not, `kept` on the live database a swap displaced.
Markers are not dumped (pg_dump writes database comments only with --create), so they never travel into a backup.
"""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._backup import (
    find_tool,
    libpq_env,
    require_verified,
    run_tool,
    select_backup,
    tool_failure,
)
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
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import (
    MARKER_KEY,
    compare_figures,
    database_snapshot,
    parse_marker,
    pgsql,
    snapshot_cursor,
    table_figures,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import workers_hold as read_workers_hold
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_tables

MARK_RESTORING = "restoring"
MARK_RESTORED = "restored"
MARK_FAILED = "verification_failed"
MARK_KEPT = "kept"
DEFAULT_MAINTENANCE_DB = "postgres"
# Unquoted-identifier safe, so an SRE can type the name in psql as it is shown.
DATABASE_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}\Z")
SESSIONS_GONE_TIMEOUT = 10.0
MAX_REPORTED_DIFFERENCES = 20


def validate_database_name(name, option="name"):
    if not DATABASE_NAME_RE.match(name or ""):
        raise CerniqError("{0} {1!r} is not a plain database name: lower-case letters, digits and '_', at most 63, "
                          "not starting with a digit".format(option, name))
    return name


def _ident(name):
    return pgsql.Identifier(name)


def _with_db(params, name):
    copied = dict(params)
    copied["db_name"] = name
    return copied


class Maintenance(object):
    """An autocommit connection to the maintenance database, for statements about whole databases."""

    def __init__(self, params, maintenance_db=DEFAULT_MAINTENANCE_DB):
        self.params = _with_db(params, maintenance_db)
        self.conn = postgres_connect(self.params, require=())
        self.conn.autocommit = True

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def execute(self, statement, args=None):
        with postgres_errors(self.params), self.conn.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall() if cur.description else None

    def databases(self, names):
        """{name: {"allow_connections", "comment", "marker"}} for those of `names` that exist."""
        rows = self.execute("SELECT datname::text, datallowconn, shobj_description(oid, 'pg_database') "
                            "FROM pg_database WHERE datname = ANY(%s)", (list(names),))
        return {name: dict(allow_connections=allow, comment=comment, marker=parse_marker(comment))
                for name, allow, comment in rows}

    def sessions(self, names):
        return self.execute("SELECT datname::text, pid, usename::text, coalesce(application_name, '') "
                            "FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()",
                            (list(names),))

    def end_sessions(self, names):
        """Terminate every session on `names` and wait until they are gone; one clear error when we may not."""
        sessions = self.sessions(names)
        refused = []
        for datname, pid, user, application in sessions:
            try:
                self.execute("SELECT pg_terminate_backend(%s)", (pid,))
            except CerniqError:
                refused.append("pid {0} ({1}, {2}) on {3}".format(pid, user, application or "no application name",
                                                                  datname))
        if refused:
            raise CerniqError("cannot end the session(s) {0}: {1} may only end its own role's sessions. Stop "
                              "those clients (or grant pg_signal_backend) and re-run; nothing was renamed".format(
                                  "; ".join(refused), self.params["db_user"]))
        deadline = time.monotonic() + SESSIONS_GONE_TIMEOUT
        while self.sessions(names):
            if time.monotonic() > deadline:
                left = ", ".join("pid {1} ({2}) on {0}".format(*s) for s in self.sessions(names))
                raise CerniqError("sessions still open after {0:.0f}s: {1}".format(SESSIONS_GONE_TIMEOUT, left))
            time.sleep(0.1)
        return len(sessions)

    def access(self, name):
        """What pg_dump without --create leaves out of a backup: the database's GRANTs and its settings.

        {"acl": [{"grantee", "privilege", "grantable"}] or None (never changed from the defaults), "settings":
        ["name=value"] set with ALTER DATABASE, "role_settings": ["role: name=value"] (ALTER ROLE ... IN DATABASE)}.
        """
        rows = self.execute(
            "SELECT d.datacl IS NULL, coalesce((SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' "
            "ELSE quote_ident(r.rolname) END || ' ' || a.privilege_type || ' ' || a.is_grantable::text "
            "ORDER BY a.grantee, a.privilege_type) FROM aclexplode(d.datacl) a LEFT JOIN pg_roles r "
            "ON r.oid = a.grantee), '{}'), "
            "coalesce((SELECT s.setconfig FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0), "
            "'{}'), coalesce((SELECT array_agg(r.rolname || ': ' || c ORDER BY r.rolname, c) FROM pg_db_role_setting s "
            "JOIN pg_roles r ON r.oid = s.setrole, unnest(s.setconfig) c WHERE s.setdatabase = d.oid), '{}') "
            "FROM pg_database d WHERE d.datname = %s", (name,))
        default_acl, grants, settings, role_settings = rows[0]
        acl = None
        if not default_acl:
            acl = [dict(grantee=grantee, privilege=privilege, grantable=grantable == "true")
                   for grantee, privilege, grantable in (entry.rsplit(" ", 2) for entry in grants)]
        return dict(acl=acl, settings=list(settings), role_settings=list(role_settings))

    def set_marker(self, name, marker):
        self.execute(pgsql.SQL("COMMENT ON DATABASE {0} IS %s").format(_ident(name)),
                     (json.dumps(marker, sort_keys=True, default=str),))

    def create(self, name, marker=None):
        self.execute(pgsql.SQL("CREATE DATABASE {0} TEMPLATE template0").format(_ident(name)))
        if marker:
            self.set_marker(name, marker)

    def drop(self, name):
        self.end_sessions([name])
        self.execute(pgsql.SQL("DROP DATABASE IF EXISTS {0}").format(_ident(name)))


def _marker(state, **fields):
    marker = {MARKER_KEY: state}
    marker.update(fields)
    return marker


def _audit_in(params, database, action, target, reason=None, step_reason=None, before=None, after=None):
    """One audit row in `database`'s own ops_audit_log (the database that is live once the step is done).

    The module's `reason` option (why: an incident, the DR run) joins the step's own reason (`step_reason`).
    """
    reason = "; ".join(part for part in (step_reason, reason) if part) or None
    there = _with_db(params, database)
    conn = postgres_connect(there, require=())
    try:
        with postgres_errors(there, conn):
            trail = AuditTrail(conn, "db_database", params.get("audit_actor"))
            trail.record(action, target, reason=reason, before=before, after=after)
            conn.commit()
    finally:
        conn.close()


def _now_iso():
    return datetime.now(timezone.utc).isoformat()


def _refuse_live(params, name, what):
    if name == params["db_name"]:
        raise CerniqError("{0} {1} refused: it is the database the platform uses (db_name). {2}".format(
            what, name, "Restore into a fresh database and swap it in (dr_database.yml)" if what == "restore into"
            else "Swap another database in first"))


# --- the live database, whatever state it is in (dr_database's first look) -------------------------------------

def snapshot_info(params, *, tables=None, checksum=True, allow_missing=False, maintenance_db=DEFAULT_MAINTENANCE_DB):
    """db_snapshot_info: database_snapshot, or with `allow_missing` - when the database or some of its tables are
    gone - what is left of it (asking `maintenance_db` whether it exists).

    A recovery must be able to look at a database that was dropped or damaged without failing on it. Here rather
    than in _snapshot.py because that check is a statement about a whole database (Maintenance).
    """
    if not allow_missing:
        return database_snapshot(params, tables, checksum)
    with Maintenance(params, maintenance_db) as maint:
        exists = params["db_name"] in maint.databases([params["db_name"]])
    if not exists:
        return dict(changed=False, database=dict(name=params["db_name"], exists=False, size_bytes=None, marker=None,
                                                 server_version=None),
                    tables={}, missing_tables=validate_tables(tables), workers_hold=None,
                    where=postgres_where(params), checksum_method=None)
    return database_snapshot(params, tables, checksum, allow_missing_tables=True)


# --- present / absent -------------------------------------------------------------------------------------------

def ensure_present(params, name, marker_update, check_mode, maintenance_db, reason=None):
    validate_database_name(name)
    with Maintenance(params, maintenance_db) as maint:
        existing = maint.databases([name]).get(name)
        if existing is None:
            marker = _marker("created", **(marker_update or {})) if marker_update else None
            if not check_mode:
                maint.create(name, marker)
            result = dict(changed=True, database=name, created=True, marker=marker)
            if not check_mode:
                _audit_in(params, params["db_name"], "db_create", name, reason=reason, after=dict(marker=marker))
            return result
        current = existing["marker"]
        if not marker_update:
            return dict(changed=False, database=name, created=False, marker=current)
        if current is None and existing["comment"]:
            raise CerniqError("database {0} has a comment that is not a cerniq.outreach marker ({1!r}); refusing to "
                              "overwrite it".format(name, existing["comment"][:80]))
        wanted = dict(current or _marker("created"))
        wanted.update(marker_update)
        if wanted == current:
            return dict(changed=False, database=name, created=False, marker=current)
        if not check_mode:
            maint.set_marker(name, wanted)
            _audit_in(params, name, "db_mark", name, reason=reason, before=dict(marker=current),
                      after=dict(marker=wanted))
        result = dict(changed=True, database=name, created=False, marker=wanted)
        result["diff"] = dict(before=dict(marker=current), after=dict(marker=wanted))
        return result


def ensure_absent(params, name, check_mode, maintenance_db, reason=None):
    validate_database_name(name)
    _refuse_live(params, name, "dropping")
    with Maintenance(params, maintenance_db) as maint:
        existing = maint.databases([name]).get(name)
        if existing is None:
            return dict(changed=False, database=name, dropped=False)
        sessions = len(maint.sessions([name]))
        if not check_mode:
            maint.drop(name)
            _audit_in(params, params["db_name"], "db_drop", name, reason=reason,
                      before=dict(marker=existing["marker"]), after=dict(sessions_ended=sessions))
    return dict(changed=True, database=name, dropped=True, sessions_ended=sessions,
                diff=dict(before=dict(database=name, marker=existing["marker"]), after=dict(database=None)))


# --- a recovery's hold on the workers ---------------------------------------------------------------------------

HOLDS = ("opened", "closed")
MAX_RECOVERY_ID = 200


def set_workers_hold(params, name, hold, recovery, hosts, check_mode, reason=None):
    """Open (`opened`: a recovery is about to stop the workers) or close (`closed`: they run again) a recovery's hold
    on the workers, as an audit row in the live database's ops_audit_log (_contract.AUDIT_WORKERS_HELD/_RELEASED).

    Changed only when the latest record differs: opening the hold the same recovery holds, or closing a hold that is
    not open, changes nothing. Closing names the recovery whose hold it closes (and `recovery`, the one closing it).
    """
    if name != params["db_name"]:
        raise CerniqError("workers_hold is kept in the live database's audit log: name must be {0} (db_name), got "
                          "{1}".format(params["db_name"], name))
    if hold not in HOLDS:
        raise CerniqError("workers_hold must be one of {0}, got {1!r}".format(", ".join(HOLDS), hold))
    recovery = (recovery or "").strip()
    if not recovery or len(recovery) > MAX_RECOVERY_ID or "\n" in recovery:
        raise CerniqError("recovery (the id of the recovery holding or releasing the workers) must be one line of 1 "
                          "to {0} characters".format(MAX_RECOVERY_ID))
    hosts = [str(h) for h in (hosts or [])]
    conn = postgres_connect(params, require=(TABLE_AUDIT,))
    try:
        with postgres_errors(params, conn):
            with conn.cursor() as cur:
                before = read_workers_hold(cur)
            is_open = bool(before and before["open"])
            if hold == "opened":
                changed = not (is_open and before["recovery"] == recovery)
                after = dict(recovery=recovery, hosts=hosts)
                if is_open and changed:
                    after["replaces"] = before["recovery"]
                action = AUDIT_WORKERS_HELD
            else:
                changed = is_open
                after = dict(recovery=before["recovery"] if is_open else None, hosts=hosts, released_by=recovery)
                action = AUDIT_WORKERS_RELEASED
            if changed and not check_mode:
                AuditTrail(conn, "db_database", params.get("audit_actor")).record(
                    action, AUDIT_TARGET_WORKERS, reason=reason, before=before, after=after)
                conn.commit()
                with conn.cursor() as cur:
                    now = read_workers_hold(cur)
            elif changed:
                now = dict(open=hold == "opened", recovery=after["recovery"], hosts=hosts, at=None,
                           actor=params.get("audit_actor"))
            else:
                now = before
            conn.rollback()
    finally:
        conn.close()
    return dict(changed=changed, database=name, workers_hold=now, diff=dict(before=dict(workers_hold=before),
                                                                            after=dict(workers_hold=now)))


# --- restored ---------------------------------------------------------------------------------------------------

def _analyze(params, name):
    target = _with_db(params, name)
    conn = postgres_connect(target, require=())
    conn.autocommit = True
    try:
        # No parameters are passed, so '%' is literal here.
        with postgres_errors(target), conn.cursor() as cur:
            cur.execute("SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n "
                        "ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN "
                        "('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'")
            tables = [row[0] for row in cur.fetchall()]
            if tables:
                # Names come from format('%I'), already quoted; ANALYZE takes a list since PostgreSQL 11.
                cur.execute("ANALYZE " + ", ".join(tables))
        return len(tables)
    finally:
        conn.close()


def _run_pg_restore(params, name, dump_path, jobs, no_owner, pg_restore):
    argv = [pg_restore, "--no-password", "--exit-on-error", "--jobs={0}".format(jobs),
            "--dbname={0}".format(name)]
    if no_owner:
        argv += ["--no-owner", "--no-privileges"]
    argv.append(dump_path)
    proc = run_tool(argv, libpq_env(params, name))
    if proc.returncode != 0:
        raise CerniqError(tool_failure("pg_restore of {0} into database {1}".format(dump_path, name), proc.stderr,
                                       proc.returncode))


def restore_database(params, name, backup_path, check_mode, jobs=2, no_owner=False, analyze=True,
                     pg_bin_dir=None, maintenance_db=DEFAULT_MAINTENANCE_DB, reason=None):
    """Restore a backup into the fresh database `name`, verify it against the manifest, ANALYZE, mark it restored.

    The backup is verified (size, sha256, pg_restore --list) before anything is created. Idempotent: a database
    already marked restored from the same backup is left alone. A mismatch leaves the copy (marked
    verification_failed) for inspection and fails; the live database is never touched.
    """
    validate_database_name(name)
    _refuse_live(params, name, "restore into")
    if jobs < 1:
        raise CerniqError("jobs must be at least 1 (got {0})".format(jobs))
    if not backup_path or not os.path.isabs(backup_path):
        raise CerniqError("backup {0!r} must be the absolute path of a backup directory (with manifest.json)".format(
            backup_path))
    backup = select_backup(os.path.dirname(os.path.normpath(backup_path)), backup_path)
    manifest = backup["manifest"]
    identity = dict(backup=backup["id"], sha256=manifest["dump"]["sha256"])
    with Maintenance(params, maintenance_db) as maint:
        existing = maint.databases([name]).get(name)
        marker = existing["marker"] if existing else None
        if existing and marker and marker.get(MARKER_KEY) == MARK_RESTORED and \
                all(marker.get(k) == v for k, v in identity.items()):
            return dict(changed=False, database=name, backup=backup["id"], marker=marker,
                        msg="{0} was already restored from backup {1} and verified".format(name, backup["id"]))
        if existing and not (marker and marker.get(MARKER_KEY) in (MARK_RESTORING, MARK_FAILED, MARK_RESTORED)
                             and marker.get("backup") == backup["id"]):
            raise CerniqError("database {0} exists and is not an earlier restore of backup {1} (its marker: {2}); "
                              "choose another name or drop it first; nothing was changed".format(
                                  name, backup["id"], marker))
        pg_restore = find_tool("pg_restore", pg_bin_dir)
        check = require_verified(backup, pg_restore)
        plan = dict(database=name, backup=backup["id"], backup_path=backup["path"],
                    replaces_unfinished=bool(existing),
                    rows={t: f["rows"] for t, f in manifest["tables"].items()})
        if check_mode:
            return dict(changed=True, plan=plan, verify_seconds=check["seconds"], database=name,
                        backup=backup["id"])
        timings = dict(verify_backup=check["seconds"])
        if existing:
            maint.drop(name)
        maint.create(name, _marker(MARK_RESTORING, started_at=_now_iso(), **identity))
        started = time.monotonic()
        _run_pg_restore(params, name, check["dump_path"], jobs, no_owner, pg_restore)
        timings["pg_restore"] = round(time.monotonic() - started, 3)
        started = time.monotonic()
        # A runbook-layout backup has no figures: the restore must hold the contract tables, its counts are reported.
        tables = list(manifest["tables"]) or list(ALL_TABLES)
        with snapshot_cursor(_with_db(params, name), require=tables) as cur:
            figures = table_figures(cur, tables)
        differences = compare_figures(manifest["tables"], figures) if manifest["tables"] else []
        timings["verify_restore"] = round(time.monotonic() - started, 3)
        if differences:
            maint.set_marker(name, _marker(MARK_FAILED, differences=differences[:MAX_REPORTED_DIFFERENCES],
                                           **identity))
            raise CerniqError("the restored database {0} does not match backup {1}'s manifest: {2}. It is left for "
                              "inspection (marked {3}); the live database was not touched".format(
                                  name, backup["id"], "; ".join(differences[:5]), MARK_FAILED),
                              differences=differences)
        analyzed = 0
        if analyze:
            started = time.monotonic()
            analyzed = _analyze(params, name)
            timings["analyze"] = round(time.monotonic() - started, 3)
        final = _marker(MARK_RESTORED, restored_at=_now_iso(), source_database=manifest.get("database"),
                        **identity)
        maint.set_marker(name, final)
    rows = {table: counted["rows"] for table, counted in figures.items()}
    _audit_in(params, name, "db_restore", name, reason=reason,
              step_reason="restore of backup {0}".format(backup["id"]),
              after=dict(backup=backup["id"], sha256=identity["sha256"], rows=rows, analyzed_tables=analyzed,
                         seconds=timings))
    return dict(changed=True, database=name, backup=backup["id"], marker=final, tables=figures,
                analyzed_tables=analyzed, timings=timings, plan=plan)


# --- renamed (swap) ---------------------------------------------------------------------------------------------

_SETTING_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*\Z")


def _carry_access(cur, target, access):
    """Give `target` the GRANTs and ALTER DATABASE settings of the database it replaces (not in any dump)."""
    ident = _ident(target)
    if access["acl"] is not None:
        cur.execute(pgsql.SQL("REVOKE ALL ON DATABASE {0} FROM PUBLIC").format(ident))
        for entry in access["acl"]:
            # grantee is 'PUBLIC' or quote_ident()'s output; privilege one of CREATE/CONNECT/TEMPORARY.
            cur.execute(pgsql.SQL("GRANT {0} ON DATABASE {1} TO {2}{3}").format(
                pgsql.SQL(entry["privilege"]), ident, pgsql.SQL(entry["grantee"]),
                pgsql.SQL(" WITH GRANT OPTION" if entry["grantable"] else "")))
    for setting in access["settings"]:
        key, value = setting.split("=", 1)
        if not _SETTING_NAME_RE.match(key):
            raise CerniqError("setting {0!r} of the replaced database has an unexpected name; nothing was "
                              "renamed".format(setting))
        cur.execute(pgsql.SQL("ALTER DATABASE {0} SET {1} = {2}").format(ident, pgsql.SQL(key), pgsql.Literal(value)))


def rename_database(params, name, new_name, replace, keep_as, check_mode, maintenance_db=DEFAULT_MAINTENANCE_DB,
                    reason=None):
    """Rename `name` to `new_name`; with `replace`, the existing `new_name` is first kept as `keep_as`.

    Both renames commit in one transaction, so there is never a moment with neither database under `new_name`
    nor a half-done swap. Sessions on both are ended first (the workers should be stopped). Idempotent: when
    `name` is gone and `new_name` exists, the rename is done.
    """
    validate_database_name(name)
    validate_database_name(new_name, "new_name")
    if name == new_name:
        raise CerniqError("name and new_name are both {0}".format(name))
    if replace:
        if not keep_as:
            keep_as = "{0}_pre_dr_{1}".format(new_name, datetime.now(timezone.utc).strftime("%Y%m%dt%H%M%Sz"))
        validate_database_name(keep_as, "keep_as")
        if keep_as in (name, new_name):
            raise CerniqError("keep_as must differ from name and new_name")
    with Maintenance(params, maintenance_db) as maint:
        found = maint.databases([name, new_name] + ([keep_as] if replace else []))
        if name not in found:
            if new_name in found:
                return dict(changed=False, database=new_name, kept_as=None,
                            msg="{0} no longer exists and {1} does: already renamed".format(name, new_name))
            raise CerniqError("neither {0} nor {1} exists on {2}".format(name, new_name, postgres_where(params)))
        if new_name in found and not replace:
            raise CerniqError("{0} exists: set replace=true to keep it as another name and swap {1} in".format(
                new_name, name))
        if replace and keep_as in found:
            raise CerniqError("{0} (keep_as) exists already; choose another name".format(keep_as))
        displaced = new_name in found
        before = dict(databases={n: found[n]["marker"] for n in (name, new_name) if n in found})
        after = dict(database=new_name, was=name, kept_as=keep_as if displaced else None)
        access = maint.access(new_name) if displaced else None
        if access:
            after["access_carried"] = dict(acl=access["acl"], settings=access["settings"])
            after["role_settings_not_carried"] = access["role_settings"]
        if check_mode:
            sessions = len(maint.sessions([name, new_name]))
            return dict(changed=True, database=new_name, kept_as=after["kept_as"], sessions_to_end=sessions,
                        access=access, diff=dict(before=before, after=after))
        if displaced:
            maint.execute(pgsql.SQL("ALTER DATABASE {0} WITH ALLOW_CONNECTIONS false").format(_ident(new_name)))
        try:
            ended = maint.end_sessions([name, new_name])
            with postgres_errors(maint.params, maint.conn):
                maint.conn.autocommit = False
                with maint.conn.cursor() as cur:
                    rename = pgsql.SQL("ALTER DATABASE {0} RENAME TO {1}")
                    if displaced:
                        _carry_access(cur, name, access)
                        cur.execute(rename.format(_ident(new_name), _ident(keep_as)))
                    cur.execute(rename.format(_ident(name), _ident(new_name)))
                maint.conn.commit()
                maint.conn.autocommit = True
        except BaseException:
            if maint.conn.closed == 0:
                maint.conn.rollback()
                maint.conn.autocommit = True
                if displaced:
                    maint.execute(pgsql.SQL("ALTER DATABASE {0} WITH ALLOW_CONNECTIONS true").format(
                        _ident(new_name)))
            raise
        if displaced:
            maint.set_marker(keep_as, _marker(MARK_KEPT, kept_at=_now_iso(), was=new_name, replaced_by=name,
                                              previous=found[new_name]["marker"]))
            # Kept for inspection and a way back: reachable under its new name only.
            maint.execute(pgsql.SQL("ALTER DATABASE {0} WITH ALLOW_CONNECTIONS true").format(_ident(keep_as)))
    _audit_in(params, new_name, "db_swap" if displaced else "db_rename", new_name, reason=reason, before=before,
              after=dict(after, sessions_ended=ended))
    return dict(changed=True, database=new_name, kept_as=after["kept_as"], sessions_ended=ended, access=access,
                diff=dict(before=before, after=after))


# --- db_database ------------------------------------------------------------------------------------------------

def ensure_database(params, *, name, state="present", backup=None, jobs=2, no_owner=False, analyze=True,
                    new_name=None, replace=False, keep_as=None, marker=None, workers_hold=None, recovery=None,
                    hosts=(), pg_bin_dir=None, maintenance_db=DEFAULT_MAINTENANCE_DB, reason=None, check_mode=False,
                    want_diff=False):
    """db_database: the step `state` asks for on database `name` (present, absent, restored, renamed), or with
    `workers_hold` only that hold recorded; `reason` goes into every audit row it writes."""
    if workers_hold:
        if state != "present" or marker:
            raise CerniqError("workers_hold goes with state=present and no marker: it records the hold and does "
                              "nothing else. Nothing was changed.")
        result = set_workers_hold(params, name, workers_hold, recovery, hosts, check_mode, reason=reason)
    elif state == "restored":
        result = restore_database(params, name, backup, check_mode, jobs=jobs, no_owner=no_owner, analyze=analyze,
                                  pg_bin_dir=pg_bin_dir, maintenance_db=maintenance_db, reason=reason)
    elif state == "renamed":
        result = rename_database(params, name, new_name, replace, keep_as, check_mode, maintenance_db=maintenance_db,
                                 reason=reason)
    elif state == "absent":
        result = ensure_absent(params, name, check_mode, maintenance_db, reason=reason)
    else:
        result = ensure_present(params, name, marker, check_mode, maintenance_db, reason=reason)
    if not want_diff:
        result.pop("diff", None)
    return result
