"""cerniq.outreach.report_file: the reports' directory, files and retention, written in the controller's process."""

import os
import stat
import time

import pytest

from ansible_collections.cerniq.outreach.plugins.action.report_file import ReportFileError, write_reports

DAY = 86400


def options(**given):
    base = dict(files=[], mode="0640", directory_mode="0750", owner="", group="", keep_days=0, remove_patterns=[])
    base.update(given)
    return base


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def aged(path, days):
    then = time.time() - days * DAY
    os.utime(path, (then, then))
    return path


def test_makes_the_directories_with_their_mode_writes_the_file_and_rewrites_only_a_new_content(tmp_path):
    report = tmp_path / "home" / "reports" / "check_morning-2026-12-03.json"
    given = options(files=[dict(path=str(report), content='{"overall": "pass"}')])
    assert write_reports(given) == dict(changed=True, written=[str(report)], removed=[])
    assert report.read_text() == '{"overall": "pass"}' and mode_of(report) == 0o640
    assert mode_of(report.parent) == 0o750 and mode_of(report.parent.parent) == 0o750, "every directory it made"
    assert write_reports(given) == dict(changed=False, written=[], removed=[])
    given["files"][0]["content"] = '{"overall": "fail"}'
    assert write_reports(given)["written"] == [str(report)]
    assert report.read_text() == '{"overall": "fail"}'
    assert [p.name for p in report.parent.iterdir()] == [report.name], "no temporary file left behind"


def test_an_existing_directory_and_file_get_their_modes_back(tmp_path):
    report = tmp_path / "check_evening-2026-12-03.json"
    report.write_text("{}")
    os.chmod(report, 0o644)
    os.chmod(tmp_path, 0o755)
    result = write_reports(options(files=[dict(path=str(report), content="{}")]))
    assert result["changed"] and mode_of(report) == 0o640 and mode_of(tmp_path) == 0o750


def test_retention_removes_only_matching_files_as_old_as_keep_days(tmp_path):
    for name, days in (("check_morning-2026-10-01.json", 31), ("check_morning-2026-11-20.json", 13),
                       ("daily_report-2026-10-01.html", 40), ("notes.txt", 90)):
        path = tmp_path / name
        path.write_text("x")
        aged(path, days)
    today = tmp_path / "check_morning-2026-12-03.json"
    result = write_reports(options(files=[dict(path=str(today), content="{}")], keep_days=30,
                                   remove_patterns=["check_morning-*.json"]))
    assert result["removed"] == [str(tmp_path / "check_morning-2026-10-01.json")]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "check_morning-2026-11-20.json", "check_morning-2026-12-03.json", "daily_report-2026-10-01.html", "notes.txt"]


def test_check_mode_says_what_it_would_do_and_touches_nothing(tmp_path):
    old = tmp_path / "reports" / "check_morning-2026-10-01.json"
    old.parent.mkdir()
    old.write_text("{}")
    aged(old, 31)
    report = tmp_path / "reports" / "check_morning-2026-12-03.json"
    result = write_reports(options(files=[dict(path=str(report), content="{}")], keep_days=30,
                                   remove_patterns=["check_morning-*.json"]), check_mode=True)
    assert result == dict(changed=True, written=[str(report)], removed=[str(old)])
    assert old.exists() and not report.exists()
    assert write_reports(options(files=[dict(path=str(tmp_path / "new" / "r.json"), content="{}")]),
                         check_mode=True)["changed"]
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("given, message", [
    (dict(files=[dict(path="reports/r.json", content="{}")]), "absolute path"),
    (dict(files=[dict(path="/tmp/r.json")]), "text content"),
    (dict(files=[dict(path="/tmp/r.json", content="{}")], mode="rw-r-----"), "octal mode"),
    (dict(files=[dict(path="/tmp/r.json", content="{}")], owner="no-such-user-here"), "no such user"),
])
def test_wrong_options_are_one_clear_error(given, message):
    with pytest.raises(ReportFileError, match=message):
        write_reports(options(**given))
