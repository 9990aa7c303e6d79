"""maintenance_weekly.yml (runbook 8.1 steps 1-3) on real servers: archive, vacuum, DLQ trim; asks first."""

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_AUDIT
from tests.support.snapshots import assert_unchanged, platform_state, without_tables

SEED = dict(phones=4, leads=200, old_log_rows=1500, reviews=10, jobs_per_phone=2, dlq_entries=1300, offline=(),
            banned=(), drift_phone="phone_01", leak_phone="phone_02", no_ttl_phone="phone_03")


def counts(platform):
    live, archive = platform.sql("SELECT (SELECT count(*) FROM gold_communication_log), "
                                 "(SELECT count(*) FROM gold_communication_log_archive)")[0]
    old = platform.sql("SELECT count(*) FROM gold_communication_log WHERE created_at < now() - interval '90 days'")
    return live, archive, old[0][0]


def db_play(platform, **kwargs):
    return platform.play("maintenance_weekly.yml", limit="db", **kwargs)


def test_without_confirm_nothing_moves(platform):
    platform.seed(**SEED)
    before = platform_state(platform)
    run = db_play(platform)
    assert run.rc != 0 and "re-run with -e confirm=true" in run.stdout
    assert "archive 1500 communication log rows" in " ".join(run.stdout.split())
    assert_unchanged(before, platform_state(platform))


def test_check_mode_changes_nothing(platform):
    platform.seed(**SEED)
    before = platform_state(platform)
    run = db_play(platform, check=True, diff=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert_unchanged(before, platform_state(platform))


def test_confirmed_run_archives_every_old_row_once_trims_the_dlq_and_a_second_run_changes_nothing(platform):
    platform.seed(**SEED)
    live_before, archive_before, old_before = counts(platform)
    run = db_play(platform, extravars={"confirm": "true", "maintenance_weekly_archive_batch_size": "400"})
    assert run.rc == 0, run.stdout[-3000:]
    live, archive, old = counts(platform)
    assert (old, archive) == (0, archive_before + old_before)
    assert live + archive == live_before + archive_before
    assert platform.sql("SELECT count(*) FROM gold_communication_log l JOIN gold_communication_log_archive a "
                        "USING (id)")[0][0] == 0
    assert platform.r(2).llen(contract.DLQ_LIST_KEY) == 1000
    assert platform.r(2).lindex(contract.DLQ_LIST_KEY, 0).startswith('{"jobId":"dead-1299"')
    archive_result = run.result("Archive communication log rows")
    assert archive_result["complete"] is True and archive_result["batches"] >= 4
    assert run.result("VACUUM ANALYZE after the archive")["changed"] is True

    before, audited = platform_state(platform), len(platform.audit())
    again = db_play(platform, extravars={"confirm": "true"})
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed_tasks == []
    # Excluded by design: a confirmed archive run records itself in the audit log even when it moves nothing
    # (the one row is checked here); every other table and every key is byte for byte as it was.
    assert_unchanged(without_tables(before, TABLE_AUDIT), without_tables(platform_state(platform), TABLE_AUDIT))
    new_rows = platform.audit()[audited:]
    assert [(row[1], row[2]) for row in new_rows] == [("comm_log_archive", "comm_log_archive")], new_rows
    assert new_rows[0][6]["rows_moved"] == 0


def test_every_dead_letter_list_is_trimmed_and_a_non_list_key_is_reported_untouched(platform):
    """Runbook 8.1 step 3 trims every bull:dlq:* list: the platform has several, and other keys under that prefix."""
    platform.seed(**SEED)
    r = platform.r(2)
    r.lpush("bull:dlq:followup", *["f-{0}".format(i) for i in range(1100)])
    r.rpush("bull:dlq:email", *["e-{0}".format(i) for i in range(10)])
    r.hset("bull:dlq:stats", mapping={"seen": "2400"})
    stats = r.dump("bull:dlq:stats")
    run = db_play(platform)
    plan = " ".join(run.stdout.split())
    assert run.rc != 0 and "trim 3 list(s) matching bull:dlq:* (bull:dlq:email, bull:dlq:followup, " \
        "bull:dlq:outreach; 2410 entries)" in plan and "(400 dropped); left alone, not plain lists - bull:dlq:stats" \
        in plan
    assert "whole rows (12 columns: id, tenant_id," in plan
    assert r.llen("bull:dlq:followup") == 1100

    run = db_play(platform, extravars={"confirm": "true"})
    assert run.rc == 0, run.stdout[-3000:]
    assert (r.llen(contract.DLQ_LIST_KEY), r.llen("bull:dlq:followup"), r.llen("bull:dlq:email")) == (1000, 1000, 10)
    assert r.lindex("bull:dlq:followup", 0) == "f-1099" and r.dump("bull:dlq:stats") == stats
    trimmed = run.result("Trim every dead-letter list")
    assert trimmed["dlq"]["removed"] == 400 and [s["key"] for s in trimmed["dlq"]["skipped"]] == ["bull:dlq:stats"]
    assert sorted(row[3] for row in platform.audit("bullmq_dlq_trim")) == ["bull:dlq:followup", "bull:dlq:outreach"]
