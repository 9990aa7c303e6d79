"""backup_database.yml, db_backup, db_backup_info and db_snapshot_info against real PostgreSQL (127.0.0.12)."""

from __future__ import annotations

import json
import os
import shutil
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ansible_collections.cerniq.outreach.plugins.module_utils import _backup, _database, _snapshot
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ALL_TABLES, TABLE_COMM_LOG


def test_checksum_follows_content_not_row_order(split_platform):
    split_platform.seed()
    before = _snapshot.database_snapshot(split_platform.params)["tables"]
    assert before[TABLE_COMM_LOG]["rows"] == split_platform.sql("SELECT count(*) FROM gold_communication_log")[0][0]
    newest = split_platform.sql("SELECT max(created_at) FROM gold_communication_log")[0][0]
    assert before[TABLE_COMM_LOG]["max_created_at"] == str(newest.astimezone(timezone.utc)).replace("+00:00", "+00")
    assert before["gold_lead_journey"]["max_created_at"] is None  # no created_at column

    # An UPDATE moves the row physically; writing the old value back restores the content, not the order.
    status = split_platform.sql("SELECT status FROM gold_communication_log WHERE id = 1")[0][0]
    split_platform.sql("UPDATE gold_communication_log SET status = 'FAILED' WHERE id = 1")
    changed = _snapshot.database_snapshot(split_platform.params)["tables"]
    assert changed[TABLE_COMM_LOG]["checksum"] != before[TABLE_COMM_LOG]["checksum"]
    assert changed[TABLE_COMM_LOG]["rows"] == before[TABLE_COMM_LOG]["rows"]
    split_platform.sql("UPDATE gold_communication_log SET status = %s WHERE id = 1", (status,))
    assert split_platform.sql("SELECT ctid <> '(0,1)' FROM gold_communication_log WHERE id = 1")[0][0]
    assert _snapshot.database_snapshot(split_platform.params)["tables"] == before

    # A duplicated row changes the sum (XOR would cancel it out).
    split_platform.sql("INSERT INTO wa_quota_usage SELECT phone_id, usage_date + 1, messages_sent, quota_limit "
                       "FROM wa_quota_usage WHERE phone_id = 'phone_01'")
    assert _snapshot.database_snapshot(split_platform.params)["tables"]["wa_quota_usage"]["checksum"] != \
        before["wa_quota_usage"]["checksum"]


def test_manifest_figures_describe_the_dump_while_the_platform_writes(split_platform):
    split_platform.seed()
    stop = threading.Event()
    written = []

    def writer():
        conn = split_platform.pg.connect()
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("INSERT INTO gold_communication_log (tenant_id, phone_id, channel, status, quota_cost) "
                            "VALUES ('5b1f0c1e-0000-4000-8000-00000000c3e1', 'phone_01', 'WHATSAPP', 'SENT', 1)")
                written.append(1)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = _backup.create_backup(split_platform.params, str(split_platform.backup_dir), 7, False)
    finally:
        stop.set()
        thread.join()
    assert written, "the writer did not write during the backup"
    manifest = result["backup"]["manifest"]
    live_rows = split_platform.sql("SELECT count(*) FROM gold_communication_log")[0][0]
    assert manifest["tables"][TABLE_COMM_LOG]["rows"] < live_rows

    # The dump holds exactly what the manifest says, although rows kept arriving: restore it and compare.
    restored = _database.restore_database(split_platform.params, "cerniq_check_copy", result["backup"]["path"],
                                          False, jobs=1)
    assert restored["tables"] == manifest["tables"]
    assert restored["marker"]["cerniq_outreach"] == "restored"
    assert set(manifest["tables"]) == set(ALL_TABLES)
    assert manifest["dump"]["sha256"] == _backup.file_sha256(os.path.join(result["backup"]["path"],
                                                                          manifest["dump"]["file"]))
    assert os.readlink(split_platform.backup_dir / "latest") == result["backup"]["id"]


def test_playbook_takes_a_verified_backup_and_never_shows_the_password(split_platform):
    split_platform.seed()
    live = _snapshot.database_snapshot(split_platform.params)["tables"]
    run = split_platform.play("backup_database.yml", verbosity=3)
    assert run.rc == 0, run.stdout[-3000:]
    assert split_platform.pg.password not in run.stdout
    backup = run.result("Take the backup")["backup"]
    manifest = json.loads((Path(backup["path"]) / "manifest.json").read_text())
    assert manifest["tables"] == live
    assert manifest["verified"]["pg_restore_list"] is True
    assert run.result("Verify it as a restore would")["selected"]["verified"] is True
    audit = split_platform.sql("SELECT module, action, target, after FROM ops_audit_log WHERE action = 'db_backup'")
    assert [(a[0], a[2]) for a in audit] == [("db_backup", backup["path"])]
    assert audit[0][3]["sha256"] == manifest["dump"]["sha256"]
    assert oct(os.stat(split_platform.backup_dir).st_mode & 0o777) == "0o750"


