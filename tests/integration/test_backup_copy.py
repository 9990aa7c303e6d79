"""Backups that survive the loss of the DB host (issue 12, section 3), against real PostgreSQL (127.0.0.12).

backup_database.yml copies each verified backup to the controller (here a directory of the test's own, the
"controller" and the "DB host" sharing this machine), db_backup state=imported verifies and publishes it there;
dr_database.yml restores from that copy onto a DB host whose backup directory is gone; the runbook's own
`/backups/daily/<YYYY-MM-DD>/cerniq.dump` layout is listed with a warning and restorable when named.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _backup, _snapshot
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_AUDIT, TABLE_COMM_LOG
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError


@pytest.fixture()
def copy_dir(split_platform):
    """The controller's copies (split_platform's inventory sets cerniq_backup_copy_dir to it; reset empties it)."""
    yield split_platform.copy_dir
    shutil.rmtree(split_platform.copy_dir, ignore_errors=True)


def _inventory(platform, copy_dir, **extra):
    inventory = platform.inventory(**extra)
    assert inventory["all"]["vars"]["cerniq_backup_copy_dir"] == str(copy_dir)
    return inventory


def _listing(root):
    """Every entry of a directory, with the sha256 of every file below it (byte-level state)."""
    found = {}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs):
            found[os.path.relpath(os.path.join(base, name), root) + "/"] = None
        for name in sorted(files):
            path = os.path.join(base, name)
            found[os.path.relpath(path, root)] = _backup.file_sha256(path)
    return found


def _failures(run):
    return [r.get("msg", "") for r in run.results() if r["_event"] == "runner_on_failed"]


def _runbook_dump(platform, day):
    """What the runbook's own backup job leaves: <root>/<YYYY-MM-DD>/cerniq.dump, pg_dump -Fc, no manifest."""
    target = platform.backup_dir / day
    target.mkdir(parents=True)
    proc = _backup.run_tool([_backup.find_tool("pg_dump"), "--format=custom", "--no-password",
                             "--file={0}".format(target / "cerniq.dump")], _backup.libpq_env(platform.params))
    assert proc.returncode == 0, proc.stderr
    return target


def test_backup_is_copied_to_the_controller_verified_there_and_a_second_run_adds_only_its_own(split_platform,
                                                                                              copy_dir):
    split_platform.seed(leads=60, old_log_rows=20, reviews=5)
    inventory = _inventory(split_platform, copy_dir)

    run = split_platform.play("backup_database.yml", inventory=inventory)

    assert run.rc == 0, run.stdout[-3000:]
    backup = run.result("Take the backup")["backup"]
    imported = run.result("Verify the copy on the controller")
    assert imported["changed"] is True and imported["imported"] is True
    copy = copy_dir / backup["id"]
    assert imported["backup"]["path"] == str(copy)
    # Byte for byte the DB host's backup, only the published directory (no staging left), controller-user only.
    host_files = _listing(backup["path"])
    assert _listing(copy) == host_files
    assert sorted(os.listdir(copy_dir)) == [backup["id"], "latest"]
    assert os.readlink(copy_dir / "latest") == backup["id"]
    assert oct(os.stat(copy_dir).st_mode & 0o777) == "0o700"
    assert {oct(os.stat(copy / name).st_mode & 0o777) for name in os.listdir(copy)} == {"0o600"}
    summary = run.result("Summary")["msg"]
    assert any("Copy off the DB host: localhost:{0} (copied and verified now".format(copy) in line for line in summary)
    audit = split_platform.sql("SELECT target, after FROM ops_audit_log WHERE action = 'db_backup_import'")
    assert [(a[0], a[1]["sha256"], a[1]["imported"]) for a in audit] == [
        (str(copy), json.loads((copy / "manifest.json").read_text())["dump"]["sha256"], True)]

    # An old copy beyond cerniq_backup_copy_keep_days and a runbook-layout directory lie in the copies.
    old_id = _backup.backup_id_at(datetime.now(timezone.utc) - timedelta(days=20))
    shutil.copytree(copy, copy_dir / old_id)
    (copy_dir / "2020-01-01").mkdir()
    (copy_dir / "2020-01-01" / "cerniq.dump").write_bytes(b"PGDMP not ours")

    again = split_platform.play("backup_database.yml", inventory=inventory)

    assert again.rc == 0, again.stdout[-3000:]
    second = again.result("Take the backup")["backup"]
    copied = again.result("Verify the copy on the controller")
    assert second["id"] != backup["id"] and copied["imported"] is True
    assert copied["pruned"] == [old_id]
    assert sorted(os.listdir(copy_dir)) == sorted([backup["id"], second["id"], "2020-01-01", "latest"])
    assert _listing(copy) == host_files  # the first copy untouched
    assert os.readlink(copy_dir / "latest") == second["id"]

    # Importing a copy that is already there (same id, same sha256) verifies it and changes nothing.
    before = _listing(copy_dir)
    audit_rows = split_platform.sql("SELECT count(*) FROM ops_audit_log")[0][0]
    same = _backup.import_backup(split_platform.params, str(copy_dir), backup["path"], 14, False)
    assert same["changed"] is False and same["imported"] is False and same["backup"]["id"] == backup["id"]
    assert _listing(copy_dir) == before
    assert split_platform.sql("SELECT count(*) FROM ops_audit_log")[0][0] == audit_rows
    assert _listing(backup["path"]) == host_files  # a src outside the copies is left alone


