#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bullmq_queue_info
short_description: Depths, paused flag, version, schedulers and workers of BullMQ queues, by list or pattern
version_added: 0.1.0
description:
  - Reads, for a list of queues or every queue matching a pattern, the jobs in each state (C(wait), C(paused),
    C(active), C(delayed), C(prioritized), C(waiting-children), C(completed), C(failed)), the delayed jobs already
    due but not yet promoted (a sign no worker is running), the paused flag, C(meta.version) (the Node BullMQ
    version that manages the queue) and whether it pairs with the Python C(bullmq) installed here, the job
    schedulers and the connected Node workers.
  - Plain Redis commands in a handful of pipelines for any number of queues; never a round trip per queue. Needs
    neither the C(bullmq) package nor PostgreSQL.
  - Queues are found by C(SCAN) of C(<prefix>:<pattern>:id), as BullMQ's own tools do, so a queue shows up once its
    first job was added. A queue name is its key path, so C(q:wa:phone_07) is what Node workers open as prefix
    C(bull:q:wa), name C(phone_07).
  - The preflight warns when Redis' C(maxmemory-policy) is not C(noeviction) or persistence is off.
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.all]
options:
  queues:
    description:
      - Queue names (key paths under O(prefix)), for example C(q:wa:phone_07). Reported even when they do not
        exist (C(exists=false)).
      - At least one of O(queues) and O(pattern).
    type: list
    elements: str
  pattern:
    description:
      - Glob on queue names, for example C(q:wa:*) for every phone's send queue or C(*) for all.
    type: str
  prefix:
    description:
      - BullMQ key prefix.
    type: str
    default: bull
  include_schedulers:
    description:
      - Also read each queue's job schedulers.
    type: bool
    default: true
  dlq_keys:
    description:
      - Application dead-letter lists to count (C(LLEN)), always reported in C(dlq_lists) (a missing one with
        length 0); a key of another type is reported with its type and never read as a list.
    type: list
    elements: str
    default: [bull:dlq:outreach]
  dlq_pattern:
    description:
      - Also count every list whose key matches this glob (the platform keeps several C(bull:dlq:*) lists, which
        the weekly trim, M(cerniq.outreach.bullmq_queue) O(cerniq.outreach.bullmq_queue#module:dlq_pattern), finds
        the same way). Found by C(SCAN) (never C(KEYS)), one round trip per page of 1,000, then one pipeline types
        and counts them all.
      - A matching key that is not a list, or that is a BullMQ queue's own C(wait), C(paused) or C(active) list, is
        reported in C(dlq_skipped) and never read as a dead-letter list.
      - It must start with a literal prefix ending in C(:) (C(bull:dlq:*), not C(*)). More than 1,000 matching
        keys are not a set of dead-letter lists - only the first 1,000 are read, with a warning.
      - An empty string counts only O(dlq_keys).
    type: str
    default: "bull:dlq:*"
  expect_node_major:
    description:
      - Node BullMQ major the workers run, for queues without C(meta.version).
    type: int
    choices: [5, 6]
    default: 5
  preflight:
    description:
      - Check C(maxmemory-policy) and persistence.
    type: bool
    default: true
seealso:
  - module: cerniq.outreach.bullmq_queue
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Every phone's send queue
  cerniq.outreach.bullmq_queue_info:
    pattern: "q:wa:*"
  register: phone_queues

- name: Phones whose delayed jobs are due but nobody promotes them (no worker?)
  ansible.builtin.debug:
    msg: "{{ phone_queues.queues | selectattr('due_delayed', '>', 0) | map(attribute='name') | list }}"

- name: The quota reset scheduler is there
  cerniq.outreach.bullmq_queue_info:
    queues: [quota:guardian:reset]
  register: reset
  failed_when: reset.queues[0].schedulers | selectattr('id', 'equalto', 'quota-reset-daily') | list | length != 1
"""

RETURN = r"""
queues:
  description: One entry per queue, in the order given, then discovered ones sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Key path under the prefix.
      type: str
      sample: q:wa:phone_07
    key_prefix:
      description: Prefix of all the queue's keys.
      type: str
      sample: bull:q:wa:phone_07
    node_prefix:
      description: The C(prefix) a Node worker uses for this queue.
      type: str
      sample: bull:q:wa
    node_name:
      description: The queue name a Node worker uses.
      type: str
      sample: phone_07
    exists:
      description: Whether the queue has an C(id) counter, a C(meta) hash or any job.
      type: bool
    counts:
      description: Jobs per state.
      type: dict
      sample: {wait: 3, paused: 0, active: 1, delayed: 12, prioritized: 0, waiting-children: 0, completed: 50,
               failed: 2}
    pending:
      description: Jobs not yet picked up (wait, paused, prioritized, delayed).
      type: int
    due_delayed:
      description: Delayed jobs already due but not yet promoted to waiting.
      type: int
    is_paused:
      description: Whether the queue is paused.
      type: bool
    version:
      description: C(meta.version), written by Node queues (C(bullmq:<x.y.z>)); null when none wrote it.
      type: str
      sample: bullmq:5.81.5
    pairing_problem:
      description: Why the installed Python C(bullmq) must not write to this queue; null when it may.
      type: str
    oldest_wait_ms:
      description: When the oldest waiting job (the tail of C(wait)) was added, epoch milliseconds; null when none
        waits.
      type: int
    oldest_wait_age_seconds:
      description: How long the oldest waiting job has waited, in seconds; null when none waits.
      type: int
    workers:
      description: Connected Node BullMQ connections on this queue (from C(CLIENT LIST)); null when C(CLIENT) is
        disabled.
      type: int
    schedulers:
      description: Job schedulers (C(id), C(pattern) or C(every), C(tz), C(name), C(next) time, C(next_job_id),
        C(iteration_count), C(data), C(opts)). A legacy repeatable job (Node BullMQ 5
        C(Queue.add(name, data, {repeat})), the runbook's registration of the quota reset) is listed too, with
        C(legacy=true), its key as C(id), C(name), C(pattern) or C(every), C(tz), C(endDate), C(next),
        C(next_job_id) and C(key_format) (C(hash) - BullMQ 5's md5 key with a C(repeat:<key>) hash - or C(key), the
        older C(name:jobId:endDate:tz:pattern) member).
      type: list
      elements: dict
totals:
  description: Sums over all queues per state, and C(due_delayed).
  returned: always
  type: dict
dlq_lists:
  description:
    - The dead-letter lists with their Redis type and length - the O(dlq_keys) first, in the order given (a missing
      key has type C(none) and length 0, a key of another type length null), then every other list
      O(dlq_pattern) matched, by key.
  returned: always
  type: list
  elements: dict
  sample: [{key: bull:dlq:outreach, type: list, length: 42}, {key: bull:dlq:followup, type: list, length: 3}]
dlq_skipped:
  description:
    - Keys O(dlq_pattern) matched that are not dead-letter lists, never read as lists - C(key), C(type) and
      C(why) (C(not a list) or C(a BullMQ queue's own list)).
  returned: always
  type: list
  elements: dict
  sample: [{key: bull:dlq:stats, type: hash, why: not a list}]
dlq_pattern:
  description: The O(dlq_pattern) read; null when none was.
  returned: always
  type: str
  sample: "bull:dlq:*"
preflight:
  description: C(maxmemory_policy), C(rdb_save), C(aof_enabled) and their warnings.
  returned: when O(preflight=true)
  type: dict
python_bullmq:
  description: Version of the Python C(bullmq) package on this host; null when not installed.
  returned: always
  type: str
  sample: 2.26.0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_info
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    DLQ_LIST_KEY,
    DLQ_LIST_PATTERN,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module, with_warnings


def argument_spec():
    spec = common_argument_spec("redis")
    spec.update(
        queues=dict(type="list", elements="str"),
        pattern=dict(type="str"),
        prefix=dict(type="str", default=BULLMQ_PREFIX),
        include_schedulers=dict(type="bool", default=True),
        dlq_keys=dict(type="list", elements="str", default=[DLQ_LIST_KEY], no_log=False),
        dlq_pattern=dict(type="str", default=DLQ_LIST_PATTERN),
        expect_node_major=dict(type="int", default=5, choices=[5, 6]),
        preflight=dict(type="bool", default=True),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("queues", "pattern")])
    require_libraries(module, need_postgres=False)
    params = module.params
    run_module(module, lambda: with_warnings(module, queue_info(
        params, queues=params["queues"], pattern=params["pattern"], prefix=params["prefix"],
        include_schedulers=params["include_schedulers"], dlq_list_keys=params["dlq_keys"],
        dlq_pattern=params["dlq_pattern"], expect_node_major=params["expect_node_major"],
        check_preflight=params["preflight"])))


if __name__ == "__main__":
    main()
