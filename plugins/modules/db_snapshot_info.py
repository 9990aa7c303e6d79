#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_snapshot_info
short_description: Row count, newest created_at and content checksum of every contract table, from one snapshot
version_added: 0.1.0
description:
  - Reads, in one C(REPEATABLE READ) read-only transaction (so all figures come from the same moment), for each
    table of the platform contract its row count, its newest C(created_at) (where the table has that column) and a
    checksum of its content.
  - The checksum is the sum modulo 2^64 of the first 64 bits of C(md5(row::text)) over every row, with the session
    settings C(row::text) depends on pinned (C(TimeZone=UTC), C(DateStyle=ISO)), so the same rows give the same
    checksum on any server. It reads every row (about 1.7 s per million rows); set O(checksum=false) for counts only.
  - The backup manifest of C(backup_database.yml) records these figures and C(dr_database.yml) compares a restored
    database with them; tests use them to prove that check mode changed nothing.
  - Also reports the database's name, size and the marker cerniq.outreach leaves in its comment when it restored
    it from a backup (C(dr_database.yml)) or kept it after a swap.
  - To read another database of the same server (a restored copy), override O(db_name) for the task.
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.all]
options:
  tables:
    description:
      - Contract tables to read. Default all of them.
    type: list
    elements: str
  checksum:
    description:
      - Whether to compute each table's content checksum (reads every row). With V(false), only counts and the
        newest C(created_at) (cheap with the contract's indexes).
    type: bool
    default: true
  allow_missing:
    description:
      - Report a database that does not exist (C(database.exists=false)) or tables that are gone
        (RV(missing_tables)) instead of failing; for a recovery that looks at a damaged database. Needs a connection
        to O(maintenance_db).
    type: bool
    default: false
  maintenance_db:
    description:
      - With O(allow_missing), the database to connect to for checking that O(db_name) exists.
    type: str
    default: postgres
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Figures of the live database
  cerniq.outreach.db_snapshot_info:
  register: before

- name: Figures of a restored copy on the same server
  cerniq.outreach.db_snapshot_info:
    db_name: cerniq_restore_2026-01-15T020000Z

- name: Counts only
  cerniq.outreach.db_snapshot_info:
    tables: [gold_lead_journey, gold_communication_log]
    checksum: false
"""

RETURN = r"""
tables:
  description: Per table, C(rows), C(max_created_at) (text in UTC, or null) and C(checksum) (16 hex digits, or null).
  returned: success
  type: dict
  sample:
    gold_communication_log:
      rows: 1000000
      max_created_at: "2026-01-15 01:59:58.123456+00"
      checksum: 3a1f9c0b5e7d2a41
    gold_lead_journey:
      rows: 5000
      max_created_at: null
      checksum: 9b0e44c1d2a3f567
database:
  description: The database read, C(name), C(exists), C(size_bytes), C(server_version) and C(marker) (what
    cerniq.outreach did to it, from its comment, or null).
  returned: success
  type: dict
  sample:
    name: cerniq
    size_bytes: 181403648
    server_version: "15.20"
    marker:
      cerniq_outreach: restored
      backup: 2026-01-15T020000Z
workers_hold:
  description:
    - A recovery's hold on the workers, from C(ops_audit_log) (the latest row
      M(cerniq.outreach.db_database) wrote with O(cerniq.outreach.db_database#module:workers_hold)) - C(open) (true
      while a recovery that stopped the workers has not started them again), C(recovery), C(hosts), C(at),
      C(actor); null when no recovery ever recorded one (or the database or its audit table is missing).
  returned: success
  type: dict
  sample: {open: true, recovery: 2026-01-15T020000Z@20260115t031500z, hosts: [workers-1],
           at: "2026-01-15T03:15:02.114+00:00", actor: sre@ctl}
  version_added: 0.2.0
missing_tables:
  description: Contract tables that do not exist (only with O(allow_missing); otherwise their absence fails).
  returned: success
  type: list
  elements: str
where:
  description: The server and database read.
  returned: success
  type: str
checksum_method:
  description: How the checksums were computed (recorded in backup manifests), or null without checksums.
  returned: success
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._database import snapshot_info
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module


def argument_spec():
    spec = common_argument_spec("postgres")
    spec.update(
        tables=dict(type="list", elements="str"),
        checksum=dict(type="bool", default=True),
        allow_missing=dict(type="bool", default=False),
        maintenance_db=dict(type="str", default="postgres"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_redis=False)
    params = module.params
    run_module(module, lambda: snapshot_info(params, tables=params["tables"], checksum=params["checksum"],
                                             allow_missing=params["allow_missing"],
                                             maintenance_db=params["maintenance_db"]))


if __name__ == "__main__":
    main()
