# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge the figures the info modules read into pass/warn/fail checks (runbook 1.1 and 1.2), on the controller.

The checks themselves are plugins/module_utils/_daily_checks.py, shared with cerniq.outreach.daily_readings_info,
which judges the morning check in the module run that read the views (option morning_checks). These filters take
registered results as they are, so a check whose read was skipped (--tags, or switched off) is simply absent.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.cerniq.outreach.plugins.module_utils import _daily_checks
from ansible_collections.cerniq.outreach.plugins.module_utils._daily_checks import (
    check_stats,
    morning_reads,
    phone_quota_rows,
    queue_rows,
    quota_usage,
    summarize,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError


def _filter_errors(function):
    """A wrong setting is the filter's error (AnsibleFilterError), with the core's message."""
    def wrapper(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except CerniqError as exc:
            raise AnsibleFilterError(exc.msg) from exc
    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


_settings = _filter_errors(_daily_checks._settings)
morning_checks = _filter_errors(_daily_checks.morning_checks)
evening_checks = _filter_errors(_daily_checks.evening_checks)


class FilterModule(object):
    def filters(self):
        return dict(morning_checks=morning_checks, morning_reads=morning_reads, check_summary=summarize,
                    check_stats=check_stats, queue_rows=queue_rows, quota_usage=quota_usage,
                    evening_checks=evening_checks, phone_quota_rows=phone_quota_rows)