def test_check_mode_writes_nothing(split_platform):
    split_platform.seed()
    before = _snapshot.database_snapshot(split_platform.params)
    run = split_platform.play("backup_database.yml", check=True)
    assert run.rc == 0, run.stdout[-3000:]
    planned = run.result("Take the backup")
    assert planned["changed"] is True
    assert planned["backup"]["tables"][TABLE_COMM_LOG]["rows"] == before["tables"][TABLE_COMM_LOG]["rows"]
    assert not split_platform.backup_dir.exists()
    assert _snapshot.database_snapshot(split_platform.params) == before


def test_retention_deletes_old_backups_but_never_the_newest_verified(split_platform):
    split_platform.seed(leads=50, old_log_rows=10, reviews=5)
    root = str(split_platform.backup_dir)
    first = _backup.create_backup(split_platform.params, root, 7, False)["backup"]
    now = datetime.now(timezone.utc)
    # Pretend the first backup is 10 days old and an even older one lies next to it.
    for age in (10, 30):
        old_id = _backup.backup_id_at(now - timedelta(days=age))
        shutil.copytree(first["path"], os.path.join(root, old_id))
    shutil.rmtree(first["path"])
    partial = os.path.join(root, _backup.PARTIAL_PREFIX + "2020-01-01T000000Z")
    os.mkdir(partial)
    os.utime(partial, (0, 0))

    # Only old backups: retention keeps the newest of them whatever its age.
    planned = _backup.create_backup(split_platform.params, root, 7, True, now=now)
    assert len(planned["pruned"]) == 2  # the new one would become the newest verified
    assert sorted(os.listdir(root)) == sorted(_ids(now, 10, 30) + ["latest", os.path.basename(partial)])

    taken = _backup.create_backup(split_platform.params, root, 7, False)
    assert sorted(taken["pruned"]) == sorted(_ids(now, 10, 30))
    assert taken["partials_removed"] == [partial]
    assert sorted(os.listdir(root)) == sorted([taken["backup"]["id"], "latest"])

    assert _backup.backups_to_prune(_backup.list_backups(root), 1, now + timedelta(days=30)) == []


def _ids(now, *ages):
    return [_backup.backup_id_at(now - timedelta(days=age)) for age in ages]


def test_verification_catches_truncated_corrupt_and_unreadable_dumps(split_platform):
    split_platform.seed(leads=50, old_log_rows=10, reviews=5)
    root = str(split_platform.backup_dir)
    backup = _backup.create_backup(split_platform.params, root, 7, False)["backup"]
    dump = Path(backup["path"]) / backup["manifest"]["dump"]["file"]
    pg_restore = _backup.find_tool("pg_restore")
    original = dump.read_bytes()

    dump.write_bytes(original[: len(original) // 2])
    listing = _backup.backup_listing(split_platform.params, path=root)
    assert listing["selected"]["verified"] is False
    assert "truncated" in listing["selected"]["problem"]

    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    dump.write_bytes(bytes(flipped))
    assert "sha256" in _backup.verify_backup(_backup.select_backup(root), pg_restore)["problem"]

    # A file that matches its manifest but is no archive: pg_restore --list is the last line of defence.
    garbage = b"not a pg_dump archive" * 100
    dump.write_bytes(garbage)
    manifest_path = Path(backup["path"]) / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["dump"].update(bytes=len(garbage), sha256=_backup.file_sha256(str(dump)))
    manifest_path.write_text(json.dumps(manifest))
    problem = _backup.verify_backup(_backup.select_backup(root), pg_restore)["problem"]
    assert "pg_restore --list" in problem and "unreadable" in problem

    dump.write_bytes(original)
    manifest_path.write_text("{ not json")
    listing_error = _expect_error(lambda: _backup.select_backup(root))
    assert "newest backup" in listing_error and "damaged" in listing_error


def _expect_error(call):
    from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
    try:
        call()
    except CerniqError as exc:
        return exc.msg
    raise AssertionError("no CerniqError raised")
