# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database backups: pg_dump -Fc into a dated directory with a manifest, verification, listing, retention.

A backup is one directory `<root>/<YYYY-MM-DDTHHMMSSZ>/` (UTC) holding `<db>.dump` and `manifest.json`. It is built
in `<root>/.partial-<id>/` and renamed into place only after the dump's checksum and `pg_restore --list` passed, so
a directory with a manifest is a backup that was verified when it was taken; `<root>/latest` links to the newest.

The manifest's table figures (_snapshot.py) come from the very snapshot pg_dump reads: this module exports the
snapshot of a REPEATABLE READ transaction, runs `pg_dump --snapshot` on it and reads the figures in it meanwhile, so
a restore can be compared with the manifest exactly while the platform keeps writing.

pg_dump and pg_restore run as child processes of the module with the password in their environment only: never on
a command line, never in the task's output (Ansible's own `environment:` keyword would show it with -vvv).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from datetime import datetime, timedelta, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ALL_TABLES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import (
    CHECKSUM_METHOD,
    ISOLATION_LEVEL_REPEATABLE_READ,
    database_facts,
    database_snapshot,
    table_figures,
)

MANIFEST_FORMAT = 1
MANIFEST_NAME = "manifest.json"
LATEST_LINK = "latest"
PARTIAL_PREFIX = ".partial-"
BACKUP_ID_FORMAT = "%Y-%m-%dT%H%M%SZ"
BACKUP_ID_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{6}Z\Z")
# The runbook's own layout (runbook 1.1 step 4, 6.1): `<root>/<YYYY-MM-DD>/cerniq.dump`, a pg_dump -Fc without a
# manifest. Listed (with RUNBOOK_WARNING), restored only when named, never pruned by our retention.
RUNBOOK_ID_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
RUNBOOK_ID_FORMAT = "%Y-%m-%d"
RUNBOOK_DUMP = "cerniq.dump"
RUNBOOK_WARNING = "no manifest: row counts cannot be verified"
LAYOUT_MANIFEST = "manifest"
LAYOUT_RUNBOOK = "runbook"
# Staging directories of a copy (db_backup state=imported): the fetched files, then the directory renamed into place.
FETCH_PREFIX = PARTIAL_PREFIX + "fetch-"
IMPORT_PREFIX = PARTIAL_PREFIX + "import-"
# A partial directory this old belongs to a run that died; younger ones may be a backup running right now.
STALE_PARTIAL = timedelta(days=1)
_HASH_CHUNK = 1024 * 1024


# --- pg_dump / pg_restore ---------------------------------------------------------------------------------------

def find_tool(name, bin_dir=None):
    """Absolute path of a PostgreSQL client program, from `bin_dir` or PATH."""
    if bin_dir:
        path = os.path.join(bin_dir, name)
        if not os.access(path, os.X_OK):
            raise CerniqError("{0} not found in pg_bin_dir {1}: point pg_bin_dir at the bin directory of a "
                              "PostgreSQL client at least as new as the server".format(name, bin_dir))
        return path
    candidates = _debian_bin_dirs(name)
    path = shutil.which(name) or (candidates[-1] if candidates else None)
    if not path:
        raise CerniqError("{0} is not installed on this host: install the PostgreSQL client (Debian: "
                          "postgresql-client-<server major>) or set pg_bin_dir".format(name))
    return path


def _debian_bin_dirs(name):
    base = "/usr/lib/postgresql"
    if not os.path.isdir(base):
        return []
    found = []
    for version in os.listdir(base):
        path = os.path.join(base, version, "bin", name)
        if version.isdigit() and os.access(path, os.X_OK):
            found.append(path)
    return sorted(found, key=lambda p: int(p.split(os.sep)[-3]))


def libpq_env(params, db_name=None):
    """Environment for pg_dump/pg_restore: connection settings and the password, never the command line."""
    env = dict(os.environ)
    for key in ("PGPASSWORD", "PGPASSFILE", "PGSERVICE", "PGOPTIONS"):
        env.pop(key, None)
    env.update(PGHOST=str(params["db_host"]), PGPORT=str(params["db_port"]), PGUSER=str(params["db_user"]),
               PGDATABASE=str(db_name or params["db_name"]), PGSSLMODE=str(params["db_sslmode"]),
               PGCONNECT_TIMEOUT=str(params.get("db_connect_timeout") or 5), PGAPPNAME="cerniq.outreach")
    if params.get("db_password"):
        env["PGPASSWORD"] = params["db_password"]
    if params.get("db_ssl_rootcert"):
        env["PGSSLROOTCERT"] = params["db_ssl_rootcert"]
    return env


