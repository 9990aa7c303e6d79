"""db_maintenance against real PostgreSQL: VACUUM (ANALYZE) outside a transaction, only where there is work."""

from __future__ import annotations

import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils import _maintenance as maintenance
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_COMM_LOG, TABLE_LEADS
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.playbooks import MODULE_DEFAULTS

SMALL = dict(phones=3, leads=300, reviews=20, old_log_rows=200, jobs_per_phone=0, followups=0, dlq_entries=0)


def vacuum_counts(platform):
    return dict(platform.sql("SELECT relname, vacuum_count FROM pg_stat_user_tables WHERE relname = ANY(%s)",
                             ([TABLE_COMM_LOG, TABLE_LEADS],)))


def test_check_mode_shows_the_statement_and_the_stats_without_vacuuming(platform):
    platform.seed(**SMALL)
    before = vacuum_counts(platform)
    result = maintenance.vacuum_tables(platform.params, check_mode=True)
    assert result["changed"] is True
    assert result["statements"] == ["VACUUM (ANALYZE) gold_communication_log, gold_lead_journey"]
    assert result["msg"].startswith("would run VACUUM (ANALYZE)")
    log = result["tables"][0]
    assert log["table"] == TABLE_COMM_LOG and log["vacuumed"] is True and "after" not in log
    assert log["before"]["live_tuples"] > 0 and "inserted since the last vacuum" in " ".join(log["reasons"])
    assert vacuum_counts(platform) == before
    assert platform.audit() == []


def test_vacuum_runs_where_there_is_work_and_a_second_run_changes_nothing(platform):
    platform.seed(**SMALL)
    platform.sql("DELETE FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - interval '90 days'")
    result = maintenance.vacuum_tables(platform.params)
    assert result["changed"] is True and result["msg"].startswith("ran VACUUM (ANALYZE)")
    log = result["tables"][0]
    assert log["before"]["dead_tuples"] == 200 and log["after"]["dead_tuples"] == 0
    assert log["after"]["last_manual_vacuum"] is not None and log["after"]["last_analyze"] is not None
    assert vacuum_counts(platform) == {TABLE_COMM_LOG: 1, TABLE_LEADS: 1}
    (audit,) = platform.audit("vacuum_analyze")
    assert audit[1] == "db_maintenance" and audit[3] == "gold_communication_log,gold_lead_journey"
    assert audit[5][TABLE_COMM_LOG]["dead_tuples"] == 200 and audit[6]["tables"][TABLE_COMM_LOG]["dead_tuples"] == 0

    again = maintenance.vacuum_tables(platform.params)
    assert again["changed"] is False and again["statements"] == [] and again["msg"].startswith("nothing to do")
    assert vacuum_counts(platform) == {TABLE_COMM_LOG: 1, TABLE_LEADS: 1}

    # New dead tuples in one table: only that one is vacuumed.
    platform.sql("UPDATE " + TABLE_LEADS + " SET sequence_paused = true WHERE engagement_stage = 'DEAD'")
    third = maintenance.vacuum_tables(platform.params)
    assert third["statements"] == ["VACUUM (ANALYZE) gold_lead_journey"]
    assert vacuum_counts(platform) == {TABLE_COMM_LOG: 1, TABLE_LEADS: 2}
    assert len(platform.audit("vacuum_analyze")) == 2


def test_force_vacuums_every_table_named(platform):
    maintenance.vacuum_tables(platform.params, tables=[TABLE_LEADS])
    result = maintenance.vacuum_tables(platform.params, tables=[TABLE_LEADS, TABLE_LEADS], force=True,
                                       analyze=False)
    assert result["statements"] == ["VACUUM gold_lead_journey"] and result["tables"][0]["reasons"] == ["forced"]
    assert platform.audit("vacuum")[0][3] == TABLE_LEADS


@pytest.mark.parametrize("options, message", [
    (dict(tables=["gold_communication_log", "pg_authid"]), "'pg_authid' are not tables of the platform contract"),
    (dict(tables=["gold_lead_journey; DROP TABLE x"]), "are not tables of the platform contract"),
    (dict(tables=[]), "tables is empty"),
    (dict(lock_timeout=0), "lock_timeout is 0"),
])
def test_bad_input_is_one_clear_error_and_nothing_runs(platform, options, message):
    before = vacuum_counts(platform)
    with pytest.raises(CerniqError, match=message):
        maintenance.vacuum_tables(platform.params, **options)
    assert vacuum_counts(platform) == before and platform.audit() == []


def test_a_user_who_may_not_vacuum_is_told_before_anything_runs(platform):
    admin = platform.pg.superuser_connect()
    try:
        with admin.cursor() as cur:
            cur.execute("DROP ROLE IF EXISTS cerniq_reader")
            cur.execute("CREATE ROLE cerniq_reader LOGIN PASSWORD 'reader-pw'")
        params = dict(platform.params, db_user="cerniq_reader", db_password="reader-pw")
        with pytest.raises(CerniqError, match="user cerniq_reader may not VACUUM gold_communication_log "
                                              r"\(owner cerniq\): connect as the table owner"):
            maintenance.vacuum_tables(params)
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP ROLE IF EXISTS cerniq_reader")
        admin.close()
    assert platform.audit() == []


def test_a_held_lock_times_out_with_a_clear_message(platform):
    platform.sql("DELETE FROM " + TABLE_LEADS)
    blocker = platform.pg.connect()
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE " + TABLE_LEADS + " IN SHARE UPDATE EXCLUSIVE MODE")
            with pytest.raises(CerniqError, match="lock timeout - another session holds a lock"):
                maintenance.vacuum_tables(platform.params, tables=[TABLE_LEADS], force=True, lock_timeout=0.3)
    finally:
        blocker.rollback()
        blocker.close()
    assert platform.audit() == []


def test_module_through_ansible_check_run_and_rerun(platform, tmp_path):
    platform.seed(**SMALL)
    playbook = tmp_path / "vacuum.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Maintenance", "hosts": "db", "gather_facts": False,
        "module_defaults": MODULE_DEFAULTS,
        "roles": [{"role": "cerniq.outreach.platform"}],
        "tasks": [{"name": "Vacuum", "cerniq.outreach.db_maintenance": {"tables": [TABLE_COMM_LOG]}}]}]))
    run = platform.play(str(playbook), check=True, diff=True)
    assert run.rc == 0, run.stdout
    assert run.result("Vacuum")["changed"] is True and platform.audit() == []
    run = platform.play(str(playbook))
    assert run.rc == 0 and run.result("Vacuum")["changed"] is True
    run = platform.play(str(playbook))
    assert run.rc == 0 and run.result("Vacuum")["changed"] is False
