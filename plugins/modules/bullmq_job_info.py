#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bullmq_job_info
short_description: Find BullMQ jobs by their data, or show a queue's newest jobs and dead letters, secrets redacted
version_added: 0.1.0
description:
  - Answers "which jobs are for lead X / phone Y?" - a read-only search of one queue's states for jobs whose data
    matches O(match) - and "what are the newest failures?" (O(match) empty, O(states=[failed])).
  - B(Bounded), never C(KEYS) - job ids are read in pages of O(page_size) (C(LRANGE) of C(wait), C(paused),
    C(active); C(ZREVRANGE) by index of the sorted sets, newest first), and each page's job data is read in one
    pipeline of C(HGET) (never a round trip per job); only the matches' other fields are read after. Each Redis
    call costs about a millisecond, so other clients never wait long (1,000,000 jobs searched with no PING wait
    over 100 ms, docs/benchmarks.md).
  - The search stops at O(limit) matches, after O(max_scanned) jobs or when O(time_budget_ms) has passed; the
    result says how many jobs it examined per state (RV(scanned)) and whether and why it stopped early.
  - Jobs move between states while the search runs; one that moves may be missed or seen in two states (it is
    reported once).
  - Job data is shown with the value of every key whose name contains one of O(redact_keys) replaced by
    C(********), at any depth; so are the entries of O(dlq_keys).
  - Needs neither the C(bullmq) package nor PostgreSQL.
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.all]
options:
  queue:
    description:
      - The queue's key path under O(prefix), for example C(q:wa:phone_07) or C(outreach:followup).
      - Required unless only O(dlq_keys) are read (O(states=[])).
    type: str
  prefix:
    description:
      - BullMQ key prefix.
    type: str
    default: bull
  match:
    description:
      - "Fields of the job data and the value each must have, for example C(leadId=lead-42) or
        C(phone=+40712345678); C(a.b) names a nested field. All must match. A value matches when equal or when
        both read the same as text (C(42) matches C('42'))."
      - Empty - every job of O(states) matches (the newest first).
    type: dict
  states:
    description:
      - The states to search, in this order.
    type: list
    elements: str
    choices: [wait, paused, active, prioritized, delayed, waiting-children, failed, completed]
    default: [wait, paused, active, prioritized, delayed, waiting-children, failed, completed]
  limit:
    description:
      - Stop after this many matching jobs; C(0) means no limit (then O(max_scanned) or O(time_budget_ms) bound it).
    type: int
    default: 20
  max_scanned:
    description:
      - Stop after examining this many jobs; C(0) means no limit.
    type: int
    default: 0
  time_budget_ms:
    description:
      - Stop once this many milliseconds have passed (checked after each page); C(0) means no limit.
    type: int
    default: 5000
  page_size:
    description:
      - Job ids per Redis read, and job data per pipeline; 1 to 1,000.
    type: int
    default: 1000
  redact_keys:
    description:
      - Data keys whose values are masked in the result (a key matches when its name contains one, case-insensitive).
    type: list
    elements: str
    default: [password, token, api_key, authorization, secret]
  dlq_keys:
    description:
      - Application dead-letter lists (LPUSHed, such as C(bull:dlq:outreach)) whose newest O(dlq_count) entries to
        show, each parsed as JSON when it is JSON and redacted. A key of another type is reported with its type and
        not read.
    type: list
    elements: str
    default: []
  dlq_count:
    description:
      - How many of the newest entries of each O(dlq_keys) list.
    type: int
    default: 10
seealso:
  - module: cerniq.outreach.bullmq_queue_info
  - module: cerniq.outreach.bullmq_queue
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Which jobs are for lead 42?
  cerniq.outreach.bullmq_job_info:
    queue: outreach:followup
    match:
      leadId: lead-42
  register: lead_jobs

- name: The 10 newest failures of phone_07's queue, with the dead-letter list's newest entries
  cerniq.outreach.bullmq_job_info:
    queue: q:wa:phone_07
    states: [failed]
    limit: 10
    dlq_keys: [bull:dlq:outreach]

- name: Jobs for a phone number, searching at most 200,000 jobs or 2 seconds
  cerniq.outreach.bullmq_job_info:
    queue: q:wa:phone_07
    match:
      to: "+40712345678"
    limit: 0
    max_scanned: 200000
    time_budget_ms: 2000
"""

RETURN = r"""
queue:
  description: The queue searched.
  returned: when O(queue) was given
  type: str
  sample: outreach:followup
jobs:
  description: The matching jobs - C(id), C(queue), C(state), C(name), C(data) (redacted), C(failed_reason),
    C(attempts_made), C(timestamp), C(processed_on), C(finished_on) (epoch ms).
  returned: always
  type: list
  elements: dict
  sample: [{id: fu-lead-42-1764000000000, state: delayed, name: followup, data: {leadId: lead-42}}]
found:
  description: How many jobs matched (at most O(limit)).
  returned: always
  type: int
scanned:
  description: How many jobs were examined in each state, and C(total).
  returned: always
  type: dict
  sample: {wait: 1000, delayed: 250000, failed: 12, total: 251012}
stopped_early:
  description: Whether the search stopped before the end of the last state (see RV(stop_reason)).
  returned: always
  type: bool
stop_reason:
  description: C(limit), C(max_scanned), C(time_budget) or null (every state searched to its end).
  returned: always
  type: str
elapsed_ms:
  description: How long the search took.
  returned: always
  type: int
dlq_lists:
  description: For each O(dlq_keys) - C(key), C(type), C(length) and C(newest) (the newest entries, redacted).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import (
    DEFAULT_REDACT_KEYS,
    SEARCH_PAGE,
    SEARCH_STATES,
    JobSearchRequest,
    job_info,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module


def argument_spec():
    spec = common_argument_spec("redis")
    spec.update(
        queue=dict(type="str"),
        prefix=dict(type="str", default=BULLMQ_PREFIX),
        match=dict(type="dict"),
        states=dict(type="list", elements="str", default=list(SEARCH_STATES), choices=list(SEARCH_STATES)),
        limit=dict(type="int", default=20),
        max_scanned=dict(type="int", default=0),
        time_budget_ms=dict(type="int", default=5000),
        page_size=dict(type="int", default=SEARCH_PAGE),
        redact_keys=dict(type="list", elements="str", default=list(DEFAULT_REDACT_KEYS), no_log=False),
        dlq_keys=dict(type="list", elements="str", default=[], no_log=False),
        dlq_count=dict(type="int", default=10),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_postgres=False)
    run_module(module, lambda: job_info(module.params, JobSearchRequest.from_params(module.params)))


if __name__ == "__main__":
    main()
