"""check_evening.yml (runbook 1.2) for real: today's figures, the DLQ, the archive backlog and a real backup (taken
with pg_dump, verified with pg_restore --list) judged exactly; the daily report written as JSON and a
self-contained, escaped HTML page; a stale or corrupt backup fails the check; check mode writes nothing."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _backup
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    DEFAULT_TIMEZONE,
    DIRECTION_OUTBOUND,
    TABLE_COMM_LOG,
    TABLE_PHONES,
    business_day,
    business_day_bounds,
    phone_queue,
)
from tests.support.snapshots import assert_unchanged, platform_state

OLD_ROWS = 40
DLQ = 150
LABEL = "<b>Sales & Co</b>"


@pytest.fixture()
def evening(platform, tmp_path):
    """5 phones with today's traffic, 40 log rows past the archive age, 150 dead letters, and a fresh backup."""
    platform.seed(phones=5, leads=300, old_log_rows=OLD_ROWS, reviews=30, jobs_per_phone=2, dlq_entries=DLQ,
                  offline=("phone_04",), banned=(), drift_phone="", leak_phone="", no_ttl_phone="")
    platform.sql("UPDATE " + TABLE_PHONES + " SET phone_label = %s WHERE id = 'phone_02'", (LABEL,))
    backups = tmp_path / "backups"
    backups.mkdir()
    taken = _backup.create_backup(platform.params, str(backups), 7, False)
    return dict(backups=backups, backup_id=taken["backup"]["id"], reports=tmp_path / "reports")


def run_evening(platform, evening, check=False, tags=None, **extra):
    extravars = {"cerniq_backup_dir": str(evening["backups"]), "cerniq_report_dir": str(evening["reports"])}
    extravars.update(extra)
    return platform.play("check_evening.yml", extravars=extravars, check=check, tags=tags)


def checks_of(run):
    report = run.result("Judge each check")["ansible_facts"]["check_evening_report"]
    return report, {check["name"]: check for check in report["checks"]}


def contacted_today(platform):
    start, end = business_day_bounds(business_day(DEFAULT_TIMEZONE), DEFAULT_TIMEZONE)
    return platform.sql("SELECT count(DISTINCT lead_id) FROM " + TABLE_COMM_LOG + " WHERE direction = %s "
                        "AND created_at >= %s AND created_at < %s", (DIRECTION_OUTBOUND, start, end))[0][0]


def test_figures_dlq_archive_backup_and_the_daily_report(platform, evening):
    run = run_evening(platform, evening)
    assert run.rc == 0, run.stdout[-3000:]
    report, checks = checks_of(run)
    assert {name: c["status"] for name, c in checks.items()} == {
        "activity": "pass", "dlq": "warn", "archive": "warn", "backup": "pass"}
    assert checks["activity"]["data"]["contacted"] == contacted_today(platform) > 0
    assert checks["dlq"]["data"] == {"length": DLQ}
    assert checks["archive"]["data"]["rows"] == OLD_ROWS
    assert checks["backup"]["data"]["id"] == evening["backup_id"] and checks["backup"]["data"]["verified"] is True
    assert report["dlq"] == DLQ
    assert [p["id"] for p in report["phones"]] == ["phone_01", "phone_02", "phone_03", "phone_04", "phone_05"]
    assert {q["name"] for q in report["queues"]} >= {phone_queue("phone_01"), phone_queue("phone_05")}

    day = business_day(DEFAULT_TIMEZONE)
    written = json.loads((evening["reports"] / "check_evening-{0}.json".format(day)).read_text())
    assert written["checks"] == report["checks"] and written["phones"] == report["phones"]
    html_file = evening["reports"] / "daily_report-{0}.html".format(day)
    html = html_file.read_text()
    # The summary says where the reports landed (on the controller): the two files just read, by their full paths.
    summary = run.result("Show the evening check")["msg"].splitlines()
    assert "Daily report: {0} (JSON: {1})".format(
        html_file, evening["reports"] / "check_evening-{0}.json".format(day)) in summary, summary
    for outside in ("http://", "https://", "<script", "<link", "src=", "@import"):
        assert outside not in html, "the page must not fetch anything ({0})".format(outside)
    assert "&lt;b&gt;Sales &amp; Co&lt;/b&gt;" in html and LABEL not in html
    assert all('class="id">phone_0{0}'.format(n) in html for n in range(1, 6))
    assert "bull:dlq:outreach holds {0} failed job(s)".format(DLQ) in html
    stats = run.result("Hand the verdicts")["ansible_stats"]["data"]["check_evening"]
    assert stats["overall"] == "warn" and stats["dlq"] == DLQ and stats["activity"]["contacted"] > 0


