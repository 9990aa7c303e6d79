#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_backup
short_description: Take a verified pg_dump backup of the platform database, with a manifest, and apply retention
version_added: 0.1.0
description:
  - Dumps the platform database with C(pg_dump --format=custom) into a new dated directory
    C(<path>/<YYYY-MM-DDTHHMMSSZ>/) (UTC), next to a C(manifest.json) holding the row count, newest C(created_at)
    and content checksum of every contract table (see M(cerniq.outreach.db_snapshot_info)) plus the dump's size
    and sha256.
  - The manifest's figures are read in the very snapshot pg_dump dumps (the module exports a snapshot and runs
    C(pg_dump --snapshot)), so they describe the dump exactly while the platform keeps writing.
  - The backup is built in C(<path>/.partial-<id>/), checked with C(pg_restore --list) and renamed into place only
    then, so a directory with a manifest is a verified backup. C(<path>/latest) links to the newest.
  - Backups older than O(keep_days) are deleted afterwards, never the newest verified one. Partial directories
    older than a day (left by a run that died) are removed too.
  - C(pg_dump) runs with the password in its environment only, never on a command line nor in the output.
  - Check mode reads the row counts (no checksums, no dump) and reports the backup it would take and what
    retention would delete.
  - Records one C(db_backup) row in C(ops_audit_log).
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
options:
  path:
    description:
      - Directory holding the backups (created, mode 0750, when missing). Absolute. Refused when it is writable by
        its group or every user, or owned by a user other than the one running the module or root (a restore
        trusts the dump and manifest found there). Each backup directory is 0750, its dump and manifest 0640.
    type: path
    required: true
  keep_days:
    description:
      - Delete backups taken more than this many days ago (the newest verified backup is always kept).
    type: int
    default: 7
  pg_bin_dir:
    description:
      - Directory of the PostgreSQL client programs (C(pg_dump), C(pg_restore)), which must be at least as new as
        the server. Default from C(PATH), then the newest C(/usr/lib/postgresql/<major>/bin).
    type: path
notes:
  - Every run takes a new backup, so it always reports C(changed).
  - The diff mode attribute is supported in that a diff names the new backup and the deleted ones.
  - Redis options are accepted (the action group hands them to every module) and not used.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Nightly backup, two weeks kept
  cerniq.outreach.db_backup:
    path: /backups/daily
    keep_days: 14
  register: backup

- name: Show it
  ansible.builtin.debug:
    msg: "{{ backup.backup.path }}: {{ backup.backup.bytes }} bytes, {{ backup.backup.rows }} rows"
"""

RETURN = r"""
backup:
  description: The backup taken (in check mode, the one it would take) - C(id), C(path), C(taken_at), C(database),
    C(bytes), C(rows) (all tables) and C(manifest) (the whole manifest; in check mode C(tables) with counts only).
  returned: always
  type: dict
  sample:
    id: 2026-01-15T020000Z
    path: /backups/daily/2026-01-15T020000Z
    taken_at: "2026-01-15T02:00:00.412345+00:00"
    database: cerniq
    bytes: 32245716
    rows: 1013512
pruned:
  description: Ids of the backups retention deleted (would delete).
  returned: always
  type: list
  elements: str
partials_removed:
  description: Leftover partial directories removed (would remove).
  returned: always
  type: list
  elements: str
seconds:
  description: Wall time of the backup.
  returned: always
  type: float
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._backup import create_backup
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module


def core(module):
    result = create_backup(module.params, module.params["path"], module.params["keep_days"], module.check_mode,
                           pg_bin_dir=module.params["pg_bin_dir"])
    if module._diff:
        result["diff"] = dict(before=dict(deleted=result["pruned"]),
                              after=dict(backup=result["backup"]["path"]))
    return result


def main():
    argument_spec = common_argument_spec()
    argument_spec.update(
        path=dict(type="path", required=True),
        keep_days=dict(type="int", default=7),
        pg_bin_dir=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    require_libraries(module, need_redis=False)
    run_module(module, lambda: core(module))


if __name__ == "__main__":
    main()
