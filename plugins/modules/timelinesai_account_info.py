#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: timelinesai_account_info
short_description: WhatsApp account status at TimelinesAI, matched to the platform's phones
version_added: 0.1.0
description:
  - Reads every WhatsApp account of the TimelinesAI workspace (C(GET /whatsapp_accounts), one call, as the Public
    API has no per-account status endpoint; the runbook's C(api.timelines.ai/v1/accounts/{id}/status) does not
    exist) and the phones of C(wa_phone_numbers) (one query), and pairs them by C(timelinesai_account_id) (the
    account's JID), then by phone number.
  - An account's status is C(active) or C(disconnected) (compared without case; TimelinesAI reports suspended,
    banned and paused accounts as disconnected). A phone without an account is C(missing); an account without a
    phone is reported in RV(unknown_accounts); a phone paired by number whose stored account id differs is in
    RV(account_id_mismatch).
  - Feeds the morning check and the phone-offline procedure. Reads only.
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._vendors
  - cerniq.outreach._platform
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.vendors, cerniq.outreach.platform, cerniq.outreach.all]
options:
  phone_ids:
    description:
      - Only these phones (C(phone_07), ...). An id not in C(wa_phone_numbers) is an error. Default is every phone
        (and then accounts no phone claims are reported as unknown).
    type: list
    elements: str
seealso:
  - module: cerniq.outreach.timelinesai_message
  - module: cerniq.outreach.timelinesai_webhook
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Which phones are connected at TimelinesAI
  cerniq.outreach.timelinesai_account_info:
  register: wa

- name: Phones that need a QR scan
  ansible.builtin.debug:
    msg: "Disconnected: {{ wa.disconnected }}, not at TimelinesAI: {{ wa.missing }}"

- name: One phone
  cerniq.outreach.timelinesai_account_info:
    phone_ids: [phone_07]
"""

RETURN = r"""
phones:
  description: One entry per phone, ordered by id.
  returned: always
  type: list
  elements: dict
  contains:
    phone_id:
      description: The phone's id.
      type: str
    phone_number:
      description: E.164 number.
      type: str
    phone_label:
      description: Label.
      type: str
    db_status:
      description: C(wa_phone_numbers.status) (C(ACTIVE), C(OFFLINE), C(BANNED)).
      type: str
    is_enabled:
      description: C(wa_phone_numbers.is_enabled).
      type: bool
    timelinesai_account_id:
      description: The account id stored in the database.
      type: str
    vendor_account_id:
      description: The TimelinesAI account paired with the phone, or null.
      type: str
    vendor_status:
      description: C(active), C(disconnected) or C(missing) (no account).
      type: str
    connected:
      description: Whether the account is active.
      type: bool
    connected_on:
      description: When TimelinesAI last connected the account (its own format).
      type: str
    account_id_mismatch:
      description: Paired by number, but the stored account id differs (update the database).
      type: bool
  sample:
    - phone_id: phone_07
      phone_number: "+40700000007"
      phone_label: Sales 07
      db_status: OFFLINE
      is_enabled: true
      timelinesai_account_id: 40700000007@s.whatsapp.net
      vendor_account_id: 40700000007@s.whatsapp.net
      vendor_status: disconnected
      connected: false
      connected_on: "2026-03-09 09:49:00 +0300"
      account_id_mismatch: false
accounts:
  description: Every TimelinesAI account (C(id), C(phone), C(status), C(status_raw), C(phone_id) or null, ...).
  returned: always
  type: list
  elements: dict
connected:
  description: Phone ids whose account is active.
  returned: always
  type: list
  elements: str
disconnected:
  description: Phone ids whose account is disconnected.
  returned: always
  type: list
  elements: str
missing:
  description: Phone ids without a TimelinesAI account.
  returned: always
  type: list
  elements: str
account_id_mismatch:
  description: Phone ids whose stored C(timelinesai_account_id) is not the account's id.
  returned: always
  type: list
  elements: str
unknown_accounts:
  description: Accounts no phone claims (C(id), C(phone), C(status)); empty when O(phone_ids) is given.
  returned: always
  type: list
  elements: dict
counts:
  description: How many phones, accounts, connected, disconnected, missing and unknown accounts.
  returned: always
  type: dict
  sample: {phones: 20, accounts: 20, connected: 18, disconnected: 2, missing: 0, unknown_accounts: 0}
api:
  description: Requests sent to TimelinesAI, retries, and seconds spent waiting.
  returned: always
  type: dict
  sample: {requests: 1, retries: 0, waited_seconds: 0.0}
"""

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_module
from ansible_collections.cerniq.outreach.plugins.module_utils._timelinesai import account_info


def options():
    """The module's own options (vendor_module adds those of its action groups)."""
    return dict(phone_ids=dict(type="list", elements="str"))


def main():
    module = vendor_module(options(), ("postgres", "platform"))
    run_module(module, lambda: account_info(module.params, phone_ids=module.params["phone_ids"]))


if __name__ == "__main__":
    main()
