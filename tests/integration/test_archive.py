"""comm_log_archive against real PostgreSQL: keyed batches that survive a killed backend, never overlap, lose
nothing."""

from __future__ import annotations

import contextlib
import threading

import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils import _archive as archive
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    COMM_LOG_COLUMNS,
    TABLE_COMM_LOG,
    TABLE_COMM_LOG_ARCHIVE,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.comm_log import add_log_rows
from tests.support.gates import GATE_SQL, Gate
from tests.support.playbooks import MODULE_DEFAULTS
from tests.support.services import DB_NAME

COLUMNS = ", ".join(COMM_LOG_COLUMNS)


def contents(platform):
    """(rows in both tables, distinct ids, checksum of every row's content ordered by id, old rows still live)."""
    return platform.sql(
        "SELECT count(*), count(DISTINCT id), md5(string_agg(ROW(" + COLUMNS + ")::text, ',' ORDER BY id)), "
        "(SELECT count(*) FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - interval '90 days') "
        "FROM (SELECT " + COLUMNS + " FROM " + TABLE_COMM_LOG + " UNION ALL SELECT " + COLUMNS + " FROM "
        + TABLE_COMM_LOG_ARCHIVE + ") AS both_tables")[0]


def everything(platform):
    return (platform.sql("SELECT md5(string_agg(l::text, ',' ORDER BY id)) FROM " + TABLE_COMM_LOG + " AS l"),
            platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE), platform.sql(
                "SELECT count(*) FROM ops_audit_log"))


def test_check_mode_reports_the_rows_and_writes_nothing(platform):
    old, _total = add_log_rows(platform, 3000, 2000)
    before = everything(platform)
    ids = platform.sql("SELECT min(id), max(id) FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - "
                       "interval '90 days'")[0]
    result = archive.archive_comm_log(platform.params, batch_size=1000, check_mode=True)
    assert everything(platform) == before
    assert result["changed"] is True and result["would_move"]["rows"] == old == 3000
    assert (result["would_move"]["first_id"], result["would_move"]["last_id"]) == ids
    assert result["batches_planned"] == 3 and result["rows_moved"] == 0
    assert result["diff"] == dict(before=dict(rows_older_than_cutoff=3000), after=dict(rows_older_than_cutoff=0))


def test_archive_moves_exactly_the_old_rows_in_audited_batches(platform):
    add_log_rows(platform, 5000, 3000)
    old_ids = sorted(r[0] for r in platform.sql("SELECT id FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - "
                                                "interval '90 days'"))
    rows, distinct, checksum, _left = contents(platform)
    # Windows of 700 consecutive ids from the first old row: old ids 1..8000 spread 5 in 8, so 12 batches.
    result = archive.archive_comm_log(platform.params, batch_size=700)
    assert result["rows_moved"] == 5000 and result["batches"] == 12 and result["complete"] is True
    assert result["rows_remaining"] == 0 and result["longest_batch_ms"] >= 0
    assert (result["first_id"], result["last_id"]) == (old_ids[0], old_ids[-1])
    assert sorted(r[0] for r in platform.sql("SELECT id FROM " + TABLE_COMM_LOG_ARCHIVE)) == old_ids
    assert contents(platform) == (rows, distinct, checksum, 0)
    batches = platform.audit("comm_log_archive_batch")
    assert [b[6]["batch"] for b in batches] == list(range(1, 13))
    assert all(b[6]["rows"] <= 700 and b[6]["last_id"] - b[6]["first_id"] < 700 for b in batches)
    assert sum(b[6]["rows"] for b in batches) == 5000 and {b[6]["run_id"] for b in batches} == {result["run_id"]}
    (summary,) = platform.audit("comm_log_archive")
    assert summary[6]["rows_moved"] == 5000 and summary[6]["batches"] == 12 and summary[5] == dict(
        rows_older_than_cutoff=5000)

    again = archive.archive_comm_log(platform.params, batch_size=700)
    assert again["changed"] is False and again["rows_moved"] == 0 and again["batches"] == 0
    assert len(platform.audit("comm_log_archive_batch")) == 12


