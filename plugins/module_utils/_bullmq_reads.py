# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading BullMQ queues with plain redis-py: a handful of pipelines for any number of queues (bullmq_queue_info).

Nothing here writes; writes go through the `bullmq` package (_bullmq_ops.py, _bullmq_jobs.py).
"""

from __future__ import annotations

import re

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    DELAYED_SCORE_SHIFT,
    LIST_STATES,
    MAX_CHUNK,
    PENDING_STATES,
    STATES,
    ZSET_STATES,
    client_where,
    clock_ms,
    int_or_none,
    job_key,
    node_address,
    node_client_name,
    queue_key,
    split_queue_key,
    validate_queue_name,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import (
    BULLMQ_REQUIREMENT,
    DEFAULT_NODE_MAJOR,
    installed_python_bullmq,
    pairing_problem,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_repeat import read_schedulers
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_client, redis_errors, redis_where
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    DLQ_LIST_KEY,
    DLQ_LIST_PATTERN,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import redis.exceptions as redis_exceptions
except ImportError:
    redis_exceptions = None


# --- Depths: one pipeline for any number of queues ---------------------------------------------------------------

def _queue_reads(pipe, prefix, name, now):
    """Queue the reads of one queue on `pipe`; returns how many replies they produce."""
    for state in LIST_STATES:
        pipe.llen(queue_key(prefix, name, state))
    for state in ZSET_STATES:
        pipe.zcard(queue_key(prefix, name, state))
    # Due but not yet promoted: score < now << 12 (the bound is exclusive, as Node's own promotion check).
    pipe.zcount(queue_key(prefix, name, "delayed"), "-inf", "({0}".format(now * DELAYED_SCORE_SHIFT))
    pipe.hmget(queue_key(prefix, name, "meta"), "paused", "version")
    pipe.exists(queue_key(prefix, name, "id"), queue_key(prefix, name, "meta"))
    return len(STATES) + 3


def _depths_from(name, replies, prefix, where):
    errors = [r for r in replies if isinstance(r, Exception)]
    if errors:
        text = str(errors[0])
        if "WRONGTYPE" in text:
            raise CerniqError("{0}: a key of queue {1} has the wrong Redis type ({2}); check what else writes "
                              "under {3}:{1}:*".format(where, name, text, prefix))
        raise CerniqError("{0} answered an error reading queue {1}: {2}".format(where, name, text))
    counts = dict(zip(STATES, replies[:len(STATES)]))
    due_delayed, (paused_flag, version), exists = replies[len(STATES):]
    counts.update({"due_delayed": due_delayed, "is_paused": paused_flag is not None, "version": version,
                   "exists": bool(exists) or any(counts[s] for s in STATES)})
    return counts


def queue_depths(client, queue_names, prefix=BULLMQ_PREFIX, now_ms=None):
    """One pipeline for any number of queues -> {name: {"wait", "paused", "active", "delayed", "prioritized",
    "waiting-children", "completed", "failed", "due_delayed", "is_paused", "version", "exists"}}.

    client: redis-py on the bullmq db. `version` is meta.version (`bullmq:<x.y.z>` written by Node Queues) or None;
    `exists` says whether the queue has an `id` counter, a `meta` hash or any job.
    """
    now = clock_ms() if now_ms is None else now_ms
    names = list(dict.fromkeys(queue_names))
    where = client_where(client)
    with redis_errors(where):
        pipe = client.pipeline(transaction=False)
        sizes = [_queue_reads(pipe, prefix, name, now) for name in names]
        replies = pipe.execute(raise_on_error=False) if names else []
    depths = {}
    offset = 0
    for name, size in zip(names, sizes):
        depths[name] = _depths_from(name, replies[offset:offset + size], prefix, where)
        offset += size
    return depths


def state_counts(depths):
    """Job counts by state out of queue_depths' answer for one queue."""
    return {state: depths[state] for state in STATES}


def queue_snapshot(depths, schedulers=None):
    """What a diff shows of a queue: counts by state, the paused flag and (given) its scheduler ids."""
    snapshot = state_counts(depths)
    snapshot["is_paused"] = depths["is_paused"]
    if schedulers is not None:
        snapshot["schedulers"] = sorted(s["id"] for s in schedulers)
    return snapshot


