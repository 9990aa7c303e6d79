"""The daily checks' judgement (filter cerniq.outreach.morning_checks & co.) and the contract lookup: pure functions
over module results shaped as the modules return them; the integration tests run them against real servers."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError, AnsibleLookupError

from ansible_collections.cerniq.outreach.plugins.filter import daily_checks as checks
from ansible_collections.cerniq.outreach.plugins.lookup.contract import contract_value
from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils import _daily_checks as core

ACTIVE, OFFLINE, BANNED = contract.PHONE_STATUSES
TZ = contract.DEFAULT_TIMEZONE


def settings(**given):
    return checks._settings(given, core.MORNING_DEFAULTS)


def phone(pid, status=ACTIVE, enabled=True, drift=False):
    return dict(id=pid, status=status, is_enabled=enabled, drift=drift, redis_status=status, status_key="k",
                phone_label="Sales", phone_number="+40700000001", status_changed_at="2026-11-24T08:00:00+00:00",
                quota=dict(value=50, limit=200))


def queue(name, wait=0, delayed=0, due=0, paused=False, workers=1):
    return dict(name=name, counts=dict(wait=wait, paused=0, prioritized=0, delayed=delayed, active=0, failed=0),
                due_delayed=due, is_paused=paused, workers=workers, pairing_problem=None)


def queues_result(*queues, dlq=0):
    return dict(queues=list(queues), dlq_lists=[dict(key=contract.DLQ_LIST_KEY, type="list", length=dlq)])


def test_levels_and_settings_as_a_survey_sends_them():
    assert [core._level(v, 10, 100) for v in (9, 10, 99, 100)] == ["pass", "warn", "warn", "fail"]
    assert core._level(10 ** 6, 0, 0) == "pass", "0 switches a level off"
    got = settings(queue_waiting_warn="50", banned_fails="false", dlq_warn="0")
    assert got["queue_waiting_warn"] == 50 and got["banned_fails"] is False and got["dlq_warn"] == 0
    with pytest.raises(AnsibleFilterError, match="unknown daily check setting 'queue_warn'"):
        settings(queue_warn=1)
    with pytest.raises(AnsibleFilterError, match="is not a whole number"):
        settings(dlq_warn="lots")


def test_phones_not_active_disabled_ones_not_judged_and_banned_only_warns_by_default():
    result = dict(phones=[phone("phone_01"), phone("phone_02", BANNED), phone("phone_03", OFFLINE, enabled=False)])
    check = core.phones_check(result, settings())
    assert check["status"] == "warn"
    assert check["figure"] == "1 of 2 not ACTIVE: BANNED phone_02 (1 disabled, not judged)"
    assert core.phones_check(result, settings(banned_fails=True))["status"] == "fail"
    many = dict(phones=[phone("phone_{0:02d}".format(n), OFFLINE) for n in range(1, 9)])
    assert core.phones_check(many, settings())["figure"].endswith("phone_05 and 3 more")


def test_queues_backed_up_paused_stuck_and_dlq():
    result = queues_result(queue("q:wa:phone_01", wait=60), queue("q:wa:phone_02", delayed=5, due=2, workers=0),
                           queue("outreach:followup", delayed=900), queue("q:wa:phone_03", paused=True), dlq=12)
    check = core.queues_check(result, settings(queue_waiting_warn=50, queue_waiting_fail=500, dlq_warn=10))
    assert check["status"] == "warn"
    assert check["figure"] == ("4 queues: 60 waiting, 905 delayed, 0 active, 0 failed; DLQ 12; 1 backed up, "
                               "1 paused, 1 with due jobs and no worker, DLQ over 10")
    assert check["data"]["queues"][0]["name"] == "q:wa:phone_01"
    failing = core.queues_check(queues_result(queue("q:wa:phone_01", wait=500)),
                                settings(queue_waiting_warn=50, queue_waiting_fail=500))
    assert failing["status"] == "fail"
    calm = core.queues_check(queues_result(queue("q:wa:phone_01", wait=3)), settings())
    assert calm["status"] == "pass" and calm["figure"].endswith("deepest q:wa:phone_01 (3)") and not calm["next"]


def test_every_dead_letter_list_is_judged_and_keys_that_are_not_lists_are_named():
    """Several bull:dlq:* lists (bullmq_queue_info's dlq_pattern): each list against the thresholds, the total in the
    figure; a matched key of another type is named and not counted, an explicit key of another type fails."""
    lists = [dict(key=key, type="list", length=length)
             for key, length in ((contract.DLQ_LIST_KEY, 4), ("bull:dlq:followup", 12), ("bull:dlq:email", 3))]
    skipped = [dict(key="bull:dlq:stats", type="hash", why="not a list")]
    result = dict(queues=[queue("q:wa:phone_01", wait=1)], dlq_lists=lists, dlq_skipped=skipped)
    morning = core.queues_check(result, settings(dlq_warn=10))
    assert morning["status"] == "warn" and morning["data"]["dlq"] == 19
    assert morning["figure"] == "1 queues: 1 waiting, 0 delayed, 0 active, 0 failed; DLQ 19; DLQ over 10"
    assert morning["next"] == "look at the dead letters (bull:dlq:followup; the evening check, runbook 1.2)"
    assert "dead-letter lists: bull:dlq:outreach (4), bull:dlq:followup (12), bull:dlq:email (3)" in morning["details"]
    assert ("bull:dlq:stats matches the dead-letter pattern but is a hash (not a list): not counted"
            in morning["details"])
    assert core.queues_check(result, settings(dlq_warn=13))["status"] == "pass", "each list, not the total, is judged"
    evening = checks._settings(dict(dlq_warn=10, dlq_fail=100), core.EVENING_DEFAULTS)
    check = core.dlq_check(result, evening)
    assert check["status"] == "warn" and check["figure"] == "19 failed job(s) in 3 dead-letter lists"
    assert check["data"] == dict(length=19) and check["details"] == morning["details"][:2]
    assert "LRANGE bull:dlq:followup 0 20" in check["next"]
    hashed = dict(result, dlq_lists=[dict(key=contract.DLQ_LIST_KEY, type="hash", length=None)] + lists[1:])
    assert core.dlq_check(hashed, evening)["figure"] == "bull:dlq:outreach is a hash, not a list"
    assert core.dlq_check(hashed, evening)["status"] == "fail"


def test_a_failed_read_is_a_failed_check_with_its_message():
    masked = dict(changed=False, failed=False, failed_when_result=False, msg="TimelinesAI answered 500")
    check = core.timelinesai_check(masked)
    assert check["status"] == "fail" and check["figure"] == "TimelinesAI could not be read: TimelinesAI answered 500"
    assert core.timelinesai_check(None, enabled=False)["status"] == "skip"
    found = checks.morning_checks(dict(phones=dict(skipped=True), vendor=dict(skipped=True), timelinesai="false"))
    assert [c["name"] for c in found] == ["timelinesai"] and found[0]["status"] == "skip"


def test_summary_overall_is_the_worst_and_skip_is_not_a_failure():
    made = [core._check("a", "A", "pass", "ok"), core._check("b", "B", "skip", "-"),
            core._check("c", "C", "warn", "hm", ["detail"], "do this")]
    report = core.summarize(made, "morning", "2026-11-24", TZ)
    assert report["overall"] == "warn" and report["warned"] == ["c"] and report["next"] == ["c: do this"]
    assert report["explained"] == ["c (WARN): C", "  - detail"]
    assert report["table"][0] == "Morning check 2026-11-24 (Europe/Bucharest): WARN - 0 fail, 1 warn, 1 pass, 1 skipped"
    assert core.summarize([], "evening")["overall"] == "skip"
    assert core.check_stats(report)["checks"]["c"] == {"status": "warn", "figure": "hm"}


def test_backup_is_today_in_the_platform_time_zone_and_verified():
    late = dict(backups=[{}], root="/b", selected=dict(id="x", path="/b/x", taken_at="2026-11-24T22:30:00+00:00",
                                                       verified=True, bytes=3 * 1024 * 1024))
    base = checks._settings(dict(timezone=TZ), core.EVENING_DEFAULTS)
    # 22:30 UTC on the 24th is 00:30 on the 25th in Bucharest: that night's backup belongs to the 25th.
    good = core.backup_check(late, base, "2026-11-25")
    assert good["status"] == "pass" and good["figure"] == "x (3.0 MB) verified (pg_restore --list, sha256)"
    stale = core.backup_check(late, base, "2026-11-26")
    assert stale["status"] == "fail" and stale["figure"] == "newest backup x is from 2026-11-25, none from 2026-11-26"
    broken = dict(late, selected=dict(late["selected"], verified=False, problem="truncated"))
    assert core.backup_check(broken, base, "2026-11-25")["status"] == "fail"
    none = core.backup_check(dict(backups=[], root="/b", selected=None), base, "2026-11-25")
    assert none["figure"] == "no backup in /b"


def test_quota_usage_lists_active_phones_fullest_first_with_flags():
    def counter(pid, value, status=ACTIVE, exists=True, no_ttl=False, db=None):
        return dict(phone_id=pid, value=value, limit=200, used_percent=round(100.0 * (value or 0) / 200, 1),
                    status=status, exists=exists, no_ttl=no_ttl, db_count=value if db is None else db)

    result = dict(date="2026-11-24", counters=[counter("phone_01", 100), counter("phone_02", 200, db=190),
                                               counter("phone_03", 185, no_ttl=True), counter("phone_04", 0, OFFLINE),
                                               counter("phone_05", None, exists=False, db=0)],
                  leaks=[dict(phone_id="phone_02", redis=200, db=190, difference=10)])
    usage = core.quota_usage(result, 90, 2)
    assert (usage["exhausted"], usage["near"], usage["without_counter"]) == (["phone_02"], ["phone_03"], ["phone_05"])
    assert (usage["used"], usage["limit"], usage["active"]) == (485, 800, 4)
    assert usage["table"][1].split() == ["phone_02", "200/200", "100.0%", "190", "EXHAUSTED", "LEAK", "+10"]
    assert usage["table"][2].endswith("NEAR NO TTL")
    assert usage["table"][-1] == "... 2 more ACTIVE phone(s) below 92.5%"


def test_the_contract_lookup_serves_plain_values_only():
    assert contract_value("QUEUE_QUOTA_RESET") == contract.QUEUE_QUOTA_RESET
    assert contract_value("PHONE_STATUSES") == list(contract.PHONE_STATUSES)
    for bad in ("quota_key", "ZoneInfo", "NOPE", "_QUOTA_KEY"):
        with pytest.raises(AnsibleLookupError, match="is not a value of the platform contract; known: .*DLQ_LIST_KEY"):
            contract_value(bad)


def test_morning_reads_read_only_what_the_chosen_checks_judge():
    everything = core.morning_reads(["all"], [])
    assert everything == dict(phones=True, stats=["reviews_pending", "sla_breaches", "whatsapp_per_phone"],
                              queue_pattern="*", timelinesai=True)
    assert core.morning_reads(["sla"], []) == dict(
        phones=False, stats=["sla_breaches"], queue_pattern=None, timelinesai=False)
    # The quota check needs the phones and the scheduler (a queue read); TimelinesAI switched off as a survey does.
    assert core.morning_reads(["quota", "timelinesai"], [], "false") == dict(
        phones=True, stats=[], queue_pattern="*", timelinesai=False)
    assert core.morning_reads(["all"], ["drift", "timelinesai", "reviews"])["stats"] == ["sla_breaches"]


# --- The archive backlog against the weekly schedule (runbook 1.2 step 3 with 8.1) --------------------------------

def _backlog(rows, oldest_days, now, last_run=None, last_batch=None):
    from datetime import timedelta

    oldest = (now - timedelta(days=oldest_days)).isoformat() if rows else None
    return dict(archive_backlog=dict(rows=rows, oldest=oldest, last_run=last_run, last_batch_at=last_batch))


def test_archive_rows_within_the_schedule_pass_overdue_ones_warn_and_the_last_run_is_named():
    from datetime import datetime, timezone

    now = datetime(2026, 12, 2, 18, 0, tzinfo=timezone.utc)
    evening = checks._settings({}, core.EVENING_DEFAULTS)
    waiting = core.archive_check(_backlog(500, 96.5, now), evening, now)
    assert waiting["status"] == "pass" and waiting["data"]["allowance_days"] == 98
    assert "(oldest 2026-08-28, 96.5 days old: within the weekly archive's 98 days)" in waiting["figure"]
    assert waiting["figure"].endswith("; no archive run in the audit log")

    run = dict(at="2026-11-22T02:41:07+00:00", rows_moved=12000, complete=True)
    late = core.archive_check(_backlog(500, 99, now, run, "2026-11-29T02:05:00+00:00"), evening, now)
    assert late["status"] == "warn" and late["data"]["overdue"] is True
    assert "overdue, older than 98 days" in late["figure"]
    assert "; last archive run 2026-11-22 02:41+00:00 (12000 row(s) moved); a later run stopped midway " \
           "(last batch 2026-11-29 02:05+00:00)" in late["figure"]

    tight = checks._settings(dict(archive_period_days="1", archive_margin_days="0", old_rows_fail="400"),
                             core.EVENING_DEFAULTS)
    assert core.archive_check(_backlog(500, 92, now), tight, now)["status"] == "fail"
    assert core.archive_check(_backlog(0, 0, now), evening, now)["status"] == "pass"


# --- The quota reset's registration (runbook 1.1 step 2) --------------------------------------------------------

def _reset_queue(*schedules):
    return dict(queues=[dict(name=contract.QUEUE_QUOTA_RESET, schedulers=list(schedules))])


OURS = dict(id=contract.QUOTA_RESET_SCHEDULER_ID, legacy=False, pattern=contract.QUOTA_RESET_CRON, tz=TZ,
            next="2026-12-02T22:00:00Z")
LEGACY = dict(id="bc101577539cb69162db2d0991e259fe", legacy=True, name="reset", pattern=contract.QUOTA_RESET_CRON,
              tz=None, next="2026-12-03T00:00:00Z")


@pytest.mark.parametrize("schedules, status, registration, words", [
    ((OURS,), "pass", "scheduler", "reset scheduler in place"),
    ((LEGACY,), "pass", "legacy", "reset in place as the runbook's legacy repeatable job (0 0 * * *, no tz"),
    ((OURS, LEGACY), "warn", "scheduler+legacy", "2 reset schedules on quota:guardian:reset"),
    ((dict(LEGACY, pattern="0 1 * * *"),), "warn", "legacy", "reset legacy repeatable job"),
    ((dict(OURS, id="reset-by-hand"),), "warn", "other_scheduler", "not quota-reset-daily"),
    ((), "fail", "none", "no quota-reset-daily scheduler"),
])
def test_the_reset_is_recognised_whichever_way_it_was_registered(schedules, status, registration, words):
    phones = dict(date="2026-12-02", phones=[dict(phone(pid), quota=dict(exists=True, no_ttl=False))
                                             for pid in ("phone_01", "phone_02")])
    check = core.quota_reset_check(phones, _reset_queue(*schedules), settings(timezone=TZ))
    assert check["status"] == status and check["data"]["registration"] == registration
    assert words in check["figure"]