@contextlib.contextmanager
def gate_at_batch(pg_server, batch):
    """The archive's `batch`-th INSERT into the archive table stops at the gate (a statement trigger), mid-statement
    in its transaction; removed on exit."""
    conn = pg_server.superuser_connect(DB_NAME)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE SEQUENCE archive_gate_batches")
            cur.execute("CREATE FUNCTION archive_gate() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ "
                        "BEGIN IF nextval('archive_gate_batches') = " + str(int(batch)) + " THEN " + GATE_SQL
                        + "; END IF; RETURN NULL; END $$")
            cur.execute("CREATE TRIGGER archive_gate BEFORE INSERT ON " + TABLE_COMM_LOG_ARCHIVE
                        + " FOR EACH STATEMENT EXECUTE FUNCTION archive_gate()")
        yield
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS archive_gate ON " + TABLE_COMM_LOG_ARCHIVE)
            cur.execute("DROP FUNCTION IF EXISTS archive_gate()")
            cur.execute("DROP SEQUENCE IF EXISTS archive_gate_batches")
        conn.close()


def test_killed_backend_mid_archive_loses_nothing_and_a_rerun_finishes(platform):
    add_log_rows(platform, 60000, 5000)
    original = contents(platform)
    outcome = {}

    def run():
        try:
            outcome["result"] = archive.archive_comm_log(platform.params, batch_size=500)
        except CerniqError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    # Batch 11 waits at the gate inside its statement: ten batches are committed, the eleventh is not.
    with gate_at_batch(platform.pg, 11):
        with Gate(platform.pg) as gate:
            worker.start()
            pid = gate.wait_for_arrival(worker, explain=lambda: repr(outcome))
            killed = platform.sql("SELECT pg_terminate_backend(%s)", (pid,))
        worker.join(60)
    assert killed == [(True,)]
    assert "error" in outcome and "re-run to finish" in outcome["error"].msg
    rows, distinct, checksum, left = contents(platform)
    assert (rows, distinct, checksum) == original[:3]
    archived = platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE)[0][0]
    batches = platform.audit("comm_log_archive_batch")
    assert len(batches) == 10 and 0 < archived and left == 60000 - archived
    assert sum(b[6]["rows"] for b in batches) == archived, "every committed batch has its audit row"

    finish = archive.archive_comm_log(platform.params, batch_size=5000)
    assert finish["complete"] is True and finish["rows_moved"] == left
    assert contents(platform) == original[:3] + (0,)


def test_a_second_run_fails_fast_naming_the_first(platform):
    add_log_rows(platform, 100, 100)
    holder = platform.pg.connect()
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SET application_name = 'first-archive-run'")
            cur.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0)), pg_backend_pid()", (archive.RUN_LOCK_NAME,))
            pid = cur.fetchone()[1]
        before = everything(platform)
        # The holder keeps the lock until the end of this block: a run that waited for it would never return.
        with pytest.raises(CerniqError) as err:
            archive.archive_comm_log(platform.params)
        assert "another comm_log_archive run is in progress" in err.value.msg
        assert "backend pid {0} (first-archive-run".format(pid) in err.value.msg
        assert everything(platform) == before
    finally:
        holder.close()
    assert archive.archive_comm_log(platform.params)["rows_moved"] > 0


def test_rows_already_archived_identically_are_kept_once(platform):
    add_log_rows(platform, 1000, 100)
    # A runbook run that died between its INSERT and its DELETE: 300 old rows are in both tables.
    platform.sql("INSERT INTO " + TABLE_COMM_LOG_ARCHIVE + " SELECT * FROM " + TABLE_COMM_LOG + " WHERE created_at < "
                 "now() - interval '90 days' ORDER BY id LIMIT 300")
    result = archive.archive_comm_log(platform.params, batch_size=400)
    assert result["rows_moved"] == 1000 and result["already_archived"] == 300
    rows, distinct, _checksum, left = contents(platform)
    assert rows == distinct == 1100 and left == 0


