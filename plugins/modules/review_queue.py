#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: review_queue
short_description: Emergency assignment and auto-approve in the human review queue
version_added: 0.1.0
description:
  - Runbook 5.1 steps 3 and 5, in one transaction with its audit rows in C(ops_audit_log).
  - B(Assignment) makes sure the reviewer O(assign_to) holds at least O(ensure_assigned) open (C(ASSIGNED)) items
    of O(priority), taking the missing ones from the C(PENDING) items with the earliest C(sla_due_at) (then the
    oldest). It is a target, not "take N more", so a second run changes nothing; once the reviewer resolved some
    items, the next run tops them up again. When fewer items are pending than missing, it takes what there is and
    returns the RV(shortfall).
  - Two operators assigning at the same moment never take the same item (C(FOR UPDATE SKIP LOCKED), where the
    runbook's C(UPDATE ... LIMIT) is not valid SQL); two runs for the same reviewer and priority run one after the
    other (an advisory lock), so the reviewer never ends up with twice the target.
  - B(Auto-approve) (only with O(auto_approve=true)) sets C(AUTO_APPROVED) and C(resolved_at) on the C(PENDING)
    C(LOW) items created before O(older_than). Assigned items and every other priority are left to people.
  - Every option is checked before the first change; a bad one fails with one message and changes nothing.
  - Assigning items and auto-approving them are destructive, so they need O(confirmed=true) (see the option).
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._confirm
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.audit, cerniq.outreach.all]
options:
  assign_to:
    description:
      - The reviewer (user id, as stored in C(assigned_to)) who takes items. Needs O(ensure_assigned).
    type: str
  ensure_assigned:
    description:
      - How many open items of O(priority) O(assign_to) should hold after the run (0 or more).
    type: int
  priority:
    description:
      - Priority of the items to assign.
    type: str
    default: URGENT
    choices: [URGENT, HIGH, NORMAL, LOW]
  auto_approve:
    description:
      - Approve pending C(LOW) items created before O(older_than). Needs O(older_than).
    type: bool
    default: false
  older_than:
    description:
      - With O(auto_approve=true), the items to approve were created before this moment. A duration (V(48h) - that
        long ago, V(2d)), V(today) / V(yesterday) (start of that business day), a V(YYYY-MM-DD) date or an ISO 8601
        timestamp (without an offset it is read in O(timezone)). A moment in the future is refused.
    type: str
  reason:
    description:
      - Why (an incident or ticket), written to C(ops_audit_log.reason).
    type: str
notes:
  - In check mode the module reads the items it would take (without locking them) and writes nothing, not even the
    audit log.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Ana holds 10 URGENT items (runbook 5.1 step 3)
  cerniq.outreach.review_queue:
    assign_to: ana.popescu
    ensure_assigned: 10
    confirmed: true
    reason: "INC-2231 SLA breaches overnight"
  register: assignment

- name: Approve LOW items pending for more than two days (runbook 5.1 step 5)
  cerniq.outreach.review_queue:
    auto_approve: true
    older_than: 48h
    confirmed: true
    reason: "review backlog, approved by the duty manager"
"""

RETURN = r"""
assigned_ids:
  description: Ids of the items assigned by this run (in check mode - that it would assign), most urgent first.
  returned: always
  type: list
  elements: int
  sample: [4711, 4712]
assigned_items:
  description: The same items with C(id), C(reason) and C(sla_due_at).
  returned: when O(assign_to) is set
  type: list
  elements: dict
assigned_to:
  description: The reviewer.
  returned: when O(assign_to) is set
  type: str
priority:
  description: The priority assigned.
  returned: when O(assign_to) is set
  type: str
held_before:
  description: Open items of O(priority) the reviewer held before the run.
  returned: when O(assign_to) is set
  type: int
held_after:
  description: Open items of O(priority) the reviewer holds after the run.
  returned: when O(assign_to) is set
  type: int
shortfall:
  description: How many items short of O(ensure_assigned) the reviewer still is because nothing else was pending.
  returned: when O(assign_to) is set
  type: int
auto_approved_ids:
  description: Ids of the items auto-approved (in check mode - that would be).
  returned: always
  type: list
  elements: int
auto_approve_cutoff:
  description: The moment O(older_than) resolved to (ISO 8601, UTC).
  returned: when O(auto_approve=true)
  type: str
msg:
  description: What was done, in words.
  returned: always
  type: str
  sample: "ana.popescu holds 10 open URGENT item(s) (wanted 10): 10 newly assigned"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import PRIORITY_URGENT, REVIEW_PRIORITIES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive
from ansible_collections.cerniq.outreach.plugins.module_utils._reviews import change_review_queue


def destructive(params):
    """What this call would change that needs confirmation (see run_destructive)."""
    if params["auto_approve"] and params["assign_to"]:
        return "assigning and auto-approving review items"
    if params["auto_approve"]:
        return "auto-approving review items"
    return "assigning review items" if params["assign_to"] else None


def argument_spec():
    spec = common_argument_spec("postgres", "platform", "audit")
    spec.update(
        assign_to=dict(type="str"),
        ensure_assigned=dict(type="int"),
        priority=dict(type="str", default=PRIORITY_URGENT, choices=list(REVIEW_PRIORITIES)),
        auto_approve=dict(type="bool", default=False),
        older_than=dict(type="str"),
        reason=dict(type="str"),
        **CONFIRMED_ARGUMENT_SPEC
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_redis=False)
    params = module.params

    run_destructive(module, lambda check_mode: change_review_queue(
        params, assign_to=params["assign_to"], ensure_assigned=params["ensure_assigned"], priority=params["priority"],
        auto_approve=params["auto_approve"], older_than=params["older_than"], reason=params["reason"],
        check_mode=check_mode), destructive(params))


if __name__ == "__main__":
    main()
