#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: comm_log_archive
short_description: Move old communication log rows to the archive table in safe batches
version_added: 0.1.0
description:
  - Runbook 8.1 step 2 without its defects. Rows of C(gold_communication_log) created before the cutoff (now minus
    O(older_than_days) calendar days in O(timezone), computed once so the run ends) move to
    C(gold_communication_log_archive).
  - Each batch is one statement (a C(DELETE ... RETURNING) feeding an C(INSERT), in one C(WITH) query) over a window
    of O(batch_size) consecutive ids, in its own short transaction, so a run killed at any moment leaves every row in
    exactly one of the two tables and a re-run finishes the job.
  - A window whose rows are already partly archived, or where another session holds a row lock longer than
    O(lock_timeout), is retried with C(FOR UPDATE SKIP LOCKED) and C(ON CONFLICT) - rows another session
    holds are left for the next run and reported in RV(rows_remaining); a row already archived with identical content
    (a runbook run that died between its C(INSERT) and its C(DELETE)) is kept once; one with different content stops
    the run with its id, that batch rolled back.
  - Whole rows move. The columns of both tables are read from the catalog at run time (a production table may have
    more than C(schema/platform.sql)), every column of the live table is copied, identifiers quoted. The run is
    refused before its first batch, naming the columns, when the archive table lacks a live column, has it with
    another type or as a generated column, or has a C(NOT NULL) column without default that the live table lacks.
    Each batch re-reads the columns with both tables locked against C(ALTER TABLE) until its commit, so a migration
    during the run stops it at the next batch (rolled back) instead of losing the new column's values.
  - Two runs never overlap - a session advisory lock; a second run fails at once naming the session that holds it.
  - Every batch writes an audit row in its own transaction; the run writes a summary row at the end.
  - Archiving moves rows out of C(gold_communication_log) (a C(DELETE)), so it needs O(confirmed=true).
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._confirm
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.audit, cerniq.outreach.all]
options:
  older_than_days:
    description:
      - Archive rows created more than this many days ago (1 or more).
    type: int
    default: 90
  batch_size:
    description:
      - Ids per batch (1 to 100000), so at most that many rows. The default keeps each batch's locks under 250 ms
        on a loaded 2-CPU host (see C(bench/archive.py)).
    type: int
    default: 10000
  max_runtime:
    description:
      - Seconds after which no new batch starts (the maintenance window closes); the rest waits for the next run and
        RV(complete) is false.
    type: float
  lock_timeout:
    description:
      - Seconds a batch waits for a table lock (another session's DDL, C(VACUUM FULL)) before it gives up, rolled back.
    type: float
    default: 2.0
  batch_timeout:
    description:
      - Seconds one batch statement may run (C(statement_timeout)); a longer one is rolled back.
    type: float
    default: 10.0
notes:
  - Check mode counts the rows it would move and their id and date range, lists the columns that would move, refuses
    as a run would on a column mismatch, and writes nothing.
  - Run C(cerniq.outreach.db_maintenance) afterwards; the moved rows leave dead tuples behind.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Archive communication log rows older than 90 days (runbook 8.1 step 2)
  cerniq.outreach.comm_log_archive:
    older_than_days: 90
    max_runtime: 3600
    confirmed: true
  register: archived

- name: Vacuum what the archive left behind
  cerniq.outreach.db_maintenance:
    tables: [gold_communication_log, gold_communication_log_archive]
  when: archived.changed
"""

RETURN = r"""
cutoff:
  description: Rows created before this moment are archived (ISO 8601, UTC).
  returned: always
  type: str
would_move:
  description: In check mode, the rows older than the cutoff - C(rows), C(first_id), C(last_id), C(oldest), C(newest).
  returned: check mode
  type: dict
batches_planned:
  description: In check mode, how many batches the run would take.
  returned: check mode
  type: int
columns:
  description: Every column of the live table, in table order - the columns each archived row carries.
  returned: success
  type: list
  elements: str
  sample: [id, tenant_id, lead_id, phone_id, channel, direction, status, email, bounce_reason, campaign_id, quota_cost,
           created_at]
column_types:
  description: In check mode, each live column's type as the catalog spells it (the archive's are the same).
  returned: check mode
  type: dict
archive_only_columns:
  description: In check mode, columns only the archive table has; archived rows get their default (or NULL) there.
  returned: check mode
  type: list
  elements: str
rows_moved:
  description: Rows moved to the archive by this run.
  returned: always
  type: int
batches:
  description: Batches committed by this run.
  returned: always
  type: int
first_id:
  description: Lowest id moved.
  returned: success
  type: int
last_id:
  description: Highest id moved.
  returned: success
  type: int
already_archived:
  description: Rows that were already in the archive with identical content; deleted from the live table only.
  returned: success
  type: int
rows_remaining:
  description: Rows older than the cutoff still in the live table after the run.
  returned: always
  type: int
complete:
  description: Whether no row older than the cutoff is left in the live table.
  returned: always
  type: bool
longest_batch_ms:
  description: The longest batch, from its statement to its commit - the longest any batch held its row locks.
  returned: success
  type: int
seconds:
  description: Duration of the run.
  returned: success
  type: float
run_id:
  description: Id of the run, in every audit row it wrote.
  returned: success
  type: str
msg:
  description: What was done, in words.
  returned: always
  type: str
  sample: moved 901234 row(s) older than 2025-10-17T02:00:00+00:00 in 91 batch(es), 0 left
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._archive import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_BATCH_TIMEOUT,
    DEFAULT_LOCK_TIMEOUT,
    archive_comm_log,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ARCHIVE_AFTER_DAYS
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CONFIRMED_ARGUMENT_SPEC, run_destructive

DESTRUCTIVE = "archiving communication log rows (INSERT into the archive, DELETE from the log)"


def argument_spec():
    spec = common_argument_spec("postgres", "platform", "audit")
    spec.update(
        older_than_days=dict(type="int", default=ARCHIVE_AFTER_DAYS),
        batch_size=dict(type="int", default=DEFAULT_BATCH_SIZE),
        max_runtime=dict(type="float"),
        lock_timeout=dict(type="float", default=DEFAULT_LOCK_TIMEOUT),
        batch_timeout=dict(type="float", default=DEFAULT_BATCH_TIMEOUT),
        **CONFIRMED_ARGUMENT_SPEC
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_redis=False)
    params = module.params

    run_destructive(module, lambda check_mode: archive_comm_log(
        params, older_than_days=params["older_than_days"], batch_size=params["batch_size"],
        max_runtime=params["max_runtime"], lock_timeout=params["lock_timeout"], batch_timeout=params["batch_timeout"],
        check_mode=check_mode), DESTRUCTIVE)


if __name__ == "__main__":
    main()