def test_an_archived_row_with_other_content_stops_the_batch(platform):
    add_log_rows(platform, 1000, 100)
    clash_id = platform.sql("SELECT id FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - interval '90 days' "
                            "ORDER BY id OFFSET 450 LIMIT 1")[0][0]
    platform.sql("INSERT INTO " + TABLE_COMM_LOG_ARCHIVE + " SELECT * FROM " + TABLE_COMM_LOG + " WHERE id = %s",
                 (clash_id,))
    platform.sql("UPDATE " + TABLE_COMM_LOG_ARCHIVE + " SET status = 'FAILED' WHERE id = %s", (clash_id,))
    with pytest.raises(CerniqError) as err:
        archive.archive_comm_log(platform.params, batch_size=400)
    assert "already in gold_communication_log_archive with different content (ids {0})".format(clash_id) \
        in err.value.msg
    archived = platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE)[0][0] - 1
    assert 0 < archived <= 450 and "{0} row(s) moved in 1 committed batch(es)".format(archived) in err.value.msg
    assert platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG + " WHERE id = %s", (clash_id,))[0][0] == 1
    rows, distinct, _checksum, _left = contents(platform)
    assert rows == distinct + 1 == 1100 + 1, "only the clashing row is in both tables"


def test_a_locked_table_times_out_with_a_clear_message(platform):
    add_log_rows(platform, 100, 10)
    blocker = platform.pg.connect()
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE " + TABLE_COMM_LOG + " IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(CerniqError, match=r"batch 1 waited more than lock_timeout \(0.3 s\)"):
                archive.archive_comm_log(platform.params, lock_timeout=0.3)
    finally:
        blocker.rollback()
        blocker.close()
    assert platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE)[0][0] == 0


def test_a_row_another_session_holds_is_skipped_and_reported(platform):
    add_log_rows(platform, 1000, 10)
    held_id = platform.sql("SELECT id FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - interval '90 days' "
                           "ORDER BY id OFFSET 500 LIMIT 1")[0][0]
    holder = platform.pg.connect()
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT id FROM " + TABLE_COMM_LOG + " WHERE id = %s FOR UPDATE", (held_id,))
            result = archive.archive_comm_log(platform.params, batch_size=300, lock_timeout=0.2)
    finally:
        holder.rollback()
        holder.close()
    assert result["rows_moved"] == 999 and result["rows_remaining"] == 1 and result["complete"] is False
    assert "other sessions held those rows" in result["msg"]
    assert platform.sql("SELECT id FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - interval '90 days'") == [
        (held_id,)]
    assert archive.archive_comm_log(platform.params)["rows_moved"] == 1


def test_max_runtime_stops_between_batches_and_says_what_is_left(platform):
    add_log_rows(platform, 2000, 10)
    partial = archive.archive_comm_log(platform.params, batch_size=100, max_runtime=1e-9)
    assert partial["complete"] is False and partial["rows_remaining"] == 2000 - partial["rows_moved"]
    assert "max_runtime reached" in partial["msg"]
    assert archive.archive_comm_log(platform.params, batch_size=1000)["complete"] is True


@pytest.mark.parametrize("options, message", [
    (dict(older_than_days=0), "older_than_days is 0"),
    (dict(older_than_days=-5), "older_than_days is -5"),
    (dict(batch_size=0), "batch_size is 0"),
    (dict(batch_size=10 ** 6), "batch_size is 1000000"),
    (dict(max_runtime=-1), "max_runtime is -1"),
    (dict(lock_timeout=0), "lock_timeout is 0"),
])
def test_bad_input_is_one_clear_error_and_changes_nothing(platform, options, message):
    add_log_rows(platform, 50, 50)
    before = everything(platform)
    with pytest.raises(CerniqError, match=message):
        archive.archive_comm_log(platform.params, **options)
    assert everything(platform) == before


def test_module_through_ansible_check_run_and_rerun(platform, tmp_path):
    add_log_rows(platform, 1500, 500)
    playbook = tmp_path / "archive.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Archive", "hosts": "db", "gather_facts": False,
        "module_defaults": MODULE_DEFAULTS,
        "roles": [{"role": "cerniq.outreach.platform"}],
        "tasks": [{"name": "Archive the log", "cerniq.outreach.comm_log_archive": {"batch_size": "500",
                                                                                   "confirmed": True}}]}]))
    before = everything(platform)
    run = platform.play(str(playbook), check=True, diff=True)
    assert run.rc == 0, run.stdout
    result = run.result("Archive the log")
    assert result["changed"] is True and result["would_move"]["rows"] == 1500 and "diff" in result
    assert everything(platform) == before
    run = platform.play(str(playbook))
    assert run.rc == 0 and run.result("Archive the log")["rows_moved"] == 1500
    run = platform.play(str(playbook))
    assert run.rc == 0 and run.result("Archive the log")["changed"] is False
