#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: review_queue_info
short_description: Depth, SLA breaches and the bottleneck of the human review queue
version_added: 0.1.0
description:
  - Runbook 5.1 steps 1 and 2 in one read-only statement against C(human_review_queue).
  - Depth by priority and status of the items created in the last O(window); every open (C(PENDING) or
    C(ASSIGNED)) item by priority with how many are unassigned, past their SLA, and the oldest pending one.
  - SLA breaches - open items whose C(sla_due_at) has passed, and every item whose deadline passed since
    O(breaches_since) before it was resolved (for example the night's breaches).
  - The bottleneck named, most pressing first - URGENT items nobody holds, pending work with no reviewer at all,
    one reason making up at least half of the pending items, one reviewer holding at least half of the assigned items
    (share claims only from 10 items on).
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.all]
options:
  window:
    description:
      - How far back RV(depth_window) looks at item creation, as a duration (V(24h), V(90m), V(2d)).
    type: str
    default: 24h
  breaches_since:
    description:
      - Count the SLA deadlines missed since this moment. A duration (V(12h) - that long ago), V(today) or
        V(yesterday) (the start of that business day in O(timezone)), a V(YYYY-MM-DD) date, or an ISO 8601 timestamp
        (without an offset it is read in O(timezone)). A moment in the future is refused.
    type: str
    default: 24h
notes:
  - Only reads; the database refuses writes on its connection.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Read the review queue (runbook 5.1)
  cerniq.outreach.review_queue_info:
    breaches_since: "12h"
  register: queue

- name: Say what holds the queue up
  ansible.builtin.debug:
    msg: "{{ queue.summary }}"

- name: Fail the morning check on URGENT work nobody holds
  ansible.builtin.assert:
    that: queue.unassigned_urgent == 0
    fail_msg: "{{ queue.bottleneck }}"
"""

RETURN = r"""
window_start:
  description: Start of the O(window) (ISO 8601, UTC).
  returned: always
  type: str
breaches_since:
  description: The moment O(breaches_since) resolved to (ISO 8601, UTC).
  returned: always
  type: str
depth_window:
  description: Items created in the window, by priority (URGENT first) and status.
  returned: always
  type: list
  elements: dict
  sample: [{priority: URGENT, status: PENDING, count: 12}]
open:
  description:
    - Open items by priority (every priority present), with C(pending), C(assigned), C(unassigned), C(breached),
      C(oldest_pending_id), C(oldest_pending_created_at) and C(oldest_pending_age_seconds).
  returned: always
  type: dict
  sample:
    URGENT: {pending: 12, assigned: 0, unassigned: 12, breached: 3, oldest_pending_id: 4711,
             oldest_pending_created_at: "2026-01-15T07:02:11+02:00", oldest_pending_age_seconds: 5400}
pending:
  description: Pending items, every priority.
  returned: always
  type: int
assigned:
  description: Assigned, unresolved items, every priority.
  returned: always
  type: int
unassigned_urgent:
  description: Open URGENT items nobody holds.
  returned: always
  type: int
sla_breaches:
  description:
    - C(open) - open items past C(sla_due_at) now; C(since) - deadlines missed since O(breaches_since) (resolved
      late or not at all); both also C(open_by_priority) and C(since_by_priority).
  returned: always
  type: dict
  sample: {open: 7, since: 5, open_by_priority: {URGENT: 0, HIGH: 2, NORMAL: 0, LOW: 5},
           since_by_priority: {URGENT: 0, HIGH: 5, NORMAL: 0, LOW: 0}}
reasons_pending:
  description: Pending items by reason, largest first.
  returned: always
  type: list
  elements: dict
  sample: [{reason: negative_sentiment, count: 18}]
reviewers:
  description: Reviewers holding assigned items, most first, with C(assigned), C(breached) and C(oldest_assigned_at).
  returned: always
  type: list
  elements: dict
bottleneck:
  description: The most pressing bottleneck in words, or null when there is none.
  returned: always
  type: str
  sample: 12 URGENT item(s) pending, none assigned
bottlenecks:
  description: Every bottleneck found, most pressing first.
  returned: always
  type: list
  elements: str
summary:
  description: Lines for the console.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._reviews import review_queue_overview


def argument_spec():
    spec = common_argument_spec("postgres", "platform")
    spec.update(
        window=dict(type="str", default="24h"),
        breaches_since=dict(type="str", default="24h"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_redis=False)
    params = module.params
    run_module(module, lambda: review_queue_overview(
        params, window=params["window"], breaches_since=params["breaches_since"]))


if __name__ == "__main__":
    main()
