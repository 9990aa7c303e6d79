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

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq import queue_info
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


def daily_readings(params):
    """{view: what its module returns} for each view asked for. A failed TimelinesAI read is a finding (the
    morning check reports it), so it comes back as {failed, msg}; any other failure fails the whole read."""
    readers = dict(phones=_read_phones, stats=_read_stats, queues=_read_queues, vendor=_read_vendor)
    names = wanted_readings(params)
    result = dict(changed=False, readings=names, warnings=[])
    if not names:
        return result
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        futures = [(name, pool.submit(readers[name], params)) for name in names]
        outcomes = []
        for name, future in futures:
            try:
                outcomes.append((name, future.result(), None))
            except CerniqError as exc:
                outcomes.append((name, None, exc))
    for name, reading, problem in outcomes:
        if problem is not None and name != "vendor":
            raise problem
        view = reading if problem is None else dict(changed=False, failed=True, msg=problem.msg)
        result["warnings"].extend(view.pop("warnings", None) or ())
        result[name] = view
    return result
