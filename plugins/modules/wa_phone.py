#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: wa_phone
short_description: Onboard a WhatsApp phone, change its status, ban it (releasing its leads and pending jobs)
version_added: 0.1.0
description:
  - A phone is a row in C(wa_phone_numbers) plus its status in Redis (C(phone:status:<id>)), which the workers read.
    This module keeps both consistent. It covers runbook 2.1 (offline), 2.2 (banned) and 2.3 (adding a phone).
  - B(Onboarding.) When no phone matches O(phone_id) or O(phone_number), the module inserts the row. It needs
    O(phone_number), O(tenant_id) and O(label). Without O(phone_id) the row takes the next C(phone_NN) from the
    database default. The module then sets the Redis status and creates today's quota counter
    (C(quota:wa:<id>:<business day>)) at 0 with its absolute expiry. A counter that already exists is never reset.
  - B(Changes.) For an existing phone, the options you give are compared with the row, and only what differs is
    updated. The diff and RV(changes) name the fields. If O(tenant_id) differs from the phone's tenant, the module
    fails with "tenant mismatch" and changes nothing. If the Redis status disagrees with the database, it is
    corrected.
  - B(Status.) The database and Redis change together. The database transaction commits only after Redis accepted
    the new status. If Redis fails, the transaction is rolled back. C(status_changed_at) is set only on a real change.
  - B(Ban) (O(status=BANNED)) does two more things, each on by default and each switchable, in the same operation.
    O(release_leads) unassigns the phone's leads in C(COLD) and C(CONTACTED_WA) (C(assigned_phone_id) and
    C(assigned_at) become null), in the same transaction. Leads in later stages keep their phone.
    O(cancel_jobs) removes the phone's pending BullMQ jobs (waiting, paused, prioritized, delayed) from
    C(q:wa:<id>) through BullMQ's own drain script. The job a worker is processing is left alone. Re-running a ban
    releases and cancels whatever was added since, and reports C(changed=false) when there is nothing left.
  - Every change writes one row to C(ops_audit_log), committed with the database change. The row lists the
    fields before and after, the released lead ids and the cancelled job counts.
  - Every option is checked before the first change. A bad one fails with one message and changes nothing.
  - A ban (O(status=BANNED)) is destructive, so it needs O(confirmed=true). Onboarding and the other status changes do
    not.
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
  phone_id:
    description:
      - The phone's id (C(phone_NN), for example V(phone_07)).
      - Give O(phone_id), O(phone_number) or both. When both are given, they must name the same phone.
      - To onboard a phone under a chosen id, give it here. Without it, the database picks the next one.
    type: str
  phone_number:
    description:
      - The WhatsApp number in E.164 (V(+40712345678)). It identifies the phone when O(phone_id) is not given.
    type: str
  tenant_id:
    description:
      - The tenant (UUID) that owns the phone. Required to onboard.
      - For an existing phone it is a safety check. A different tenant fails with "tenant mismatch".
    type: str
  label:
    description:
      - The phone's label as people see it (V(Sales 21)). Required to onboard.
    type: str
    aliases: [phone_label]
  timelinesai_account_id:
    description:
      - The TimelinesAI WhatsApp account id, usually the number's JID (V(40712345678@s.whatsapp.net)). A JID
        must carry the phone's own digits.
    type: str
  daily_quota_limit:
    description:
      - Messages the phone may send per business day (0 or more). The database default is 200.
    type: int
    aliases: [quota_limit]
  enabled:
    description:
      - C(is_enabled) of the row. The database default is V(true).
    type: bool
  status:
    description:
      - The phone's status. Onboarding defaults to V(ACTIVE). Leave unset to keep the current status.
      - V(BANNED) also releases leads and cancels pending jobs (see O(release_leads) and O(cancel_jobs)).
    type: str
    choices: [ACTIVE, OFFLINE, BANNED]
  state:
    description:
      - V(present) is the only state. Phones are never deleted, because leads and the communication log refer to
        them. Ban a phone instead.
    type: str
    choices: [present]
    default: present
  release_leads:
    description:
      - With O(status=BANNED), unassign the phone's leads in C(COLD) and C(CONTACTED_WA).
    type: bool
    default: true
  cancel_jobs:
    description:
      - With O(status=BANNED), remove the phone's pending BullMQ jobs (never the active one).
      - Needs the Python C(bullmq) package that pairs with the workers' Node BullMQ. It refuses a queue that a
        different major manages.
    type: bool
    default: true
  lead_ids_cap:
    description:
      - How many released lead ids the result (C(released.lead_ids)) and the audit row list. The count is always
        exact.
    type: int
    default: 100
  reason:
    description:
      - Why (an incident or ticket). It is written to C(ops_audit_log.reason).
    type: str
notes:
  - In check mode the module reads what it would change (the leads it would release, the jobs it would cancel) and
    writes nothing. It writes neither Redis, PostgreSQL nor the audit log.
  - The order of the steps is this. The database change runs uncommitted first. Then Redis takes the status (and
    the new counter). Then BullMQ drains the queue. Then the audit row is written and everything commits. If a step
    fails, the database rolls back and Redis is put back. Cancelled jobs cannot be restored, so the drain comes last
    before the commit.
