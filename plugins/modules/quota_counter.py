#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: quota_counter
short_description: Set, recount, repair or reset the per-phone daily WhatsApp quota counters
version_added: 0.1.0
description:
  - Each phone has one counter per business day, C(quota:wa:<phone>:<YYYY-MM-DD>), in the platform db. The day is
    the calendar day in O(timezone), never UTC nor the controller's date. Each run does exactly one of the
    operations below.
  - B(Set) (O(value) with O(reason), one phone). This is the emergency adjustment of runbook 3.1 step 4. It is
    audited with the value before and after. A counter that has a TTL keeps it. A new counter, or one without a
    TTL, gets the absolute expiry, which is the start of its business day plus 48 h.
  - B(Recount) (O(sync_from=db)). This recomputes the counters from C(gold_communication_log) (runbook 6.1 step 4).
    It counts messages with C(channel = WHATSAPP) and C(quota_cost = 1) created within the business day. It
    covers every phone, or O(phone_ids), in one SQL query and one Redis script call. A phone with no message gets
    0. The expiry is kept, or set as above. Only counters that differ are written, and they make C(changed).
  - B(TTL repair) (O(repair_ttl=true)). This gives every counter of the day that has no TTL its absolute expiry.
    Such a counter comes from an C(INCR) on a missing key. A recount repairs them as well.
  - B(Reset) (O(state=absent) with O(date)). This deletes a B(past) day's counters (runbook 3.2 step 2). It finds
    them with C(SCAN) (never C(KEYS)) and unlinks them in batches. Today and future dates are refused. The audit
    row keeps every deleted value.
  - All writes to existing counters go through one Lua compare-and-set. A worker's C(INCR) between the read and
    the write is never lost, and a key of the wrong type stops the run before anything is written.
  - Counters can be written for today and yesterday only. Older ones have expired by contract.
  - Setting a counter (O(value)), recounting (O(sync_from)) and deleting counters (O(state=absent)) are destructive,
    so they need O(confirmed=true). O(repair_ttl) only adds a missing expiry and does not.
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._confirm
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.audit,
                 cerniq.outreach.all]
options:
  phone_ids:
    description:
      - The phones (V(phone_07)). A set takes exactly one. A recount, repair or reset takes all phones when this is
        unset. Unknown phones are an error.
    type: list
    elements: str
    aliases: [phone_id]
  date:
    description:
      - The business day. Use V(today), V(yesterday) or V(YYYY-MM-DD). A reset needs it and refuses today and
        future dates.
    type: str
    default: today
  value:
    description:
      - The value to set (0 or more). Needs O(reason) and one phone.
    type: int
  reason:
    description:
      - Why the counter is set by hand. It is required with O(value) and written to C(ops_audit_log.reason).
    type: str
  sync_from:
    description:
      - V(db) recounts the counters from C(gold_communication_log).
    type: str
    choices: [db]
  repair_ttl:
    description:
      - Give the day's counters without a TTL their absolute expiry.
    type: bool
    default: false
  state:
    description:
      - V(absent) deletes the counters of the past day O(date) (a reset).
    type: str
    choices: [present, absent]
    default: present
notes:
  - In check mode the module reads the counters and reports what it would write or delete, with the same
    C(changed). It writes nothing, not even the audit log.
  - Redis-only changes are audited right after Redis accepted them, one row per run.
seealso:
  - module: cerniq.outreach.quota_counter_info
  - module: cerniq.outreach.wa_phone_info
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Emergency adjustment (runbook 3.1 step 4)
  cerniq.outreach.quota_counter:
    phone_id: phone_07
    value: 150
    reason: "INC-4711 TimelinesAI double-counted sends"
    confirmed: true

- name: Recount today's counters from the database after a restore (runbook 6.1 step 4)
  cerniq.outreach.quota_counter:
    sync_from: db
    confirmed: true

- name: Delete yesterday's leftover counters (runbook 3.2 step 2)
  cerniq.outreach.quota_counter:
    state: absent
    date: yesterday
    confirmed: true

- name: Give counters without TTL their expiry
  cerniq.outreach.quota_counter:
    repair_ttl: true
"""

RETURN = r"""
date:
  description: The business day acted on.
  returned: always
  type: str
  sample: "2026-11-25"
key:
  description: The counter that was set.
  returned: with O(value)
  type: str
  sample: "quota:wa:phone_07:2026-11-25"
before:
  description: The counter's value before the set. It is null when the counter was missing.
  returned: with O(value)
  type: raw
  sample: 212
value:
  description: The value set.
  returned: with O(value)
  type: int
corrected:
  description: The counters a recount corrected, each with C(phone_id), C(key), C(before) and C(after).
  returned: with O(sync_from)
  type: list
  elements: dict
  sample: [{phone_id: phone_05, key: "quota:wa:phone_05:2026-11-25", before: 130, after: 115}]
corrected_count:
  description: How many counters the recount corrected.
  returned: with O(sync_from)
  type: int
counters:
  description: The recounted value per phone.
  returned: with O(sync_from)
  type: dict
  sample: {phone_01: 36, phone_02: 109}
total_db_count:
  description: The sum of the recounted values.
  returned: with O(sync_from)
  type: int
phones:
  description: How many phones the recount covered.
  returned: with O(sync_from)
  type: int
ttl_repaired:
  description: Counters that had no TTL and got their absolute expiry.
  returned: with O(sync_from) or O(repair_ttl)
  type: list
  elements: str
counter_keys:
  description: The counters a reset deleted (in check mode, the counters it would delete).
  returned: with O(state=absent)
  type: list
  elements: str
count:
  description: How many counters the reset found.
  returned: with O(state=absent)
  type: int
deleted:
  description: How many counters the reset deleted (0 in check mode).
  returned: with O(state=absent)
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive
from ansible_collections.cerniq.outreach.plugins.module_utils._quota import quota_counter


def destructive(params):
    """What this call would change that needs confirmation (see run_destructive); repair_ttl alone needs none."""
    if params["state"] == "absent":
        return "deleting quota counters"
    if params["value"] is not None:
        return "setting a quota counter by hand"
    return "rewriting quota counters from the database" if params["sync_from"] else None


def argument_spec():
    spec = common_argument_spec("redis", "postgres", "platform", "audit")
    spec.update(
        phone_ids=dict(type="list", elements="str", aliases=["phone_id"]),
        date=dict(type="str", default="today"),
        value=dict(type="int"),
        reason=dict(type="str"),
        sync_from=dict(type="str", choices=["db"]),
        repair_ttl=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        **CONFIRMED_ARGUMENT_SPEC
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           mutually_exclusive=[("value", "sync_from")])
    require_libraries(module)
    params = module.params
    run_destructive(module, lambda check_mode: quota_counter(
        params, phone_ids=params["phone_ids"], date=params["date"], value=params["value"], reason=params["reason"],
        sync_from=params["sync_from"], repair_ttl=params["repair_ttl"], state=params["state"], check_mode=check_mode,
        want_diff=module._diff), destructive(params))


if __name__ == "__main__":
    main()
