# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge the figures the info modules read into pass/warn/fail checks (runbook 1.1 and 1.2).

Plain Python on plain data, shared by two callers: the filters of plugins/filter/daily_checks.py (on the controller,
on registered results) and cerniq.outreach.daily_readings_info (option morning_checks), which judges the views in
the module run that read them, so the views - megabytes at 1,000 phones - never cross into Ansible's variables.
A check whose read was skipped (--tags, or switched off) is simply absent from the report.
"""

from __future__ import annotations

from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    ARCHIVE_AFTER_DAYS,
    DLQ_LIST_KEY,
    PHONE_STATUSES,
    QUEUE_QUOTA_RESET,
    QUOTA_RESET_CRON,
    QUOTA_RESET_SCHEDULER_ID,
    REVIEW_PRIORITIES,
    TABLE_COMM_LOG,
    business_day,
    platform_zone,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

# One name per line: ansible-doc's parser of this file stumbles on tuple assignments.
STATUS_ACTIVE = PHONE_STATUSES[0]
STATUS_OFFLINE = PHONE_STATUSES[1]
STATUS_BANNED = PHONE_STATUSES[2]
PASS = "pass"
WARN = "warn"
FAIL = "fail"
SKIP = "skip"
SEVERITY = {SKIP: 0, PASS: 1, WARN: 2, FAIL: 3}
# How many names a one-line figure lists before it says "and N more"; details list everything.
NAMES_IN_FIGURE = 5
QUEUES_IN_DETAILS = 10

MORNING_DEFAULTS = dict(banned_fails=False, pending_reviews_warn=100, pending_reviews_fail=500,
                        sla_open_breaches_fail=1, queue_waiting_warn=1000, queue_waiting_fail=10000, dlq_warn=500,
                        quota_leak_tolerance=0, timezone=None)
# The archive runs in the weekly window (runbook 8.1): rows past the archive age are normal for up to a period
# (plus a margin for a window that ran late); only rows older than that say the archive did not run.
EVENING_DEFAULTS = dict(dlq_warn=100, dlq_fail=1000, old_rows_warn=1, old_rows_fail=0, backup_required=True,
                        expect_contacts=True, timezone=None, archive_period_days=7, archive_margin_days=1)


# --- Shared -------------------------------------------------------------------------------------------------------

def _check(name, title, status, figure, details=None, next_step="", data=None):
    return dict(name=name, title=title, status=status, figure=figure, details=list(details or []),
                next=next_step if status in (WARN, FAIL) else "", data=data or {})


def _names(items, limit=NAMES_IN_FIGURE):
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (" and {0} more".format(len(items) - limit) if len(items) > limit else "")


def _minute(stamp, tz_name=None):
    """An ISO timestamp cut to the minute, as people read it: 2026-03-02 09:14+02:00 (in tz_name when given)."""
    text = str(stamp or "")
    if tz_name and text:
        try:
            text = _instant(text).astimezone(platform_zone(tz_name)).isoformat()
        except (ValueError, CerniqError):
            pass
    if len(text) < 16 or text[10] != "T":
        return text or "?"
    offset = text[19:].lstrip("0123456789.")
    return text[:10] + " " + text[11:16] + offset


def _read(result):
    """The registered result of a read, None when the task did not run (tags) or was switched off."""
    if not result or result.get("skipped"):
        return None
    return result


def _failed(result, key):
    """Why a read failed, None when it returned its figures (`key`). The TimelinesAI read runs with
    failed_when=false, so its failure shows only as a missing figure and a message."""
    if result.get("failed") or key not in result:
        return result.get("msg") or "the read failed"
    return None


def _level(value, warn, fail):
    """FAIL at or above `fail`, WARN at or above `warn` (a threshold of 0 is off), PASS below."""
    if fail and value >= fail:
        return FAIL
    if warn and value >= warn:
        return WARN
    return PASS


def _worst(*statuses):
    return max(statuses, key=SEVERITY.get) if statuses else PASS


def _settings(given, defaults):
    settings = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            raise CerniqError("unknown daily check setting {0!r}; known: {1}".format(
                key, ", ".join(sorted(defaults))))
        settings[key] = value
    for key, value in settings.items():
        if isinstance(defaults[key], bool):
            settings[key] = _boolean(value)
        elif isinstance(defaults[key], int):
            try:
                settings[key] = int(value)
            except (TypeError, ValueError) as exc:
                raise CerniqError("daily check setting {0}={1!r} is not a whole number".format(
                    key, value)) from exc
    return settings


def _boolean(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def summarize(checks, kind, date=None, timezone=None, generated_at=None):
    """The report around a list of checks: overall status, counts per status, the console table."""
    counts = {status: sum(1 for c in checks if c["status"] == status) for status in (PASS, WARN, FAIL, SKIP)}
    overall = _worst(*[c["status"] for c in checks]) if checks else SKIP
    width = max([len(c["name"]) for c in checks] + [5])
    table = ["{0} check {1} ({2}): {3} - {4} fail, {5} warn, {6} pass{7}".format(
        kind.capitalize(), date or "", timezone or "", overall.upper(), counts[FAIL], counts[WARN], counts[PASS],
        ", {0} skipped".format(counts[SKIP]) if counts[SKIP] else "")]
    table.append("{0}  {1}  {2}".format("check".ljust(width), "status", "figure"))
    for check in checks:
        table.append("{0}  {1}  {2}".format(check["name"].ljust(width), check["status"].upper().ljust(6),
                                            check["figure"]))
    explained = []
    for check in checks:
        if check["status"] in (WARN, FAIL) and check["details"]:
            explained.append("{0} ({1}): {2}".format(check["name"], check["status"].upper(), check["title"]))
            explained.extend("  - " + line for line in check["details"])
    return dict(kind=kind, date=date, timezone=timezone, generated_at=generated_at, overall=overall,
                counts=counts, failed=[c["name"] for c in checks if c["status"] == FAIL],
                warned=[c["name"] for c in checks if c["status"] == WARN], checks=checks, table=table,
                explained=explained, next=["{0}: {1}".format(c["name"], c["next"]) for c in checks if c["next"]])


def check_stats(report):
    """What set_stats hands to AWX: the verdicts and figures, not the per-phone details."""
    return dict(overall=report["overall"], date=report["date"], counts=report["counts"], failed=report["failed"],
                warned=report["warned"],
                checks={c["name"]: dict(status=c["status"], figure=c["figure"]) for c in report["checks"]})


# --- Morning (runbook 1.1) ----------------------------------------------------------------------------------------

def _enabled(phones):
    return [p for p in phones if p.get("is_enabled", True)]


def phones_check(phones_result, settings):
    failed = _failed(phones_result, "phones")
    if failed:
        return _check("phones", "Phones not ACTIVE", FAIL, "could not read the phones: " + failed)
    phones = _enabled(phones_result["phones"])
    offline = [p for p in phones if p["status"] == STATUS_OFFLINE]
    banned = [p for p in phones if p["status"] == STATUS_BANNED]
    status = FAIL if offline or (banned and settings["banned_fails"]) else WARN if banned else PASS
    parts = []
    if offline:
        parts.append("{0} {1}".format(STATUS_OFFLINE, _names(p["id"] for p in offline)))
    if banned:
        parts.append("{0} {1}".format(STATUS_BANNED, _names(p["id"] for p in banned)))
    disabled = len(phones_result["phones"]) - len(phones)
    figure = "{0} of {1} not {2}{3}{4}".format(len(offline) + len(banned), len(phones), STATUS_ACTIVE,
                                               ": " + "; ".join(parts) if parts else "",
                                               " ({0} disabled, not judged)".format(disabled) if disabled else "")
    details = ["{0} {1} since {2} ({3}, {4})".format(p["id"], p["status"], _minute(p.get("status_changed_at")),
                                                     p.get("phone_label"), p.get("phone_number"))
               for p in offline + banned]
    steps = []
    if offline:
        steps.append("reconnect each {0} phone in TimelinesAI, then run playbooks/phone_offline.yml for it "
                     "(runbook 2.1)".format(STATUS_OFFLINE))
    if banned:
        steps.append("make sure each {0} phone's leads were released and a replacement is planned "
                     "(playbooks/phone_banned.yml, phone_onboard.yml; runbook 2.2, 2.3)".format(STATUS_BANNED))
    return _check("phones", "Phones not ACTIVE", status, figure, details, "; ".join(steps),
                  dict(total=len(phones), offline=[p["id"] for p in offline], banned=[p["id"] for p in banned],
                       disabled=disabled))


def _reset_registrations(queues_result):
    """(our job scheduler or None, legacy repeatable jobs, job schedulers under other ids) on the reset queue.

    The runbook registers the reset as a legacy repeatable job (Node BullMQ 5 `q.add('reset', {}, {repeat})`), the
    collection as job scheduler quota-reset-daily: either is tonight's reset; two of them run it twice.
    """
    for queue in queues_result.get("queues", ()):
        if queue["name"] == QUEUE_QUOTA_RESET:
            schedules = queue.get("schedulers") or ()
            ours = next((s for s in schedules if s["id"] == QUOTA_RESET_SCHEDULER_ID and not s.get("legacy")), None)
            return (ours, [s for s in schedules if s.get("legacy")],
                    [s for s in schedules if not s.get("legacy") and s["id"] != QUOTA_RESET_SCHEDULER_ID])
    return None, [], []


def _schedule_words(schedule):
    kind = "legacy repeatable job" if schedule.get("legacy") else "job scheduler"
    timing = schedule.get("pattern") or "every {0} ms".format(schedule.get("every"))
    return "{0} {1} ({2} {3}, next {4})".format(kind, schedule["id"], timing, schedule.get("tz") or "no tz",
                                                schedule.get("next"))


_MIGRATE_STEP = ("migrate the legacy registration to the job scheduler: playbooks/quota_reset.yml --tags scheduler "
                 "-e migrate_legacy_reset=true -e confirm=true (runbook 3.2 step 4)")


def quota_reset_check(phones_result, queues_result, settings):
    """Today's counter exists for every ACTIVE phone (the midnight reset made them) with its TTL, and the reset
    scheduler is there for tonight."""
    title = "Quota reset happened"
    failed = _failed(phones_result, "phones")
    if failed:
        return _check("quota_reset", title, FAIL, "could not read the quota counters: " + failed)
    problems, warnings, details, steps = [], [], [], []
    active = [p for p in _enabled(phones_result["phones"]) if p["status"] == STATUS_ACTIVE]
    missing = [p["id"] for p in active if not p["quota"]["exists"]]
    no_ttl = [p["id"] for p in phones_result["phones"] if p["quota"]["no_ttl"]]
    unreadable = [p["quota"]["problem"] for p in phones_result["phones"] if p["quota"].get("problem")]
    data = dict(date=phones_result.get("date"), active=len(active), present=len(active) - len(missing),
                missing=missing, without_ttl=no_ttl)
    if missing:
        problems.append("no counter for {0}: {1}".format(phones_result.get("date"), _names(missing)))
        steps.append("the midnight reset did not run: runbook 3.2 (playbooks/quota_reset.yml)")
    if no_ttl:
        warnings.append("{0} without TTL: {1}".format(len(no_ttl), _names(no_ttl)))
        steps.append("give them their expiry: playbooks/quota_reset.yml (runbook 3.2)")
    problems.extend(unreadable)
    details.extend((["no counter today: " + ", ".join(missing)] if missing else []) +
                   (["no TTL: " + ", ".join(no_ttl)] if no_ttl else []) + unreadable)
    if queues_result and not _failed(queues_result, "queues"):
        scheduler, legacy, others = _reset_registrations(queues_result)
        schedules = ([scheduler] if scheduler else []) + legacy + others
        data["scheduler"] = scheduler
        data["legacy"] = legacy
        data["registration"] = "+".join(kind for kind, there in (("scheduler", scheduler), ("legacy", legacy),
                                                                 ("other_scheduler", others)) if there) or "none"
        if not schedules:
            problems.append("no {0} scheduler on {1}".format(QUOTA_RESET_SCHEDULER_ID, QUEUE_QUOTA_RESET))
            details.append("no {0} scheduler (nor a legacy repeatable job) on {1}: tonight's reset will not run".format(
                QUOTA_RESET_SCHEDULER_ID, QUEUE_QUOTA_RESET))
            steps.append("re-create it: playbooks/quota_reset.yml --tags scheduler (runbook 3.2 step 4)")
        elif len(schedules) > 1:
            warnings.append("{0} reset schedules on {1}: the reset runs {0} times a night".format(
                len(schedules), QUEUE_QUOTA_RESET))
            details.extend(_schedule_words(s) for s in schedules)
            steps.append(_MIGRATE_STEP if legacy and scheduler and not others else
                         "remove all but one of them (bullmq_queue scheduler state=absent, or the migration)")
        elif scheduler is None:
            (only,) = schedules
            if only.get("pattern") != QUOTA_RESET_CRON:
                warnings.append("reset {0} differs".format(_schedule_words(only)))
                details.append("{0}, expected {1!r}".format(_schedule_words(only), QUOTA_RESET_CRON))
                steps.append(_MIGRATE_STEP if legacy else "re-create it: playbooks/quota_reset.yml --tags scheduler")
            elif not legacy:
                warnings.append("the reset is {0}, not {1}".format(_schedule_words(only), QUOTA_RESET_SCHEDULER_ID))
                details.append(_schedule_words(only))
            else:
                details.append("reset registered the runbook's way: " + _schedule_words(only))
        elif scheduler.get("pattern") != QUOTA_RESET_CRON or \
                (settings["timezone"] and scheduler.get("tz") != settings["timezone"]):
            warnings.append("scheduler {0} differs".format(QUOTA_RESET_SCHEDULER_ID))
            details.append("scheduler {0} runs {1!r} in {2}, expected {3!r} in {4}".format(
                QUOTA_RESET_SCHEDULER_ID, scheduler.get("pattern"), scheduler.get("tz"), QUOTA_RESET_CRON,
                settings["timezone"]))
            steps.append("re-create it: playbooks/quota_reset.yml --tags scheduler (runbook 3.2 step 4)")
        else:
            details.append("scheduler {0}: {1} {2}, next {3}".format(
                QUOTA_RESET_SCHEDULER_ID, scheduler.get("pattern"), scheduler.get("tz"), scheduler.get("next")))
    status = FAIL if problems else WARN if warnings else PASS
    figure = "{0}/{1} {2} phones have today's counter".format(data["present"], data["active"], STATUS_ACTIVE)
    if problems or warnings:
        figure += "; " + "; ".join(problems + warnings)
    elif data.get("registration") == "legacy":
        figure += "; reset in place as the runbook's legacy repeatable job ({0}, {1}, next {2})".format(
            data["legacy"][0].get("pattern"), data["legacy"][0].get("tz") or "no tz: the worker host's time",
            data["legacy"][0].get("next"))
    elif "scheduler" in data:
        figure += "; reset scheduler in place"
    if status == PASS:
        details = []
    return _check("quota_reset", title, status, figure, details, "; ".join(dict.fromkeys(steps)), data)


def reviews_check(stats_result, settings):
    title = "Pending reviews"
    failed = _failed(stats_result, "reviews_pending")
    if failed:
        return _check("reviews", title, FAIL, "could not read the review queue: " + failed)
    reviews = stats_result["reviews_pending"]
    by_priority = {p: reviews["by_priority"].get(p, {}).get("pending", 0) for p in REVIEW_PRIORITIES}
    status = _level(reviews["pending"], settings["pending_reviews_warn"], settings["pending_reviews_fail"])
    figure = "{0} pending{1}, {2} assigned".format(
        reviews["pending"], " ({0})".format(_by_priority(by_priority)) if reviews["pending"] else "",
        reviews["assigned"])
    return _check("reviews", title, status, figure, [],
                  "runbook 5.1: playbooks/review_sla.yml names the bottleneck and can assign URGENT items",
                  dict(pending=reviews["pending"], assigned=reviews["assigned"], pending_by_priority=by_priority))


def _waiting(queue):
    counts = queue["counts"]
    return counts.get("wait", 0) + counts.get("paused", 0) + counts.get("prioritized", 0)


def _queue_row(queue):
    counts = queue["counts"]
    row = dict(name=queue["name"], waiting=_waiting(queue), delayed=counts.get("delayed", 0),
               active=counts.get("active", 0), failed=counts.get("failed", 0), due_delayed=queue["due_delayed"],
               is_paused=queue["is_paused"], workers=queue.get("workers"))
    row["total"] = row["waiting"] + row["delayed"] + row["active"] + row["failed"]
    return row


def queue_rows(queues_result):
    """One row per queue (waiting, delayed, active, failed, due but not promoted, paused, workers), deepest first."""
    return sorted((_queue_row(q) for q in queues_result.get("queues", ())),
                  key=lambda r: (-r["waiting"], -r["delayed"], r["name"]))


def dlq_lengths(queues_result):
    """{key: length} of the dead-letter lists a queue read counted (bullmq_queue_info's dlq_keys and every list its
    dlq_pattern matched); a key that is not a list (length None) is left out."""
    return dict((e["key"], e["length"]) for e in queues_result.get("dlq_lists", ()) if e["length"] is not None)


def _dlq_notes(queues_result, lengths):
    """Details of the dead-letter lists when there are several, and the matched keys that are not lists."""
    notes = []
    if len(lengths) > 1:
        notes.append("dead-letter lists: " + ", ".join("{0} ({1})".format(k, n) for k, n in lengths.items()))
    template = "{key} matches the dead-letter pattern but is a {type} ({why}): not counted"
    notes.extend(template.format(**skipped) for skipped in queues_result.get("dlq_skipped", ()))
    return notes


def queues_check(queues_result, settings):
    title = "BullMQ depths per queue"
    failed = _failed(queues_result, "queues")
    if failed:
        return _check("queues", title, FAIL, "could not read the queues: " + failed)
    rows = queue_rows(queues_result)
    warn, fail = settings["queue_waiting_warn"], settings["queue_waiting_fail"]
    statuses, short, notes, steps = [PASS], [], [], []
    deep = [r for r in rows if _level(r["waiting"], warn, fail) != PASS]
    if deep:
        statuses.extend(_level(r["waiting"], warn, fail) for r in deep)
        short.append("{0} backed up".format(len(deep)))
        notes.append("backed up: " + ", ".join("{0} ({1} waiting)".format(r["name"], r["waiting"]) for r in deep))
        steps.append("are the workers running and the phones ACTIVE? (stack_health.yml, runbook 2.1)")
    paused = [r["name"] for r in rows if r["is_paused"]]
    if paused:
        statuses.append(WARN)
        short.append("{0} paused".format(len(paused)))
        notes.append("paused: " + ", ".join(paused))
        steps.append("resume the paused queue(s) once their phone is fine (cerniq.outreach.bullmq_queue "
                     "state=resumed)")
    stuck = [r for r in rows if r["due_delayed"] and not r["workers"]]
    if stuck:
        statuses.append(WARN)
        short.append("{0} with due jobs and no worker".format(len(stuck)))
        notes.append("delayed jobs due, no worker connected to promote them: " + ", ".join(
            "{0} ({1})".format(r["name"], r["due_delayed"]) for r in stuck))
        steps.append("start the workers of those queues")
    pairing = [q for q in queues_result.get("queues", ()) if q.get("pairing_problem")]
    if pairing:
        statuses.append(WARN)
        short.append("{0} with a BullMQ version problem".format(len(pairing)))
        notes.extend("{0}: {1}".format(q["name"], q["pairing_problem"]) for q in pairing)
    lengths = dlq_lengths(queues_result)
    dlq = sum(lengths.values()) if lengths else None
    over = [key for key, length in lengths.items() if settings["dlq_warn"] and length >= settings["dlq_warn"]]
    if over:
        statuses.append(WARN)
        short.append("DLQ over {0}".format(settings["dlq_warn"]))
        steps.append("look at the dead letters ({0}; the evening check, runbook 1.2)".format(", ".join(over)))
    notes.extend(_dlq_notes(queues_result, lengths))
    notes.extend(queues_result.get("warnings") or ())
    totals = dict(queues=len(rows), waiting=sum(r["waiting"] for r in rows), delayed=sum(r["delayed"] for r in rows),
                  active=sum(r["active"] for r in rows), failed=sum(r["failed"] for r in rows), dlq=dlq)
    figure = "{queues} queues: {waiting} waiting, {delayed} delayed, {active} active, {failed} failed; DLQ {0}".format(
        "-" if dlq is None else dlq, **totals)
    if short:
        figure += "; " + ", ".join(short)
    elif rows and rows[0]["waiting"]:
        figure += "; deepest {0} ({1})".format(rows[0]["name"], rows[0]["waiting"])
    details = notes + ["{name}: {waiting} waiting, {delayed} delayed ({due_delayed} due), {active} active, "
                       "{failed} failed{0}".format(" PAUSED" if r["is_paused"] else "", **r)
                       for r in rows[:QUEUES_IN_DETAILS]]
    return _check("queues", title, _worst(*statuses), figure, details, "; ".join(dict.fromkeys(steps)),
                  dict(totals, queues=rows))


def _by_priority(counts):
    return ", ".join("{0} {1}".format(p, counts[p]) for p in REVIEW_PRIORITIES if counts.get(p))


def sla_check(stats_result, settings):
    title = "SLA breaches overnight"
    failed = _failed(stats_result, "sla_breaches")
    if failed:
        return _check("sla", title, FAIL, "could not read the review queue: " + failed)
    breaches = stats_result["sla_breaches"]
    open_now, since = breaches["open"], breaches["since"]
    threshold = settings["sla_open_breaches_fail"]
    status = FAIL if threshold and open_now >= threshold else WARN if open_now or since else PASS
    figure = "{0} open item(s) past SLA{1}; {2} breached since {3}".format(
        open_now, " ({0})".format(_by_priority(breaches["open_by_priority"])) if open_now else "", since,
        _minute(breaches.get("breaches_since"), settings["timezone"]))
    details = ["breached since {0}: {1}".format(_minute(breaches.get("breaches_since"), settings["timezone"]),
                                                _by_priority(breaches["since_by_priority"]))] if since else []
    return _check("sla", title, status, figure, details,
                  "runbook 5.1: playbooks/review_sla.yml -e assign_to=<reviewer> assigns the URGENT items",
                  dict(open=open_now, since=since, open_by_priority=breaches["open_by_priority"],
                       since_by_priority=breaches["since_by_priority"]))


def timelinesai_check(vendor_result, enabled=True):
    """TimelinesAI's view against ours: an ACTIVE phone whose account is disconnected cannot send (fail); an
    OFFLINE phone whose account is back, a phone without an account or with another account id: warn."""
    title = "TimelinesAI status per phone"
    if not enabled:
        return _check("timelinesai", title, SKIP, "not checked (check_morning_timelinesai=false)")
    failed = _failed(vendor_result, "phones")
    if failed:
        return _check("timelinesai", title, FAIL, "TimelinesAI could not be read: " + failed, [failed],
                      "check the TimelinesAI status page and cerniq_timelinesai_api_token (runbook 7.1, "
                      "timelinesai:down)")
    phones = _enabled(vendor_result["phones"])
    down = [p for p in phones if p["db_status"] == STATUS_ACTIVE and not p["connected"]]
    back = [p["phone_id"] for p in phones if p["db_status"] == STATUS_OFFLINE and p["connected"]]
    missing = [p["phone_id"] for p in phones if p["vendor_account_id"] is None]
    mismatch = [p["phone_id"] for p in phones if p.get("account_id_mismatch")]
    status = FAIL if down else WARN if back or missing or mismatch else PASS
    figure = "{0} of {1} phone(s) connected".format(sum(1 for p in phones if p["connected"]), len(phones))
    if down:
        figure += "; {0} {1} phone(s) disconnected at TimelinesAI: {2}".format(
            len(down), STATUS_ACTIVE, _names(p["phone_id"] for p in down))
    if back:
        figure += "; {0} phone(s) {1} here but connected there: {2}".format(len(back), STATUS_OFFLINE, _names(back))
    if missing:
        figure += "; {0} phone(s) without a TimelinesAI account: {1}".format(len(missing), _names(missing))
    if mismatch:
        figure += "; {0} phone(s) with another account id there: {1}".format(len(mismatch), _names(mismatch))
    details = ["{0}: {1} here, {2} at TimelinesAI (since {3})".format(
        p["phone_id"], STATUS_ACTIVE, p["vendor_status"], p.get("connected_on")) for p in down]
    details += ["{0}: {1} here, connected at TimelinesAI".format(p, STATUS_OFFLINE) for p in back]
    details += ["{0}: no TimelinesAI account".format(p) for p in missing]
    details += ["{0}: timelinesai_account_id differs from the account TimelinesAI has for its number".format(p)
                for p in mismatch]
    steps = []
    if down:
        steps.append("those phones cannot send: runbook 2.1 (playbooks/phone_offline.yml)")
    if back:
        steps.append("reconnected: mark them {0} (playbooks/phone_offline.yml, runbook 2.1 step 4)".format(
            STATUS_ACTIVE))
    if missing or mismatch:
        steps.append("check their timelinesai_account_id (runbook 2.3)")
    return _check("timelinesai", title, status, figure, details, "; ".join(steps),
                  dict(phones=len(phones), connected=sum(1 for p in phones if p["connected"]),
                       disconnected_active=[p["phone_id"] for p in down], connected_offline=back, missing=missing,
                       account_id_mismatch=mismatch, unknown_accounts=len(vendor_result.get("unknown_accounts") or [])))


def counter_leaks(phones_result, stats_result, tolerance=0):
    """Phones whose counter (Redis) differs from the WhatsApp messages logged today (the DB) by more than
    `tolerance`; a missing counter counts as 0."""
    sent = {p["phone_id"]: p["sent"] for p in stats_result["whatsapp_per_phone"]["phones"]}
    leaks = []
    for phone in phones_result["phones"]:
        if phone["id"] not in sent:
            continue
        counter = phone["quota"]["value"] or 0
        if abs(counter - sent[phone["id"]]) > tolerance:
            leaks.append(dict(phone_id=phone["id"], redis=counter, db=sent[phone["id"]],
                              difference=counter - sent[phone["id"]]))
    return leaks


def drift_check(phones_result, stats_result, settings):
    """Redis against the DB: each phone's status key, and (with today's log counts) each quota counter."""
    title = "Redis/DB drift"
    failed = _failed(phones_result, "phones")
    if failed:
        return _check("drift", title, FAIL, "could not read the phones: " + failed)
    drifted = [p for p in phones_result["phones"] if p["drift"]]
    parts = ["{0} status drift(s){1}".format(len(drifted), ": " + _names(
        "{0} (DB {1}, Redis {2})".format(p["id"], p["status"], p["redis_status"] or "missing") for p in drifted)
        if drifted else "")]
    details = ["{0}: {1} says {2}, the DB says {3}".format(p["id"], p["status_key"], p["redis_status"] or "nothing",
                                                           p["status"]) for p in drifted]
    leaks = None
    if stats_result and not _failed(stats_result, "whatsapp_per_phone"):
        leaks = counter_leaks(phones_result, stats_result, settings["quota_leak_tolerance"])
        parts.append("{0} quota counter(s) off the log{1}".format(len(leaks), ": " + _names(
            "{0} (Redis {1}, DB {2})".format(leak["phone_id"], leak["redis"], leak["db"]) for leak in leaks)
            if leaks else ""))
        details.extend("{0}: counter {1}, {2} messages logged today ({3:+d})".format(
            leak["phone_id"], leak["redis"], leak["db"], leak["difference"]) for leak in leaks)
    steps = []
    if drifted:
        steps.append("the workers act on Redis: set each phone's status again with cerniq.outreach.wa_phone (it "
                     "writes DB and Redis together; runbook 2.1/2.2)")
    if leaks:
        steps.append("quota leak: playbooks/quota_exhausted.yml shows it and recounts with "
                     "-e quota_exhausted_resync=true (runbook 3.1)")
    status = FAIL if drifted else WARN if leaks else PASS
    return _check("drift", title, status, "; ".join(parts), details, "; ".join(steps),
                  dict(status_drift=[p["id"] for p in drifted],
                       counter_leaks=None if leaks is None else [leak["phone_id"] for leak in leaks]))


# Which tag asks for which check: with --tags, only the checks asked for are judged (their reads ran anyway).
MORNING_CHECK_TAGS = dict(phones="phones", quota_reset="quota", reviews="reviews", queues="queues", sla="sla",
                          timelinesai="timelinesai", drift="drift")


def _wanted(name, tag_map, run_tags, skip_tags):
    tag = tag_map[name]
    if tag in (skip_tags or ()):
        return False
    return not run_tags or "all" in run_tags or tag in run_tags or "always" in run_tags


# What each morning check reads: the views of daily_readings_info and the outreach_stats_info figures.
MORNING_CHECK_READS = dict(phones=dict(phones=True), quota_reset=dict(phones=True, queues=True),
                           reviews=dict(stats=["reviews_pending"]), queues=dict(queues=True),
                           sla=dict(stats=["sla_breaches"]), timelinesai=dict(timelinesai=True),
                           drift=dict(phones=True, stats=["whatsapp_per_phone"]))


def morning_reads(run_tags=None, skip_tags=None, timelinesai=True):
    """The daily_readings_info options that read what the checks chosen by the tags need, no more."""
    wanted = [name for name in MORNING_CHECK_TAGS if _wanted(name, MORNING_CHECK_TAGS, run_tags, skip_tags)]
    reads = [MORNING_CHECK_READS[name] for name in wanted if name != "timelinesai" or _boolean(timelinesai)]
    stats = [figure for read in reads for figure in read.get("stats", ())]
    return dict(phones=any(read.get("phones") for read in reads), stats=list(dict.fromkeys(stats)),
                queue_pattern="*" if any(read.get("queues") for read in reads) else None,
                timelinesai=any(read.get("timelinesai") for read in reads))


def morning_checks(readings, settings=None):
    """Every check of runbook 1.1 whose reads ran, in the runbook's order, judged; see summarize() for the report.

    readings: phones (wa_phone_info), stats (outreach_stats_info with reviews_pending, sla_breaches and
    whatsapp_per_phone), queues (bullmq_queue_info), vendor (timelinesai_account_info) as registered; timelinesai
    (bool) whether the vendor was asked; run_tags / skip_tags (ansible_run_tags, ansible_skip_tags).
    """
    settings = _settings(settings, MORNING_DEFAULTS)
    phones = _read(readings.get("phones"))
    stats = _read(readings.get("stats"))
    queues = _read(readings.get("queues"))
    vendor_wanted = _boolean(readings.get("timelinesai", True))
    vendor = _read(readings.get("vendor"))
    run_tags, skip_tags = readings.get("run_tags"), readings.get("skip_tags")
    candidates = [
        ("phones", phones and (lambda: phones_check(phones, settings))),
        ("quota_reset", phones and (lambda: quota_reset_check(phones, queues, settings))),
        ("reviews", stats and (lambda: reviews_check(stats, settings))),
        ("queues", queues and (lambda: queues_check(queues, settings))),
        ("sla", stats and (lambda: sla_check(stats, settings))),
        ("timelinesai", (vendor or not vendor_wanted) and (lambda: timelinesai_check(vendor, vendor_wanted))),
        ("drift", phones and (lambda: drift_check(phones, stats, settings))),
    ]
    return [judge() for name, judge in candidates
            if judge and _wanted(name, MORNING_CHECK_TAGS, run_tags, skip_tags)]


# --- Evening (runbook 1.2) ----------------------------------------------------------------------------------------

def activity_check(stats_result, settings):
    """Today's leads contacted/replied/converted and reviews resolved: figures for the report; nothing contacted on a
    day with ACTIVE phones is worth a look."""
    title = "Today's activity"
    failed = _failed(stats_result, "contacted")
    if failed:
        return _check("activity", title, FAIL, "could not read today's figures: " + failed)
    contacted = stats_result["contacted"]
    figures = dict(contacted=contacted["leads"], replied=stats_result["replied"]["leads"],
                   converted=stats_result["converted"]["leads"],
                   reviews_resolved=stats_result["reviews_resolved"]["total"],
                   contacted_whatsapp=contacted.get("whatsapp"), contacted_email=contacted.get("email"),
                   messages=contacted.get("messages"))
    figure = "{contacted} contacted, {replied} replied, {converted} converted, {reviews_resolved} reviews " \
             "resolved".format(**figures)
    details = ["contacted: {contacted} lead(s) ({contacted_whatsapp} by WhatsApp, {contacted_email} by e-mail; "
               "{messages} message(s))".format(**figures)]
    status = WARN if settings["expect_contacts"] and not figures["contacted"] else PASS
    return _check("activity", title, status, figure, details,
                  "nothing went out today: are the phones ACTIVE and the workers running? (check_morning.yml)",
                  figures)


def dlq_check(queues_result, settings):
    title = "Dead-letter queue"
    failed = _failed(queues_result, "dlq_lists")
    if failed:
        return _check("dlq", title, FAIL, "could not read the dead-letter list: " + failed)
    not_lists = [e for e in queues_result["dlq_lists"] if e["length"] is None]
    if not_lists:
        figure = "; ".join("{0} is a {1}, not a list".format(e["key"], e["type"]) for e in not_lists)
        return _check("dlq", title, FAIL, figure, _dlq_notes(queues_result, {}),
                      "find what wrote it (the workers push failed jobs onto a list)")
    lengths = dlq_lengths(queues_result)
    length = sum(lengths.values())
    status = _worst(PASS, *(_level(n, settings["dlq_warn"], settings["dlq_fail"]) for n in lengths.values()))
    if len(lengths) == 1:
        figure = "{0} holds {1} failed job(s)".format(next(iter(lengths)), length)
    else:
        figure = "{0} failed job(s) in {1} dead-letter lists".format(length, len(lengths))
    worst = sorted(lengths, key=lambda k: -lengths[k])[:1] or [DLQ_LIST_KEY]
    return _check("dlq", title, status, figure, _dlq_notes(queues_result, lengths),
                  "read the newest entries (LRANGE {0} 0 20), fix the cause, then trim them (playbooks/"
                  "maintenance_weekly.yml --tags dlq)".format(worst[0]), dict(length=length))


def archive_check(stats_result, settings, now=None):
    """Did the archive run (runbook 1.2 step 3), judged against its schedule.

    Rows past the archive age are in the live log most days when the archive runs weekly (8.1): they are overdue
    only once the oldest is older than the archive age plus the window's period plus a margin. The audit log says
    when the archive last ran.
    """
    title = "Archive ran (rows older than {0} days in the live log)".format(ARCHIVE_AFTER_DAYS)
    failed = _failed(stats_result, "archive_backlog")
    if failed:
        return _check("archive", title, FAIL, "could not count the old rows: " + failed)
    backlog = stats_result["archive_backlog"]
    rows = backlog["rows"]
    now = now or datetime.now(timezone.utc)
    allowance = ARCHIVE_AFTER_DAYS + settings["archive_period_days"] + settings["archive_margin_days"]
    oldest_age = (now - _instant(backlog["oldest"])).total_seconds() / 86400.0 if rows and backlog.get("oldest") \
        else None
    overdue = oldest_age is not None and oldest_age > allowance
    status = _level(rows, settings["old_rows_warn"], settings["old_rows_fail"])
    if status == WARN and not overdue:
        status = PASS
    figure = "{0} row(s) older than {1} days in {2}".format(rows, ARCHIVE_AFTER_DAYS, TABLE_COMM_LOG)
    if rows:
        figure += " (oldest {0}, {1:.1f} days old: {2})".format(
            _minute(backlog.get("oldest"))[:10], oldest_age,
            "overdue, older than {0} days".format(allowance) if overdue else
            "within the weekly archive's {0} days".format(allowance))
    last_run, last_batch = backlog.get("last_run"), backlog.get("last_batch_at")
    if last_run:
        figure += "; last archive run {0} ({1} row(s) moved{2})".format(
            _minute(last_run.get("at")), last_run.get("rows_moved"),
            "" if last_run.get("complete") in (True, None) else ", NOT complete")
        if last_batch and _instant(last_batch) > _instant(last_run["at"]):
            figure += "; a later run stopped midway (last batch {0})".format(_minute(last_batch))
    elif last_batch:
        figure += "; no finished archive run in the audit log, last batch {0}".format(_minute(last_batch))
    else:
        figure += "; no archive run in the audit log"
    data = dict(backlog, allowance_days=allowance, oldest_age_days=None if oldest_age is None else round(oldest_age, 2),
                overdue=overdue)
    return _check("archive", title, status, figure, [], "the archive did not run on schedule: "
                  "playbooks/maintenance_weekly.yml --tags archive moves them in atomic batches (runbook 8.1); then "
                  "find why the weekly window did not run", data)


def backup_check(backup_result, settings, today):
    """The newest backup was taken this business day and still verifies (size, sha256, pg_restore --list)."""
    title = "Today's backup present and readable"
    if not settings["backup_required"]:
        return _check("backup", title, SKIP, "not checked (check_evening_backup=false)")
    failed = _failed(backup_result, "backups")
    if failed:
        return _check("backup", title, FAIL, "could not read the backups: " + failed, [failed],
                      "check check_evening_backup_dir (cerniq_backup_dir) and that the backup job runs "
                      "(playbooks/backup_database.yml)")
    selected = backup_result.get("selected")
    if not selected:
        return _check("backup", title, FAIL, "no backup in {0}".format(backup_result.get("root")), [],
                      "take one now: playbooks/backup_database.yml; then find why the nightly job did not run",
                      dict(root=backup_result.get("root"), count=0))
    taken_day = business_day(settings["timezone"], _instant(selected["taken_at"])).isoformat() \
        if settings["timezone"] else str(selected["taken_at"])[:10]
    data = dict(id=selected["id"], path=selected["path"], taken_at=selected["taken_at"], taken_day=taken_day,
                verified=selected.get("verified"), problem=selected.get("problem"), bytes=selected.get("bytes"),
                count=len(backup_result.get("backups") or ()))
    size = " ({0})".format(_size(selected["bytes"])) if selected.get("bytes") else ""
    if selected.get("verified") is False:
        return _check("backup", title, FAIL, "newest backup {0} does not verify: {1}".format(
            selected["id"], selected.get("problem")), [selected.get("problem")],
            "take a new one (playbooks/backup_database.yml) and keep the broken one for a look", data)
    if taken_day != today:
        return _check("backup", title, FAIL, "newest backup {0} is from {1}, none from {2}".format(
            selected["id"], taken_day, today), [],
            "take one now (playbooks/backup_database.yml); find why the nightly job did not run", data)
    return _check("backup", title, PASS, "{0}{1} verified (pg_restore --list, sha256)".format(selected["id"], size),
                  [], "", data)


def _instant(text):
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _size(count):
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return "{0:.0f} {1}".format(count, unit) if unit == "B" else "{0:.1f} {1}".format(count, unit)
        count /= 1024.0
    return str(count)


def evening_checks(readings, settings=None):
    """The checks of runbook 1.2 whose reads ran: activity, dlq, archive, backup.

    readings: stats (outreach_stats_info), queues (bullmq_queue_info), backup (db_backup_info), date (today).
    """
    settings = _settings(settings, EVENING_DEFAULTS)
    stats = _read(readings.get("stats"))
    queues = _read(readings.get("queues"))
    backup = _read(readings.get("backup"))
    checks = []
    if stats:
        checks.append(activity_check(stats, settings))
    if queues:
        checks.append(dlq_check(queues, settings))
    if stats:
        checks.append(archive_check(stats, settings, readings.get("now")))
    if backup or not settings["backup_required"]:
        checks.append(backup_check(backup, settings, str(readings.get("date"))))
    return checks


def phone_quota_rows(phones_result):
    """One row per enabled phone for the report's quota bars: used, limit, percent and a level for the colour."""
    if not _read(phones_result) or _failed(phones_result, "phones"):
        return []
    rows = []
    for phone in _enabled(phones_result["phones"]):
        quota = phone.get("quota") or {}
        used, limit = quota.get("value") or 0, quota.get("limit") or phone.get("daily_quota_limit") or 0
        percent = round(100.0 * used / limit, 1) if limit else 0.0
        rows.append(dict(id=phone["id"], label=phone.get("phone_label"), status=phone["status"],
                         active=phone["status"] == STATUS_ACTIVE, used=used,
                         limit=limit, percent=percent, bar=min(percent, 100.0),
                         level="full" if percent >= 100 else "high" if percent >= 90 else
                         "mid" if percent >= 70 else "low", drift=phone.get("drift", False)))
    return rows