def test_check_mode_shows_the_copy_and_writes_nothing(split_platform, copy_dir):
    split_platform.seed(leads=50, old_log_rows=10, reviews=5)
    before = _snapshot.database_snapshot(split_platform.params)

    run = split_platform.play("backup_database.yml", inventory=_inventory(split_platform, copy_dir), check=True)

    assert run.rc == 0, run.stdout[-3000:]
    planned = run.result("Take the backup")["backup"]
    assert run.result("Verify the copy on the controller")["changed"] is True
    assert any("would fetch it to localhost:{0}/{1}".format(copy_dir, planned["id"]) in line
               for line in run.result("Summary")["msg"])
    assert not copy_dir.exists() and not split_platform.backup_dir.exists()
    assert _snapshot.database_snapshot(split_platform.params) == before


def test_a_corrupted_copy_is_refused_and_nothing_is_published(split_platform, copy_dir):
    split_platform.seed(leads=50, old_log_rows=10, reviews=5)
    backup = _backup.create_backup(split_platform.params, str(split_platform.backup_dir), 7, False)["backup"]
    dump_file = backup["manifest"]["dump"]["file"]
    copy_dir.mkdir(mode=0o700)
    staging = copy_dir / (_backup.FETCH_PREFIX + backup["id"])
    shutil.copytree(backup["path"], staging)
    # One byte flipped in the middle: same size, another sha256.
    data = bytearray((staging / dump_file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (staging / dump_file).write_bytes(bytes(data))
    fetched = _listing(staging)

    with pytest.raises(CerniqError) as refused:
        _backup.import_backup(split_platform.params, str(copy_dir), str(staging), 14, False)

    assert "refused" in refused.value.msg and "sha256" in refused.value.msg and "Nothing was published" in \
        refused.value.msg
    assert sorted(os.listdir(copy_dir)) == [staging.name]  # no copy, no temporary directory
    assert _listing(staging) == fetched  # left for inspection (removed after a day like any partial directory)
    assert split_platform.sql("SELECT count(*) FROM ops_audit_log WHERE action = 'db_backup_import'")[0][0] == 0

    # Truncated: refused for its size. Without a manifest: refused too.
    (staging / dump_file).write_bytes(bytes(data[:-100]))
    with pytest.raises(CerniqError, match="bytes"):
        _backup.import_backup(split_platform.params, str(copy_dir), str(staging), 14, False)
    (staging / "manifest.json").unlink()
    with pytest.raises(CerniqError, match="no manifest.json"):
        _backup.import_backup(split_platform.params, str(copy_dir), str(staging), 14, False)
    assert sorted(os.listdir(copy_dir)) == [staging.name]

    # A good copy is published (the staging directory consumed); a published copy damaged later is replaced by
    # a good one, and a different dump under the same id is refused.
    shutil.rmtree(staging)
    shutil.copytree(backup["path"], staging)
    first = _backup.import_backup(split_platform.params, str(copy_dir), str(staging), 14, False)
    assert first["imported"] is True and not staging.exists()
    published = copy_dir / backup["id"]
    (published / dump_file).write_bytes(b"damaged")
    replaced = _backup.import_backup(split_platform.params, str(copy_dir), backup["path"], 14, False)
    assert replaced["imported"] is True and replaced["replaced"] is True
    assert _listing(published) == _listing(backup["path"])
    other = split_platform.work_dir / "other" / backup["id"]
    shutil.copytree(backup["path"], other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["dump"]["sha256"] = "0" * 64
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CerniqError, match="two different backups under one id"):
        _backup.import_backup(split_platform.params, str(copy_dir), str(other), 14, False)
    shutil.rmtree(other.parent)
    assert _listing(published) == _listing(backup["path"])


def test_runbook_layout_is_listed_with_a_warning_kept_by_retention_and_restored_only_when_named(split_platform):
    split_platform.seed(leads=50, old_log_rows=10, reviews=5)
    dumped = _snapshot.database_snapshot(split_platform.params)["tables"]
    day = "2020-01-15"  # far older than any keep_days
    runbook_dir = _runbook_dump(split_platform, day)
    root = str(split_platform.backup_dir)

    listing = _backup.backup_listing(split_platform.params, path=root, verify=False)
    assert [(b["id"], b["layout"], b["has_manifest"], b["warning"]) for b in listing["backups"]] == [
        (day, "runbook", False, "no manifest: row counts cannot be verified")]
    assert listing["backups"][0]["bytes"] == os.path.getsize(runbook_dir / "cerniq.dump")
    # `latest` never picks it: nothing selected, and a restore asked for the latest names it.
    assert _backup.backup_listing(split_platform.params, path=root)["selected"] is None
    with pytest.raises(CerniqError) as latest:
        _backup.select_backup(root)
    assert "no verified backup" in latest.value.msg and "dr_database_backup={0}".format(day) in latest.value.msg
    named = _backup.backup_listing(split_platform.params, path=root, backup=day)["selected"]
    assert named["verified"] is True and named["layout"] == "runbook"
    assert named["checks"] == "pg_restore --list only (no manifest: row counts cannot be verified)"
    # A runbook directory whose dump is not an archive is refused by pg_restore --list.
    (split_platform.backup_dir / "2020-01-14").mkdir()
    (split_platform.backup_dir / "2020-01-14" / "cerniq.dump").write_bytes(b"not an archive")
    broken = _backup.backup_listing(split_platform.params, path=root, backup="2020-01-14")["selected"]
    assert broken["verified"] is False and "pg_restore --list" in broken["problem"]
    shutil.rmtree(split_platform.backup_dir / "2020-01-14")

    # Our retention never deletes it, however old.
    taken = _backup.create_backup(split_platform.params, root, 1, False)
    assert taken["pruned"] == [] and (runbook_dir / "cerniq.dump").exists()

    # After the backup day: rows lost. Restoring the runbook's dump, named explicitly, brings them back.
    split_platform.sql("DELETE FROM gold_communication_log WHERE id % 2 = 0")
    run = split_platform.play("dr_database.yml", {"confirm": True, "dr_database_backup": day})

    assert run.rc == 0, run.stdout[-4000:]
    plan = run.result("What this run will change")["msg"]
    assert "verified now: pg_restore --list only (no manifest: row counts cannot be verified)" in plan[0]
    assert any(line.startswith("WARNING: backup {0} is in the runbook's layout".format(day)) and
               "pg_restore --list only" in line for line in plan)
    assert any("NOT compared with a manifest" in line for line in run.result("Summary")["msg"])
    live = _snapshot.database_snapshot(split_platform.params)
    for table, figures in dumped.items():
        if table != TABLE_AUDIT:
            assert live["tables"][table] == figures, table
    assert live["database"]["marker"]["backup"] == day and live["database"]["marker"]["completed"] is True
    assert split_platform.worker_pid(), "the workers were not started"


def test_dr_from_the_controller_copy_onto_a_replacement_db_host(split_platform, copy_dir):
    split_platform.seed(leads=80, old_log_rows=20, reviews=5)
    inventory = _inventory(split_platform, copy_dir)
    taken = split_platform.play("backup_database.yml", inventory=inventory)
    assert taken.rc == 0, taken.stdout[-3000:]
    backup = taken.result("Take the backup")["backup"]
    manifest = json.loads((copy_dir / backup["id"] / "manifest.json").read_text())
    copy_files = _listing(copy_dir / backup["id"])
    # The DB host is replaced: its backups are gone, and the database lost rows.
    shutil.rmtree(split_platform.backup_dir)
    split_platform.sql("DELETE FROM gold_communication_log WHERE id % 3 = 0")
    source = {"dr_database_backup_source": "controller"}

    # Check mode: the plan names the copy and where it goes; nothing is written on the DB host.
    check = split_platform.play("dr_database.yml", source, inventory=inventory, check=True)
    assert check.rc == 0, check.stdout[-4000:]
    plan = check.result("What this run will change")["msg"]
    assert any("from the controller's copy localhost:{0}/{1}".format(copy_dir, backup["id"]) in line and
               "copy it to" in line for line in plan)
    assert not split_platform.backup_dir.exists()
    # Without confirm=true: the plan, and nothing written either.
    unconfirmed = split_platform.play("dr_database.yml", source, inventory=inventory)
    assert not split_platform.backup_dir.exists(), unconfirmed.stdout[-2000:]

    run = split_platform.play("dr_database.yml", dict(source, confirm=True), inventory=inventory)

    assert run.rc == 0, run.stdout[-4000:]
    on_host = split_platform.backup_dir / backup["id"]
    assert _listing(on_host) == copy_files
    assert run.result("Choose the backup and verify it")["selected"]["verified"] is True
    live = _snapshot.database_snapshot(split_platform.params)
    for table, figures in manifest["tables"].items():
        if table != TABLE_AUDIT:
            assert live["tables"][table] == figures, table
    assert live["tables"][TABLE_COMM_LOG]["rows"] == manifest["tables"][TABLE_COMM_LOG]["rows"]
    assert live["database"]["marker"]["backup"] == backup["id"] and live["database"]["marker"]["completed"] is True
    assert split_platform.worker_pid(), "the workers were not started"

    # A copy that does not verify on the controller is refused before anything is written or stopped.
    shutil.rmtree(split_platform.backup_dir)
    dump = copy_dir / backup["id"] / manifest["dump"]["file"]
    dump.write_bytes(dump.read_bytes()[:-10])
    pid = split_platform.worker_pid()
    refused = split_platform.play("dr_database.yml", dict(source, confirm=True, dr_database_force=True),
                                  inventory=inventory)
    assert refused.rc != 0
    message = " ".join(_failures(refused))
    assert "refused" in message and "workers were not stopped" in message
    assert not split_platform.backup_dir.exists() and split_platform.worker_pid() == pid


def test_backups_to_prune_keeps_runbook_directories():
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    backups = [dict(id="2026-11-30T020000Z", manifest={"x": 1}), dict(id="2026-01-01", manifest=None,
                                                                         layout="runbook"),
               dict(id="2026-01-01T020000Z", manifest={"x": 1})]
    assert [b["id"] for b in _backup.backups_to_prune(backups, 7, now)] == ["2026-01-01T020000Z"]
    assert _backup.backup_time("2026-01-01") == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert Path(_backup.FETCH_PREFIX).name.startswith(_backup.PARTIAL_PREFIX)
