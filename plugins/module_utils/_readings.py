# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several read-only views of the platform in one module run, read at the same time.

A module run costs a Python start-up and the import of ansible's module_utils (compiled from the AnsiballZ zip each
time): about a quarter of a second on a 2-core host before the first query. The daily checks need four views
(phones, figures, queues, TimelinesAI); reading them in one run, each on its own thread and its own connections,
costs one start-up instead of four. Each view is exactly what its own module returns.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_info
from ansible_collections.cerniq.outreach.plugins.module_utils._daily_checks import morning_checks, summarize
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError, request_from_params
from ansible_collections.cerniq.outreach.plugins.module_utils._phones import phones_info
from ansible_collections.cerniq.outreach.plugins.module_utils._stats import outreach_stats
from ansible_collections.cerniq.outreach.plugins.module_utils._timelinesai import account_info

READINGS = ("phones", "stats", "queues", "vendor")


@dataclasses.dataclass(frozen=True)
class ReadingsRequest:
    """What one daily_readings_info call asks: the views to read and how, the module's options with its defaults.

    A test builds one with keyword options; the module's parameters give one through from_params.
    """

    phones: bool = True
    quota_warn_percent: int = 90
    stats: tuple = ()
    breaches_since: str = "24h"
    queue_pattern: str | None = None
    timelinesai: bool = False
    morning_checks: dict | None = None  # {thresholds, run_tags, skip_tags}: judge the views into the report

    @classmethod
    def from_params(cls, params):
        return request_from_params(cls, params)


def _read_phones(params, request):
    return phones_info(params, quota_warn_percent=request.quota_warn_percent)


def _read_stats(params, request):
    return outreach_stats(params, figures=request.stats, breaches_since=request.breaches_since)


def _read_queues(params, request):
    return queue_info(params, pattern=request.queue_pattern)


def _read_vendor(params, request):
    return account_info(params)


def wanted_readings(request):
    """The views asked for, in READINGS order."""
    wanted = dict(phones=request.phones, stats=bool(request.stats), queues=bool(request.queue_pattern),
                  vendor=request.timelinesai)
    return [name for name in READINGS if wanted[name]]


def _read_at_once(readers, names, params, request):
    """[(view, reading or None, CerniqError or None)] of each view asked for, each read on its own thread."""
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [(name, pool.submit(readers[name], params, request)) for name in names]
        outcomes = []
        for name, future in futures:
            try:
                outcomes.append((name, future.result(), None))
            except CerniqError as exc:
                outcomes.append((name, None, exc))
    return outcomes


def daily_readings(params, request):
    """{view: what its module returns} for each view the ReadingsRequest asks for; `params` are the connections
    (Redis, PostgreSQL, TimelinesAI, timezone). A failed TimelinesAI read is a finding (the morning check reports
    it), so it comes back as {failed, msg}; any other failure fails the whole read.
    With request.morning_checks, the views are judged here and only the report is returned (see morning_report).
    """
    readers = dict(phones=_read_phones, stats=_read_stats, queues=_read_queues, vendor=_read_vendor)
    names = wanted_readings(request)
    result = dict(changed=False, readings=names, warnings=[])
    for name, reading, problem in _read_at_once(readers, names, params, request) if names else ():
        if problem is not None and name != "vendor":
            raise problem
        view = reading if problem is None else dict(changed=False, failed=True, msg=problem.msg)
        result["warnings"].extend(view.pop("warnings", None) or ())
        result[name] = view
    if request.morning_checks is not None:
        views = {name: result.pop(name) for name in names}
        result["report"] = morning_report(views, request, params.get("timezone"))
    return result


def morning_report(views, request, tz_name):
    """The morning check's report (runbook 1.1), judged from the views just read, as the role's filters
    cerniq.outreach.morning_checks and check_summary would judge them from the registered views.

    Judging here keeps the views (megabytes at 1,000 phones) in this process: Ansible receives only the report.
    Which checks are judged follows the run's tags (request.morning_checks run_tags / skip_tags), as in the role;
    `tz_name` is the platform's time zone (the connections' `timezone`)."""
    options = request.morning_checks
    thresholds = dict(options.get("thresholds") or {})
    thresholds.setdefault("timezone", tz_name)
    readings = dict(views, timelinesai=bool(request.timelinesai), run_tags=options.get("run_tags"),
                    skip_tags=options.get("skip_tags"))
    checks = morning_checks(readings, thresholds)
    day = (views.get("phones") or {}).get("date") or (views.get("stats") or {}).get("day") or "today"
    return summarize(checks, "morning", day, tz_name, datetime.now(timezone.utc).isoformat())