def test_check_mode_writes_nothing_and_a_second_run_changes_nothing(platform, evening):
    before = platform_state(platform)
    checked = run_evening(platform, evening, check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert not evening["reports"].exists()
    assert "No report written" in checked.result("Show the evening check")["msg"]
    assert_unchanged(before, platform_state(platform))
    first = run_evening(platform, evening)
    assert first.rc == 0 and first.changed_tasks == []
    assert sorted(path.suffix for path in evening["reports"].iterdir()) == [".html", ".json"]
    before = platform_state(platform)
    second = run_evening(platform, evening)
    assert second.rc == 0 and second.changed_tasks == []
    assert_unchanged(before, platform_state(platform))


def test_a_stale_or_corrupt_backup_fails_the_check(platform, evening):
    shutil.rmtree(evening["backups"])
    evening["backups"].mkdir()
    yesterday = datetime.now(timezone.utc) - timedelta(days=1, hours=1)
    old = _backup.create_backup(platform.params, str(evening["backups"]), 7, False, now=yesterday)
    run = run_evening(platform, evening)
    assert run.rc != 0 and "Failed: backup" in run.stdout
    checks = checks_of(run)[1]
    assert checks["backup"]["status"] == "fail"
    assert checks["backup"]["figure"].startswith("newest backup {0} is from ".format(old["backup"]["id"]))

    today = _backup.create_backup(platform.params, str(evening["backups"]), 7, False)
    dump = next(Path(today["backup"]["path"]).glob("*.dump"))
    dump.write_bytes(dump.read_bytes()[:1000])
    checks = checks_of(run_evening(platform, evening))[1]
    assert checks["backup"]["status"] == "fail" and "does not verify" in checks["backup"]["figure"]

    skipped = run_evening(platform, evening, check_evening_backup="false", tags="backup")
    assert skipped.rc == 0
    assert [(c["name"], c["status"]) for c in checks_of(skipped)[0]["checks"]] == [("backup", "skip")]


def age_old_rows(platform, days):
    """Every row past the archive age goes; 30 rows `days` days old (copies of the first row) take their place."""
    platform.sql("DELETE FROM " + TABLE_COMM_LOG + " WHERE created_at < now() - interval '90 days'")
    platform.sql("INSERT INTO " + TABLE_COMM_LOG + " (tenant_id, lead_id, phone_id, channel, direction, status, "
                 "created_at) SELECT tenant_id, lead_id, phone_id, channel, direction, status, "
                 "now() - make_interval(days => %s) - g * interval '1 minute' FROM " + TABLE_COMM_LOG + ", "
                 "generate_series(1, 30) AS g WHERE id = (SELECT min(id) FROM " + TABLE_COMM_LOG + ")", (days,))


def test_the_archive_backlog_is_judged_against_the_weekly_schedule(platform, evening):
    """Runbook 1.2 step 3 with the weekly archive of 8.1: rows a few days past 90 are waiting for Sunday (pass);
    rows older than 90 + 7 + 1 days mean the archive did not run (warn). The audit log says when it last ran."""
    age_old_rows(platform, 93)
    run = run_evening(platform, evening, tags="archive")
    assert run.rc == 0, run.stdout[-3000:]
    check = checks_of(run)[1]["archive"]
    assert check["status"] == "pass" and check["data"]["rows"] == 30 and check["data"]["overdue"] is False
    assert "within the weekly archive's 98 days" in check["figure"]
    assert check["figure"].endswith("; no archive run in the audit log")

    # The same rows with a daily window (period 1, no margin) are overdue.
    daily = run_evening(platform, evening, tags="archive", check_evening_archive_period_days="1",
                        check_evening_archive_margin_days="0")
    check = checks_of(daily)[1]["archive"]
    assert check["status"] == "warn" and check["data"]["allowance_days"] == 91
    assert "overdue, older than 91 days" in check["figure"] and "maintenance_weekly.yml --tags archive" in \
        check["next"]

    # The archive runs (audited), then rows 100 days old appear (a window missed): overdue, with the last run named.
    archived = platform.play("maintenance_weekly.yml", limit="db", tags="archive", extravars={"confirm": "true"})
    assert archived.rc == 0, archived.stdout[-3000:]
    (last_run_at,) = platform.sql("SELECT at FROM ops_audit_log WHERE action = 'comm_log_archive'")[0]
    age_old_rows(platform, 100)
    late = checks_of(run_evening(platform, evening, tags="archive"))[1]["archive"]
    assert late["status"] == "warn" and late["data"]["overdue"] is True
    assert late["data"]["last_run"]["rows_moved"] == 30 and late["data"]["last_run"]["complete"] is True
    assert datetime.fromisoformat(late["data"]["last_run"]["at"]) == last_run_at
    assert "; last archive run " in late["figure"] and "(30 row(s) moved)" in late["figure"]
