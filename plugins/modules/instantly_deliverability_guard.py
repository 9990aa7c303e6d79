#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: instantly_deliverability_guard
short_description: Pause Instantly.ai campaigns that bounce too much, mark the bounced leads, resume on request
version_added: 0.1.0
description:
  - The runbook's 4.1 (alert C(bounce:high)). Reads every campaign and its analytics (one call), and
    B(pauses every sending campaign whose bounce rate is above) O(max_bounce_rate) percent, judged only from
    O(min_emails_sent) sends on.
  - With O(pause_all=true), pauses B(every) sending campaign (all cold e-mail) and records a cool-down of
    O(cooldown); the guard refuses to resume during it unless O(ignore_cooldown=true).
  - For the campaigns over the threshold, reads the bounced leads (C(FILTER_VAL_BOUNCED), every page) and, with
    O(mark_bounced_leads=true) (default), marks them in PostgreSQL in one transaction with its audit row
    (C(gold_communication_log) rows to those addresses from the last O(lookback) that are C(QUEUED) or C(SENT)
    become C(BOUNCED) with a C(bounce_reason) naming the campaign; a lead whose every e-mail address has bounced
    moves to C(DEAD) when it is C(COLD) or C(CONTACTED_EMAIL), other stages are kept and reported). With
    O(block_bounced=true), the bounced addresses not yet on the Instantly block list are added (bulk, at most
    1000 per call).
  - B(Resume) (O(resume=true), a run of its own, after the investigation) activates again the campaigns the
    guard paused (from C(ops_audit_log)) that are still paused. The guard never resumes anything by itself.
  - Instantly pauses a campaign itself on high bounces (status C(-2), bounce protect). A resume leaves such a
    campaign alone and names it in RV(vendor_paused); with O(resume_vendor_paused=true), the campaigns named in
    O(campaigns) that Instantly paused are activated too, which needs a O(reason). Each has its own audit row
    (action C(resume_vendor_paused)) with the status before and after (read back from Instantly), the actor and
    the reason.
  - Every read and every check comes before the first change; a bad option, an unknown campaign id or an
    unreachable database fails with one message and changes nothing. Each change (pauses, block list, database)
    has its audit row. A second identical run changes nothing.
  - Pausing, marking and blocking, and resuming, are destructive, so they need O(confirmed=true).
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._vendors
  - cerniq.outreach._platform
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._confirm
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.vendors, cerniq.outreach.platform, cerniq.outreach.audit,
                 cerniq.outreach.all]
options:
  max_bounce_rate:
    description:
      - Bounce rate, in percent, above which a campaign is paused (C(bounced_count / emails_sent_count)).
      - The runbook's 3 % sits between Instantly's own warning (2 %) and critical (5 %) levels.
    type: float
    default: 3.0
  min_emails_sent:
    description:
      - A campaign is judged only from this many sent e-mails on; below it, a few bounces say little.
    type: int
    default: 100
  campaigns:
    description:
      - Only these campaigns (ids). Default is every campaign of the workspace.
    type: list
    elements: str
  since:
    description:
      - Judge the bounce rate from this moment on instead of over the campaign's life (a duration such as V(24h),
        V(today), V(yesterday), a C(YYYY-MM-DD) date or an ISO 8601 timestamp).
    type: str
  pause_all:
    description:
      - Pause every sending campaign in scope (the runbook's "pause all cold e-mail for 24h"), not only those
        over the threshold. Records the cool-down O(cooldown).
    type: bool
    default: false
  cooldown:
    description:
      - How long O(pause_all) holds cold e-mail (V(24h), V(2d), ...). O(resume) is refused before it ends unless
        O(ignore_cooldown=true).
    type: str
    default: 24h
  resume:
    description:
      - Activate again the campaigns this guard paused and that are still paused (only those in O(campaigns) when
        given). Nothing else is done in that run.
    type: bool
    default: false
  resume_vendor_paused:
    description:
      - With O(resume), also activate the campaigns in O(campaigns) that Instantly paused itself (status C(-2),
        bounce protect), overriding the vendor's own protection after the investigation. Needs O(campaigns) (never
        the whole workspace) and O(reason); refused otherwise, with nothing changed. The cool-down still applies.
    type: bool
    default: false
  ignore_cooldown:
    description:
      - With O(resume), resume although the cool-down of the last O(pause_all) has not ended.
    type: bool
    default: false
  block_bounced:
    description:
      - Add the bounced addresses of the campaigns over the threshold to the Instantly block list (workspace-wide, so
        no campaign will e-mail them again).
    type: bool
    default: false
  mark_bounced_leads:
    description:
      - Mark the bounced leads of the campaigns over the threshold in PostgreSQL (see the description).
    type: bool
    default: true
  lookback:
    description:
      - How far back C(gold_communication_log) rows count when marking bounced sends and a lead's addresses
        (V(30d), V(12h), ...). Keeps the statement on the table's C(created_at) index.
    type: str
    default: 30d
  reason:
    description:
      - Why, written to C(ops_audit_log.reason).
    type: str
seealso:
  - module: cerniq.outreach.instantly_campaign_info
  - module: cerniq.outreach.instantly_campaign
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Pause what bounces over 3 % and mark the bounced leads
  cerniq.outreach.instantly_deliverability_guard:
    reason: bounce:high alert
    confirmed: true
  register: guard

- name: Domain reputation problem - hold all cold e-mail for a day, block the bounced addresses
  cerniq.outreach.instantly_deliverability_guard:
    pause_all: true
    cooldown: 24h
    block_bounced: true
    reason: INC-1234 domain reputation
    confirmed: true

