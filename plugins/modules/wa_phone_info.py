#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: wa_phone_info
short_description: Every WhatsApp phone with its DB and Redis status, drift, today's quota and queue depths
version_added: 0.1.0
description:
  - For every phone in C(wa_phone_numbers), or the ones matching the filters, the module reports several things.
    It gives the database status and the Redis status (C(phone:status:<id>)). It reports the drift between the two,
    and a missing Redis key counts as drift. It shows today's quota counter (used, limit, used percent and TTL). The
    day is the business day in O(timezone). It also gives the depths of the phone's BullMQ queue (C(q:wa:<id>)).
  - It covers the runbook's morning checklist (1.1 steps 1, 2, 4 and 6) and 3.1 step 1, without a shell loop.
    It runs one SQL query, one Redis pipeline on the platform db and one on the BullMQ db, whatever the number of
    phones.
  - A key of the wrong Redis type is reported in C(summary.problems) with its name, and the read goes on.
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.all]
options:
  phone_ids:
    description:
      - Only these phones (V(phone_07)). An id that is not in the table is an error.
    type: list
    elements: str
    aliases: [phone_id]
  statuses:
    description:
      - Only phones whose database status is one of these.
    type: list
    elements: str
    choices: [ACTIVE, OFFLINE, BANNED]
  tenant_id:
    description:
      - Only this tenant's phones (UUID).
    type: str
  quota_warn_percent:
    description:
      - C(summary.over_quota_percent) lists the phones that used at least this percent of today's limit.
    type: int
    default: 90
seealso:
  - module: cerniq.outreach.wa_phone
  - module: cerniq.outreach.quota_counter_info
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Morning check of every phone
  cerniq.outreach.wa_phone_info:
  register: phones

- name: Fail when Redis and the database disagree on a phone's status
  ansible.builtin.assert:
    that: phones.summary.drifted | length == 0
    fail_msg: "status drift on {{ phones.summary.drifted | join(', ') }}: run cerniq.outreach.wa_phone on them"

- name: Phones close to their quota
  cerniq.outreach.wa_phone_info:
    statuses: [ACTIVE]
    quota_warn_percent: 80
  register: busy
"""

RETURN = r"""
date:
  description: The business day whose quota counters were read.
  returned: always
  type: str
  sample: "2026-11-25"
timezone:
  description: The platform time zone used for the business day.
  returned: always
  type: str
  sample: Europe/Bucharest
phones:
  description: One entry per phone, in id order.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The phone id.
      type: str
    status:
      description: Status in the database.
      type: str
    redis_status:
      description: Status in Redis. Null when the key is missing or unreadable.
      type: str
    drift:
      description: Whether Redis disagrees with the database (a missing key counts).
      type: bool
    drift_reason:
      description: V(differs), V(missing), V(unreadable) or null.
      type: str
    quota:
      description:
        - Today's counter. C(key), C(value) (null when missing), C(exists), C(ttl) (-1 means no TTL), C(no_ttl),
          C(expires_at), C(expected_expires_at), C(limit), C(used_percent) and C(problem).
      type: dict
    queue:
      description:
        - The phone's BullMQ queue. C(name), then the depths C(wait), C(paused), C(active), C(delayed),
          C(prioritized), C(waiting-children), C(completed), C(failed) and C(due_delayed). Then C(pending) (wait,
          paused, delayed and prioritized together), C(is_paused), C(version) (C(meta.version)) and C(exists).
      type: dict
    problems:
      description: Keys of the wrong type, named.
      type: list
      elements: str
  sample:
    - id: phone_07
      phone_number: "+40700000007"
      phone_label: Sales 07
      tenant_id: 5b1f0c1e-0000-4000-8000-00000000c3e1
      status: OFFLINE
      redis_status: ACTIVE
      drift: true
      drift_reason: differs
      quota: {key: "quota:wa:phone_07:2026-11-25", value: 0, ttl: 120000, limit: 200, used_percent: 0.0}
      queue: {name: "q:wa:phone_07", wait: 4, delayed: 8, active: 0, pending: 12}
summary:
  description:
    - Counts and lists for the console. C(total) and C(by_status). C(drifted) and C(missing_redis_status).
      C(over_quota_percent) lists the phones at or above O(quota_warn_percent). C(quota_without_ttl) lists the
      counters without TTL, which cerniq.outreach.quota_counter repairs. Then C(quota_used_today),
      C(pending_jobs), C(active_jobs) and C(problems).
  returned: always
  type: dict
  sample:
    total: 20
    by_status: {ACTIVE: 17, OFFLINE: 2, BANNED: 1}
    drifted: [phone_13]
    missing_redis_status: []
    quota_warn_percent: 90
    over_quota_percent: [phone_04]
    quota_without_ttl: [phone_11]
    quota_used_today: 1830
    pending_jobs: 204
    active_jobs: 3
    problems: []
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import PHONE_STATUSES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._phones import phones_info


def argument_spec():
    spec = common_argument_spec("redis", "postgres", "platform")
    spec.update(
        phone_ids=dict(type="list", elements="str", aliases=["phone_id"]),
        statuses=dict(type="list", elements="str", choices=list(PHONE_STATUSES)),
        tenant_id=dict(type="str"),
        quota_warn_percent=dict(type="int", default=90),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module)
    params = module.params
    run_module(module, lambda: phones_info(
        params, phone_ids=params["phone_ids"], statuses=params["statuses"], tenant_id=params["tenant_id"],
        quota_warn_percent=params["quota_warn_percent"]))


if __name__ == "__main__":
    main()
