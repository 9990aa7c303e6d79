# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rescheduling pending follow-ups as delayed BullMQ jobs (runbook 6.2 step 4, which only echoes).

Every lead with `next_action_at` in the future and `sequence_paused = false` gets one delayed job on
`outreach:followup` with the deterministic id `fu-{lead_id}-{due_ms}`: a second run adds nothing. Leads stream from a
server-side cursor in chunks, so memory stays flat at a million leads; each chunk is one EXISTS pipeline plus one
pipeline of BullMQ's own addJob scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import RedisChangeAudit
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import JobWriter
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    MAX_CHUNK,
    job_key,
    key_types,
    queue_key,
    validate_queue_name,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import (
    DEFAULT_NODE_MAJOR,
    check_pairing,
    require_bullmq,
    run_with_queue,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_depths
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    PENDING_FOLLOWUP_CONDITION,
    QUEUE_FOLLOWUP,
    TABLE_LEADS,
    followup_job_id,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError, request_from_params

PENDING_FOLLOWUPS_SQL = (
    "SELECT lead_id::text, floor(extract(epoch FROM next_action_at) * 1000)::bigint FROM " + TABLE_LEADS
    + " WHERE " + PENDING_FOLLOWUP_CONDITION + " ORDER BY lead_id")


def _chunks(cursor, size):
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield rows


def _job_specs(rows, job_name, remove_on_complete):
    return [dict(id=followup_job_id(lead_id, due_ms), name=job_name, data={"leadId": lead_id, "dueAt": due_ms},
                 opts={"removeOnComplete": remove_on_complete}, due_ms=due_ms, delay_ms=0)
            for lead_id, due_ms in rows]


@dataclasses.dataclass(frozen=True)
class FollowupRequest:
    """What one followup_reschedule call asks: the module's options, with its defaults.

    A test builds one with keyword options; the module's parameters give one through from_params.
    """

    queue: str = QUEUE_FOLLOWUP
    prefix: str = BULLMQ_PREFIX
    chunk_size: int = MAX_CHUNK
    job_name: str = "followup"
    remove_on_complete: bool = True
    expect_node_major: int = DEFAULT_NODE_MAJOR

    @classmethod
    def from_params(cls, params):
        return request_from_params(cls, params)


def reschedule_followups(params, request=FollowupRequest(), check_mode=False):
    """The followup_reschedule module's core: returns counts (pending in the DB, added, already there, verified).

    `params` are the connections (Redis, PostgreSQL, audit_actor), `request` a FollowupRequest.
    """
    require_bullmq()
    queue = validate_queue_name(request.queue or QUEUE_FOLLOWUP)
    prefix = request.prefix or BULLMQ_PREFIX
    chunk_size = request.chunk_size or MAX_CHUNK
    if not 1 <= chunk_size <= MAX_CHUNK:
        raise CerniqError("chunk_size {0} must be between 1 and {1} (larger chunks stall Redis for every other "
                          "client)".format(chunk_size, MAX_CHUNK))
    client = redis_client(params, params["bullmq_db"])
    where = redis_where(params, params["bullmq_db"])
    depths_before = queue_depths(client, [queue], prefix)[queue]
    check_pairing(queue, depths_before, request.expect_node_major or DEFAULT_NODE_MAJOR)
    conn = postgres_connect(params, require=(TABLE_LEADS,))
    audit = RedisChangeAudit(params, "followup_reschedule", check_mode)
    counts = dict(pending=0, added=0, existing=0, present=0)
    started = time.monotonic()
    try:
        if not check_mode:
            audit.prepare()
        with postgres_errors(params, conn):
            # A named cursor is server-side: PostgreSQL hands rows over a chunk at a time.
            cursor = conn.cursor(name="cerniq_followups")
            cursor.itersize = chunk_size
            cursor.execute(PENDING_FOLLOWUPS_SQL)

            async def add_all(bull_queue):
                writer = None if check_mode else JobWriter(bull_queue, client, where)
                with writer or contextlib.nullcontext():
                    for rows in _chunks(cursor, chunk_size):
                        specs = _job_specs(rows, request.job_name or "followup", request.remove_on_complete)
                        # Runs while Redis works through the previous chunk's adds.
                        with redis_errors(where):
                            kinds = key_types(client, [job_key(prefix, queue, spec["id"]) for spec in specs])
                        wrong = [spec["id"] for spec, kind in zip(specs, kinds) if kind not in ("none", "hash")]
                        if wrong:
                            raise CerniqError("{0}: job key {1} is not a hash; nothing more was added ({2} added "
                                              "before)".format(where, job_key(prefix, queue, wrong[0]),
                                                               counts["added"]))
                        new = [spec for spec, kind in zip(specs, kinds) if kind == "none"]
                        counts["pending"] += len(specs)
                        counts["existing"] += len(specs) - len(new)
                        if new and writer:
                            await writer.add(new)
                        counts["added"] += len(new)
                # Present: already there, plus every add Redis answered with its job id.
                counts["present"] = counts["existing"] + (writer.confirmed if writer else 0)

            if check_mode:
                # Same walk, no writes: the bullmq package is not even opened.
                asyncio.run(add_all(None))
            else:
                run_with_queue(params, queue, prefix, add_all)
            cursor.close()
        conn.rollback()
    finally:
        conn.close()
    elapsed = time.monotonic() - started
    depths_after = depths_before if check_mode else queue_depths(client, [queue], prefix)[queue]
    # Every pending follow-up has its job (in check mode: would have, once the missing ones are added).
    verified = counts["present"] + (counts["added"] if check_mode else 0) == counts["pending"]
    result = dict(changed=counts["added"] > 0, queue=queue, followups=counts, verified=verified,
                  seconds=round(elapsed, 3),
                  jobs_per_second=round(counts["added"] / elapsed) if counts["added"] and elapsed else None,
                  depths=dict(before=depths_before, after=depths_after))
    if counts["added"] and not check_mode:
        audit.record("followup_reschedule", queue_key(prefix, queue, "*"),
                     before=dict(delayed=depths_before["delayed"], wait=depths_before["wait"]),
                     after=dict(counts, delayed=depths_after["delayed"], wait=depths_after["wait"]))
    audit.close()
    return result
