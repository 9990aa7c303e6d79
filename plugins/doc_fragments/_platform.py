# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Mirrors platform_argument_spec() in plugins/module_utils/_connection.py.
    DOCUMENTATION = r"""
options:
  timezone:
    description:
      - The platform's time zone (IANA name). Quota days are business days in this zone, never the
        controller's local date nor UTC.
      - If not set, the E(CERNIQ_TIMEZONE) environment variable is used.
    type: str
    default: Europe/Bucharest
  audit_actor:
    description:
      - Who is acting, as written to C(ops_audit_log.actor).
      - If not set, the E(CERNIQ_AUDIT_ACTOR) environment variable is used, then C(user@host) of the process.
    type: str
"""
