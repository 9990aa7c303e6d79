#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: instantly_campaign
short_description: Pause or activate an Instantly.ai campaign
version_added: 0.1.0
description:
  - Sets an Instantly campaign to O(state=paused) (C(POST /api/v2/campaigns/{id}/pause)) or O(state=active)
    (C(POST /api/v2/campaigns/{id}/activate), which also resumes a paused one). The runbook's
    C(/api/v2/campaign/{id}/resume) does not exist.
  - Reads the campaign's status first and sends nothing when it already is where O(state) wants it, so a second
    run changes nothing. A C(draft) or C(completed) campaign sends nothing and counts as paused; one running its
    subsequences counts as active. Instantly's own stops (C(bounce_protect), C(accounts_unhealthy),
    C(account_suspended)) become an explicit pause with O(state=paused).
  - Each change is written to C(ops_audit_log) (PostgreSQL must be reachable before anything is sent).
  - The deliverability guard of runbook 4.1 (pause every campaign that bounces too much) is
    M(cerniq.outreach.instantly_deliverability_guard).
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._vendors
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.vendors, cerniq.outreach.audit, cerniq.outreach.all]
options:
  id:
    description:
      - The campaign's id (a UUID). Exactly one of O(id) and O(name).
    type: str
  name:
    description:
      - The campaign's exact name (case-insensitive); fails when no campaign or more than one has it.
    type: str
  state:
    description:
      - V(paused) stops sending, V(active) starts or resumes it.
    type: str
    required: true
    choices: [active, paused]
  reason:
    description:
      - Why, written to C(ops_audit_log.reason).
    type: str
seealso:
  - module: cerniq.outreach.instantly_campaign_info
  - module: cerniq.outreach.instantly_deliverability_guard
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Pause the campaign that bounces
  cerniq.outreach.instantly_campaign:
    id: 019cad8f-ac00-7000-8000-019cad8fac00
    state: paused
    reason: bounce:high alert, runbook 4.1

- name: Resume it after the investigation
  cerniq.outreach.instantly_campaign:
    name: RO SMB Q3 - Bucuresti
    state: active
    reason: list cleaned, INC-1234
"""

RETURN = r"""
campaign:
  description: The campaign after the run (in check mode, as it would be).
  returned: always
  type: dict
  contains:
    id:
      description: Campaign id.
      type: str
    name:
      description: Campaign name.
      type: str
    status:
      description: Instantly's status code.
      type: int
      sample: 2
    status_name:
      description: >-
        The status by name: C(draft), C(active), C(paused), C(completed), C(running_subsequences),
        C(account_suspended), C(accounts_unhealthy), C(bounce_protect).
      type: str
      sample: paused
  sample:
    id: 019cad8f-ac00-7000-8000-019cad8fac00
    name: RO SMB Q3 - Bucuresti
    status: 2
    status_name: paused
api:
  description: Requests sent to the vendor, retries, and seconds spent waiting (backoff and rate limit).
  returned: always
  type: dict
  sample: {requests: 2, retries: 0, waited_seconds: 0.0}
"""

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_module
from ansible_collections.cerniq.outreach.plugins.module_utils._instantly import set_campaign_state


def options():
    """The module's own options (vendor_module adds those of its action groups)."""
    return dict(
        id=dict(type="str"),
        name=dict(type="str"),
        state=dict(type="str", required=True, choices=["active", "paused"]),
        reason=dict(type="str"),
    )


def main():
    module = vendor_module(options(), ("postgres", "audit"), mutually_exclusive=[("id", "name")],
                           required_one_of=[("id", "name")])
    params = module.params
    run_module(module, lambda: set_campaign_state(
        params, state=params["state"], id=params["id"], name=params["name"], reason=params["reason"],
        check_mode=module.check_mode, want_diff=module._diff))


if __name__ == "__main__":
    main()