def tool_failure(what, stderr, returncode):
    """One message for a failed pg_dump/pg_restore: its own last error lines (libpq never prints the password)."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()] or lines
    detail = "; ".join(errors[-3:]) or "exit code {0}".format(returncode)
    return "{0} failed: {1}".format(what, detail)


# The cores below run from modules, tests and benchmarks alike (no AnsibleModule, hence no run_command), and pg_dump
# must run while this process holds the transaction whose snapshot it dumps (run_command would block).
def run_tool(argv, env=None):
    """Run a PostgreSQL client program; returns the CompletedProcess (text output, never raises on exit codes)."""
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False)  # pylint: disable=ansible-bad-function


def start_tool(argv, env):
    """Start a PostgreSQL client program in the background; stderr is piped for its error message."""
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                            text=True)


def tool_version(path):
    proc = run_tool([path, "--version"])
    return proc.stdout.strip().split()[-1] if proc.returncode == 0 and proc.stdout.strip() else None


def archive_contents(dump_path, pg_restore):
    """`pg_restore --list` of an archive: {"entries": n, "table_data": [tables]} or a CerniqError naming the file."""
    proc = run_tool([pg_restore, "--list", dump_path])
    if proc.returncode != 0:
        raise CerniqError(tool_failure("pg_restore --list {0} (the archive is unreadable)".format(dump_path),
                                       proc.stderr, proc.returncode))
    entries = 0
    table_data = []
    for line in proc.stdout.splitlines():
        if not line.strip() or line.startswith(";"):
            continue
        entries += 1
        # "3419; 0 16424 TABLE DATA public gold_communication_log cerniq"
        fields = line.split()
        if len(fields) >= 7 and fields[3:5] == ["TABLE", "DATA"]:
            table_data.append(fields[6])
    return dict(entries=entries, table_data=sorted(table_data))


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --- Backup directories -----------------------------------------------------------------------------------------

def backup_id_at(moment):
    return moment.astimezone(timezone.utc).strftime(BACKUP_ID_FORMAT)


def backup_time(backup_id):
    # A runbook backup's date is taken as 00:00 UTC that day (its time is unknown).
    fmt = RUNBOOK_ID_FORMAT if RUNBOOK_ID_RE.match(backup_id) else BACKUP_ID_FORMAT
    return datetime.strptime(backup_id, fmt).replace(tzinfo=timezone.utc)


def runbook_dump(path):
    """The dump file of a runbook-layout directory: cerniq.dump, else its only *.dump file; None when there is none."""
    if os.path.isfile(os.path.join(path, RUNBOOK_DUMP)):
        return RUNBOOK_DUMP
    dumps = [name for name in os.listdir(path) if name.endswith(".dump") and os.path.isfile(os.path.join(path, name))]
    return dumps[0] if len(dumps) == 1 else None


def runbook_backup(path):
    """A runbook-layout backup, named explicitly: its dump described as a manifest would, without table figures.

    The sha256 is the file's now (there is no earlier record of it), so verification amounts to pg_restore --list and
    a data entry for every contract table.
    """
    name = os.path.basename(path)
    dump_file = runbook_dump(path)
    if not dump_file:
        raise CerniqError("{0} holds no dump file (the runbook's layout is <YYYY-MM-DD>/{1}): nothing to restore "
                          "from it".format(path, RUNBOOK_DUMP))
    dump_path = os.path.join(path, dump_file)
    taken_at = backup_time(name).isoformat()
    manifest = dict(format=MANIFEST_FORMAT, id=name, layout=LAYOUT_RUNBOOK, taken_at=taken_at, database=None,
                    dump=dict(file=dump_file, bytes=os.path.getsize(dump_path), sha256=file_sha256(dump_path),
                              format="custom"),
                    tables={}, warning=RUNBOOK_WARNING)
    return dict(id=name, path=path, taken_at=taken_at, manifest=manifest, layout=LAYOUT_RUNBOOK,
                warning=RUNBOOK_WARNING)


# A backup's files hold every lead's phone number and e-mail address: readable by the owner and its group only.
DIR_MODE = 0o750
FILE_MODE = 0o640


def validate_root(root):
    if not root or not os.path.isabs(root):
        raise CerniqError("backup directory {0!r} must be an absolute path (e.g. /backups/daily)".format(root))
    root = os.path.normpath(root)
    check_root_trusted(root)
    return root


def check_root_trusted(root):
    """Refuse a backup root another user could write to: a restore trusts the dump and manifest it finds there."""
    try:
        info = os.stat(root)
    except FileNotFoundError:
        return  # made by the backup itself, 0750
    except OSError as exc:
        raise CerniqError("backup directory {0} is unreadable: {1}".format(root, exc)) from exc
    problems = []
    if info.st_uid not in (os.geteuid(), 0):
        problems.append("owned by uid {0}, neither the user running this (uid {1}) nor root".format(
            info.st_uid, os.geteuid()))
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append("writable by its group or by every user (mode {0:04o})".format(stat.S_IMODE(info.st_mode)))
    if problems:
        raise CerniqError("backup directory {0} is {1}: whoever can write there can plant a dump and a manifest that "
                          "a restore would trust. Make it owned by the backup user and mode 0750 (chown, chmod "
                          "g-w,o-w). Nothing was read or written.".format(root, " and ".join(problems)))


def read_manifest(backup_dir):
    path = os.path.join(backup_dir, MANIFEST_NAME)
    try:
        with open(path) as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CerniqError("{0} is unreadable ({1}): the backup cannot be trusted".format(path, exc)) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise CerniqError("{0} is not a cerniq.outreach manifest (format {1})".format(path, MANIFEST_FORMAT))
    return manifest


def list_backups(root):
    """Every backup directory under `root`, newest first: {"id", "path", "taken_at", "manifest"} (manifest or None)."""
    if not os.path.isdir(root):
        return []
    backups = []
    for name in sorted(os.listdir(root), reverse=True):
        path = os.path.join(root, name)
        if os.path.islink(path) or not os.path.isdir(path):
            continue
        if RUNBOOK_ID_RE.match(name) and runbook_dump(path):
            dump_path = os.path.join(path, runbook_dump(path))
            backups.append(dict(id=name, path=path, taken_at=backup_time(name).isoformat(), manifest=None,
                                problem=None, layout=LAYOUT_RUNBOOK, warning=RUNBOOK_WARNING,
                                bytes=os.path.getsize(dump_path)))
            continue
        if not BACKUP_ID_RE.match(name):
            continue
        problem = None
        try:
            manifest = read_manifest(path)
        except CerniqError as exc:
            manifest, problem = None, exc.msg
        backups.append(dict(id=name, path=path, taken_at=backup_time(name).isoformat(), manifest=manifest,
                            problem=problem))
    return backups


def summary_of(backup):
    """What a listing shows of one backup (without the per-table figures)."""
    manifest = backup.get("manifest") or {}
    dump = manifest.get("dump") or {}
    tables = manifest.get("tables") or {}
    layout = backup.get("layout") or LAYOUT_MANIFEST
    return dict(id=backup["id"], path=backup["path"], taken_at=backup["taken_at"],
                has_manifest=bool(manifest) and layout == LAYOUT_MANIFEST, layout=layout,
                warning=backup.get("warning"), problem=backup.get("problem"),
                database=manifest.get("database"), bytes=dump.get("bytes", backup.get("bytes")),
                rows=sum(t.get("rows", 0) for t in tables.values()) if tables else None)


def select_backup(root, wanted="latest"):
    """The backup to use: `latest` = the newest with a manifest (verified when taken); else an id or a directory."""
    root = validate_root(root)
    if wanted in (None, "", "latest"):
        for backup in list_backups(root):
            if backup["problem"]:
                # A damaged newest backup is news; quietly taking an older one would lose data unnoticed.
                raise CerniqError("the newest backup {0} is damaged ({1}); to use an older one, name it (e.g. "
                                  "dr_database_backup=<id>)".format(backup["path"], backup["problem"]))
            if backup["manifest"]:
                return backup
        runbook = [b["id"] for b in list_backups(root) if b.get("layout") == LAYOUT_RUNBOOK][:5]
        raise CerniqError("no verified backup (a directory with {0}) under {1}: run backup_database.yml first, or "
                          "point dr_database_backup_dir at the backups{2}".format(
                              MANIFEST_NAME, root, "" if not runbook else
                              "; runbook-layout backups ({0}) are used only when named (e.g. "
                              "dr_database_backup={1})".format(RUNBOOK_WARNING, runbook[0])))
    path = wanted if os.path.isabs(wanted) else os.path.join(root, wanted)
    path = os.path.realpath(path)
    name = os.path.basename(path)
    if not os.path.isdir(path) or not (BACKUP_ID_RE.match(name) or RUNBOOK_ID_RE.match(name)):
        known = ", ".join(b["id"] for b in list_backups(root)[:5]) or "none"
        raise CerniqError("backup {0!r} not found under {1} (newest: {2})".format(wanted, root, known))
    if RUNBOOK_ID_RE.match(name):
        # Only ever by name: `latest` never picks a backup whose figures cannot be checked.
        return runbook_backup(path)
    manifest = read_manifest(path)
    if manifest is None:
        raise CerniqError("backup {0} has no {1}: it was never verified (an unfinished or foreign backup); choose "
                          "another".format(path, MANIFEST_NAME))
    return dict(id=name, path=path, taken_at=backup_time(name).isoformat(), manifest=manifest)


def verify_backup(backup, pg_restore):
    """Check a backup before trusting it: size and sha256 of the dump against the manifest, then pg_restore --list.

    Returns {"verified": bool, "problem": str or None, "seconds"}; never raises for a bad backup (the caller decides).
    """
    started = time.monotonic()
    manifest = backup["manifest"]
    dump = manifest.get("dump") or {}
    dump_path = os.path.join(backup["path"], dump.get("file") or "")
    problem = None
    if not dump.get("file") or not os.path.isfile(dump_path):
        problem = "the dump file {0} is missing".format(dump_path)
    else:
        size = os.path.getsize(dump_path)
        if size != dump.get("bytes"):
            problem = ("the dump file {0} has {1} bytes, the manifest says {2} (truncated or replaced)".format(
                dump_path, size, dump.get("bytes")))
        elif file_sha256(dump_path) != dump.get("sha256"):
            problem = "the dump file {0} does not match the manifest's sha256 (corrupt)".format(dump_path)
        else:
            try:
                contents = archive_contents(dump_path, pg_restore)
            except CerniqError as exc:
                problem = exc.msg
            else:
                # A runbook dump has no figures: it must at least hold data for every contract table.
                expected = set(manifest.get("tables") or {}) or (
                    set(ALL_TABLES) if manifest.get("layout") == LAYOUT_RUNBOOK else set())
                missing = sorted(expected - set(contents["table_data"]))
                if missing:
                    problem = "the archive {0} has no data for table(s) {1}".format(dump_path, ", ".join(missing))
    checks = ("pg_restore --list only ({0})".format(RUNBOOK_WARNING) if manifest.get("layout") == LAYOUT_RUNBOOK
              else "size and sha256 against the manifest, pg_restore --list")
    return dict(verified=problem is None, problem=problem, dump_path=dump_path, checks=checks,
                seconds=round(time.monotonic() - started, 3))


def require_verified(backup, pg_restore):
    """verify_backup, raising one clear message when the backup cannot be used."""
    check = verify_backup(backup, pg_restore)
    if not check["verified"]:
        raise CerniqError("backup {0} refused: {1}. Nothing was changed; choose another backup (e.g. "
                          "dr_database_backup=<id>).".format(backup["path"], check["problem"]))
    return check


def backups_to_prune(backups, keep_days, now, keep_ids=()):
    """Backups older than `keep_days`, never the newest verified one (nor `keep_ids`).

    Runbook-layout directories are never pruned: another job writes them, and its own retention owns them.
    """
    newest_verified = next((b["id"] for b in backups if b["manifest"]), None)
    limit = now - timedelta(days=keep_days)
    return [b for b in backups if backup_time(b["id"]) < limit and b["id"] != newest_verified
            and b["id"] not in keep_ids and b.get("layout") != LAYOUT_RUNBOOK]


def stale_partials(root, now):
    if not os.path.isdir(root):
        return []
    found = []
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if name.startswith(PARTIAL_PREFIX) and os.path.isdir(path):
            if datetime.fromtimestamp(os.path.getmtime(path), timezone.utc) < now - STALE_PARTIAL:
                found.append(path)
    return sorted(found)


def _point_latest(root, backup_id):
    link = os.path.join(root, LATEST_LINK)
    # A name no other user can predict; symlink() refuses an existing one rather than follow it.
    temporary = os.path.join(root, ".{0}.{1}".format(LATEST_LINK, secrets.token_hex(8)))
    os.symlink(backup_id, temporary)
    os.replace(temporary, link)


# --- Taking a backup --------------------------------------------------------------------------------------------

def _dump_in_snapshot(params, dump_path, pg_dump, tables):
    """pg_dump -Fc of the snapshot this connection exports, the figures read in the same snapshot meanwhile."""
    conn = postgres_connect(params, require=tables)
    try:
        with postgres_errors(params, conn):
            conn.set_session(isolation_level=ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
            with conn.cursor() as cur:
                cur.execute("SELECT pg_export_snapshot()")
                snapshot_id = cur.fetchone()[0]
                argv = [pg_dump, "--format=custom", "--no-password", "--snapshot={0}".format(snapshot_id),
                        "--file={0}".format(dump_path)]
                started = time.monotonic()
                child = start_tool(argv, libpq_env(params))
                try:
                    database = database_facts(cur)
                    figures = table_figures(cur, tables)
                finally:
                    # The snapshot must stay exported until pg_dump has imported it and finished.
                    stderr = child.communicate()[1]
                seconds = time.monotonic() - started
            conn.rollback()
    finally:
        conn.close()
    if child.returncode != 0:
        raise CerniqError(tool_failure("pg_dump of {0}".format(postgres_where(params)), stderr, child.returncode))
    return database, figures, seconds


def create_backup(params, root, keep_days, check_mode, pg_bin_dir=None, now=None):
    """Take a verified backup under `root` and prune those older than `keep_days`.

    Returns {"changed", "backup" (summary + manifest), "pruned", "partials_removed", "seconds"}.
    Check mode reads the counts (no checksums, no dump) and reports what it would take and prune.
    """
    root = validate_root(root)
    if keep_days < 1:
        raise CerniqError("keep_days must be at least 1 (got {0}): the newest backup is always kept".format(keep_days))
    pg_dump = find_tool("pg_dump", pg_bin_dir)
    pg_restore = find_tool("pg_restore", pg_bin_dir)
    now = now or datetime.now(timezone.utc)
    backup_id = backup_id_at(now)
    final = os.path.join(root, backup_id)
    if os.path.exists(final):
        raise CerniqError("backup {0} already exists: another backup was taken this second; wait and re-run".format(
            final))
    existing = list_backups(root)
    tables = list(ALL_TABLES)
    dump_file = "{0}.dump".format(params["db_name"])
    if check_mode:
        snapshot = database_snapshot(params, tables, checksum=False)
        planned = dict(id=backup_id, path=final, dump_file=dump_file, database=params["db_name"],
                       tables=snapshot["tables"])
        # The new backup becomes the newest verified one, so the old newest may go too.
        prunable = backups_to_prune([dict(id=backup_id, manifest=True)] + existing, keep_days, now)
        return dict(changed=True, backup=planned, pruned=[b["id"] for b in prunable],
                    partials_removed=stale_partials(root, now), seconds=0.0)

    started = time.monotonic()
    os.makedirs(root, mode=DIR_MODE, exist_ok=True)
    # mkdtemp: 0700 under a name no other user can predict (or plant beforehand); 0750 once complete.
    partial = tempfile.mkdtemp(prefix="{0}{1}-".format(PARTIAL_PREFIX, backup_id), dir=root)
    dump_path = os.path.join(partial, dump_file)
    try:
        database, figures, dump_seconds = _dump_in_snapshot(params, dump_path, pg_dump, tables)
        sha256 = file_sha256(dump_path)
        size = os.path.getsize(dump_path)
        contents = archive_contents(dump_path, pg_restore)
        missing = sorted(set(tables) - set(contents["table_data"]))
        if missing:
            raise CerniqError("pg_dump wrote {0} without data for table(s) {1}".format(dump_path, ", ".join(missing)))
        manifest = dict(
            format=MANIFEST_FORMAT, id=backup_id, taken_at=now.isoformat(), database=database["name"],
            server=postgres_where(params), server_version=database["server_version"],
            pg_dump_version=tool_version(pg_dump), checksum_method=CHECKSUM_METHOD,
            dump=dict(file=dump_file, bytes=size, sha256=sha256, format="custom"),
            verified=dict(pg_restore_list=True, toc_entries=contents["entries"], at=_utc_now_iso()),
            tables=figures, dump_seconds=round(dump_seconds, 3))
        manifest_path = os.path.join(partial, MANIFEST_NAME)
        with os.fdopen(os.open(manifest_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), "w") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        for name in (dump_file, MANIFEST_NAME):
            os.chmod(os.path.join(partial, name), FILE_MODE)
        os.chmod(partial, DIR_MODE)
        os.rename(partial, final)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _point_latest(root, backup_id)
    backups = list_backups(root)
    pruned = backups_to_prune(backups, keep_days, now, keep_ids=(backup_id,))
    for backup in pruned:
        shutil.rmtree(backup["path"])
    partials = stale_partials(root, now)
    for path in partials:
        shutil.rmtree(path, ignore_errors=True)
    seconds = round(time.monotonic() - started, 3)
    _audit_backup(params, final, manifest, [b["id"] for b in pruned], seconds)
    backup = summary_of(dict(id=backup_id, path=final, taken_at=now.isoformat(), manifest=manifest))
    backup["manifest"] = manifest
    return dict(changed=True, backup=backup, pruned=[b["id"] for b in pruned], partials_removed=partials,
                seconds=seconds)


def _audit_backup(params, path, manifest, pruned, seconds):
    conn = postgres_connect(params, require=())
    try:
        with postgres_errors(params, conn):
            AuditTrail(conn, "db_backup", params.get("audit_actor")).record(
                "db_backup", path, reason="backup_database",
                after=dict(id=manifest["id"], bytes=manifest["dump"]["bytes"], sha256=manifest["dump"]["sha256"],
                           rows={t: f["rows"] for t, f in manifest["tables"].items()}, pruned=pruned,
                           seconds=seconds))
            conn.commit()
    finally:
        conn.close()


def _utc_now_iso():
    return datetime.now(timezone.utc).isoformat()


# --- Listing (db_backup_info) -----------------------------------------------------------------------------------

def backup_listing(params, *, path, backup="latest", verify=True, pg_bin_dir=None):
    """The result of db_backup_info: every backup under `path` and the one `backup` selects, verified when asked.

    `params` is not read (a listing needs no connection): it is there so db_backup_info calls its core as every
    module does."""
    root = validate_root(path)
    backups = list_backups(root)
    result = dict(changed=False, root=root, backups=[summary_of(b) for b in backups], selected=None)
    if backup in (None, "", "latest") and not any(b["manifest"] or b["problem"] for b in backups):
        # Nothing `latest` could pick (runbook-layout backups are used only when named): the listing says what is there.
        return result
    chosen = select_backup(root, backup)
    selected = summary_of(chosen)
    selected["manifest"] = chosen["manifest"]
    if verify:
        selected.update(verify_backup(chosen, find_tool("pg_restore", pg_bin_dir)))
    else:
        selected.update(verified=None, problem=None)
    result["selected"] = selected
    return result


# --- Importing a copy off the DB host (db_backup state=imported) ------------------------------------------------

def _same_dump(a, b):
    return (a.get("dump") or {}).get("sha256") == (b.get("dump") or {}).get("sha256")


def _staging(root, src):
    """True when `src` is a staging directory of `root` (.partial-*), which the import consumes."""
    return os.path.dirname(src) == root and os.path.basename(src).startswith(PARTIAL_PREFIX)


def import_backup(params, root, src, keep_days, check_mode, pg_bin_dir=None, now=None):
    """Publish `src` (a backup directory fetched from the DB host) as `<root>/<id>`, verified, then prune `root`.

    `src` is verified as a restore would verify it (size and sha256 of the dump against its manifest, pg_restore
    --list) before anything is written; the files go into a directory made with mkdtemp inside `root` (renamed when
    `src` is a staging directory of `root`, else copied and verified again there), which is then renamed to
    `<root>/<id>`: `<root>/<id>` only ever holds a verified copy. The same id with the same sha256 already there and
    verifying changes nothing; one that no longer verifies is replaced; a different sha256 under the same id is
    refused. Check mode verifies `src` when it exists and reports what would be imported and pruned.
    """
    root = validate_root(root)
    if keep_days < 1:
        raise CerniqError("keep_days must be at least 1 (got {0}): the newest backup is always kept".format(keep_days))
    if not src or not os.path.isabs(src):
        raise CerniqError("src {0!r} must be the absolute path of a fetched backup directory (its manifest.json and "
                          "dump)".format(src))
    src = os.path.normpath(src)
    now = now or datetime.now(timezone.utc)
    existing = list_backups(root)
    pg_restore = find_tool("pg_restore", pg_bin_dir)
    if check_mode and not os.path.isdir(src):
        # Nothing was fetched in check mode: what a new copy would cause, from the listing alone.
        prunable = backups_to_prune([dict(id=backup_id_at(now), manifest=True)] + existing, keep_days, now)
        return dict(changed=True, backup=None, imported=True, imported_from=src, replaced=False,
                    pruned=[b["id"] for b in prunable],
                    partials_removed=stale_partials(root, now), seconds=0.0,
                    msg="would verify the backup fetched into {0} and publish it under {1}".format(src, root))
    manifest = read_manifest(src) if os.path.isdir(src) else None
    if manifest is None:
        raise CerniqError("{0} is not a fetched backup (no {1}): only a backup db_backup took, with its manifest, can "
                          "be imported; nothing was changed".format(src, MANIFEST_NAME))
    backup_id = manifest.get("id")
    if not isinstance(backup_id, str) or not BACKUP_ID_RE.match(backup_id):
        raise CerniqError("{0}'s manifest names no backup id (got {1!r}); nothing was changed".format(src, backup_id))
    incoming = dict(id=backup_id, path=src, taken_at=backup_time(backup_id).isoformat(), manifest=manifest)
    final = os.path.join(root, backup_id)
    current = next((b for b in existing if b["id"] == backup_id), None)
    started = time.monotonic()
    if current is not None and current["manifest"] and not _same_dump(current["manifest"], manifest):
        raise CerniqError("{0} exists with another dump (sha256 {1}) than {2} (sha256 {3}): two different backups "
                          "under one id; nothing was changed".format(
                              final, current["manifest"]["dump"].get("sha256"), src, manifest["dump"].get("sha256")))
    replaced = False
    if current is not None and current["manifest"]:
        if verify_backup(current, pg_restore)["verified"]:
            if _staging(root, src) and not check_mode:
                shutil.rmtree(src, ignore_errors=True)
            return _import_done(params, root, keep_days, check_mode, now, current, src, False, False, started)
        replaced = True  # the copy there no longer verifies: the incoming one replaces it once it does
    elif current is not None:
        replaced = True  # a directory without a manifest under the id: an earlier import that died
    check = verify_backup(incoming, pg_restore)
    if not check["verified"]:
        raise CerniqError("the copy {0} of backup {1} refused: {2}. Nothing was published under {3}; fetch it again "
                          "from the DB host".format(src, backup_id, check["problem"], root))
    if check_mode:
        return _import_done(params, root, keep_days, check_mode, now, incoming, src, True, replaced, started)
    conn = _audit_connection(params)  # an unreachable audit log stops the import before anything is written
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
        temporary = tempfile.mkdtemp(prefix="{0}{1}-".format(IMPORT_PREFIX, backup_id), dir=root)
        try:
            names = (manifest["dump"]["file"], MANIFEST_NAME)
            for name in names:
                if _staging(root, src):
                    os.rename(os.path.join(src, name), os.path.join(temporary, name))
                else:
                    shutil.copyfile(os.path.join(src, name), os.path.join(temporary, name))
                os.chmod(os.path.join(temporary, name), 0o600)
            if not _staging(root, src):
                require_verified(dict(incoming, path=temporary), pg_restore)
            if replaced:
                previous = tempfile.mkdtemp(prefix="{0}{1}-old-".format(IMPORT_PREFIX, backup_id), dir=root)
                os.rename(final, os.path.join(previous, backup_id))
                shutil.rmtree(previous, ignore_errors=True)
            os.rename(temporary, final)
        except BaseException:
            shutil.rmtree(temporary, ignore_errors=True)
            raise
        if _staging(root, src):
            shutil.rmtree(src, ignore_errors=True)
        published = dict(incoming, path=final)
        return _import_done(params, root, keep_days, False, now, published, src, True, replaced, started, conn)
    finally:
        conn.close()


def _import_done(params, root, keep_days, check_mode, now, backup, src, imported, replaced, started, conn=None):
    """Retention on the copies, `latest`, the audit row and the result of an import."""
    backups = list_backups(root)
    if check_mode and imported and not any(b["id"] == backup["id"] for b in backups):
        backups = sorted(backups + [dict(backup, layout=LAYOUT_MANIFEST)], key=lambda b: b["id"], reverse=True)
    pruned = backups_to_prune(backups, keep_days, now, keep_ids=(backup["id"],))
    partials = stale_partials(root, now)
    if not check_mode:
        for old in pruned:
            shutil.rmtree(old["path"])
        for path in partials:
            shutil.rmtree(path, ignore_errors=True)
        newest = next((b["id"] for b in list_backups(root) if b["manifest"]), None)
        if newest and (imported or pruned):
            _point_latest(root, newest)
    seconds = round(time.monotonic() - started, 3)
    changed = imported or bool(pruned)
    if changed and not check_mode:
        own = conn is None
        conn = conn or _audit_connection(params)
        try:
            with postgres_errors(params, conn):
                AuditTrail(conn, "db_backup", params.get("audit_actor")).record(
                    "db_backup_import", os.path.join(root, backup["id"]), reason="backup copy off the DB host",
                    after=dict(id=backup["id"], imported=imported, replaced=replaced, from_path=src,
                               server=backup["manifest"].get("server"), bytes=backup["manifest"]["dump"]["bytes"],
                               sha256=backup["manifest"]["dump"]["sha256"], pruned=[b["id"] for b in pruned],
                               seconds=seconds))
                conn.commit()
        finally:
            if own:
                conn.close()
    summary = summary_of(dict(backup, path=os.path.join(root, backup["id"])))
    summary["manifest"] = backup["manifest"]
    return dict(changed=changed, backup=summary, imported=imported, replaced=replaced, imported_from=src,
                pruned=[b["id"] for b in pruned], partials_removed=partials, seconds=seconds)


def _audit_connection(params):
    return postgres_connect(params, require=())


# --- db_backup: a backup or a copy, then retention --------------------------------------------------------------

def manage_backups(params, *, path, state="present", src=None, keep_days=7, pg_bin_dir=None, check_mode=False,
                   want_diff=False, now=None):
    """db_backup: take a verified backup under `path` (state=present, create_backup) or publish there the fetched
    copy `src` of one (state=imported, import_backup); either prunes `path` to `keep_days`.

    With `want_diff`, a diff names the backups pruned and the new backup (or the copy published, None when the same
    copy was there)."""
    if state == "imported":
        result = import_backup(params, root=path, src=src, keep_days=keep_days, check_mode=check_mode,
                               pg_bin_dir=pg_bin_dir, now=now)
        if want_diff:
            result["diff"] = dict(before=dict(deleted=result["pruned"]),
                                  after=dict(copy=(result["backup"] or {}).get("path") if result["imported"] else None))
        return result
    result = create_backup(params, root=path, keep_days=keep_days, check_mode=check_mode, pg_bin_dir=pg_bin_dir,
                           now=now)
    if want_diff:
        result["diff"] = dict(before=dict(deleted=result["pruned"]), after=dict(backup=result["backup"]["path"]))
    return result
