#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_backup_info
short_description: List the database backups, choose one and verify it (checksum and pg_restore --list)
version_added: 0.1.0
description:
  - Lists the backups M(cerniq.outreach.db_backup) took under O(path), newest first.
  - Selects one (O(backup)), V(latest) being the newest backup with a manifest (verified when it was taken).
  - With O(verify=true), checks the selected backup now - the dump's size and sha256 against the manifest (a
    truncated or corrupt file fails here; C(pg_restore --list) alone reads only the archive's table of contents
    and would pass a truncated file), then C(pg_restore --list) and a data entry for every table of the manifest.
  - A backup that fails verification is reported (C(selected.verified=false), C(selected.problem)); the module
    itself fails only on bad options or a backup that does not exist.
  - >-
    Directories in the runbook's own layout, C(<path>/<YYYY-MM-DD>/) holding C(cerniq.dump) (a C(pg_dump -Fc)
    without a manifest), are listed too, with C(layout=runbook) and the warning C(no manifest: row counts cannot be
    verified). V(latest) never selects one; name it (O(backup=2026-01-15)). Its verification is C(pg_restore --list)
    only (and a data entry for every contract table); C(selected.checks) says which checks ran.
extends_documentation_fragment:
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.all]
options:
  path:
    description:
      - Directory holding the backups. Absolute.
    type: path
    required: true
  backup:
    description:
      - The backup to select - V(latest), a backup id (C(2026-01-15T020000Z)), a runbook-layout date
        (C(2026-01-15)) or the absolute path of a backup directory.
    type: str
    default: latest
  verify:
    description:
      - Verify the selected backup (reads the whole dump file).
    type: bool
    default: true
  pg_bin_dir:
    description:
      - Directory of the PostgreSQL client programs (C(pg_restore)). Default from C(PATH), then the newest
        C(/usr/lib/postgresql/<major>/bin).
    type: path
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Choose and verify the newest backup
  cerniq.outreach.db_backup_info:
    path: /backups/daily
  register: backups

- name: Refuse a damaged one
  ansible.builtin.assert:
    that: backups.selected.verified
    fail_msg: "{{ backups.selected.problem }}"
"""

RETURN = r"""
root:
  description: The backup directory listed.
  returned: always
  type: str
backups:
  description: >-
    Every backup, newest first - C(id), C(path), C(taken_at), C(has_manifest), C(layout)
    (V(manifest) or V(runbook)), C(warning) (null, or C(no manifest: row counts cannot be verified)), C(problem),
    C(database), C(bytes), C(rows).
  returned: always
  type: list
  elements: dict
selected:
  description: The selected backup (null when there is none and O(backup=latest)) - the fields of a listed backup,
    C(manifest) (for a runbook-layout backup, one describing its dump - size and sha256 read now - with no
    tables), C(verified) (null without O(verify)), C(problem), C(checks) (which checks ran), C(dump_path),
    C(seconds).
  returned: always
  type: dict
  sample:
    id: 2026-01-15T020000Z
    path: /backups/daily/2026-01-15T020000Z
    verified: false
    problem: "the dump file /backups/daily/2026-01-15T020000Z/cerniq.dump has 5000000 bytes, the manifest says
      32245716 (truncated or replaced)"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._backup import backup_listing
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module


def argument_spec():
    spec = common_argument_spec()
    spec.update(
        path=dict(type="path", required=True),
        backup=dict(type="str", default="latest"),
        verify=dict(type="bool", default=True),
        pg_bin_dir=dict(type="path"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    run_module(module, lambda: backup_listing(params, path=params["path"], backup=params["backup"],
                                              verify=params["verify"], pg_bin_dir=params["pg_bin_dir"]))


if __name__ == "__main__":
    main()