def pending_counts(depths, kept_by_schedulers=None):
    """What a drain with delayed=True removes, by state: the scheduler's next jobs stay."""
    kept = kept_by_schedulers or {}
    counts = {
        "waiting": depths["wait"] - kept.get("wait", 0),
        "paused": depths["paused"] - kept.get("paused", 0),
        "prioritized": depths["prioritized"] - kept.get("prioritized", 0),
        "delayed": depths["delayed"] - kept.get("delayed", 0),
    }
    counts["cancelled"] = sum(counts.values())
    return counts


def missing_queue_error(queue_name, prefix, params, action):
    """The error for an operation on a queue queue_depths found no trace of."""
    return CerniqError("queue {0} does not exist in {1} (no {2}:{0}:id, no meta, no jobs): nothing to {3}. Check the "
                       "name and prefix (bullmq_queue_info with pattern= lists queues), or set allow_missing=true "
                       "to accept a missing queue".format(queue_name, redis_where(params, params["bullmq_db"]),
                                                          prefix, action))


# --- Preflight, discovery, workers, the oldest waiting job ---------------------------------------------------------

def preflight(client):
    """BullMQ's production rules for Redis: maxmemory-policy noeviction (else Redis may evict job keys) and
    persistence on (else a restart loses every queue). CONFIG may be disabled on managed Redis: then say so."""
    pipe = client.pipeline(transaction=False)
    pipe.config_get("maxmemory-policy")
    pipe.config_get("save")
    pipe.info("persistence")
    policy, save, persistence = pipe.execute(raise_on_error=False)
    warnings = []
    result = dict(maxmemory_policy=None, rdb_save=None, aof_enabled=None, warnings=warnings)
    if isinstance(policy, Exception) or isinstance(save, Exception):
        warnings.append("could not read CONFIG ({0}): check yourself that maxmemory-policy is noeviction and "
                        "persistence is on".format(policy if isinstance(policy, Exception) else save))
    else:
        result["maxmemory_policy"] = policy.get("maxmemory-policy")
        result["rdb_save"] = save.get("save") or ""
        if result["maxmemory_policy"] != "noeviction":
            warnings.append("maxmemory-policy is {0}: BullMQ needs noeviction, or Redis may evict job keys under "
                            "memory pressure and lose jobs".format(result["maxmemory_policy"]))
    if not isinstance(persistence, Exception):
        result["aof_enabled"] = bool(persistence.get("aof_enabled"))
        if not result["aof_enabled"] and result["rdb_save"] == "":
            warnings.append("persistence is off (appendonly no, no RDB save points): a Redis restart loses every "
                            "queue; BullMQ recommends AOF (appendfsync everysec)")
    return result


def discover_queues(client, pattern="*", prefix=BULLMQ_PREFIX):
    """Queue names (key paths under `prefix`) whose `id` counter matches `<prefix>:<pattern>:id`, found by SCAN.

    Like BullMQ's own tools, a queue is discoverable once its `id` counter exists (after its first add). Keys that
    match but are not counters (a job whose id is `id`) are skipped: one TYPE pipeline for all of them.
    """
    where = client_where(client)
    with redis_errors(where):
        keys = sorted(set(client.scan_iter(match="{0}:{1}:id".format(prefix, pattern), count=1000)))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        types = pipe.execute() if keys else []
    head = len(prefix) + 1
    return [key[head:-len(":id")] for key, kind in zip(keys, types)
            if kind == "string" and split_queue_key(key) and len(key) > head + len(":id")]


def node_worker_counts(client, queue_names, prefix=BULLMQ_PREFIX):
    """{queue: connections} of Node BullMQ Queues/Workers, from one CLIENT LIST; None when CLIENT is disabled.

    Node names its connections `<prefix>:<base64(name)>` (workers may add `:w:<name>`), with the key path split
    into prefix and last segment.
    """
    try:
        clients = client.client_list()
    except redis_exceptions.ResponseError:
        return dict.fromkeys(queue_names)
    db = str(client.connection_pool.connection_kwargs.get("db", 0))
    counts = {}
    for name in queue_names:
        base = node_client_name(prefix, name)
        counts[name] = sum(1 for c in clients if c.get("db") == db and
                           (c.get("name") == base or c.get("name", "").startswith(base + ":w:")))
    return counts


