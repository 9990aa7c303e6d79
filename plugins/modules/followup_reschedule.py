#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: followup_reschedule
short_description: Reschedule every pending follow-up as a delayed BullMQ job (runbook 6.2 step 4)
version_added: 0.1.0
description:
  - Reads every lead of C(gold_lead_journey) with C(next_action_at) in the future and C(sequence_paused = false)
    through a server-side cursor (memory stays flat at a million leads) and makes sure each has one delayed job on the
    follow-up queue, due at C(next_action_at).
  - Job ids are deterministic (C(fu-<lead_id>-<due epoch ms>)), so a second run adds nothing; jobs go in with
    BullMQ's own C(addJob) scripts (the C(bullmq) package), in pipelined chunks of at most 1,000 so Redis never stalls;
    the next chunk is read and checked while Redis runs the previous ones.
  - Refuses to write when the queue's C(meta.version) says its Node workers run a BullMQ major that the installed
    Python C(bullmq) does not pair with.
  - The runbook's own step only echoes what it would reschedule.
  - Adding the missing jobs queues sends, so it needs O(confirmed=true).
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._postgres
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._confirm
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.postgres, cerniq.outreach.audit, cerniq.outreach.all]
options:
  queue:
    description:
      - The follow-up queue, as a key path under O(prefix) (Node workers open C(outreach:followup) as prefix
        C(bull:outreach), name C(followup)).
    type: str
    default: outreach:followup
  prefix:
    description: BullMQ key prefix.
    type: str
    default: bull
  chunk_size:
    description: Leads read and jobs added per round trip (1 to 1,000).
    type: int
    default: 1000
  job_name:
    description: BullMQ job name the workers dispatch on.
    type: str
    default: followup
  remove_on_complete:
    description:
      - Set C(removeOnComplete) on each job. With V(true) a completed follow-up's id can be added again later.
    type: bool
    default: true
  expect_node_major:
    description: BullMQ major version of the Node workers (5 pairs with Python C(bullmq) 2.x, 6 with 3.x).
    type: int
    default: 5
notes:
  - Supports check mode, which counts what it would add without writing to Redis or the audit log.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Reschedule every pending follow-up after Redis lost its data
  cerniq.outreach.followup_reschedule:
    confirmed: true
  register: followups

- name: Every pending follow-up has its job
  ansible.builtin.assert:
    that: followups.verified
"""

RETURN = r"""
followups:
  description: Counts of the run.
  returned: always
  type: dict
  contains:
    pending:
      description: Pending follow-ups in the database.
      type: int
    added:
      description: Jobs added (or that would be added, in check mode).
      type: int
    existing:
      description: Jobs that were already there.
      type: int
    present:
      description: Jobs present after the run.
      type: int
  sample: {pending: 1500, added: 1500, existing: 0, present: 1500}
verified:
  description: Whether every pending follow-up has its job (in check mode, would have).
  returned: always
  type: bool
jobs_per_second:
  description: Add rate of this run.
  returned: when jobs were added
  type: int
depths:
  description: The queue's depths (wait, delayed, ...) before and after.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive
from ansible_collections.cerniq.outreach.plugins.module_utils._followups import FollowupRequest, reschedule_followups

DESTRUCTIVE = "adding follow-up jobs (messages the workers will send)"


def argument_spec():
    spec = common_argument_spec("redis", "postgres", "audit")
    spec.update(
        queue=dict(type="str", default="outreach:followup"),
        prefix=dict(type="str", default="bull"),
        chunk_size=dict(type="int", default=1000),
        job_name=dict(type="str", default="followup"),
        remove_on_complete=dict(type="bool", default=True),
        expect_node_major=dict(type="int", default=5),
        **CONFIRMED_ARGUMENT_SPEC
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module)
    run_destructive(module, lambda check_mode: reschedule_followups(
        module.params, FollowupRequest.from_params(module.params), check_mode), DESTRUCTIVE)


if __name__ == "__main__":
    main()