# --- Quota exhausted early (runbook 3.1) ------------------------------------------------------------------------

def quota_usage(counters_result, warn_percent=90, top=20):
    """Usage against limit of the ACTIVE phones (the runbook's loop), fullest first, with the leak report.

    counters_result: quota_counter_info's result (with leak_report). Returns the lists and a printable table of the
    `top` fullest phones (0: all).
    """
    warn_percent, top = int(warn_percent), int(top)
    counters = counters_result["counters"]
    active = [c for c in counters if c["status"] == STATUS_ACTIVE]
    leaks = {leak["phone_id"]: leak for leak in counters_result.get("leaks") or ()}

    def used(counter):
        return counter["value"] or 0

    exhausted = [c["phone_id"] for c in active if c["limit"] and used(c) >= c["limit"]]
    near = [c["phone_id"] for c in active if c["limit"] and warn_percent and
            100.0 * used(c) / c["limit"] >= warn_percent and used(c) < c["limit"]]
    ordered = sorted(active, key=lambda c: (-(c["used_percent"] or 0), -used(c), c["phone_id"]))
    shown = ordered[:top] if top else ordered
    width = max([len(c["phone_id"]) for c in shown] + [5])
    lines = ["{0}  {1:>11}  {2:>6}  {3:>6}  {4}".format("phone".ljust(width), "used/limit", "use", "log", "flags")]
    for counter in shown:
        flags = []
        if counter["phone_id"] in exhausted:
            flags.append("EXHAUSTED")
        elif counter["phone_id"] in near:
            flags.append("NEAR")
        if counter["phone_id"] in leaks:
            flags.append("LEAK {0:+d}".format(leaks[counter["phone_id"]]["difference"]))
        if not counter["exists"]:
            flags.append("NO COUNTER")
        elif counter["no_ttl"]:
            flags.append("NO TTL")
        lines.append("{0}  {1:>11}  {2:>5.1f}%  {3:>6}  {4}".format(
            counter["phone_id"].ljust(width), "{0}/{1}".format(used(counter), counter["limit"]),
            counter["used_percent"] or 0.0, counter.get("db_count", "-"), " ".join(flags)))
    if len(shown) < len(ordered):
        lines.append("... {0} more ACTIVE phone(s) below {1:.1f}%".format(
            len(ordered) - len(shown), shown[-1]["used_percent"] or 0.0))
    return dict(date=counters_result["date"], active=len(active), used=sum(used(c) for c in active),
                limit=sum(c["limit"] or 0 for c in active), exhausted=exhausted, near=near,
                leaks=[dict(leak) for leak in counters_result.get("leaks") or ()],
                without_counter=[c["phone_id"] for c in active if not c["exists"]], table=lines)
