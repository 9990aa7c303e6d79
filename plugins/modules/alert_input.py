#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: alert_input
short_description: Check the values an alert arrived with, without rendering them, and return them validated
version_added: 0.1.0
description:
  - Runs on the controller (an action plugin). Reads the variables an alert arrives in (C(alert), C(alert_labels),
    C(phone), C(campaign) and the role variables C(alert_response_alert), C(alert_response_labels),
    C(alert_response_phone), C(alert_response_campaign), the role variable winning when it is not empty), and checks
    C(ansible_eda) (the event ansible-rulebook adds to every run), C(confirm), C(alert_response_confirm) and
    C(alert_response_vendor_retries) (what an AWX survey may fill) too, all B(as stored), never through a template.
  - ansible-core loads extra variables given as a file (C(-e @file); ansible-rulebook, ansible-runner and AWX pass
    them so) as trusted templates. Reading such a value through a template would render whatever an alert put in
    it, for example a C(pipe) lookup. This module refuses the run instead, with one message naming where, when any
    of those values (keys included, at any depth) carries a template marker (C({{), C({%), C({#), their closing
    counterparts, or C(#jinja2:)).
  - Also refuses a C(phone) that is not a phone id (C(phone_NN)) and a C(campaign) that is not an Instantly
    campaign id (a UUID), both with the platform contract's patterns and C(re.fullmatch); and labels that are not
    a mapping (or its JSON text) of strings.
  - Returns the alert name and only the labels named in O(labels), as new values that ansible-core never renders.
  - See docs/security.md, "Alerts are data, never code".
author:
  - CERNIQ SRE (@cerniq-sre)
extends_documentation_fragment:
  - cerniq.outreach._attributes.INFO_MODULE
options:
  labels:
    description:
      - The labels to hand on (the ones the procedures use); every other label is checked, then dropped.
    type: list
    elements: str
    default: [phone, campaign]
notes:
  - Values set in an inventory, a play or a role's parameters are checked the same way; give plain values there, not
    templates.
"""

EXAMPLES = r"""
- name: Refuse an alert whose values are not plain data
  cerniq.outreach.alert_input:
    labels: [phone, campaign]
  register: alert_input

- name: Use only what was validated
  ansible.builtin.debug:
    msg: "{{ alert_input.alert }} for {{ alert_input.phone | default('no phone', true) }}"
"""

RETURN = r"""
alert:
  description: The alert name as given (trimmed); empty when none was given.
  returned: success
  type: str
  sample: PhoneOffline
labels:
  description: The labels named in O(labels) that were given and not empty, validated; C(phone) and C(campaign)
    given as variables of their own override the labels of that name.
  returned: success
  type: dict
  sample: {phone: phone_07}
phone:
  description: The validated phone id, or an empty string.
  returned: success
  type: str
  sample: phone_07
campaign:
  description: The validated Instantly campaign id, or an empty string.
  returned: success
  type: str
  sample: ""
"""
