#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: wa_phone_status
short_description: Make the phones' Redis status keys match the database
version_added: 0.1.0
description:
  - Regenerates C(phone:status:<id>) from C(wa_phone_numbers.status) for every phone, or the given ones (runbook 6.2
    step 3, and after a database restore). The database is the source of truth.
  - One query and two pipelines whatever the number of phones; only keys that are missing or differ are written,
    so a second run changes nothing. Every correction is recorded in C(ops_audit_log).
  - To change one phone's status (DB and Redis together) use M(cerniq.outreach.wa_phone); to see drift without
    changing it use M(cerniq.outreach.wa_phone_info).
  - Rewriting status keys overwrites what Redis holds, so it needs O(confirmed=true).
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
    description: Only these phones (C(phone_NN)). All phones when omitted.
    type: list
    elements: str
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Regenerate every phone status key after Redis lost its data
  cerniq.outreach.wa_phone_status:
    confirmed: true
"""

RETURN = r"""
phones:
  description: How many phones were compared.
  returned: always
  type: int
corrected:
  description: The keys that were missing or differed, with C(phone_id), C(key), C(before) and C(after).
  returned: always
  type: list
  elements: dict
  sample: [{phone_id: phone_13, key: "phone:status:phone_13", before: ACTIVE, after: OFFLINE}]
corrected_count:
  description: How many keys were (or, in check mode, would be) corrected.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive
from ansible_collections.cerniq.outreach.plugins.module_utils._phone_status import sync_status_keys

DESTRUCTIVE = "rewriting phone status keys from the database"


def argument_spec():
    spec = common_argument_spec("redis", "postgres", "platform", "audit")
    spec.update(phone_ids=dict(type="list", elements="str"), **CONFIRMED_ARGUMENT_SPEC)
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module)
    run_destructive(module, lambda check_mode: sync_status_keys(
        module.params, phone_ids=module.params["phone_ids"], check_mode=check_mode, want_diff=module._diff),
        DESTRUCTIVE)


if __name__ == "__main__":
    main()
