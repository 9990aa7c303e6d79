"""comm_log_archive on a production-shaped table: columns beyond our DDL move with their rows, byte for byte, or the
run is refused before its first batch, naming them, with nothing moved."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _archive as archive
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_COMM_LOG, TABLE_COMM_LOG_ARCHIVE
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.comm_log import add_log_rows

# A name that needs quoting (space, capital, double quote) and a binary column holding every byte value.
ODD = '"Vendor ""Ref"""'
ODD_NAME = 'Vendor "Ref"'


@pytest.fixture()
def extra_columns(platform):
    """ALTERs the session's tables for one test and drops what it added afterwards."""
    added = []

    def add(table, column, kind):
        platform.sql("ALTER TABLE {0} ADD COLUMN {1} {2}".format(table, column, kind))
        added.append((table, column))

    yield add
    for table, column in reversed(added):
        platform.sql("ALTER TABLE {0} DROP COLUMN IF EXISTS {1}".format(table, column))


def fill_extra(platform):
    """Every live row gets distinct binary data (NUL and high bytes included) and text needing quoting."""
    platform.sql("UPDATE " + TABLE_COMM_LOG + " SET raw_payload = decode(md5(id::text), 'hex') || '\\x00ff0a27'::bytea "
                 "|| int8send(id), " + ODD + " = 'ref ''' || id || E'\"\\n\\u00e9'")


def both_tables(platform):
    """Checksums of every row of both tables (whatever their columns) and the audit count: 'nothing changed'."""
    return (platform.sql("SELECT count(*), md5(string_agg(l::text, ',' ORDER BY id)) FROM " + TABLE_COMM_LOG + " l"),
            platform.sql("SELECT count(*), md5(string_agg(a::text, ',' ORDER BY id)) FROM " + TABLE_COMM_LOG_ARCHIVE
                         + " a"),
            platform.sql("SELECT count(*) FROM ops_audit_log"))


def extras(platform, table, where="true"):
    return dict((row[0], (bytes(row[1]), row[2])) for row in platform.sql(
        "SELECT id, raw_payload, " + ODD + " FROM " + table + " WHERE " + where))


def test_extra_columns_on_both_tables_move_with_their_values_byte_for_byte(platform, extra_columns):
    for table in (TABLE_COMM_LOG, TABLE_COMM_LOG_ARCHIVE):
        extra_columns(table, "raw_payload", "bytea")
        extra_columns(table, ODD, "text")
    add_log_rows(platform, 1500, 300)
    fill_extra(platform)
    old = extras(platform, TABLE_COMM_LOG, "created_at < now() - interval '90 days'")
    assert len(old) == 1500 and all(len(payload) == 28 and b"\x00" in payload for payload, _ref in old.values())

    plan = archive.archive_comm_log(platform.params, batch_size=400, check_mode=True)
    assert plan["columns"][-2:] == ["raw_payload", ODD_NAME] and len(plan["columns"]) == 14
    assert plan["column_types"]["raw_payload"] == "bytea" and plan["archive_only_columns"] == []
    assert "whole rows: 14 column(s) (id, tenant_id" in plan["msg"] and ODD_NAME in plan["msg"]
    assert platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE)[0][0] == 0

    result = archive.archive_comm_log(platform.params, batch_size=400)
    assert result["rows_moved"] == 1500 and result["complete"] is True and result["columns"] == plan["columns"]
    assert extras(platform, TABLE_COMM_LOG_ARCHIVE) == old
    # And every other column too: the archive's rows, read whole, are the live rows that were old.
    assert platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE + " WHERE raw_payload IS NULL OR "
                        + ODD + " IS NULL")[0][0] == 0
    (summary,) = platform.audit("comm_log_archive")
    assert summary[6]["columns"] == plan["columns"]


def test_a_column_only_on_the_live_table_is_refused_before_anything_moves(platform, extra_columns):
    extra_columns(TABLE_COMM_LOG, "raw_payload", "bytea")
    extra_columns(TABLE_COMM_LOG, ODD, "text")
    add_log_rows(platform, 800, 100)
    fill_extra(platform)
    before = both_tables(platform)
    for check_mode in (True, False):
        with pytest.raises(CerniqError) as err:
            archive.archive_comm_log(platform.params, batch_size=100, check_mode=check_mode)
        assert "refusing to archive, before the first batch: gold_communication_log_archive lacks column(s) " \
               "raw_payload (bytea), Vendor \"Ref\" (text) of gold_communication_log. Nothing of it moved" \
               in err.value.msg
        assert both_tables(platform) == before

    # Once the archive table has them, the same run goes through.
    extra_columns(TABLE_COMM_LOG_ARCHIVE, "raw_payload", "bytea")
    extra_columns(TABLE_COMM_LOG_ARCHIVE, ODD, "text")
    old = extras(platform, TABLE_COMM_LOG, "created_at < now() - interval '90 days'")
    assert archive.archive_comm_log(platform.params, batch_size=100)["rows_moved"] == 800
    assert extras(platform, TABLE_COMM_LOG_ARCHIVE) == old


def test_a_column_of_another_type_is_refused_naming_both_types(platform, extra_columns):
    extra_columns(TABLE_COMM_LOG, "score", "numeric(6,2)")
    extra_columns(TABLE_COMM_LOG_ARCHIVE, "score", "integer")
    extra_columns(TABLE_COMM_LOG_ARCHIVE, "archived_by", "text NOT NULL")
    add_log_rows(platform, 200, 10)
    platform.sql("UPDATE " + TABLE_COMM_LOG + " SET score = id / 7.0")
    before = both_tables(platform)
    with pytest.raises(CerniqError) as err:
        archive.archive_comm_log(platform.params)
    assert "column(s) with another type in gold_communication_log_archive: score (numeric(6,2) live, integer " \
           "archive)" in err.value.msg
    assert "archived_by of gold_communication_log_archive are NOT NULL without a default" in err.value.msg
    assert err.value.details["columns"][-1] == "score"
    assert both_tables(platform) == before


def test_a_column_added_during_the_run_stops_it_at_the_next_batch_with_nothing_lost(platform, extra_columns):
    add_log_rows(platform, 30000, 100)
    total = platform.sql("SELECT (SELECT count(*) FROM " + TABLE_COMM_LOG + ") + (SELECT count(*) FROM "
                         + TABLE_COMM_LOG_ARCHIVE + ")")[0][0]
    outcome = {}

    def run():
        try:
            outcome["result"] = archive.archive_comm_log(platform.params, batch_size=100)
        except CerniqError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and worker.is_alive():
        if platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE)[0][0] >= 500:
            # A migration while the archive runs: the live table gains a column (with a value on every row).
            extra_columns(TABLE_COMM_LOG, "raw_payload", "bytea NOT NULL DEFAULT '\\x0102'")
            break
        time.sleep(0.01)
    worker.join(30)
    assert "error" in outcome, "the archive finished before the table changed: {0}".format(outcome)
    message = outcome["error"].msg
    assert "refusing to archive, before batch " in message and "lacks column(s) raw_payload (bytea)" in message
    assert "re-run to finish" in message
    archived = platform.sql("SELECT count(*) FROM " + TABLE_COMM_LOG_ARCHIVE)[0][0]
    assert 500 <= archived < 30000
    assert sum(b[6]["rows"] for b in platform.audit("comm_log_archive_batch")) == archived
    live = platform.sql("SELECT count(*), count(*) FILTER (WHERE raw_payload = '\\x0102'::bytea) FROM "
                        + TABLE_COMM_LOG)[0]
    assert live[0] == live[1] == total - archived, "every row not archived kept its new column's value"
