# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Mirrors audit_argument_spec() in plugins/module_utils/_connection.py: the options of the audit group (modules
    # that write ops_audit_log rows).
    DOCUMENTATION = r"""
options:
  audit_actor:
    description:
      - Who is acting, as written to C(ops_audit_log.actor).
      - Usually set once for a play with C(group/cerniq.outreach.audit) module defaults from the
        C(cerniq_audit_actor) inventory variable.
      - If not set, the E(CERNIQ_AUDIT_ACTOR) environment variable is used, then C(user@host) of the process.
    type: str
"""