seealso:
  - module: cerniq.outreach.wa_phone_info
  - module: cerniq.outreach.quota_counter
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Onboard a phone (runbook 2.3); the database picks the next phone_NN
  cerniq.outreach.wa_phone:
    phone_number: "+40712345021"
    tenant_id: 5b1f0c1e-0000-4000-8000-00000000c3e1
    label: Sales 21
    timelinesai_account_id: 40712345021@s.whatsapp.net
    daily_quota_limit: 200
  register: onboarded

- name: Phone went offline (runbook 2.1)
  cerniq.outreach.wa_phone:
    phone_id: phone_07
    status: OFFLINE
    reason: "TimelinesAI shows the account disconnected"

- name: Phone banned (runbook 2.2) - release its leads and cancel its pending jobs
  cerniq.outreach.wa_phone:
    phone_id: phone_07
    status: BANNED
    reason: "INC-4711 TimelinesAI 403 blocked"
    confirmed: true
  register: ban

- name: Say what the ban did
  ansible.builtin.debug:
    msg: "{{ ban.released.count }} lead(s) released, {{ ban.cancelled.cancelled }} job(s) cancelled"
"""

RETURN = r"""
phone_id:
  description: The phone's id. For an onboarding in check mode, this is the id the database would give.
  returned: always
  type: str
  sample: phone_21
created:
  description: Whether the phone was onboarded (or would be, in check mode).
  returned: always
  type: bool
phone:
  description:
    - The phone after the run (in check mode, as it would be). It has the row's columns and C(redis_status).
  returned: always
  type: dict
  sample:
    id: phone_07
    phone_number: "+40700000007"
    tenant_id: 5b1f0c1e-0000-4000-8000-00000000c3e1
    phone_label: Sales 07
    timelinesai_account_id: 40700000007@s.whatsapp.net
    daily_quota_limit: 200
    is_enabled: true
    status: BANNED
    status_changed_at: "2026-11-24T23:41:07.120311+02:00"
    created_at: "2026-08-26T09:00:00+03:00"
    redis_status: BANNED
changes:
  description: The fields that changed (C(redis_status) when Redis disagreed with the database).
  returned: always
  type: list
  elements: str
  sample: [status]
status_changed:
  description: Whether the status changed, which also stamps C(status_changed_at).
  returned: always
  type: bool
quota_key:
  description: Today's quota counter key of the phone.
  returned: always
  type: str
  sample: "quota:wa:phone_21:2026-11-25"
quota_key_created:
  description: Whether onboarding created today's counter. It is false when a counter already existed.
  returned: always
  type: bool
released:
  description:
    - Leads released by a ban. Null unless O(status=BANNED) and O(release_leads).
    - C(count) is exact, C(by_stage) splits it by stage. C(lead_ids) lists up to O(lead_ids_cap) ids.
      C(truncated) says whether more were released. C(stages) are the stages that get released.
  returned: always
  type: dict
  sample: {count: 18, by_stage: {COLD: 11, CONTACTED_WA: 7}, lead_ids: ["0a1b..."], truncated: false,
           stages: [COLD, CONTACTED_WA]}
cancelled:
  description:
    - Pending jobs cancelled by a ban, by state, and C(cancelled), the total. Null unless O(status=BANNED) and
      O(cancel_jobs).
  returned: always
  type: dict
  sample: {waiting: 149, paused: 0, prioritized: 0, delayed: 150, cancelled: 299}
queue:
  description: The phone's BullMQ queue (a key path under the C(bull) prefix), when jobs were considered.
  returned: always
  type: str
  sample: "q:wa:phone_07"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import PHONE_STATUSES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive
from ansible_collections.cerniq.outreach.plugins.module_utils._phones import (
    DEFAULT_LEAD_IDS_CAP,
    PhoneRequest,
    ensure_phone,
)


def destructive(params):
    """What this call would change that needs confirmation (see run_destructive): a ban, not the rest."""
    return "banning a phone (releasing its leads, cancelling its jobs)" if params["status"] == "BANNED" else None


def argument_spec():
    spec = common_argument_spec("redis", "postgres", "platform", "audit")
    spec.update(
        phone_id=dict(type="str"),
        phone_number=dict(type="str"),
        tenant_id=dict(type="str"),
        label=dict(type="str", aliases=["phone_label"]),
        timelinesai_account_id=dict(type="str"),
        daily_quota_limit=dict(type="int", aliases=["quota_limit"]),
        enabled=dict(type="bool"),
        status=dict(type="str", choices=list(PHONE_STATUSES)),
        state=dict(type="str", default="present", choices=["present"]),
        release_leads=dict(type="bool", default=True),
        cancel_jobs=dict(type="bool", default=True),
        lead_ids_cap=dict(type="int", default=DEFAULT_LEAD_IDS_CAP),
        reason=dict(type="str"),
        **CONFIRMED_ARGUMENT_SPEC
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_one_of=[("phone_id", "phone_number")])
    require_libraries(module)
    request = PhoneRequest.from_params(module.params)
    run_destructive(module, lambda check_mode: ensure_phone(module.params, request, check_mode=check_mode,
                                                            want_diff=module._diff), destructive(module.params))


if __name__ == "__main__":
    main()
