# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: contract
short_description: A value of the platform contract (queue name, scheduler, key template, status) for roles
version_added: 0.1.0
description:
  - Returns constants of C(plugins/module_utils/_contract.py), the one place the collection spells table names,
    queue names, scheduler ids, cron patterns and status values, so that roles and playbooks do not spell them
    again.
  - Only upper-case names of plain values (strings, numbers, tuples of them) are served.
options:
  _terms:
    description: Names of contract constants, for example C(QUEUE_QUOTA_RESET), C(QUOTA_RESET_SCHEDULER_ID),
      C(QUOTA_RESET_CRON), C(DLQ_LIST_KEY), C(PHONE_STATUSES).
    required: true
    type: list
    elements: str
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Re-create the midnight quota reset
  cerniq.outreach.bullmq_queue:
    queue: "{{ lookup('cerniq.outreach.contract', 'QUEUE_QUOTA_RESET') }}"
    scheduler:
      id: "{{ lookup('cerniq.outreach.contract', 'QUOTA_RESET_SCHEDULER_ID') }}"
      pattern: "{{ lookup('cerniq.outreach.contract', 'QUOTA_RESET_CRON') }}"
      tz: "{{ cerniq_timezone }}"
"""

RETURN = r"""
_raw:
  description: The value of each name, in order (tuples come back as lists).
  type: list
  elements: raw
"""

from ansible.errors import AnsibleLookupError  # noqa: E402 - documentation first, as Ansible reads it
from ansible.plugins.lookup import LookupBase  # noqa: E402

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract  # noqa: E402

_PLAIN = (str, int, float, bool)


def contract_value(name):
    public = isinstance(name, str) and name.isupper() and not name.startswith("_")
    value = getattr(_contract, name, None) if public else None
    if isinstance(value, tuple) and all(isinstance(item, _PLAIN) for item in value):
        return list(value)
    if isinstance(value, _PLAIN):
        return value
    known = sorted(n for n in dir(_contract) if n.isupper() and not n.startswith("_") and
                   isinstance(getattr(_contract, n), (*_PLAIN, tuple)))
    raise AnsibleLookupError("{0!r} is not a value of the platform contract; known: {1}".format(
        name, ", ".join(known)))


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [contract_value(term) for term in terms]
