# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Every module: how module_defaults set its connection and platform options once. Each module lists its own
    # action_group membership (the groups of meta/runtime.yml it is in, one per doc fragment of options it extends).
    DOCUMENTATION = r"""
options: {}
attributes:
  action_group:
    description:
      - >-
        Set the options of each group this module is in once for a play, one C(module_defaults) line per group:
        C(group/cerniq.outreach.redis) (the Redis options), C(group/cerniq.outreach.postgres) (PostgreSQL),
        C(group/cerniq.outreach.platform) (C(timezone)), C(group/cerniq.outreach.audit) (C(audit_actor)) and
        C(group/cerniq.outreach.vendors) (Instantly, TimelinesAI). The roles hand them C(cerniq_redis_defaults),
        C(cerniq_postgres_defaults), C(cerniq_platform_defaults), C(cerniq_audit_defaults) and
        C(cerniq_vendor_defaults).
      - >-
        C(group/cerniq.outreach.all) is deprecated and will be removed in release 1.0.0. Until then every module is
        in it and accepts each Redis, PostgreSQL, platform and audit option it hands on; the options this module
        does not use are listed as such, type C(raw), and ignored with a deprecation warning.
    support: full
"""

    # A module that changes things: check mode writes nothing, diff shows before and after.
    MUTATING = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
"""

    # A read-only module.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details:
      - This action does not modify state.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: N/A
    details:
      - This action does not modify state.
"""
