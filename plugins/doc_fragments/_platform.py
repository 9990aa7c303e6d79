# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Mirrors platform_argument_spec() in plugins/module_utils/_connection.py: the options of the platform group.
    DOCUMENTATION = r"""
options:
  timezone:
    description:
      - The platform's time zone (IANA name). Quota days are business days in this zone, never the
        controller's local date nor UTC; relative dates and timestamps read from the database are in it too.
      - Usually set once for a play with C(group/cerniq.outreach.platform) module defaults from the
        C(cerniq_timezone) inventory variable.
      - If not set, the E(CERNIQ_TIMEZONE) environment variable is used.
    type: str
    default: Europe/Bucharest
"""