def oldest_waiting_ms(client, queue_names, prefix=BULLMQ_PREFIX):
    """{queue: timestamp (ms) of its oldest waiting job, or None}: the tail of `wait` (BullMQ LPUSHes), two
    pipelines for any number of queues."""
    names = list(dict.fromkeys(queue_names))
    with redis_errors(client_where(client)):
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.lindex(queue_key(prefix, name, "wait"), -1)
        tails = pipe.execute() if names else []
        pipe = client.pipeline(transaction=False)
        for name, job_id in zip(names, tails):
            if job_id is not None:
                pipe.hget(job_key(prefix, name, job_id), "timestamp")
        stamps = iter(pipe.execute() if any(t is not None for t in tails) else [])
    return {name: (int_or_none(next(stamps)) if job_id is not None else None) for name, job_id in zip(names, tails)}


# --- Dead-letter lists: explicit keys and every list a pattern matches (the weekly trim finds them here too) -----

# More matching keys than this and a pattern is not a set of dead-letter lists: the trim refuses it, a read reads the
# first ones SCAN returned and says so.
DLQ_PATTERN_MAX_KEYS = 1000
_GLOB_CHARS_RE = re.compile(r"[*?\[\\]")


def validate_dlq_pattern(pattern):
    """A SCAN MATCH pattern with a literal prefix up to a ':' (bull:dlq:*), so it cannot reach the whole keyspace."""
    first_glob = _GLOB_CHARS_RE.search(pattern or "")
    literal = pattern[:first_glob.start()] if first_glob else (pattern or "")
    if not pattern or ":" not in literal:
        raise CerniqError("dlq_pattern {0!r} must start with a literal key prefix ending in ':' before any wildcard, "
                          "e.g. bull:dlq:* (every list it matches is a dead-letter list)".format(pattern))
    return pattern


def _scan_keys(client, pattern, max_keys):
    """(sorted keys, truncated): SCAN with MATCH, one round trip per page of MAX_CHUNK, stopping past max_keys."""
    keys = set()
    for key in client.scan_iter(match=pattern, count=MAX_CHUNK):
        if key not in keys:
            if len(keys) >= max_keys:
                return sorted(keys), True
            keys.add(key)
    return sorted(keys), False


def _queue_own_list(key):
    """The <prefix>:<queue> whose wait/paused/active list `key` would be, or None."""
    base, _sep, suffix = key.rpartition(":")
    return base if suffix in LIST_STATES and base else None


def dlq_lists(client, keys=(), pattern=None, max_keys=DLQ_PATTERN_MAX_KEYS):
    """The application dead-letter lists: the explicit `keys` and every list `pattern` matches.

    One SCAN round trip per page, then one pipeline (TYPE, LLEN and, for a name a BullMQ queue's list could have,
    EXISTS of its meta/id) for every key: never a round trip per key. Returns dict(lists, skipped, truncated):
    lists: [{key, type, length}], the explicit keys first in the order given (a missing one: type none, length 0;
    another type: length None, never read as a list), then the matched plain lists by key; skipped: [{key, type,
    why}] matched keys that are not dead-letter lists (why: not a list, or a BullMQ queue's own list), never read
    as lists; truncated: the pattern matched more than `max_keys` keys (only the first `max_keys` SCAN returned are in
    the answer).
    """
    keys = list(dict.fromkeys(keys or ()))
    where = client_where(client)
    with redis_errors(where):
        matched, truncated = _scan_keys(client, validate_dlq_pattern(pattern), max_keys) if pattern else ([], False)
        explicit = set(keys)
        matched = [key for key in matched if key not in explicit]
        pipe = client.pipeline(transaction=False)
        owners = {}
        for key in keys + matched:
            pipe.type(key)
            pipe.llen(key)
            owners[key] = None if key in explicit else _queue_own_list(key)
            if owners[key]:
                pipe.exists(owners[key] + ":meta", owners[key] + ":id")
        replies = iter(pipe.execute(raise_on_error=False) if keys or matched else [])
    lists, skipped = [], []
    for key in keys + matched:
        kind, length = next(replies), next(replies)
        queue_keys = next(replies) if owners[key] else 0
        if isinstance(kind, Exception):
            raise CerniqError("{0} answered an error reading {1}: {2}".format(where, key, kind))
        is_list = kind == "list" and not isinstance(length, Exception)
        if key in explicit:
            lists.append(dict(key=key, type=kind, length=length if is_list else (0 if kind == "none" else None)))
        elif kind == "none":
            continue  # expired or deleted since SCAN returned it
        elif not is_list:
            skipped.append(dict(key=key, type=kind, why="not a list"))
        elif queue_keys:
            skipped.append(dict(key=key, type=kind, why="a BullMQ queue's own list"))
        else:
            lists.append(dict(key=key, type=kind, length=length))
    return dict(lists=lists, skipped=skipped, truncated=truncated)


