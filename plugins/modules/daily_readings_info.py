#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: daily_readings_info
short_description: What the daily checks read (phones, figures, queues, TimelinesAI) in one module run
version_added: 0.1.0
description:
  - Returns, in one run, the views of M(cerniq.outreach.wa_phone_info), M(cerniq.outreach.outreach_stats_info),
    M(cerniq.outreach.bullmq_queue_info) and M(cerniq.outreach.timelinesai_account_info) that were asked for, each
    exactly as its own module returns it. The views are read at the same time, each on its own connections.
  - Why it exists - every module run costs a Python start-up and the import of Ansible's module code (a quarter of
    a second on a 2-core host); the morning check (runbook 1.1) reads four views, and an operator after an alert
    wants the table now.
  - A TimelinesAI read that fails is a finding, not an error (the morning check reports TimelinesAI as down), so
    that view comes back as C(failed=true) with C(msg). Any other view that cannot be read fails the module with
    one line naming the server.
  - Reads only.
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._postgres
  - cerniq.outreach._vendors
  - cerniq.outreach._platform
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.postgres, cerniq.outreach.vendors, cerniq.outreach.platform,
                 cerniq.outreach.all]
options:
  phones:
    description:
      - Read every phone as M(cerniq.outreach.wa_phone_info) does (DB and Redis status, drift, today's quota).
    type: bool
    default: true
  quota_warn_percent:
    description:
      - For O(phones), the share of the daily quota from which a phone counts as nearly exhausted.
    type: int
    default: 90
  stats:
    description:
      - The figures of M(cerniq.outreach.outreach_stats_info) to compute for today (none when empty).
    type: list
    elements: str
    default: []
    choices: [contacted, replied, converted, reviews_resolved, reviews_pending, sla_breaches, archive_backlog,
              pending_followups, bounces, whatsapp_per_phone]
  breaches_since:
    description:
      - For the V(sla_breaches) figure, how far back missed deadlines count (C(24h), C(90m), or an ISO 8601 time).
    type: str
    default: 24h
  queue_pattern:
    description:
      - Read every BullMQ queue whose name matches this pattern (C(*) for all), its dead-letter list and its
        schedulers, as M(cerniq.outreach.bullmq_queue_info) does. Not read when unset.
    type: str
  timelinesai:
    description:
      - Read TimelinesAI's status of every WhatsApp account, as M(cerniq.outreach.timelinesai_account_info) does.
    type: bool
    default: false
  morning_checks:
    description:
      - Judge the views read into the morning check's report (runbook 1.1) in this module run, exactly as the
        filters C(cerniq.outreach.morning_checks) and C(cerniq.outreach.check_summary) judge the registered views,
        and return RV(report) B(instead of) the views.
      - Why - at 1,000 phones the views are megabytes, and handing them to Ansible to judge them there cost seconds
        (each value is wrapped and templated); the report is what the role uses.
      - The TimelinesAI check is judged only when O(timelinesai=true); the morning check's time zone is the
        platform's (O(timezone)) unless O(morning_checks.thresholds) sets C(timezone).
    type: dict
    suboptions:
      thresholds:
        description:
          - The settings of C(cerniq.outreach.morning_checks) (C(banned_fails), C(pending_reviews_warn),
            C(pending_reviews_fail), C(sla_open_breaches_fail), C(queue_waiting_warn), C(queue_waiting_fail),
            C(dlq_warn), C(quota_leak_tolerance), C(timezone)); the filter's defaults for those not given.
        type: dict
        default: {}
      run_tags:
        description:
          - The run's tags (C(ansible_run_tags)); a check whose tag is not chosen is left out of the report.
        type: list
        elements: str
        default: []
      skip_tags:
        description:
          - The run's skipped tags (C(ansible_skip_tags)); a check whose tag is skipped is left out.
        type: list
        elements: str
        default: []
seealso:
  - module: cerniq.outreach.wa_phone_info
  - module: cerniq.outreach.outreach_stats_info
  - module: cerniq.outreach.bullmq_queue_info
  - module: cerniq.outreach.timelinesai_account_info
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Everything the morning check reads, in one run
  cerniq.outreach.daily_readings_info:
    stats: [reviews_pending, sla_breaches, whatsapp_per_phone]
    breaches_since: 12h
    queue_pattern: "*"
    timelinesai: true
  register: readings

- name: Phones whose Redis status disagrees with the database
  ansible.builtin.debug:
    msg: "{{ readings.phones.phones | selectattr('drift') | map(attribute='id') | list }}"

- name: TimelinesAI could not be read
  ansible.builtin.debug:
    msg: "{{ readings.vendor.msg }}"
  when: readings.vendor.failed | default(false)

- name: The morning check judged where it was read (the views stay in the module)
  cerniq.outreach.daily_readings_info:
    stats: [reviews_pending, sla_breaches, whatsapp_per_phone]
    queue_pattern: "*"
    timelinesai: true
    morning_checks:
      thresholds: {pending_reviews_warn: 50}
  register: morning

- name: The console table
  ansible.builtin.debug:
    msg: "{{ morning.report.table | join('\n') }}"
"""

RETURN = r"""
readings:
  description: The views read, in the order C(phones), C(stats), C(queues), C(vendor).
  returned: always
  type: list
  elements: str
  sample: [phones, stats, queues, vendor]
phones:
  description: What M(cerniq.outreach.wa_phone_info) returns for every phone (C(phones), C(summary), C(date), ...).
  returned: when O(phones=true) and O(morning_checks) is not set
  type: dict
stats:
  description: What M(cerniq.outreach.outreach_stats_info) returns for O(stats).
  returned: when O(stats) is not empty and O(morning_checks) is not set
  type: dict
queues:
  description: What M(cerniq.outreach.bullmq_queue_info) returns for O(queue_pattern).
  returned: when O(queue_pattern) is set and O(morning_checks) is not set
  type: dict
vendor:
  description:
    - What M(cerniq.outreach.timelinesai_account_info) returns, or C(failed=true) and C(msg) when TimelinesAI could
      not be read.
  returned: when O(timelinesai=true) and O(morning_checks) is not set
  type: dict
report:
  description:
    - The morning check's report, as C(cerniq.outreach.check_summary) makes it - C(kind), C(date), C(timezone),
      C(generated_at), C(overall), C(counts), C(failed), C(warned), C(checks) (each with C(name), C(title),
      C(status), C(figure), C(details), C(next), C(data)), C(table), C(explained), C(next).
    - The views C(phones), C(stats), C(queues) and C(vendor) are not returned then.
  returned: when O(morning_checks) is set
  type: dict
"""

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module, with_warnings
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_module
from ansible_collections.cerniq.outreach.plugins.module_utils._readings import ReadingsRequest, daily_readings
from ansible_collections.cerniq.outreach.plugins.module_utils._stats import FIGURES


def options():
    """The module's own options (vendor_module adds those of its action groups)."""
    return dict(
        phones=dict(type="bool", default=True),
        quota_warn_percent=dict(type="int", default=90),
        stats=dict(type="list", elements="str", default=[], choices=list(FIGURES)),
        breaches_since=dict(type="str", default="24h"),
        queue_pattern=dict(type="str"),
        timelinesai=dict(type="bool", default=False),
        morning_checks=dict(type="dict", options=dict(
            thresholds=dict(type="dict", default={}),
            run_tags=dict(type="list", elements="str", default=[]),
            skip_tags=dict(type="list", elements="str", default=[]),
        )),
    )


def main():
    module = vendor_module(options(), ("redis", "postgres", "platform"))
    require_libraries(module)
    run_module(module, lambda: with_warnings(module, daily_readings(
        module.params, ReadingsRequest.from_params(module.params))))


if __name__ == "__main__":
    main()
