#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_maintenance
short_description: VACUUM (ANALYZE) the platform's tables where there is work
version_added: 0.1.0
description:
  - Runbook 8.1 step 1. Runs one C(VACUUM (ANALYZE)) statement over the O(tables) that have work, outside a
    transaction (VACUUM refuses to run inside one), and reports each table's statistics before and after
    (C(pg_stat_user_tables) - dead and live tuples, rows changed since the last vacuum and analyze, last vacuum and
    analyze, size).
  - A table has work when it has dead tuples, rows inserted since its last vacuum, rows changed since its last analyze
    (with O(analyze=true)), or was never vacuumed or analyzed. A table without any is left alone, so a second run
    changes nothing; O(force=true) vacuums every table named.
  - Table names are checked against the platform contract and the connecting user's right to VACUUM each table (owner,
    a member of the owner's role, the database owner or a superuser) before anything runs; never C(VACUUM FULL).
  - One audit row per run, with the statistics before and after, written right after VACUUM committed.
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.audit, cerniq.outreach.all]
options:
  tables:
    description:
      - Tables to vacuum, in this order. Only tables of the platform contract.
    type: list
    elements: str
    default: [gold_communication_log, gold_lead_journey]
    choices:
      - wa_phone_numbers
      - gold_lead_journey
      - gold_communication_log
      - gold_communication_log_archive
      - human_review_queue
      - wa_quota_usage
      - ops_audit_log
  analyze:
    description:
      - Also refresh the planner statistics (C(VACUUM (ANALYZE))).
    type: bool
    default: true
  force:
    description:
      - Vacuum every table named, also those without work.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds VACUUM may wait for its lock (another VACUUM, an index build or DDL holds the table) before it gives
        up with an error.
    type: float
    default: 30.0
notes:
  - Check mode reads the statistics and returns the statement it would run; it runs nothing.
  - Run it after C(cerniq.outreach.comm_log_archive), whose moved rows leave dead tuples behind.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Weekly VACUUM ANALYZE (runbook 8.1 step 1)
  cerniq.outreach.db_maintenance:
  register: vacuum

- name: After the archive, the archive table too
  cerniq.outreach.db_maintenance:
    tables: [gold_communication_log, gold_communication_log_archive, gold_lead_journey]
"""

RETURN = r"""
statements:
  description: The statement run (in check mode - that would run); empty when no table had work.
  returned: always
  type: list
  elements: str
  sample: ["VACUUM (ANALYZE) gold_communication_log, gold_lead_journey"]
tables:
  description:
    - One entry per table - C(table), C(vacuumed), C(reasons) (why it had work), C(before) and (after a run) C(after)
      statistics with C(live_tuples), C(dead_tuples), C(changed_since_analyze), C(inserted_since_vacuum),
      C(last_vacuum), C(last_manual_vacuum), C(last_analyze), C(vacuum_count), C(autovacuum_count), C(total_bytes).
  returned: always
  type: list
  elements: dict
msg:
  description: What was done, in words.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ALL_TABLES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._maintenance import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_TABLES,
    vacuum_tables,
)


def argument_spec():
    spec = common_argument_spec("postgres", "platform", "audit")
    spec.update(
        tables=dict(type="list", elements="str", default=list(DEFAULT_TABLES), choices=list(ALL_TABLES)),
        analyze=dict(type="bool", default=True),
        force=dict(type="bool", default=False),
        lock_timeout=dict(type="float", default=DEFAULT_LOCK_TIMEOUT),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_redis=False)
    params = module.params

    run_module(module, lambda: vacuum_tables(
        params, tables=params["tables"], analyze=params["analyze"], force=params["force"],
        lock_timeout=params["lock_timeout"], check_mode=module.check_mode))


if __name__ == "__main__":
    main()
