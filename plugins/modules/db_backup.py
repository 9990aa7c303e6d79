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
  - With O(state=imported), takes no backup - it publishes a copy of one (O(src), a backup directory fetched from
    the DB host, e.g. by C(ansible.builtin.fetch)) under O(path) on the host it runs on (the controller in
    C(backup_database.yml)). O(src) is verified first as a restore would verify it (the dump's size and sha256
    against its manifest, C(pg_restore --list)) and refused, with nothing written, when it does not verify. The
    files go into a temporary directory made inside O(path), which is renamed to C(<path>/<id>) - so that directory
    only ever holds a verified copy. Retention (O(keep_days)) then applies to the copies. The same id with the same
    sha256 already there (and still verifying) changes nothing; a copy there that no longer verifies is replaced; a
    different dump under the same id is refused. An O(src) directly inside O(path) whose name starts with
    C(.partial-) (a staging directory) is consumed; any other is copied and left alone. Records one
    C(db_backup_import) row in C(ops_audit_log) when it changed something. In check mode it verifies O(src) when it
    exists and reports what it would publish and prune.
  - Directories in the runbook's own layout (C(<path>/<YYYY-MM-DD>/cerniq.dump), no manifest) are never pruned
    by O(keep_days), here or in the copies; the job that writes them owns their retention.
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.audit, cerniq.outreach.all]
options:
  path:
    description:
      - Directory holding the backups (created, mode 0750, when missing). Absolute. Refused when it is writable by
        its group or every user, or owned by a user other than the one running the module or root (a restore
        trusts the dump and manifest found there). Each backup directory is 0750, its dump and manifest 0640.
    type: path
    required: true
  state:
    description:
      - V(present) takes a new backup; V(imported) publishes the fetched copy O(src) of one (see above).
    type: str
    choices: [present, imported]
    default: present
  src:
    description:
      - With O(state=imported), the absolute path of a backup directory fetched from the DB host (its C(manifest.json)
        and dump). Required then.
    type: path
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
  - With O(state=present), every run takes a new backup, so it always reports C(changed).
  - C(pg_restore) must be installed where the module runs, for O(state=imported) too.
  - The diff mode attribute is supported in that a diff names the new backup and the deleted ones.
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

- name: Keep a verified copy on the controller, 14 days of them
  cerniq.outreach.db_backup:
    state: imported
    src: "/home/sre/cerniq/backups/.partial-fetch-{{ backup.backup.id }}"
    path: /home/sre/cerniq/backups
    keep_days: 14
  delegate_to: localhost
"""

RETURN = r"""
backup:
  description: The backup taken (in check mode, the one it would take) - C(id), C(path), C(taken_at), C(database),
    C(bytes), C(rows) (all tables) and C(manifest) (the whole manifest; in check mode C(tables) with counts only).
    With O(state=imported), the published copy (null in check mode when O(src) was not fetched).
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
imported:
  description: With O(state=imported), whether the copy was published now (false when the same copy was there).
  returned: when O(state=imported)
  type: bool
replaced:
  description: With O(state=imported), whether a copy under the same id that no longer verified was replaced.
  returned: when O(state=imported)
  type: bool
imported_from:
  description: With O(state=imported), O(src).
  returned: when O(state=imported)
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._backup import manage_backups
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module


def argument_spec():
    spec = common_argument_spec("postgres", "audit")
    spec.update(
        path=dict(type="path", required=True),
        state=dict(type="str", default="present", choices=["present", "imported"]),
        src=dict(type="path"),
        keep_days=dict(type="int", default=7),
        pg_bin_dir=dict(type="path"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("state", "imported", ["src"])])
    require_libraries(module, need_redis=False)
    params = module.params
    run_module(module, lambda: manage_backups(
        params, path=params["path"], state=params["state"], src=params["src"], keep_days=params["keep_days"],
        pg_bin_dir=params["pg_bin_dir"], check_mode=module.check_mode, want_diff=module._diff))


if __name__ == "__main__":
    main()
