#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: quota_counter_info
short_description: Read the daily WhatsApp quota counters, the leak report and the nightly roll-up
version_added: 0.1.0
description:
  - Reads the quota counter of every phone, or of O(phone_ids), for one business day (C(quota:wa:<phone>:<day>)).
    The day is the calendar day in O(timezone). Each counter comes with its TTL, the phone's C(daily_quota_limit)
    from the database and the percent used.
  - B(Leak report) (runbook 3.1 step 3, on by default). Each counter is compared with the messages that count
    against the quota in C(gold_communication_log) (C(channel = WHATSAPP), C(quota_cost = 1), created within the
    business day). A phone is flagged when the two differ by more than O(tolerance).
    C(cerniq.outreach.quota_counter) with C(sync_from=db) corrects them.
  - B(Counters without TTL) are listed in RV(without_ttl). Such a counter comes from an C(INCR) on a missing key,
    and it would never expire. C(cerniq.outreach.quota_counter) with C(repair_ttl=true) repairs them.
  - B(Nightly roll-up) (O(usage_date), runbook 3.2 step 3). This gives the C(wa_quota_usage) rows of that day, and
    the phones that existed that day but have no row.
  - The module runs one SQL query and one Redis pipeline for any number of phones. A key of the wrong Redis type is
    reported by name in RV(problems), and the read goes on.
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
      - Only these phones (V(phone_07)). Unknown phones are an error.
    type: list
    elements: str
    aliases: [phone_id]
  date:
    description:
      - The business day of the counters. Use V(today), V(yesterday) or V(YYYY-MM-DD).
    type: str
    default: today
  leak_report:
    description:
      - Compare each counter with the communication log.
    type: bool
    default: true
  tolerance:
    description:
      - With O(leak_report), the difference (counter minus log, in either direction) that is tolerated before a
        phone is listed in RV(leaks).
    type: int
    default: 0
  usage_date:
    description:
      - Also read C(wa_quota_usage) for this day (V(yesterday), V(YYYY-MM-DD)).
    type: str
seealso:
  - module: cerniq.outreach.quota_counter
  - module: cerniq.outreach.wa_phone_info
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Today's counters and leaks (runbook 3.1 steps 1 and 3)
  cerniq.outreach.quota_counter_info:
    tolerance: 2
  register: quota

- name: Did the midnight roll-up run? (runbook 3.2 step 3)
  cerniq.outreach.quota_counter_info:
    usage_date: yesterday
    leak_report: false
  register: rollup

- name: Fail when a phone has no roll-up row
  ansible.builtin.assert:
    that: rollup.usage.missing | length == 0
    fail_msg: "no wa_quota_usage row for {{ rollup.usage.missing | join(', ') }}"
"""

RETURN = r"""
date:
  description: The business day read.
  returned: always
  type: str
  sample: "2026-11-25"
timezone:
  description: The platform time zone.
  returned: always
  type: str
counters:
  description:
    - One entry per phone, in id order. Each has C(phone_id), C(key), C(value) (null when missing) and
      C(exists). Then C(ttl) (-1 means no TTL, -2 means missing), C(no_ttl), C(expires_at) and
      C(expected_expires_at) (the contract's absolute expiry). Then C(limit), C(used_percent), C(status) (the
      phone's) and C(problem).
    - With O(leak_report), each entry also has C(db_count), C(difference) (counter minus log) and C(leak).
  returned: always
  type: list
  elements: dict
  sample:
    - phone_id: phone_05
      key: "quota:wa:phone_05:2026-11-25"
      value: 130
      ttl: 151200
      no_ttl: false
      limit: 200
      used_percent: 65.0
      db_count: 115
      difference: 15
      leak: true
leaks:
  description: The phones whose counter differs from the log by more than O(tolerance).
  returned: with O(leak_report)
  type: list
  elements: dict
  sample: [{phone_id: phone_05, redis: 130, db: 115, difference: 15}]
tolerance:
  description: The tolerance applied.
  returned: with O(leak_report)
  type: int
without_ttl:
  description: Counter keys that have no TTL.
  returned: always
  type: list
  elements: str
  sample: ["quota:wa:phone_11:2026-11-25"]
problems:
  description: Keys that are not counters (wrong type or not an integer), named.
  returned: always
  type: list
  elements: str
total_used:
  description: The sum of the counters.
  returned: always
  type: int
usage:
  description:
    - The C(wa_quota_usage) roll-up of O(usage_date). C(rows) has C(phone_id), C(messages_sent) and
      C(quota_limit). C(missing) lists the phones that existed that day but have no row. C(total_sent) is the sum.
  returned: with O(usage_date)
  type: dict
  sample: {date: "2026-11-24", rows: [{phone_id: phone_01, messages_sent: 143, quota_limit: 200}], missing: [],
           total_sent: 143}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._quota import quota_counters_info


def argument_spec():
    spec = common_argument_spec("redis", "postgres", "platform")
    spec.update(
        phone_ids=dict(type="list", elements="str", aliases=["phone_id"]),
        date=dict(type="str", default="today"),
        leak_report=dict(type="bool", default=True),
        tolerance=dict(type="int", default=0),
        usage_date=dict(type="str"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module)
    params = module.params
    run_module(module, lambda: quota_counters_info(
        params, phone_ids=params["phone_ids"], date=params["date"], leak_report=params["leak_report"],
        tolerance=params["tolerance"], usage_date=params["usage_date"]))


if __name__ == "__main__":
    main()
