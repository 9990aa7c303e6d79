#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: timelinesai_webhook
short_description: Register a TimelinesAI webhook, such as whatsapp:account:disconnected
version_added: 0.1.0
description:
  - Makes the subscription (O(event_type), O(url)) present and enabled (or disabled), or absent, so an account
    that drops off WhatsApp alerts the phone-offline procedure at once.
  - Identified by event type and URL, as TimelinesAI does. Reads the workspace's webhooks first
    (C(GET /webhooks)) and sends nothing when the subscription already is as asked; creates it
    (C(POST /webhooks)), enables or disables it (C(PUT /webhooks/{id})) or deletes it (C(DELETE /webhooks/{id})).
  - Each change is written to C(ops_audit_log).
  - TimelinesAI signs nothing and sends no custom header, so the receiver should check the payload against
    C(GET /whatsapp_accounts) (M(cerniq.outreach.timelinesai_account_info)) before acting.
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
  url:
    description:
      - The receiver (https; http only with O(allow_http=true)). It must answer 2xx within 5 s.
      - Its path and query (and any C(user:password@)) are where a receiver's secret lives, so the option is
        C(no_log) and results, diffs, warnings, errors and audit rows show only C(scheme://host[:port]/…).
    type: str
    required: true
  event_type:
    description:
      - The TimelinesAI event. TimelinesAI recommends also subscribing to V(whatsapp:account:suspended) (billing,
        not a ban).
    type: str
    default: whatsapp:account:disconnected
    choices:
      - message:new
      - message:sent:new
      - message:received:new
      - whatsapp:account:connected
      - whatsapp:account:disconnected
      - whatsapp:account:suspended
      - whatsapp:account:resumed
      - chat:new
      - chat:incoming:new
      - chat:outgoing:new
      - chat:responsible:assigned
      - chat:responsible:unassigned
      - call:incoming:missed
      - call:incoming:ended
      - call:outgoing:ended
      - message:reaction
      - waba:message:received
      - waba:message:delivered
      - waba:message:failed
      - waba:message:read
      - waba:chat:incoming
      - waba:chat:outgoing
      - waba:chat:assigned
      - waba:chat:unassigned
      - waba:chat:closed
      - waba:chat:reopened
      - waba:account:active
      - waba:account:disabled
      - waba:account:disconnected
      - waba:template:approved
      - waba:template:rejected
      - waba:template:disabled
  state:
    description:
      - V(present) registers it, V(absent) deletes it.
    type: str
    default: present
    choices: [present, absent]
  enabled:
    description:
      - With O(state=present), whether TimelinesAI delivers to it.
    type: bool
    default: true
  reason:
    description:
      - Why, written to C(ops_audit_log.reason).
    type: str
notes:
  - A workspace has at most 10 webhooks.
seealso:
  - module: cerniq.outreach.timelinesai_account_info
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Alert when a WhatsApp account disconnects
  cerniq.outreach.timelinesai_webhook:
    url: https://alerts.cerniq.example/hooks/timelinesai
    reason: phone-offline alerting

- name: And when one is suspended
  cerniq.outreach.timelinesai_webhook:
    url: https://alerts.cerniq.example/hooks/timelinesai
    event_type: whatsapp:account:suspended
"""

RETURN = r"""
webhook:
  description: The subscription after the run (C(id), C(event_type), C(url), C(enabled), C(errors_counter)), null
    when absent. In check mode a new one has no id yet. C(url) is redacted to C(scheme://host[:port]/…).
  returned: always
  type: dict
  sample:
    id: 789456
    event_type: whatsapp:account:disconnected
    url: https://alerts.cerniq.example/…
    enabled: true
    errors_counter: 0
action:
  description: V(webhook_create), V(webhook_update), V(webhook_delete) or V(none).
  returned: always
  type: str
api:
  description: Requests sent to TimelinesAI, retries, and seconds spent waiting.
  returned: always
  type: dict
"""

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_module
from ansible_collections.cerniq.outreach.plugins.module_utils._timelinesai import (
    EVENT_ACCOUNT_DISCONNECTED,
    WEBHOOK_EVENT_TYPES,
    webhook,
)


def options():
    """The module's own options (vendor_module adds those of its action groups)."""
    return dict(
        url=dict(type="str", required=True, no_log=True),
        event_type=dict(type="str", default=EVENT_ACCOUNT_DISCONNECTED, choices=list(WEBHOOK_EVENT_TYPES)),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        enabled=dict(type="bool", default=True),
        reason=dict(type="str"),
    )


def main():
    module = vendor_module(options(), ("postgres", "audit"))
    params = module.params
    run_module(module, lambda: webhook(
        params, url=params["url"], event_type=params["event_type"], state=params["state"], enabled=params["enabled"],
        reason=params["reason"], check_mode=module.check_mode, want_diff=module._diff))


if __name__ == "__main__":
    main()
