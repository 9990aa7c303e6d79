#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: timelinesai_message
short_description: Send a WhatsApp test message through TimelinesAI and wait for its outcome
version_added: 0.1.0
description:
  - The runbook's onboarding step 5 ("test with a single message"). Checks that the sending phone is a connected
    WhatsApp account of the TimelinesAI workspace, sends one message with C(POST /messages) (sender given as
    C(whatsapp_account_phone)) and polls C(GET /messages/{uid}) until it is C(Sent) (or C(Delivered), see
    O(wait_for)), C(Failed), or O(wait_timeout) passes.
  - Fails, naming the message uid, when the message ends C(Failed) or does not get there in time. A phone that
    is not known to TimelinesAI, or is disconnected there, fails before anything is sent.
  - B(Never sends in check mode); it validates everything and reports the task as skipped with what it would
    send.
  - The send is written to C(ops_audit_log) as soon as TimelinesAI accepted it.
  - Stays under O(timelinesai_rate_limit) requests per minute (polls are spaced at least 60 s / that limit).
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._vendors
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.vendors, cerniq.outreach.audit, cerniq.outreach.all]
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: partial
    details:
      - Validates the phone, its TimelinesAI account and the numbers, sends nothing and reports the task skipped
        with what it would send.
  diff_mode:
    description: Nothing to compare; a message is sent or not.
    support: none
options:
  phone_id:
    description:
      - The sending phone (C(phone_07)), looked up in C(wa_phone_numbers). Exactly one of O(phone_id) and
        O(sender_phone).
    type: str
  sender_phone:
    description:
      - The sending WhatsApp account's number (E.164), for a phone not yet in the database.
    type: str
  to:
    description:
      - The test recipient (E.164, e.g. V(+40712345678)).
    type: str
    required: true
  text:
    description:
      - The message (at most 2000 characters).
    type: str
    default: cerniq.outreach test message
  label:
    description:
      - A TimelinesAI chat label for the test chat (at most 64 characters).
    type: str
  wait_for:
    description:
      - V(sent) ends at C(Sent), C(Delivered) or C(Read); V(delivered) waits for C(Delivered) or C(Read).
    type: str
    default: sent
    choices: [sent, delivered]
  wait_timeout:
    description:
      - Seconds to wait for the outcome after the send.
    type: float
    default: 60
  poll_interval:
    description:
      - Seconds between two status reads (at least 60 / O(timelinesai_rate_limit)).
    type: float
    default: 2
  reason:
    description:
      - Why, written to C(ops_audit_log.reason).
    type: str
notes:
  - TimelinesAI adds a random delay of about 2 s between API messages and charges one message credit per send.
seealso:
  - module: cerniq.outreach.timelinesai_account_info
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Test the new phone with one message
  cerniq.outreach.timelinesai_message:
    phone_id: phone_21
    to: "+40712345678"
    text: Test from the onboarding of phone_21
    reason: onboarding phone_21
  register: test_send

- name: Show the outcome
  ansible.builtin.debug:
    msg: "{{ test_send.message_uid }} is {{ test_send.status }} after {{ test_send.elapsed_seconds }} s"
"""

RETURN = r"""
message_uid:
  description: TimelinesAI's id of the message.
  returned: when sent
  type: str
status:
  description: The last status read (C(Sent), C(Delivered), C(Read), ...).
  returned: when sent
  type: str
  sample: Sent
statuses:
  description: Every status seen while polling, in order.
  returned: when sent
  type: list
  elements: str
  sample: [Sending, Sent]
delivered:
  description: Whether WhatsApp confirmed delivery (C(Delivered) or C(Read)).
  returned: success
  type: bool
elapsed_seconds:
  description: Seconds from the send to the last status read.
  returned: when sent
  type: float
sender:
  description: The phone id (or number) that sent.
  returned: when sent
  type: str
sender_phone:
  description: The sending account's number at TimelinesAI.
  returned: when sent
  type: str
to:
  description: The recipient.
  returned: when sent
  type: str
would_send:
  description: In check mode, what would be sent (C(sender), C(sender_phone), C(sender_account_id), C(to), C(text)).
  returned: check mode
  type: dict
api:
  description: Requests sent to TimelinesAI, retries, and seconds spent waiting.
  returned: always
  type: dict
"""

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_module
from ansible_collections.cerniq.outreach.plugins.module_utils._timelinesai import (
    TEST_MESSAGE_TEXT,
    send_test_message,
)


def options():
    """The module's own options (vendor_module adds those of its action groups)."""
    return dict(
        phone_id=dict(type="str"),
        sender_phone=dict(type="str"),
        to=dict(type="str", required=True),
        text=dict(type="str", default=TEST_MESSAGE_TEXT),
        label=dict(type="str"),
        wait_for=dict(type="str", default="sent", choices=["sent", "delivered"]),
        wait_timeout=dict(type="float", default=60.0),
        poll_interval=dict(type="float", default=2.0),
        reason=dict(type="str"),
    )


def main():
    module = vendor_module(options(), ("postgres", "audit"), mutually_exclusive=[("phone_id", "sender_phone")],
                           required_one_of=[("phone_id", "sender_phone")])
    params = module.params
    run_module(module, lambda: send_test_message(
        params, phone_id=params["phone_id"], sender_phone=params["sender_phone"], to=params["to"],
        text=params["text"], label=params["label"], wait_for=params["wait_for"], wait_timeout=params["wait_timeout"],
        poll_interval=params["poll_interval"], reason=params["reason"], check_mode=module.check_mode))


if __name__ == "__main__":
    main()
