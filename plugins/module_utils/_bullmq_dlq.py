# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Dead-letter queues (bullmq_queue with dlq_type): counted, and trimmed to their newest entries.

Three kinds, named explicitly: an application list (the runbook's bull:dlq:outreach, or every list a pattern
matches), a queue's failed set, or a separate BullMQ queue whose waiting jobs are the dead letters. BullMQ's own
entries go through its removeJob script; plain lists through LTRIM.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import RedisChangeAudit
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import remove_jobs
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    MAX_CHUNK,
    PENDING_STATES,
    client_where,
    queue_key,
    validate_queue_name,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import (
    DEFAULT_NODE_MAJOR,
    check_pairing,
    run_with_queue,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import (
    DLQ_PATTERN_MAX_KEYS,
    dlq_lists,
    missing_queue_error,
    queue_depths,
    state_counts,
    validate_dlq_pattern,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_client, redis_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX, DLQ_LIST_KEY
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError, request_from_params

DLQ_TYPES = ("list", "failed", "queue")


@dataclasses.dataclass(frozen=True)
class DlqRequest:
    """What one bullmq_queue call with dlq_type asks of a dead-letter queue: the module's options, its defaults.

    A test builds one with keyword options; the module's parameters give one through from_params. Raw as asked:
    manage_dlq validates it before the first read.
    """

    dlq_type: str
    queue: str | None = None
    prefix: str = BULLMQ_PREFIX
    dlq_key: str = DLQ_LIST_KEY
    dlq_pattern: str | None = None
    dlq_keep: int | None = None
    dlq_push_side: str = "left"
    allow_missing: bool = False
    expect_node_major: int = DEFAULT_NODE_MAJOR
    reason: str | None = None

    @classmethod
    def from_params(cls, params):
        return request_from_params(cls, params)


def manage_dlq(params, request, check_mode=False, want_diff=False):
    """Count and trim a dead-letter queue of an explicit type (a DlqRequest); `params` are the connections (Redis,
    PostgreSQL for the audit):

    - list: an application list (the runbook's bull:dlq:outreach, LPUSHed): LLEN, LTRIM keeping the newest N;
    - failed: a queue's failed set, trimmed oldest first through BullMQ's removeJob script;
    - queue: a separate BullMQ queue whose waiting jobs are the dead letters; keep 0 drains it (delayed too),
      keep N removes the oldest waiting jobs beyond N through BullMQ.
    """
    dlq_type = request.dlq_type
    if dlq_type not in DLQ_TYPES:
        raise CerniqError("dlq_type {0!r} must be one of {1}".format(dlq_type, ", ".join(DLQ_TYPES)))
    keep = request.dlq_keep
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise CerniqError("dlq_keep {0!r} must be a non-negative integer (how many of the newest entries to "
                          "keep)".format(keep))
    if request.dlq_pattern is not None and dlq_type != "list":
        raise CerniqError("dlq_pattern goes with dlq_type=list (application lists), not dlq_type={0}".format(dlq_type))
    if request.reason is not None:
        params = dict(params, reason=request.reason)  # the audit trail's reason
    if dlq_type == "list":
        return _dlq_list(params, request, check_mode, want_diff)
    prefix = request.prefix or BULLMQ_PREFIX
    queue_name = validate_queue_name(request.queue)
    client = redis_client(params, params["bullmq_db"])
    depths = queue_depths(client, [queue_name], prefix)[queue_name]
    result = dict(changed=False, queue=queue_name, dlq_type=dlq_type, warnings=[])
    if not depths["exists"]:
        if request.allow_missing or keep is None:
            result["dlq"] = dict(type=dlq_type, queue=queue_name, exists=False, length=0, removed=0, keep=keep)
            return result
        raise missing_queue_error(queue_name, prefix, params, "trim")
    if dlq_type == "failed":
        entries_state = "failed"
    else:
        entries_state = "paused" if depths["is_paused"] and depths["paused"] else "wait"
    length = depths[entries_state]
    remove = 0 if keep is None else max(0, length - keep)
    dlq = dict(type=dlq_type, queue=queue_name, exists=True, state=entries_state, length=length, keep=keep,
               removed=remove, counts=state_counts(depths))
    result["dlq"] = dlq
    if want_diff:
        result["diff"] = dict(before=dict(length=length), after=dict(length=length - remove))
    if not remove:
        return result
    result["changed"] = True
    check_pairing(queue_name, depths, request.expect_node_major or DEFAULT_NODE_MAJOR)
    if check_mode:
        return result
    audit = RedisChangeAudit(params, "bullmq_queue", False)
    try:
        audit.prepare()
        if dlq_type == "queue" and keep == 0:
            run_with_queue(params, queue_name, prefix, lambda queue: queue.drain(True))
            dlq["removed"] = sum(depths[s] for s in PENDING_STATES)
        else:
            dlq["removed"] = run_with_queue(params, queue_name, prefix,
                                            lambda queue: _remove_oldest(queue, entries_state, remove))
        audit.record("bullmq_dlq_trim", queue_key(prefix, queue_name, entries_state),
                     before=dict(length=length), after=dict(kept=keep, removed=dlq["removed"], type=dlq_type))
    finally:
        audit.close()
    return result


async def _remove_oldest(queue, state, count):
    """Remove the `count` oldest jobs of a failed set (lowest finishedOn) or a wait list (its tail), in chunks."""
    removed = 0
    key = queue.keys[state]
    while removed < count:
        batch = min(MAX_CHUNK, count - removed)
        if state == "failed":
            ids = await queue.client.zrange(key, 0, batch - 1)
        else:
            ids = await queue.client.lrange(key, -batch, -1)
        if not ids:
            break
        done = await remove_jobs(queue, ids)
        removed += done
        if done == 0:
            break  # every candidate is locked by a worker: stop rather than spin
    return removed


def _dlq_list(params, request, check_mode, want_diff):
    if request.dlq_pattern is not None:
        return _dlq_lists(params, request, check_mode, want_diff)
    keep = request.dlq_keep
    key = request.dlq_key or DLQ_LIST_KEY
    push_side = request.dlq_push_side or "left"
    client = redis_client(params, params["bullmq_db"])
    where = client_where(client)
    with redis_errors(where):
        kind = client.type(key)
        if kind not in ("list", "none"):
            raise CerniqError("{0}: {1} is a {2}, not a list: dlq_type=list expects the application's dead-letter list "
                              "(LPUSH/RPUSH); if it is a BullMQ queue use dlq_type=queue or failed. Nothing was "
                              "changed".format(where, key, kind))
        length = client.llen(key)
    remove = 0 if keep is None else max(0, length - keep)
    result = dict(changed=bool(remove), dlq_type="list", warnings=[],
                  dlq=dict(type="list", key=key, exists=kind == "list", length=length, keep=keep, removed=remove,
                           push_side=push_side))
    if want_diff:
        result["diff"] = dict(before=dict(length=length), after=dict(length=length - remove))
    if not remove or check_mode:
        return result
    audit = RedisChangeAudit(params, "bullmq_queue", False)
    try:
        audit.prepare()
        with redis_errors(where):
            pipe = client.pipeline(transaction=True)
            pipe.llen(key)
            # LPUSH puts the newest at the head (keep 0..N-1), RPUSH at the tail (keep -N..-1); LTRIM with an empty
            # range deletes the key, which is what keep=0 means.
            if keep == 0:
                pipe.ltrim(key, 1, 0)
            elif push_side == "left":
                pipe.ltrim(key, 0, keep - 1)
            else:
                pipe.ltrim(key, -keep, -1)
            length_now = pipe.execute()[0]
        result["dlq"]["removed"] = max(0, length_now - keep)
        audit.record("bullmq_dlq_trim", key, before=dict(length=length_now),
                     after=dict(kept=keep, removed=result["dlq"]["removed"], push_side=push_side, type="list"))
    finally:
        audit.close()
    return result


# --- Dead-letter lists by pattern (runbook 8.1 step 3: every bull:dlq:* list) ----------------------------------

# Typed and atomic per key: a key that is no longer a list when its turn comes is reported, never touched.
_TRIM_LIST_LUA = """
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind ~= 'list' then return {kind, -1} end
local length = redis.call('LLEN', KEYS[1])
local keep = tonumber(ARGV[1])
if length <= keep then return {kind, length} end
if keep == 0 then redis.call('DEL', KEYS[1])
elseif ARGV[2] == 'left' then redis.call('LTRIM', KEYS[1], 0, keep - 1)
else redis.call('LTRIM', KEYS[1], -keep, -1) end
return {kind, length}
"""


def scan_dlq_lists(client, pattern, keep):
    """(lists, skipped) for every key matching `pattern`, found and typed as the reads find them (dlq_lists).

    lists: [{key, length, removed}] of plain lists; skipped: [{key, type, why}] of keys left alone (not a list, or a
    BullMQ queue's own list). More than DLQ_PATTERN_MAX_KEYS matching keys is refused before anything changes.
    """
    found = dlq_lists(client, pattern=pattern)
    if found["truncated"]:
        raise CerniqError("dlq_pattern {0!r} matches more than {1} keys: these are not a set of dead-letter lists; "
                          "give a narrower pattern. Nothing was changed".format(pattern, DLQ_PATTERN_MAX_KEYS))
    lists = [dict(key=e["key"], length=e["length"], removed=0 if keep is None else max(0, e["length"] - keep))
             for e in found["lists"]]
    skipped = [dict(s, why=s["why"] + ": never touched") for s in found["skipped"]]
    return lists, skipped


def _dlq_lists(params, request, check_mode, want_diff):
    """dlq_type=list with dlq_pattern: count every matching list and trim each to its newest `keep` entries."""
    keep = request.dlq_keep
    pattern = validate_dlq_pattern(request.dlq_pattern)
    push_side = request.dlq_push_side or "left"
    client = redis_client(params, params["bullmq_db"])
    where = client_where(client)
    with redis_errors(where):
        lists, skipped = scan_dlq_lists(client, pattern, keep)
    dlq = dict(type="list", pattern=pattern, keep=keep, push_side=push_side, lists=lists, skipped=skipped,
               length=sum(entry["length"] for entry in lists), removed=sum(entry["removed"] for entry in lists))
    result = dict(changed=dlq["removed"] > 0, dlq_type="list", warnings=[], dlq=dlq)
    result["warnings"].extend("{0}: {1} is a {2}, {3}".format(where, s["key"], s["type"], s["why"]) for s in skipped)
    if want_diff:
        result["diff"] = dict(before=dict((e["key"], e["length"]) for e in lists),
                              after=dict((e["key"], e["length"] - e["removed"]) for e in lists))
    if not dlq["removed"] or check_mode:
        return result
    audit = RedisChangeAudit(params, "bullmq_queue", False)
    try:
        audit.prepare()
        trim = client.register_script(_TRIM_LIST_LUA)
        for entry in lists:
            if not entry["removed"]:
                continue
            with redis_errors(where):
                kind, length_now = trim(keys=[entry["key"]], args=[keep, push_side])
            if length_now < 0:
                entry["removed"] = 0
                skipped.append(dict(key=entry["key"], type=kind, why="no longer a list when its turn came: never "
                                    "touched"))
                continue
            entry["removed"] = max(0, length_now - keep)
            entry["length"] = length_now
            audit.record("bullmq_dlq_trim", entry["key"], before=dict(length=length_now),
                         after=dict(kept=keep, removed=entry["removed"], push_side=push_side, type="list",
                                    pattern=pattern))
    finally:
        audit.close()
    dlq["lists"] = [e for e in lists if e["key"] not in set(s["key"] for s in skipped)]
    dlq["length"] = sum(e["length"] for e in dlq["lists"])
    dlq["removed"] = sum(e["removed"] for e in dlq["lists"])
    result["changed"] = dlq["removed"] > 0
    return result