# --- bullmq_queue_info ------------------------------------------------------------------------------------------

def queue_info(params, *, queues=None, pattern=None, prefix=BULLMQ_PREFIX, include_schedulers=True,
               dlq_list_keys=(DLQ_LIST_KEY,), dlq_pattern=DLQ_LIST_PATTERN, expect_node_major=DEFAULT_NODE_MAJOR,
               check_preflight=True):
    """Everything about a list of queues or those matching a pattern, in a handful of pipelines for any number;
    the dead-letter lists are the explicit `dlq_list_keys` and every list `dlq_pattern` matches (None or "": none)."""
    if not queues and not pattern:
        raise CerniqError("give queues (a list of queue names such as q:wa:phone_07) or pattern (such as q:wa:*)")
    for name in queues or ():
        validate_queue_name(name)
    if dlq_pattern:
        validate_dlq_pattern(dlq_pattern)
    client = redis_client(params, params["bullmq_db"])
    names = list(dict.fromkeys(list(queues or []) + (discover_queues(client, pattern, prefix) if pattern else [])))
    depths = queue_depths(client, names, prefix)
    schedulers = read_schedulers(client, names, prefix) if include_schedulers else {}
    with redis_errors(client_where(client)):
        workers = node_worker_counts(client, names, prefix)
    python_version = installed_python_bullmq()
    oldest = oldest_waiting_ms(client, [n for n in names if depths[n]["wait"]], prefix)
    now = clock_ms()
    entries = []
    totals = dict.fromkeys(STATES + ("due_delayed",), 0)
    for name in names:
        d = depths[name]
        node_prefix, node_name = node_address(prefix, name)
        entry = dict(name=name, key_prefix="{0}:{1}".format(prefix, name), node_prefix=node_prefix,
                     node_name=node_name, exists=d["exists"], counts=state_counts(d), due_delayed=d["due_delayed"],
                     pending=sum(d[s] for s in PENDING_STATES), is_paused=d["is_paused"], version=d["version"],
                     workers=workers.get(name),
                     pairing_problem=pairing_problem(name, d["version"], expect_node_major, python_version)
                     if python_version else None)
        # The oldest waiting job (the tail of `wait`): how long the queue has kept someone waiting.
        entry["oldest_wait_ms"] = oldest.get(name)
        entry["oldest_wait_age_seconds"] = (max(0, now - oldest[name]) // 1000 if oldest.get(name) is not None
                                            else None)
        if include_schedulers:
            entry["schedulers"] = schedulers[name]
        entries.append(entry)
        for key in totals:
            totals[key] += d[key]
    dlq = dlq_lists(client, dlq_list_keys, dlq_pattern)
    result = dict(changed=False, queues=entries, totals=totals, python_bullmq=python_version,
                  dlq_lists=dlq["lists"], dlq_skipped=dlq["skipped"], dlq_pattern=dlq_pattern or None, warnings=[])
    if dlq["truncated"]:
        result["warnings"].append("{0}: dlq_pattern {1!r} matches more than {2} keys, only the first {2} SCAN returned "
                                  "were read: these are not a set of dead-letter lists; give a narrower "
                                  "pattern".format(client_where(client), dlq_pattern, DLQ_PATTERN_MAX_KEYS))
    if check_preflight:
        with redis_errors(client_where(client)):
            result["preflight"] = preflight(client)
        result["warnings"].extend(result["preflight"]["warnings"])
    if python_version is None:
        result["warnings"].append("the Python package bullmq is not installed here: reads work, writes need "
                                  "{0}".format(BULLMQ_REQUIREMENT))
    return result
