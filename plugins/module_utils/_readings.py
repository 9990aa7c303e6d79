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

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_info
from ansible_collections.cerniq.outreach.plugins.module_utils._daily_checks import morning_checks, summarize
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._phones import phones_info
from ansible_collections.cerniq.outreach.plugins.module_utils._stats import outreach_stats
from ansible_collections.cerniq.outreach.plugins.module_utils._timelinesai import account_info

READINGS = ("phones", "stats", "queues", "vendor")


def _read_phones(params):
    return phones_info(params, quota_warn_percent=params["quota_warn_percent"])


def _read_stats(params):
    return outreach_stats(params, params["stats"], breaches_since=params["breaches_since"])


def _read_queues(params):
    return queue_info(params, pattern=params["queue_pattern"])


def _read_vendor(params):
    return account_info(params)


def wanted_readings(params):
    """The views asked for, in READINGS order."""
    wanted = dict(phones=params.get("phones"), stats=bool(params.get("stats")),
                  queues=bool(params.get("queue_pattern")), vendor=params.get("timelinesai"))
    return [name for name in READINGS if wanted[name]]


def _read_at_once(readers, names, params):
    """[(view, reading or None, CerniqError or None)] of each view asked for, each read on its own thread."""
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [(name, pool.submit(readers[name], params)) for name in names]
        outcomes = []
        for name, future in futures:
            try:
                outcomes.append((name, future.result(), None))
            except CerniqError as exc:
                outcomes.append((name, None, exc))
    return outcomes


def daily_readings(params):
    """{view: what its module returns} for each view asked for. A failed TimelinesAI read is a finding (the
    morning check reports it), so it comes back as {failed, msg}; any other failure fails the whole read.
    With params["morning_checks"], the views are judged here and only the report is returned (see morning_report).
    """
    readers = dict(phones=_read_phones, stats=_read_stats, queues=_read_queues, vendor=_read_vendor)
    names = wanted_readings(params)
    result = dict(changed=False, readings=names, warnings=[])
    for name, reading, problem in _read_at_once(readers, names, params) if names else ():
        if problem is not None and name != "vendor":
            raise problem
        view = reading if problem is None else dict(changed=False, failed=True, msg=problem.msg)
        result["warnings"].extend(view.pop("warnings", None) or ())
        result[name] = view
    if params.get("morning_checks") is not None:
        views = {name: result.pop(name) for name in names}
        result["report"] = morning_report(views, params)
    return result


def morning_report(views, params):
    """The morning check's report (runbook 1.1), judged from the views just read, as the role's filters
    cerniq.outreach.morning_checks and check_summary would judge them from the registered views.

    Judging here keeps the views (megabytes at 1,000 phones) in this process: Ansible receives only the report.
    Which checks are judged follows the run's tags (morning_checks.run_tags / skip_tags), as in the role."""
    options = params["morning_checks"]
    thresholds = dict(options.get("thresholds") or {})
    thresholds.setdefault("timezone", params.get("timezone"))
    readings = dict(views, timelinesai=bool(params.get("timelinesai")), run_tags=options.get("run_tags"),
                    skip_tags=options.get("skip_tags"))
    checks = morning_checks(readings, thresholds)
    day = (views.get("phones") or {}).get("date") or (views.get("stats") or {}).get("day") or "today"
    return summarize(checks, "morning", day, params.get("timezone"), datetime.now(timezone.utc).isoformat())
