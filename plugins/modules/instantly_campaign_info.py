#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: instantly_campaign_info
short_description: Status, analytics, bounce rate and bounced leads of Instantly.ai campaigns
version_added: 0.1.0
description:
  - Lists every campaign of the Instantly workspace (or the one given by O(id) or O(name)) with its status by
    name, its analytics from C(GET /api/v2/campaigns/analytics) (one call for all campaigns; a campaign that has
    not sent yet has none) and its bounce rate (C(bounced_count / emails_sent_count)).
  - With O(include_bounced_leads=true), also the campaign's bounced leads (C(POST /api/v2/leads/list) with the
    C(FILTER_VAL_BOUNCED) filter, following C(next_starting_after) until an empty page).
  - The runbook's C(/api/v2/campaign/{id}/analytics) does not exist.
  - Reads only; needs neither Redis nor PostgreSQL.
extends_documentation_fragment:
  - cerniq.outreach._vendors
  - cerniq.outreach._platform
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.vendors, cerniq.outreach.platform, cerniq.outreach.all]
options:
  id:
    description:
      - Only this campaign (its UUID). At most one of O(id) and O(name).
    type: str
  name:
    description:
      - Only the campaign with exactly this name (case-insensitive).
    type: str
  include_bounced_leads:
    description:
      - Also list each campaign's bounced leads (one request per 100 leads).
    type: bool
    default: false
  since:
    description:
      - Count analytics from this moment on instead of over the campaign's life. A duration (V(7d) means that
        long ago), V(today), V(yesterday), a C(YYYY-MM-DD) date (the start of that day in O(timezone)) or an ISO 8601
        timestamp.
    type: str
seealso:
  - module: cerniq.outreach.instantly_campaign
  - module: cerniq.outreach.instantly_deliverability_guard
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Every campaign with its bounce rate
  cerniq.outreach.instantly_campaign_info:
  register: instantly

- name: Campaigns bouncing over 3 %
  ansible.builtin.debug:
    msg: "{{ instantly.campaigns | selectattr('bounce_rate_percent', 'gt', 3) | map(attribute='name') }}"

- name: One campaign with its bounced leads, over the last week
  cerniq.outreach.instantly_campaign_info:
    id: 019cad8f-ac00-7000-8000-019cad8fac00
    include_bounced_leads: true
    since: 7d
"""

RETURN = r"""
campaigns:
  description: One entry per campaign, ordered by id.
  returned: always
  type: list
  elements: dict
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
    status_name:
      description: >-
        C(draft) (0), C(active) (1), C(paused) (2), C(completed) (3), C(running_subsequences) (4),
        C(account_suspended) (-99), C(accounts_unhealthy) (-1), C(bounce_protect) (-2).
      type: str
    emails_sent:
      description: C(emails_sent_count) of the analytics (0 without analytics).
      type: int
    bounced:
      description: C(bounced_count) of the analytics (bounced leads).
      type: int
    bounce_rate_percent:
      description: C(bounced / emails_sent) in percent, 3 decimals; 0 when nothing was sent.
      type: float
    has_analytics:
      description: Whether Instantly has analytics for the campaign (none before its first send).
      type: bool
    analytics:
      description: The analytics row as Instantly returns it, or null.
      type: dict
    bounced_leads:
      description: With O(include_bounced_leads), the bounced leads (C(id), C(email), C(timestamp_last_contact)).
      type: list
      elements: dict
      returned: when O(include_bounced_leads=true)
  sample:
    - id: 019cad8f-ac00-7000-8000-019cad8fac00
      name: RO SMB Q3 - Bucuresti
      status: 1
      status_name: active
      emails_sent: 4200
      bounced: 210
      bounce_rate_percent: 5.0
      has_analytics: true
api:
  description: Requests sent to the vendor, retries, and seconds spent waiting.
  returned: always
  type: dict
  sample: {requests: 2, retries: 0, waited_seconds: 0.0}
"""

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_module
from ansible_collections.cerniq.outreach.plugins.module_utils._instantly import campaign_info


def options():
    """The module's own options (vendor_module adds those of its action groups)."""
    return dict(
        id=dict(type="str"),
        name=dict(type="str"),
        include_bounced_leads=dict(type="bool", default=False),
        since=dict(type="str"),
    )


def main():
    module = vendor_module(options(), ("platform",), mutually_exclusive=[("id", "name")])
    params = module.params
    run_module(module, lambda: campaign_info(
        params, id=params["id"], name=params["name"], include_bounced_leads=params["include_bounced_leads"],
        since=params["since"]))


if __name__ == "__main__":
    main()