- name: After the investigation, resume what the guard paused
  cerniq.outreach.instantly_deliverability_guard:
    resume: true
    reason: INC-1234 closed
    confirmed: true
- name: Resume a campaign Instantly's bounce protect paused (status -2), the list cleaned
  cerniq.outreach.instantly_deliverability_guard:
    resume: true
    resume_vendor_paused: true
    campaigns: [019cad8f-ac00-7000-8000-019cad8fac00]
    reason: INC-1234 list cleaned, bounce protect overridden
    confirmed: true
"""

RETURN = r"""
campaigns:
  description: Every campaign judged, with its figures, C(over_threshold) and C(action) (V(pause) or V(none)).
  returned: when not O(resume)
  type: list
  elements: dict
  sample:
    - id: 019cad8f-ac00-7000-8000-019cad8fac00
      name: RO SMB Q3 - Bucuresti
      status: 1
      status_name: active
      emails_sent: 4200
      bounced: 210
      bounce_rate_percent: 5.0
      has_analytics: true
      over_threshold: true
      action: pause
over_threshold:
  description: Ids of the campaigns above O(max_bounce_rate) (whatever their status).
  returned: when not O(resume)
  type: list
  elements: str
paused:
  description: Ids of the campaigns paused by this run (in check mode, that would be).
  returned: when not O(resume)
  type: list
  elements: str
cooldown_until:
  description: End of the cool-down (ISO 8601, UTC) recorded by O(pause_all), or the one in force for O(resume).
  returned: always
  type: str
bounced_addresses:
  description: Distinct bounced addresses found in the campaigns over the threshold.
  returned: when not O(resume)
  type: int
block_list_added:
  description: Addresses added to the block list (in check mode, that would be).
  returned: when not O(resume)
  type: list
  elements: str
log_rows_marked:
  description: C(gold_communication_log) rows set to C(BOUNCED).
  returned: when not O(resume)
  type: int
leads_dead:
  description: Lead ids moved to C(DEAD).
  returned: when not O(resume)
  type: list
  elements: str
leads_kept:
  description: Leads whose every address bounced but whose stage is kept (C(lead_id), C(stage)).
  returned: when not O(resume)
  type: list
  elements: dict
resumed:
  description: Ids of the campaigns activated again.
  returned: when O(resume)
  type: list
  elements: str
resumed_vendor_paused:
  description: Ids of the campaigns Instantly had paused (bounce protect) activated with O(resume_vendor_paused).
  returned: when O(resume)
  type: list
  elements: str
vendor_paused:
  description: Ids of the campaigns in scope Instantly paused itself (status C(-2), bounce protect), before this run.
  returned: when O(resume)
  type: list
  elements: str
vendor_paused_after:
  description: Status name of each campaign resumed with O(resume_vendor_paused), as read back from Instantly.
  returned: when O(resume_vendor_paused) resumed a campaign
  type: dict
  sample: {019cad8f-ac00-7000-8000-019cad8fac00: active}
left_alone:
  description:
    - Campaigns the guard paused that it did not resume, and campaigns Instantly paused (bounce protect) that were
      not resumed, with why (C(id), C(why)).
    - Not called C(skipped), which Ansible reads as "the task was skipped".
  returned: when O(resume)
  type: list
  elements: dict
held_by_guard:
  description: Campaigns the guard paused and has not resumed, from the audit log, before this run.
  returned: when O(resume)
  type: list
  elements: str
api:
  description: Requests sent to Instantly, retries, and seconds spent waiting.
  returned: always
  type: dict
  sample: {requests: 7, retries: 0, waited_seconds: 0.0}
"""

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_module
from ansible_collections.cerniq.outreach.plugins.module_utils._instantly import deliverability_guard


def destructive(params):
    """What this call would change that needs confirmation (see run_destructive)."""
    if params["resume"]:
        return "resuming campaigns" + (" (some paused by Instantly's bounce protect)"
                                       if params["resume_vendor_paused"] else "")
    return "pausing campaigns, marking bounced leads and blocking addresses"


def options():
    """The module's own options (vendor_module adds those of its action groups)."""
    return dict(
        max_bounce_rate=dict(type="float", default=3.0),
        min_emails_sent=dict(type="int", default=100),
        campaigns=dict(type="list", elements="str"),
        since=dict(type="str"),
        pause_all=dict(type="bool", default=False),
        cooldown=dict(type="str", default="24h"),
        resume=dict(type="bool", default=False),
        resume_vendor_paused=dict(type="bool", default=False),
        ignore_cooldown=dict(type="bool", default=False),
        block_bounced=dict(type="bool", default=False),
        mark_bounced_leads=dict(type="bool", default=True),
        lookback=dict(type="str", default="30d"),
        reason=dict(type="str"),
        **CONFIRMED_ARGUMENT_SPEC
    )


def main():
    module = vendor_module(options(), ("postgres", "platform", "audit"))
    params = module.params
    run_destructive(module, lambda check_mode: deliverability_guard(
        params, max_bounce_rate=params["max_bounce_rate"], min_emails_sent=params["min_emails_sent"],
        campaign_ids=params["campaigns"], since=params["since"], pause_all=params["pause_all"],
        cooldown=params["cooldown"], resume=params["resume"], ignore_cooldown=params["ignore_cooldown"],
        block_bounced=params["block_bounced"], mark_bounced_leads=params["mark_bounced_leads"],
        lookback=params["lookback"], reason=params["reason"], check_mode=check_mode,
        want_diff=module._diff, resume_vendor_paused=params["resume_vendor_paused"]), destructive(params))


if __name__ == "__main__":
    main()
