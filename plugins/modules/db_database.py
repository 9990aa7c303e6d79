#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: db_database
short_description: Create, drop, restore (from a verified backup), swap in and mark whole PostgreSQL databases
version_added: 0.1.0
description:
  - The database steps of disaster recovery (runbook 6.1), each idempotent and audited in C(ops_audit_log).
  - O(state=restored) restores a backup taken by C(backup_database.yml) into the fresh database O(name), after
    verifying the backup (size and sha256 of the dump against its manifest, then C(pg_restore --list)); it then
    compares every contract table of the copy with the manifest (rows, newest C(created_at), content checksum, see
    M(cerniq.outreach.db_snapshot_info)), runs C(ANALYZE) and marks the copy as restored from that backup. A copy
    that does not match is left for inspection and the task fails. The live database (O(db_name)) is never the
    target.
  - O(state=renamed) renames O(name) to O(new_name). With O(replace=true) an existing O(new_name) is first kept as
    O(keep_as); both renames commit in one transaction (a swap), after new connections to the old database are
    refused and its sessions ended. The database's GRANTs and C(ALTER DATABASE ... SET) settings, which no dump
    holds, are copied from the displaced database in that same transaction.
  - O(state=present) creates the database (from C(template0)) or, with O(marker), records keys in the
    cerniq.outreach marker kept as JSON in the database's comment. O(state=absent) drops it (never the live one).
  - pg_restore runs with the password in its environment only, never on a command line nor in the output.
  - With O(workers_hold) (and O(state=present) on the live database), records a recovery's hold on the workers in
    C(ops_audit_log), and only that - V(opened) before C(dr_database.yml) stops the workers, V(closed) once they run
    again. The latest such row tells a later run that a recovery stopped the workers and did not finish
    (M(cerniq.outreach.db_snapshot_info) returns it as RV(cerniq.outreach.db_snapshot_info#module:workers_hold)).
  - Statements about whole databases run on a connection to O(maintenance_db).
  - Dropping (O(state=absent)), restoring over (O(state=restored)) and renaming or swapping (O(state=renamed)) are
    destructive, so they need O(confirmed=true). O(state=present) does not.
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._confirm
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.audit, cerniq.outreach.all]
options:
  name:
    description:
      - The database to act on. Lower-case letters, digits and C(_).
    type: str
    required: true
  state:
    description:
      - V(present) creates it if missing; V(absent) drops it; V(restored) restores O(backup) into it;
        V(renamed) renames it to O(new_name).
    type: str
    choices: [present, absent, restored, renamed]
    default: present
  backup:
    description:
      - With O(state=restored), the absolute path of a backup directory (holding C(manifest.json)), as
        M(cerniq.outreach.db_backup_info) returns it in C(selected.path).
    type: path
  jobs:
    description:
      - Parallel jobs of C(pg_restore) (C(--jobs)).
    type: int
    default: 2
  no_owner:
    description:
      - Restore with C(--no-owner --no-privileges), for a user that is not a member of the dumped objects' owners.
    type: bool
    default: false
  analyze:
    description:
      - With O(state=restored), run C(ANALYZE) on every table of the restored database once it matched the manifest.
    type: bool
    default: true
  new_name:
    description:
      - With O(state=renamed), the new name.
    type: str
  replace:
    description:
      - With O(state=renamed), when O(new_name) exists keep it as O(keep_as) and swap O(name) in.
    type: bool
    default: false
  keep_as:
    description:
      - The name the displaced database keeps after a swap. Default C(<new_name>_pre_dr_<UTC yyyymmddthhmmssz>).
    type: str
  marker:
    description:
      - With O(state=present), keys to record in the cerniq.outreach marker (JSON in the database's comment);
        changed only when a value differs. A comment that is not a cerniq.outreach marker is never overwritten.
    type: dict
  workers_hold:
    description:
      - V(opened) records that recovery O(recovery) holds the workers stopped (an audit row, action
        C(dr_workers_stopped), target C(bullmq workers)); unchanged when that recovery's hold is open already.
      - V(closed) records that the workers run again (action C(dr_workers_started)), closing whichever recovery's
        hold is open; unchanged when none is.
      - Only with O(state=present) and O(name) equal to O(db_name); nothing else is done in that call. Needs
        O(recovery).
    type: str
    choices: [opened, closed]
    version_added: 0.2.0
  recovery:
    description:
      - With O(workers_hold), the id of the recovery that holds (or releases) the workers; one line, at most 200
        characters.
    type: str
    version_added: 0.2.0
  hosts:
    description:
      - With O(workers_hold), the workers hosts concerned, recorded in the audit row.
    type: list
    elements: str
    default: []
    version_added: 0.2.0
  pg_bin_dir:
    description:
      - Directory of the PostgreSQL client programs (C(pg_restore)). Default from C(PATH), then the newest
        C(/usr/lib/postgresql/<major>/bin).
    type: path
  maintenance_db:
    description:
      - Database to connect to for statements about whole databases.
    type: str
    default: postgres
  reason:
    description:
      - Why (an incident, a ticket, the DR run), written to C(ops_audit_log.reason) with every change.
    type: str
notes:
  - The database user needs C(CREATEDB) and must own the databases it renames or drops. Sessions of other roles on
    a database being renamed or dropped can only be ended with C(pg_signal_backend); otherwise the task fails before
    renaming anything, naming them.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Restore the chosen backup into a fresh database and verify it
  cerniq.outreach.db_database:
    name: cerniq_restore_20260115t020000z
    state: restored
    backup: /backups/daily/2026-01-15T020000Z
    confirmed: true

- name: Swap it in, keeping the old database under a timestamped name
  cerniq.outreach.db_database:
    name: cerniq_restore_20260115t020000z
    state: renamed
    new_name: cerniq
    replace: true
    confirmed: true

- name: Record that this recovery holds the workers stopped (before stopping them)
  cerniq.outreach.db_database:
    name: cerniq
    workers_hold: opened
    recovery: 2026-01-15T020000Z@20260115t031500z
    hosts: [workers-1]

- name: Drop the kept database once the recovery is confirmed
  cerniq.outreach.db_database:
    name: cerniq_pre_dr_20260115t031500z
    state: absent
    confirmed: true
"""

RETURN = r"""
database:
  description: The database acted on (after a rename, its new name).
  returned: always
  type: str
marker:
  description: The cerniq.outreach marker of the database afterwards (null when it has none).
  returned: when state is present or restored
  type: dict
kept_as:
  description: Where a swap put the displaced database (null when nothing was displaced).
  returned: when state is renamed
  type: str
tables:
  description: The restored copy's figures per contract table (as M(cerniq.outreach.db_snapshot_info) returns them).
  returned: when state is restored and a restore ran
  type: dict
timings:
  description: Seconds spent verifying the backup, in C(pg_restore), verifying the copy and in C(ANALYZE).
  returned: when state is restored and a restore ran
  type: dict
  sample: {verify_backup: 0.4, pg_restore: 2.9, verify_restore: 1.4, analyze: 0.3}
plan:
  description: What a restore does (database, backup, rows per table from the manifest).
  returned: when state is restored and a restore runs (also in check mode)
  type: dict
access:
  description: With O(state=renamed) and O(replace=true), what the swap copied from the displaced database onto the
    new one because no dump holds it - C(acl) (its GRANTs, C(grantee), C(privilege), C(grantable); null when never
    changed from the defaults) and C(settings) (C(ALTER DATABASE ... SET)); C(role_settings) (C(ALTER ROLE ... IN
    DATABASE), which need a superuser) are reported, not copied.
  returned: when state is renamed and a database was displaced
  type: dict
  sample:
    acl: [{grantee: app_reader, privilege: CONNECT, grantable: false}]
    settings: ["work_mem=8MB"]
    role_settings: []
workers_hold:
  description: With O(workers_hold), the hold afterwards (in check mode, as it would be) - C(open), C(recovery),
    C(hosts), C(at) (null in check mode), C(actor); null when no recovery ever recorded one.
  returned: when workers_hold is set
  type: dict
  sample: {open: true, recovery: 2026-01-15T020000Z@20260115t031500z, hosts: [workers-1],
           at: "2026-01-15T03:15:02.114+00:00", actor: sre@ctl}
  version_added: 0.2.0
sessions_ended:
  description: Sessions terminated on the databases dropped or renamed.
  returned: when state is absent or renamed and something changed
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._database import ensure_database
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive


def argument_spec():
    spec = common_argument_spec("postgres", "audit")
    spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent", "restored", "renamed"]),
        backup=dict(type="path"),
        jobs=dict(type="int", default=2),
        no_owner=dict(type="bool", default=False),
        analyze=dict(type="bool", default=True),
        new_name=dict(type="str"),
        replace=dict(type="bool", default=False),
        keep_as=dict(type="str"),
        marker=dict(type="dict"),
        workers_hold=dict(type="str", choices=["opened", "closed"]),
        recovery=dict(type="str"),
        hosts=dict(type="list", elements="str", default=[]),
        pg_bin_dir=dict(type="path"),
        maintenance_db=dict(type="str", default="postgres"),
        reason=dict(type="str"),
        **CONFIRMED_ARGUMENT_SPEC
    )
    return spec


def destructive(params):
    """What this call would change that needs confirmation (see run_destructive); state=present needs none."""
    return {"absent": "dropping a database", "restored": "restoring a backup into a database",
            "renamed": "renaming or swapping databases"}.get(params["state"])


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           required_if=[("state", "restored", ["backup"]), ("state", "renamed", ["new_name"])],
                           required_by=dict(workers_hold=["recovery"]))
    require_libraries(module, need_redis=False)
    params = module.params
    run_destructive(module, lambda check_mode: ensure_database(
        params, name=params["name"], state=params["state"], backup=params["backup"], jobs=params["jobs"],
        no_owner=params["no_owner"], analyze=params["analyze"], new_name=params["new_name"],
        replace=params["replace"], keep_as=params["keep_as"], marker=params["marker"],
        workers_hold=params["workers_hold"], recovery=params["recovery"], hosts=params["hosts"],
        pg_bin_dir=params["pg_bin_dir"], maintenance_db=params["maintenance_db"], reason=params["reason"],
        check_mode=check_mode, want_diff=module._diff), destructive(params))


if __name__ == "__main__":
    main()
