# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BullMQ queues: reads with plain redis-py in one pipeline, writes only through the `bullmq` package's Lua scripts.

Facts behind this file: ../shared/reference/bullmq.md. In short:
- keys are `<prefix>:<queue>:<suffix>`; a queue name with ':' is a key path (`q:wa:phone_07` with prefix `bull` is
  what Node workers open as prefix `bull:q:wa`, name `phone_07`);
- the Python package's major must pair with the Node workers' (Node v5 <-> Python 2.x, Node v6 <-> Python 3.x):
  mixing them loses jobs on pause/resume, so every write first reads `meta.version` and refuses on a mismatch;
- the `bullmq` package is asyncio only: each write runs in `asyncio.run`, with the Queue built on
  `async_redis_client()` (few retries, so a dead Redis fails in seconds). Bulk adds are the exception in transport
  only: the package still builds every addJob call, and JobWriter sends them on the synchronous client.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import gc
import json
import re
import sys
import time
import traceback
from datetime import datetime

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import RedisChangeAudit
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    async_redis_client,
    redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    DLQ_LIST_KEY,
    platform_zone,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import redis.exceptions as redis_exceptions
except ImportError:
    redis_exceptions = None

try:
    import bullmq
    from bullmq import Queue
    from bullmq.job import Job
    BULLMQ_IMPORT_ERROR = None
except ImportError:
    bullmq = Queue = Job = None
    BULLMQ_IMPORT_ERROR = traceback.format_exc()

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _package_version
except ImportError:  # pragma: no cover - Python < 3.8 targets are not supported
    _package_version = None
    PackageNotFoundError = Exception

# The Python port that pairs with each Node major, as a pip requirement.
PYTHON_PACKAGE_FOR_NODE_MAJOR = {5: "bullmq>=2.26,<3", 6: "bullmq>=3,<4"}
NODE_MAJOR_FOR_PYTHON_MAJOR = {2: 5, 3: 6}
DEFAULT_NODE_MAJOR = 5
BULLMQ_REQUIREMENT = "bullmq==2.26.0"

LIST_STATES = ("wait", "paused", "active")
ZSET_STATES = ("delayed", "prioritized", "waiting-children", "completed", "failed")
STATES = LIST_STATES + ZSET_STATES
# What a cancel/drain removes: everything not yet picked up by a worker.
PENDING_STATES = ("wait", "paused", "prioritized", "delayed")
# BullMQ's delayed score is (due_ms << 12) + a per-millisecond sequence number.
DELAYED_SCORE_SHIFT = 4096
# One drain Lua call blocks Redis about 1 s per 100k jobs.
LARGE_QUEUE_JOBS = 100000
MAX_CHUNK = 1000

_NODE_VERSION_RE = re.compile(r"^bullmq:(?P<major>[0-9]+)\.[0-9]+\.[0-9]+")
_ALL_DIGITS_RE = re.compile(r"^-?[0-9]+\Z")
_WHITESPACE_RE = re.compile(r"\s")


# --- Keys and names -------------------------------------------------------------------------------------------

def queue_key(prefix, queue_name, suffix):
    return "{0}:{1}:{2}".format(prefix, queue_name, suffix)


def job_key(prefix, queue_name, job_id):
    return queue_key(prefix, queue_name, job_id)


def node_address(prefix, queue_name):
    """(prefix, name) a Node worker uses for a key path: Node BullMQ >= 5.12.12 refuses ':' in queue names."""
    path = "{0}:{1}".format(prefix, queue_name)
    node_prefix, name = path.rsplit(":", 1)
    return node_prefix, name


def node_client_name(prefix, queue_name):
    """The CLIENT SETNAME of a Node Queue/Worker connection on this queue: `<prefix>:<base64(name)>`."""
    node_prefix, name = node_address(prefix, queue_name)
    return "{0}:{1}".format(node_prefix, base64.b64encode(name.encode("utf-8")).decode("ascii"))


def validate_queue_name(queue_name):
    if not queue_name or not isinstance(queue_name, str):
        raise CerniqError("a queue name is required (e.g. q:wa:phone_07)")
    if queue_name.startswith(":") or queue_name.endswith(":") or "::" in queue_name:
        raise CerniqError("queue name {0!r} has an empty key path segment: write it like q:wa:phone_07".format(
            queue_name))
    if any(ch in queue_name for ch in "*?[] \t\r\n"):
        raise CerniqError("queue name {0!r} contains a glob character or whitespace; use pattern= in "
                          "bullmq_queue_info to match several queues".format(queue_name))
    return queue_name


def validate_job_id(job_id):
    """Job ids Node BullMQ accepts: not all digits (they collide with generated ids), no ':' (key separator)."""
    if job_id is None or str(job_id) == "":
        raise CerniqError("a job has no id: give every job a deterministic id (e.g. fu-<lead>-<due_ms>) so that "
                          "re-adding it is a no-op")
    job_id = str(job_id)
    if _ALL_DIGITS_RE.match(job_id):
        raise CerniqError("job id {0!r} is an integer: BullMQ generates integer ids itself and Node refuses custom "
                          "ones ('Custom Id cannot be integers'); add a prefix, e.g. 'job-{0}'".format(job_id))
    if ":" in job_id:
        raise CerniqError("job id {0!r} contains ':': Node BullMQ refuses it ('Custom Id cannot contain :') and ':' "
                          "separates Redis key parts; use '-' instead".format(job_id))
    if _WHITESPACE_RE.search(job_id):
        raise CerniqError("job id {0!r} contains whitespace".format(job_id))
    return job_id


def split_queue_key(key):
    """(prefix, queue) of a `<prefix>:<queue>:id` key, split like BullMQ's tools (greedy `(.*):(.*):id`).

    The greedy split puts every ':' of a key path into the prefix, as Node sees it; joined back, prefix + name
    is the same key path either way.
    """
    match = re.match(r"^(.*):(.*):id\Z", key)
    if not match:
        return None
    return match.group(1), match.group(2)


# --- Version pairing -------------------------------------------------------------------------------------------

def installed_python_bullmq():
    """The installed `bullmq` distribution version, e.g. '2.26.0', or None."""
    if bullmq is None:
        return None
    if _package_version is not None:
        try:
            return _package_version("bullmq")
        except PackageNotFoundError:
            pass
    return getattr(bullmq, "__version__", None)


def _major(version):
    try:
        return int(str(version).split(".", 1)[0])
    except (TypeError, ValueError):
        return None


def pairing_problem(queue_name, meta_version, expect_node_major=DEFAULT_NODE_MAJOR, python_version=None):
    """Why writing to this queue with the installed Python bullmq would be unsafe, or None when it pairs.

    meta.version is written by Node Queues (`bullmq:<x.y.z>`); no meta.version means no Node Queue opened it yet
    (or Python created it), so the expected Node major decides.
    """
    python_version = python_version or installed_python_bullmq()
    python_major = _major(python_version)
    pairs_with = NODE_MAJOR_FOR_PYTHON_MAJOR.get(python_major)
    if meta_version:
        match = _NODE_VERSION_RE.match(meta_version)
        if not match:
            return ("queue {0} has meta.version {1!r}, not written by Node BullMQ (bullmq:<x.y.z>); refusing to "
                    "write with Python bullmq {2}, whose pairing with it is unknown".format(
                        queue_name, meta_version, python_version))
        node_major = int(match.group("major"))
        node_version = meta_version.split(":", 1)[1]
        if node_major != pairs_with:
            wanted = PYTHON_PACKAGE_FOR_NODE_MAJOR.get(node_major)
            fix = ("install {0} on the host running this module".format(wanted) if wanted else
                   "no Python bullmq release is known to pair with it")
            return ("queue {0} is managed by Node BullMQ {1}; {2} (this host has Python bullmq {3}, which pairs "
                    "with Node BullMQ {4}.x; mixing majors loses jobs on pause/resume)".format(
                        queue_name, node_version, fix, python_version, pairs_with))
        return None
    if expect_node_major != pairs_with:
        wanted = PYTHON_PACKAGE_FOR_NODE_MAJOR.get(expect_node_major, "a matching bullmq")
        return ("the workers are expected to run Node BullMQ {0}.x (expect_node_major) but this host has Python "
                "bullmq {1}, which pairs with Node BullMQ {2}.x; install {3} on the host running this module".format(
                    expect_node_major, python_version, pairs_with, wanted))
    return None


def require_bullmq():
    if bullmq is None:
        raise CerniqError("the Python package bullmq is not installed on the host running this module: install "
                          "{0} (it pairs with the platform's Node BullMQ 5 workers)".format(BULLMQ_REQUIREMENT))


# --- Reads: one pipeline for any number of queues --------------------------------------------------------------

def _now_ms():
    return int(time.time() * 1000)


def _queue_reads(pipe, prefix, name, now_ms):
    """Queue the reads of one queue on `pipe`; returns how many replies they produce."""
    for state in LIST_STATES:
        pipe.llen(queue_key(prefix, name, state))
    for state in ZSET_STATES:
        pipe.zcard(queue_key(prefix, name, state))
    # Due but not yet promoted: score < now << 12 (the bound is exclusive, as Node's own promotion check).
    pipe.zcount(queue_key(prefix, name, "delayed"), "-inf", "({0}".format(now_ms * DELAYED_SCORE_SHIFT))
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
    now_ms = _now_ms() if now_ms is None else now_ms
    names = list(dict.fromkeys(queue_names))
    where = _client_where(client)
    with redis_errors(where):
        pipe = client.pipeline(transaction=False)
        sizes = [_queue_reads(pipe, prefix, name, now_ms) for name in names]
        replies = pipe.execute(raise_on_error=False) if names else []
    depths = {}
    offset = 0
    for name, size in zip(names, sizes):
        depths[name] = _depths_from(name, replies[offset:offset + size], prefix, where)
        offset += size
    return depths


def _client_where(client):
    kwargs = client.connection_pool.connection_kwargs
    return "Redis at {0}:{1} (db {2})".format(kwargs.get("host"), kwargs.get("port"), kwargs.get("db", 0))


def repeat_entries(client, names, prefix=BULLMQ_PREFIX):
    """[(queue, scheduler_id, next_millis)] of every queue's `repeat` set, in one pipeline."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.zrange(queue_key(prefix, name, "repeat"), 0, -1, withscores=True)
    replies = pipe.execute() if names else []
    return [(name, scheduler_id, int(millis)) for name, entries in zip(names, replies)
            for scheduler_id, millis in entries]


def scheduler_jobs_pending(client, queue_names, prefix=BULLMQ_PREFIX):
    """{queue: {state: n}}: each job scheduler's next job sitting in a pending state (drain keeps those).

    Two pipelines for any number of queues: the `repeat` sets, then one lookup per scheduler.
    """
    names = list(dict.fromkeys(queue_names))
    with redis_errors(_client_where(client)):
        entries = repeat_entries(client, names, prefix)
        pipe = client.pipeline(transaction=False)
        for name, scheduler_id, millis in entries:
            job_id = "repeat:{0}:{1}".format(scheduler_id, millis)
            pipe.zscore(queue_key(prefix, name, "delayed"), job_id)
            pipe.zscore(queue_key(prefix, name, "prioritized"), job_id)
            pipe.lpos(queue_key(prefix, name, "wait"), job_id)
            pipe.lpos(queue_key(prefix, name, "paused"), job_id)
        found = pipe.execute() if entries else []
    result = {name: dict.fromkeys(PENDING_STATES, 0) for name in names}
    for index, (name, _id, _millis) in enumerate(entries):
        for state, hit in zip(("delayed", "prioritized", "wait", "paused"), found[index * 4:index * 4 + 4]):
            if hit is not None:
                result[name][state] += 1
    return result


# --- Running the bullmq package ---------------------------------------------------------------------------------

def run_with_queue(params, queue_name, prefix, work):
    """Run `await work(queue)` on a bullmq Queue for `queue_name`, in a fresh event loop; Redis errors -> one line."""
    require_bullmq()
    db = params["bullmq_db"]

    async def runner():
        queue = Queue(queue_name, {"connection": async_redis_client(params, db), "prefix": prefix})
        try:
            return await work(queue)
        finally:
            await queue.close()

    with redis_errors(redis_where(params, db)):
        return asyncio.run(runner())


def check_pairing(queue_name, depths, expect_node_major=DEFAULT_NODE_MAJOR):
    problem = pairing_problem(queue_name, depths.get("version"), expect_node_major)
    if problem:
        raise CerniqError(problem)


def with_warnings(module, result):
    """Hand a core result's `warnings` to module.warn (exit_json no longer takes them) and return the rest."""
    for warning in result.pop("warnings", None) or ():
        module.warn(warning)
    return result


# --- Cancel a queue's pending jobs (wa_phone ban) ---------------------------------------------------------------

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


def cancel_pending_jobs(params, queue_name, check_mode, prefix=BULLMQ_PREFIX,
                        expect_node_major=DEFAULT_NODE_MAJOR, audit=None, reason=None):
    """Remove a queue's pending jobs (wait, paused, prioritized, delayed; never the active job) through BullMQ's own
    scripts (drain with delayed=True), refusing on a version mismatch.

    Returns {"waiting", "paused", "prioritized", "delayed", "cancelled"} counts (computed before, the same in check
    mode). A queue that does not exist -> zeros. Job schedulers keep their next job (BullMQ's drain does).
    With `audit` (an AuditTrail), records one `bullmq_cancel_pending` row on it after Redis accepted the drain;
    the caller commits it. Without, the caller records the returned counts in its own audit row.
    """
    validate_queue_name(queue_name)
    client = redis_client(params, params["bullmq_db"])
    depths = queue_depths(client, [queue_name], prefix)[queue_name]
    zeros = dict.fromkeys(("waiting", "paused", "prioritized", "delayed", "cancelled"), 0)
    if not depths["exists"]:
        return zeros
    counts = pending_counts(depths, scheduler_jobs_pending(client, [queue_name], prefix)[queue_name])
    if counts["cancelled"] == 0:
        return counts
    check_pairing(queue_name, depths, expect_node_major)
    if check_mode:
        return counts

    async def drain(queue):
        await queue.drain(True)

    run_with_queue(params, queue_name, prefix, drain)
    if audit is not None:
        audit.record("bullmq_cancel_pending", queue_key(prefix, queue_name, "*"), reason=reason,
                     before=_state_counts(depths), after=dict(counts))
    return counts


def _state_counts(depths):
    return {state: depths[state] for state in STATES}


# --- Preflight, discovery, schedulers, workers (reads) ----------------------------------------------------------

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
    where = _client_where(client)
    with redis_errors(where):
        keys = sorted(set(client.scan_iter(match="{0}:{1}:id".format(prefix, pattern), count=1000)))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        types = pipe.execute() if keys else []
    head = len(prefix) + 1
    return [key[head:-len(":id")] for key, kind in zip(keys, types)
            if kind == "string" and split_queue_key(key) and len(key) > head + len(":id")]


def _iso_ms(millis):
    if millis is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(millis) / 1000.0))


def read_schedulers(client, queue_names, prefix=BULLMQ_PREFIX):
    """{queue: [scheduler]} for any number of queues: one pipeline of ZRANGE repeat, one of HGETALL repeat:<id>."""
    names = list(dict.fromkeys(queue_names))
    with redis_errors(_client_where(client)):
        members = repeat_entries(client, names, prefix)
        pipe = client.pipeline(transaction=False)
        for name, scheduler_id, _millis in members:
            pipe.hgetall(queue_key(prefix, name, "repeat:{0}".format(scheduler_id)))
        hashes = pipe.execute() if members else []
    result = {name: [] for name in names}
    for (name, scheduler_id, millis), fields in zip(members, hashes):
        result[name].append(_scheduler_view(scheduler_id, millis, fields))
    return result


def _scheduler_view(scheduler_id, next_ms, fields):
    if not fields or "ic" not in fields:
        # A legacy repeatable job (Node BullMQ 5 `Queue.add(name, data, {repeat})`), not a job scheduler: the
        # scheduler script always stores `ic` (its iteration count), the repeatable-job script never does.
        return legacy_repeat_view(scheduler_id, next_ms, fields)
    view = dict(id=scheduler_id, next_ms=next_ms, next=_iso_ms(next_ms), legacy=False, name=fields.get("name"),
                pattern=fields.get("pattern"), every=_int_or_none(fields.get("every")), tz=fields.get("tz"),
                iteration_count=_int_or_none(fields.get("ic")),
                next_job_id="repeat:{0}:{1}".format(scheduler_id, next_ms),
                data=_json_or_raw(fields.get("data"), {}), opts=_json_or_raw(fields.get("opts"), {}))
    for extra in ("limit", "startDate", "endDate", "offset"):
        if extra in fields:
            view[extra] = _int_or_none(fields[extra])
    return view


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _json_or_raw(value, empty):
    if value in (None, ""):
        return empty
    try:
        return json.loads(value)
    except ValueError:
        return value


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


def queue_info(params, queues=None, pattern=None, prefix=BULLMQ_PREFIX, include_schedulers=True,
               dlq_list_keys=(DLQ_LIST_KEY,), expect_node_major=DEFAULT_NODE_MAJOR, check_preflight=True):
    """Everything about a list of queues or those matching a pattern, in a handful of pipelines for any number."""
    if not queues and not pattern:
        raise CerniqError("give queues (a list of queue names such as q:wa:phone_07) or pattern (such as q:wa:*)")
    for name in queues or ():
        validate_queue_name(name)
    client = redis_client(params, params["bullmq_db"])
    names = list(dict.fromkeys(list(queues or []) + (discover_queues(client, pattern, prefix) if pattern else [])))
    depths = queue_depths(client, names, prefix)
    schedulers = read_schedulers(client, names, prefix) if include_schedulers else {}
    with redis_errors(_client_where(client)):
        workers = node_worker_counts(client, names, prefix)
    python_version = installed_python_bullmq()
    oldest = oldest_waiting_ms(client, [n for n in names if depths[n]["wait"]], prefix)
    now_ms = _now_ms()
    entries = []
    totals = dict.fromkeys(STATES + ("due_delayed",), 0)
    for name in names:
        d = depths[name]
        node_prefix, node_name = node_address(prefix, name)
        entry = dict(name=name, key_prefix="{0}:{1}".format(prefix, name), node_prefix=node_prefix,
                     node_name=node_name, exists=d["exists"], counts=_state_counts(d), due_delayed=d["due_delayed"],
                     pending=sum(d[s] for s in PENDING_STATES), is_paused=d["is_paused"], version=d["version"],
                     workers=workers.get(name),
                     pairing_problem=pairing_problem(name, d["version"], expect_node_major, python_version)
                     if python_version else None)
        # The oldest waiting job (the tail of `wait`): how long the queue has kept someone waiting.
        entry["oldest_wait_ms"] = oldest.get(name)
        entry["oldest_wait_age_seconds"] = (max(0, now_ms - oldest[name]) // 1000 if oldest.get(name) is not None
                                            else None)
        if include_schedulers:
            entry["schedulers"] = schedulers[name]
        entries.append(entry)
        for key in totals:
            totals[key] += d[key]
    result = dict(changed=False, queues=entries, totals=totals, python_bullmq=python_version,
                  dlq_lists=dlq_list_lengths(client, dlq_list_keys), warnings=[])
    if check_preflight:
        with redis_errors(_client_where(client)):
            result["preflight"] = preflight(client)
        result["warnings"].extend(result["preflight"]["warnings"])
    if python_version is None:
        result["warnings"].append("the Python package bullmq is not installed here: reads work, writes need "
                                  "{0}".format(BULLMQ_REQUIREMENT))
    return result


def dlq_list_lengths(client, keys):
    """[{key, type, length}] for application dead-letter lists; a key of another type is reported, not read."""
    keys = list(keys or ())
    with redis_errors(_client_where(client)):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
            pipe.llen(key)
        replies = pipe.execute(raise_on_error=False) if keys else []
    result = []
    for index, key in enumerate(keys):
        kind, length = replies[index * 2:index * 2 + 2]
        result.append(dict(key=key, type=kind, length=length if kind == "list" else (0 if kind == "none" else None)))
    return result


# --- Validating write requests (everything checked before the first change) -------------------------------------

# Options the module sets itself; a job's own opts must not carry them.
_RESERVED_JOB_OPTS = ("jobId", "delay", "repeat", "parent", "timestamp", "prevMillis", "repeatJobKey")
PRIORITY_LIMIT = 2 ** 21
# Epoch milliseconds below this (1973) are almost certainly seconds: a job due "in 1970" would run at once.
_SMALLEST_EPOCH_MS = 10 ** 11


def parse_due_ms(value, tz_name, job_id):
    """Epoch ms of an absolute due time: epoch milliseconds, or ISO 8601 (a naive one is in the platform zone)."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
        millis = int(value)
        if millis < _SMALLEST_EPOCH_MS:
            raise CerniqError("job {0}: due_at {1!r} looks like epoch seconds; give epoch milliseconds or an ISO 8601 "
                              "time".format(job_id, value))
        return millis
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=platform_zone(tz_name))
            return int(moment.timestamp() * 1000)
    raise CerniqError("job {0}: due_at {1!r} is neither epoch milliseconds nor an ISO 8601 time such as "
                      "2026-11-25T09:00:00+02:00".format(job_id, value))


def _validate_job_opts(opts, where):
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        raise CerniqError("{0}: opts must be a dictionary of BullMQ job options".format(where))
    reserved = [key for key in _RESERVED_JOB_OPTS if key in opts]
    if reserved:
        raise CerniqError("{0}: opts may not set {1}; use the job's id, due_at or delay_ms (and scheduler= for "
                          "repeats)".format(where, ", ".join(reserved)))
    priority = opts.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                 or not 0 <= priority <= PRIORITY_LIMIT):
        raise CerniqError("{0}: priority {1!r} must be an integer from 0 to {2}".format(
            where, priority, PRIORITY_LIMIT))
    return dict(opts)


def prepare_jobs(jobs, default_name, default_opts, tz_name):
    """Validated job specs: id, name, data, opts, due_ms or delay_ms. Refuses duplicates within the request."""
    defaults = _validate_job_opts(default_opts, "job_opts")
    prepared = []
    seen = set()
    for index, job in enumerate(jobs or ()):
        if not isinstance(job, dict):
            raise CerniqError("jobs[{0}] is not a dictionary with at least an id".format(index))
        job_id = validate_job_id(job.get("id"))
        if job_id in seen:
            raise CerniqError("job id {0!r} appears twice in jobs: BullMQ keeps only the first (re-adding an id is a "
                              "no-op), so the second would be silently dropped".format(job_id))
        seen.add(job_id)
        opts = dict(defaults)
        opts.update(_validate_job_opts(job.get("opts"), "job {0}".format(job_id)))
        due_at, delay_ms = job.get("due_at"), job.get("delay_ms")
        if due_at is not None and delay_ms is not None:
            raise CerniqError("job {0}: give due_at or delay_ms, not both".format(job_id))
        if delay_ms is not None and (isinstance(delay_ms, bool) or not isinstance(delay_ms, int) or delay_ms < 0):
            raise CerniqError("job {0}: delay_ms {1!r} must be a non-negative integer".format(job_id, delay_ms))
        data = job.get("data")
        try:
            json.dumps(data, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise CerniqError("job {0}: data is not JSON ({1})".format(job_id, exc)) from exc
        prepared.append(dict(id=job_id, name=job.get("name") or default_name, data={} if data is None else data,
                             opts=opts, due_ms=None if due_at is None else parse_due_ms(due_at, tz_name, job_id),
                             delay_ms=delay_ms or 0))
    return prepared


def _cron_fields(pattern):
    return pattern.split()


def croniter_pattern(pattern):
    """The pattern as croniter reads it. Node's cron-parser puts seconds FIRST in a 6-field pattern, croniter LAST:
    the first run (computed here) and the later ones (computed by the Node worker) must agree."""
    fields = _cron_fields(pattern)
    if len(fields) == 6:
        return " ".join(fields[1:] + fields[:1])
    return pattern


def node_compatible_repeat_strategy(millis, opts):
    """bullmq's default cron strategy, reading 6-field patterns with seconds first as the Node workers do."""
    from bullmq.job_scheduler import default_repeat_strategy

    translated = dict(opts)
    if translated.get("pattern"):
        translated["pattern"] = croniter_pattern(translated["pattern"])
    return default_repeat_strategy(millis, translated)


def prepare_scheduler(spec, tz_name):
    """A validated scheduler request: id, state, pattern or every, tz (always explicit), job name, data, opts."""
    if not spec:
        return None
    scheduler_id = spec.get("id")
    if not scheduler_id or ":" in scheduler_id or any(ch.isspace() for ch in scheduler_id):
        raise CerniqError("scheduler id {0!r} must be a non-empty name without ':' or spaces (its jobs are "
                          "repeat:<id>:<millis>)".format(scheduler_id))
    state = spec.get("state") or "present"
    if state == "absent":
        return dict(id=scheduler_id, state=state)
    pattern, every = spec.get("pattern"), spec.get("every")
    if bool(pattern) == bool(every):
        raise CerniqError("scheduler {0}: give exactly one of pattern (cron) or every (milliseconds)".format(
            scheduler_id))
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every <= 0):
        raise CerniqError("scheduler {0}: every {1!r} must be a positive number of milliseconds".format(
            scheduler_id, every))
    tz = spec.get("tz") or tz_name
    platform_zone(tz)
    if pattern:
        from croniter import croniter

        if len(_cron_fields(pattern)) not in (5, 6) or not croniter.is_valid(croniter_pattern(pattern)):
            raise CerniqError("scheduler {0}: pattern {1!r} is not a cron expression of 5 fields (minute hour day "
                              "month weekday) or 6 (seconds first, as Node BullMQ reads it)".format(
                                  scheduler_id, pattern))
    data = spec.get("data")
    other_schedules = spec.get("other_schedules") or "ignore"
    if other_schedules not in OTHER_SCHEDULES:
        raise CerniqError("scheduler {0}: other_schedules {1!r} must be one of {2}".format(
            scheduler_id, other_schedules, ", ".join(OTHER_SCHEDULES)))
    return dict(id=scheduler_id, state=state, pattern=pattern or None, every=every if not pattern else None,
                tz=tz, job_name=spec.get("job_name") or scheduler_id, data={} if data is None else data,
                opts=_validate_job_opts(spec.get("opts"), "scheduler {0}".format(scheduler_id)),
                other_schedules=other_schedules)


def scheduler_differs(wanted, stored):
    """Field names that differ between a wanted scheduler and its stored `repeat:<id>` hash (empty: up to date)."""
    if not stored or stored.get("legacy"):
        return ["(new)"]
    from bullmq.job import optsEncodeMap

    wanted_fields = dict(name=wanted["job_name"], pattern=wanted["pattern"], every=wanted["every"], tz=wanted["tz"],
                         data=wanted["data"], opts={optsEncodeMap.get(k, k): v for k, v in wanted["opts"].items()})
    differs = [field for field, value in wanted_fields.items() if stored.get(field) != value]
    # The script stores offset 0 for a pattern; any other of these was set by someone else and we do not manage it.
    differs += [field for field in ("limit", "startDate", "endDate", "offset") if stored.get(field) not in (None, 0)]
    return differs


# --- Legacy repeatable jobs (Node BullMQ 5 `Queue.add(name, data, {repeat})`, the runbook's registration) ---------

# What `other_schedules` of a scheduler request may be: the queue's other registrations are ignored (a second schedule
# may be created beside them), kept (ours is not created while another exists), or legacy ones migrated to ours.
OTHER_SCHEDULES = ("ignore", "keep", "migrate")


def _md5(text):
    import hashlib

    return hashlib.md5(text.encode("utf-8")).hexdigest()  # nosec - BullMQ's own key derivation, not security


def legacy_repeat_view(key, next_ms, fields):
    """A legacy repeatable job as Node BullMQ 5 stores it in the queue's `repeat` set.

    BullMQ >= 5 (repeat.js `updateRepeatableJob`): the member is md5("name:jobId:endDate:tz:pattern"), a
    `repeat:<md5>` hash has name, pattern or every, tz, endDate (never `ic`), and the next job is
    `repeat:<md5>:<millis>`. Older registrations (BullMQ <= 3, kept working by v5): the member is the
    "name:jobId:endDate:tz:pattern" string itself, no hash, and the next job is repeat:md5(name + md5(key)):<millis>.
    """
    if fields:
        name, pattern, tz = fields.get("name"), fields.get("pattern"), fields.get("tz")
        every, end_date = _int_or_none(fields.get("every")), _int_or_none(fields.get("endDate"))
        next_job_id = "repeat:{0}:{1}".format(key, next_ms)
    else:
        parts = key.split(":")
        name = parts[0]
        end_date = _int_or_none(parts[2]) if len(parts) > 2 else None
        tz = (parts[3] or None) if len(parts) > 3 else None
        suffix = ":".join(parts[4:])
        pattern, every = (None, int(suffix)) if suffix.isdigit() else (suffix or None, None)
        next_job_id = _old_format_job_id_prefix(name, key) + str(next_ms)
    return dict(id=key, legacy=True, name=name, pattern=pattern, every=every, tz=tz, endDate=end_date,
                next_ms=next_ms, next=_iso_ms(next_ms), next_job_id=next_job_id, key_format="hash" if fields else "key")


def _old_format_job_id_prefix(name, key):
    return "repeat:{0}:".format(_md5(name + _md5(key)))


def schedule_summary(view):
    """One registration on a queue in words: a job scheduler or a legacy repeatable job, with its timing."""
    kind = "legacy repeatable job" if view.get("legacy") else "job scheduler"
    timing = view.get("pattern") or ("every {0} ms".format(view["every"]) if view.get("every") else "?")
    return "{0} {1} ({2}, {3}, next {4})".format(kind, view["id"], timing,
                                                 view.get("tz") or "no tz: the worker host's local time",
                                                 view.get("next"))


async def remove_legacy_repeatables(queue, views):
    """Remove legacy repeatable jobs with BullMQ's own removeRepeatable script (shipped in the bullmq package):
    the `repeat` entry, its hash and its next delayed job. [(key, removed, next job gone)]."""
    from bullmq.redis_connection import loadScript

    script = queue.client.register_script(loadScript("removeRepeatable-3.lua"))
    done = []
    for view in views:
        key = view["id"]
        old_format = view["key_format"] == "key"
        # The same arguments as Node's removeRepeatableByKey, with the old-format job id prefix so an old-format
        # registration's next job goes too.
        reply = await script(keys=[queue.keys["repeat"], queue.keys["delayed"], queue.keys["events"]],
                             args=[_old_format_job_id_prefix(view["name"], key) if old_format else "",
                                   key if old_format else "", key, queue.keys[""]])
        gone = not await queue.client.exists(queue.toKey(view["next_job_id"]))
        done.append((key, reply == 0, gone))
    return done


def _scheduler_others(ctx, spec):
    """The queue's registrations other than the requested scheduler: (all, legacy ones, other job schedulers)."""
    others = [s for s in ctx["schedulers"] if s["id"] != spec["id"]]
    return others, [s for s in others if s.get("legacy")], [s for s in others if not s.get("legacy")]


def _migrate_legacy(ctx, spec, legacy, stored):
    """After ours is in place: remove each legacy repeatable job it replaces, audited one by one."""
    result = ctx["result"]
    result["scheduler"]["migrated"] = list(legacy)
    result["changed"] = True
    if ctx["check_mode"]:
        return
    outcome = run_with_queue(ctx["params"], ctx["queue"], ctx["prefix"],
                             lambda queue: remove_legacy_repeatables(queue, legacy))
    failed = []
    for view, (key, removed, gone) in zip(legacy, outcome):
        ctx["audit"].record("bullmq_migrate_legacy_repeat", _target(ctx), before=view,
                            after=dict(removed=removed, next_job_removed=gone, replaced_by=spec["id"],
                                       scheduler=dict(pattern=spec["pattern"], every=spec["every"], tz=spec["tz"])))
        if not (removed and gone):
            failed.append(key)
    if failed:
        raise CerniqError("queue {0}: job scheduler {1} is in place, but legacy repeatable job(s) {2} could not be "
                          "removed completely (their next job may be running): both schedules exist now; re-run "
                          "the migration".format(ctx["queue"], spec["id"], ", ".join(failed)))


# --- Writes through the bullmq package ---------------------------------------------------------------------------

class _RecordedScriptCalls(object):
    """Stands in for a redis pipeline while the bullmq package adds jobs, keeping the EVALSHA commands it issues.

    The package still picks the script (delayed, prioritized or standard), its keys and its packed arguments; only
    the sending moves to JobWriter's synchronous pipeline."""

    def __init__(self):
        self.commands = []

    async def evalsha(self, sha, numkeys, *keys_and_args):
        self.commands.append(("EVALSHA", sha, numkeys) + keys_and_args)


class JobWriter(object):
    """Adds prepared jobs in chunks through the bullmq package's addJob scripts, one chunk in flight at a time.

    Each chunk's commands come from the package (Job objects, `Scripts.addJob`) and go out as one plain
    (non-transactional) pipeline on the synchronous redis-py client: Python's addBulk wraps a chunk in MULTI/EXEC,
    which holds Redis for the whole chunk, while a plain pipeline lets other clients in between the scripts (Node's
    addBulk does the same). The synchronous client packs commands with hiredis in C (redis.asyncio packs them in
    Python, about 20 us a job), and a thread sends chunk N while chunk N+1 is being built, so client and server
    work at the same time instead of taking turns. Chunks are keyed by job ids: one cut short by a failure is
    completed by re-running. Delays are computed from absolute due times right before each chunk is built, with
    the job's timestamp pinned to that instant, so a job's due time is exactly what was asked.

    Use as a context manager; leaving it waits for the chunk in flight. `confirmed` counts the jobs Redis answered
    for (added now or already there).
    """

    # Two chunks in flight keep Redis busy while the client packs one and reads the other's replies.
    IN_FLIGHT = 2
    SWITCH_INTERVAL = 0.001

    def __init__(self, queue, client, where):
        from concurrent.futures import ThreadPoolExecutor

        self._queue = queue
        self._client = client
        self._where = where
        self._scripts = dict((command.sha, command.script) for command in queue.redisConnection.commands.values())
        self._loaded = set()
        self._executor = ThreadPoolExecutor(max_workers=self.IN_FLIGHT)
        self._in_flight = collections.deque()
        self.confirmed = 0
        self._switch_interval = None

    def __enter__(self):
        # A sending thread needs the GIL for every batch of replies that arrives; by default it waits up to 5 ms
        # for the thread building the next chunk to let go, long enough for Redis to run out of work.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, self.SWITCH_INTERVAL))
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.wait()
            for future in self._in_flight:
                # The first failure is the one to report; the chunks in flight only have to end.
                future.exception()
        finally:
            self._executor.shutdown(wait=True)
            sys.setswitchinterval(self._switch_interval)

    async def add(self, jobs):
        """Build the chunk's addJob calls, wait for the previous chunk's replies, then send this chunk."""
        now_ms = _now_ms()
        calls = _RecordedScriptCalls()
        for spec in jobs:
            opts = dict(spec["opts"], jobId=spec["id"])
            delay = spec["delay_ms"] if spec["due_ms"] is None else max(0, spec["due_ms"] - now_ms)
            if delay:
                opts["delay"] = delay
            job = Job(self._queue, spec["name"], spec["data"], opts)
            job.timestamp = now_ms
            await self._queue.scripts.addJob(job, calls)
        self.wait(self.IN_FLIGHT - 1)
        self._in_flight.append(self._executor.submit(self._send, calls.commands))

    def wait(self, leave=0):
        """Block until no more than `leave` chunks are in flight (raising the first failure, if any)."""
        while len(self._in_flight) > leave:
            self.confirmed += self._in_flight[0].result()
            self._in_flight.popleft()

    def _load_scripts(self, commands, force=False):
        shas = sorted(set(command[1] for command in commands) - (set() if force else self._loaded))
        if not shas:
            return
        for sha, known in zip(shas, self._client.script_exists(*shas)):
            if force or not known:
                self._client.script_load(self._scripts[sha])
        self._loaded.update(shas)

    def _execute(self, commands):
        pipe = self._client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return pipe.execute(raise_on_error=False)

    def _send(self, commands):
        with redis_errors(self._where):
            self._load_scripts(commands)
            replies = self._execute(commands)
            if any(isinstance(reply, redis_exceptions.NoScriptError) for reply in replies):
                # A SCRIPT FLUSH or a restart in between: load again and resend; re-adding an id is a no-op.
                self._load_scripts(commands, force=True)
                replies = self._execute(commands)
        for command, reply in zip(commands, replies):
            if isinstance(reply, Exception) or (isinstance(reply, int) and reply < 0):
                problem = reply if isinstance(reply, Exception) else self._queue.scripts.finishedErrors(
                    dict(code=reply, command="addJob"))
                raise CerniqError("{0}: adding job {1!r} failed: {2}".format(
                    self._where, _job_id_of(command), problem))
        return len(replies)


def _job_id_of(command):
    """The job id inside a recorded addJob call (the first argument after the keys is the packed job fields)."""
    import msgpack

    try:
        return msgpack.unpackb(command[3 + command[2]])[1]
    except Exception:  # pylint: disable=broad-except
        return "?"


async def add_job_chunks(queue, client, where, jobs, chunk_size=MAX_CHUNK):
    """Add prepared jobs through a JobWriter, chunk by chunk; returns how many Redis confirmed."""
    chunk_size = max(1, min(int(chunk_size), MAX_CHUNK))
    with JobWriter(queue, client, where) as writer:
        for start in range(0, len(jobs), chunk_size):
            await writer.add(jobs[start:start + chunk_size])
    return writer.confirmed


async def remove_jobs(queue, job_ids, chunk_size=MAX_CHUNK):
    """Remove jobs by id with BullMQ's removeJob script (all states, its hash, logs and dependencies), pipelined in
    chunks: never a raw ZREM/LREM that would orphan job hashes. A locked (active) job is left alone."""
    script = queue.redisConnection.commands["removeJob"]
    removed = 0
    for start in range(0, len(job_ids), chunk_size):
        async with queue.client.pipeline(transaction=False) as pipe:
            for job_id in job_ids[start:start + chunk_size]:
                # The same arguments as bullmq's Scripts.remove(job_id, remove_children=True).
                await script(keys=[queue.toKey(job_id), queue.keys["repeat"]], args=[job_id, 1, queue.keys[""]],
                             client=pipe)
            removed += sum(1 for reply in await pipe.execute() if reply == 1)
    return removed


# KEYS: any keys. Their types, in order. Reads only.
_KEY_TYPES_LUA = """
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('TYPE', KEYS[i])['ok']
end
return out
"""


def _key_types(client, keys, chunk_size=10 * MAX_CHUNK):
    """The type of each key, one read-only script call per 10,000 keys (a few ms of Redis each): a TYPE command per
    key costs the client more in packing and parsing than Redis spends answering it."""
    script = client.register_script(_KEY_TYPES_LUA)
    types = []
    for start in range(0, len(keys), chunk_size):
        types.extend(script(keys=keys[start:start + chunk_size]))
    return types


def _missing_queue(queue_name, prefix, params, action):
    return CerniqError("queue {0} does not exist in {1} (no {2}:{0}:id, no meta, no jobs): nothing to {3}. Check the "
                       "name and prefix (bullmq_queue_info with pattern= lists queues), or set allow_missing=true "
                       "to accept a missing queue".format(queue_name, redis_where(params, params["bullmq_db"]),
                                                          prefix, action))


def _queue_snapshot(depths, schedulers=None):
    snapshot = _state_counts(depths)
    snapshot["is_paused"] = depths["is_paused"]
    if schedulers is not None:
        snapshot["schedulers"] = sorted(s["id"] for s in schedulers)
    return snapshot


def _clean_would_remove(client, prefix, queue_name, state, cutoff_ms, limit):
    """How many jobs BullMQ's cleanJobsInSet would remove, read the way the script selects them."""
    key = queue_key(prefix, queue_name, state)
    if state in ("completed", "failed"):
        count = client.zcount(key, 0, cutoff_ms)
        return min(count, limit) if limit else count
    if state in ("wait", "paused"):
        ids = client.lrange(key, -limit, -1) if limit else client.lrange(key, 0, -1)
        attributes = ("finishedOn", "processedOn", "timestamp")
    else:
        ids = client.zrangebyscore(key, 0, "+inf", start=0, num=limit) if limit else client.zrange(key, 0, -1)
        attributes = ("processedOn", "timestamp") if state == "delayed" else ("timestamp",)
    pipe = client.pipeline(transaction=False)
    for job_id in ids:
        pipe.hmget(job_key(prefix, queue_name, job_id), *attributes)
    count = 0
    for job_id, values in zip(ids, pipe.execute() if ids else []):
        stamp = next((v for v in values if v is not None), None)
        if job_id.startswith("repeat:"):
            continue  # a scheduler's next job: the script keeps it
        if stamp is None or int(stamp) <= cutoff_ms:
            count += 1
    return count


CLEAN_STATES = ("completed", "failed", "wait", "paused", "delayed", "prioritized")


@contextlib.contextmanager
def gc_paused(pause=True):
    """Pause the cyclic garbage collector while a bulk request builds ~10 objects per job: with 100,000 jobs alive
    its full passes rescan them all and cost ~15% of the client's CPU. Reference counting still frees everything
    acyclic; the collector runs again at the end."""
    was_enabled = gc.isenabled()
    if pause and was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if pause and was_enabled:
            gc.enable()


def manage_queue(params, check_mode=False, want_diff=False):
    """The bullmq_queue module: one queue's jobs, scheduler, drain, clean, pause/resume, obliterate; or a DLQ."""
    require_bullmq()
    if params.get("dlq_type"):
        return manage_dlq(params, check_mode, want_diff)
    with gc_paused(len(params.get("jobs") or ()) > MAX_CHUNK):
        return _manage_queue(params, check_mode, want_diff)


def _manage_queue(params, check_mode, want_diff):
    prefix = params.get("prefix") or BULLMQ_PREFIX
    queue_name = validate_queue_name(params.get("queue"))
    state = params.get("state") or "present"
    jobs = prepare_jobs(params.get("jobs"), params.get("job_name") or "job", params.get("job_opts"),
                        params["timezone"])
    scheduler = prepare_scheduler(params.get("scheduler"), params["timezone"])
    if state != "present" and (jobs or scheduler):
        raise CerniqError("jobs and scheduler go with state=present, not state={0}".format(state))
    if state == "cleaned":
        bad = [s for s in params.get("clean_states") or () if s not in CLEAN_STATES]
        if bad or not params.get("clean_states"):
            raise CerniqError("clean_states {0} must be a non-empty list of {1}".format(
                params.get("clean_states"), ", ".join(CLEAN_STATES)))
    for option in ("grace_seconds", "clean_limit"):
        if (params.get(option) or 0) < 0:
            raise CerniqError("{0} {1} must not be negative".format(option, params.get(option)))
    if not 1 <= (params.get("chunk_size") or MAX_CHUNK) <= MAX_CHUNK:
        raise CerniqError("chunk_size {0} must be between 1 and {1} (larger chunks stall Redis for every other "
                          "client)".format(params.get("chunk_size"), MAX_CHUNK))

    job_id = params.get("job_id")
    if job_id is not None:
        job_id = validate_job_id(job_id)
        if state not in JOB_ID_STATES:
            raise CerniqError("job_id goes with state={0}, not state={1}".format(", ".join(JOB_ID_STATES), state))
    elif state == "removed":
        raise CerniqError("state=removed removes one job: give its job_id (state=absent obliterates the queue)")
    job_count = _validate_count(params.get("job_count"), "job_count")
    cutoff_ms = parse_cutoff_ms(params.get("retry_finished_before"), params["timezone"])

    client = redis_client(params, params["bullmq_db"])
    depths = queue_depths(client, [queue_name], prefix)[queue_name]
    schedulers = read_schedulers(client, [queue_name], prefix)[queue_name]
    with redis_errors(_client_where(client)):
        warnings = preflight(client)["warnings"]
    result = dict(changed=False, queue=queue_name, state=state, warnings=warnings)
    before = _queue_snapshot(depths, schedulers)
    expect = params.get("expect_node_major") or DEFAULT_NODE_MAJOR
    operation = dict(present=_op_present, drained=_op_drain, cleaned=_op_clean, paused=_op_pause,
                     resumed=_op_pause, absent=_op_obliterate, retried=_op_retry, promoted=_op_retry,
                     removed=_op_retry)[state]

    audit = RedisChangeAudit(params, "bullmq_queue", check_mode)
    try:
        context = dict(params=params, client=client, queue=queue_name, prefix=prefix, depths=depths,
                       schedulers=schedulers, check_mode=check_mode, audit=audit, expect=expect, result=result,
                       jobs=jobs, scheduler=scheduler, state=state, job_id=job_id, job_count=job_count,
                       cutoff_ms=cutoff_ms)
        operation(context)
    finally:
        audit.close()
    if want_diff:
        after = before
        if result["changed"] and not check_mode:
            after = _queue_snapshot(queue_depths(client, [queue_name], prefix)[queue_name],
                                    read_schedulers(client, [queue_name], prefix)[queue_name])
        elif result["changed"]:
            after = result.pop("_predicted_after", before)
        result["diff"] = dict(before=before, after=after)
    result.pop("_predicted_after", None)
    return result


def _guard_write(ctx):
    """Before a write (and in check mode, which must fail where the real run would): the pairing, the audit log."""
    check_pairing(ctx["queue"], ctx["depths"], ctx["expect"])
    ctx["audit"].prepare()


def _target(ctx):
    return queue_key(ctx["prefix"], ctx["queue"], "*")


def _predict(ctx, **changes):
    after = _queue_snapshot(ctx["depths"], ctx["schedulers"])
    for key, value in changes.items():
        after[key] = value(after[key]) if callable(value) else value
    ctx["result"]["_predicted_after"] = after


def _op_present(ctx):
    result, jobs, spec = ctx["result"], ctx["jobs"], ctx["scheduler"]
    if jobs or spec:
        _guard_write(ctx)
    if jobs:
        _op_add_jobs(ctx)
    if spec:
        _op_scheduler(ctx)
    if not jobs and not spec:
        result["msg"] = "nothing to do: give jobs, a scheduler, or another state"


def _op_add_jobs(ctx):
    params, client, jobs, prefix, name = ctx["params"], ctx["client"], ctx["jobs"], ctx["prefix"], ctx["queue"]
    keys = [job_key(prefix, name, job["id"]) for job in jobs]
    with redis_errors(_client_where(client)):
        types = _key_types(client, keys)
    wrong = [(key, kind) for key, kind in zip(keys, types) if kind not in ("none", "hash")]
    if wrong:
        raise CerniqError("{0}: key {1} is a {2}, not a BullMQ job hash, so adding that job would fail with "
                          "WRONGTYPE ({3} such key(s)); nothing was added. Something else writes under "
                          "{4}:{5}:*".format(_client_where(client), wrong[0][0], wrong[0][1], len(wrong), prefix, name))
    new_jobs = [job for job, kind in zip(jobs, types) if kind == "none"]
    now_ms = _now_ms()
    delayed = sum(1 for job in new_jobs if (job["delay_ms"] if job["due_ms"] is None else job["due_ms"] - now_ms) > 0)
    summary = dict(requested=len(jobs), added=len(new_jobs), existing=len(jobs) - len(new_jobs), delayed=delayed)
    if len(new_jobs) > LARGE_QUEUE_JOBS:
        ctx["result"]["warnings"].append("adding {0} jobs to {1} in chunks of {2}".format(
            len(new_jobs), name, params.get("chunk_size") or MAX_CHUNK))
    if new_jobs and not ctx["check_mode"]:
        chunk_size = params.get("chunk_size") or MAX_CHUNK
        run_with_queue(params, name, prefix, lambda queue: add_job_chunks(
            queue, client, _client_where(client), new_jobs, chunk_size))
        ids = [job["id"] for job in new_jobs]
        ctx["audit"].record("bullmq_add_jobs", _target(ctx), before=_state_counts(ctx["depths"]),
                            after=dict(summary, ids=ids[:1000], ids_truncated=len(ids) > 1000))
    ctx["result"]["jobs"] = summary
    if new_jobs:
        ctx["result"]["changed"] = True
        waiting = len(new_jobs) - delayed
        target = "paused" if ctx["depths"]["is_paused"] else "wait"
        _predict(ctx, delayed=lambda n: n + delayed, **{target: lambda n: n + waiting})


def _op_scheduler(ctx):
    spec, params = ctx["scheduler"], ctx["params"]
    stored = next((s for s in ctx["schedulers"] if s["id"] == spec["id"]), None)
    result = ctx["result"]
    if spec["state"] == "absent":
        result["scheduler"] = dict(id=spec["id"], state="absent", removed=stored is not None)
        if stored is None:
            return
        result["changed"] = True
        if not ctx["check_mode"]:
            run_with_queue(params, ctx["queue"], ctx["prefix"],
                           lambda queue: queue.removeJobScheduler(spec["id"]))
            ctx["audit"].record("bullmq_remove_scheduler", _target(ctx), before=stored, after=None)
        return
    differs = scheduler_differs(spec, stored)
    view = dict(id=spec["id"], state="present", pattern=spec["pattern"], every=spec["every"], tz=spec["tz"],
                job_name=spec["job_name"], changed_fields=differs)
    result["scheduler"] = view
    mode = spec.get("other_schedules") or "ignore"
    others, legacy, other_schedulers = _scheduler_others(ctx, spec)
    view["other_schedules"] = list(others)
    view["registration"] = "+".join(kind for kind, present in (("scheduler", stored is not None),
                                                               ("legacy", bool(legacy)),
                                                               ("other_scheduler", bool(other_schedulers))) if present)
    view["registration"] = view["registration"] or "none"
    if mode == "migrate" and other_schedulers:
        raise CerniqError("queue {0}: not migrating - besides {1}, it has {2}: a migration would leave two schedules. "
                          "Remove the one you do not want first. Nothing was changed".format(
                              ctx["queue"], "its legacy repeatable job(s)" if legacy else "the requested scheduler",
                              "; ".join(schedule_summary(s) for s in other_schedulers)))
    if mode == "keep" and others and stored is None:
        # Never a second schedule beside an existing one: report what is there, create nothing.
        view["created"] = False
        view["kept"] = [schedule_summary(s) for s in others]
        result["msg"] = "queue {0} already has {1}; job scheduler {2} was not created beside it{3}".format(
            ctx["queue"], "; ".join(view["kept"]), spec["id"],
            " (migrate the legacy registration to it with other_schedules=migrate)" if legacy else "")
        return
    if not differs:
        view["next"] = stored.get("next")
        if mode == "migrate" and legacy:
            _migrate_legacy(ctx, spec, legacy, stored)
        return
    result["changed"] = True
    if ctx["check_mode"]:
        if mode == "migrate" and legacy:
            _migrate_legacy(ctx, spec, legacy, stored)
        return

    async def upsert(queue):
        from bullmq.job_scheduler import JobScheduler

        repeat = {"pattern": spec["pattern"]} if spec["pattern"] else {"every": spec["every"]}
        repeat["tz"] = spec["tz"]
        scheduler = JobScheduler(queue, repeat_strategy=node_compatible_repeat_strategy)
        job = await scheduler.upsertJobScheduler(spec["id"], repeat, spec["job_name"], spec["data"], spec["opts"])
        return job.id if job else None

    view["next_job_id"] = run_with_queue(params, ctx["queue"], ctx["prefix"], upsert)
    ctx["audit"].record("bullmq_upsert_scheduler", _target(ctx), before=stored,
                        after=dict(view, data=spec["data"], opts=spec["opts"]))
    if mode == "migrate" and legacy:
        _migrate_legacy(ctx, spec, legacy, stored)


def _ensure_exists(ctx, action):
    if ctx["depths"]["exists"]:
        return True
    if ctx["params"].get("allow_missing"):
        ctx["result"]["msg"] = "queue {0} does not exist; nothing to {1}".format(ctx["queue"], action)
        return False
    raise _missing_queue(ctx["queue"], ctx["prefix"], ctx["params"], action)


def _op_drain(ctx):
    if not _ensure_exists(ctx, "drain"):
        return
    include_delayed = bool(ctx["params"].get("include_delayed"))
    kept = scheduler_jobs_pending(ctx["client"], [ctx["queue"]], ctx["prefix"])[ctx["queue"]]
    counts = pending_counts(ctx["depths"], kept)
    if not include_delayed:
        counts["cancelled"] -= counts["delayed"]
        counts["delayed"] = 0
    counts["removed"] = counts.pop("cancelled")
    ctx["result"]["drained"] = counts
    if counts["removed"] == 0:
        return
    if counts["removed"] > LARGE_QUEUE_JOBS:
        ctx["result"]["warnings"].append(
            "draining {0} jobs of {1} is one Lua call that blocks Redis about 1 s per 100,000 jobs; for very "
            "large queues prefer state=absent (obliterate works in chunks)".format(counts["removed"], ctx["queue"]))
    ctx["result"]["changed"] = True
    _predict(ctx, wait=lambda n: n - counts["waiting"], paused=lambda n: n - counts["paused"],
             prioritized=lambda n: n - counts["prioritized"], delayed=lambda n: n - counts["delayed"])
    _guard_write(ctx)
    if ctx["check_mode"]:
        return
    run_with_queue(ctx["params"], ctx["queue"], ctx["prefix"], lambda queue: queue.drain(include_delayed))
    ctx["audit"].record("bullmq_drain", _target(ctx), before=_state_counts(ctx["depths"]), after=counts)


def _op_clean(ctx):
    if not _ensure_exists(ctx, "clean"):
        return
    params, client = ctx["params"], ctx["client"]
    grace_ms = (params.get("grace_seconds") or 0) * 1000
    limit = params.get("clean_limit") or 0
    cutoff = _now_ms() - grace_ms
    with redis_errors(_client_where(client)):
        would = {state: _clean_would_remove(client, ctx["prefix"], ctx["queue"], state, cutoff, limit)
                 for state in dict.fromkeys(params["clean_states"])}
    ctx["result"]["cleaned"] = would
    if not any(would.values()):
        return
    ctx["result"]["changed"] = True
    _predict(ctx, **{state: (lambda n, k=count: n - k) for state, count in would.items()})
    _guard_write(ctx)
    if ctx["check_mode"]:
        return

    async def clean(queue):
        done = {}
        for state in would:
            if state in ("completed", "failed"):
                # Finished jobs go in calls of at most 1,000 so one call never holds Redis for long.
                removed = 0
                while not limit or removed < limit:
                    batch = MAX_CHUNK if not limit else min(MAX_CHUNK, limit - removed)
                    ids = await queue.clean(grace_ms, batch, state)
                    removed += len(ids)
                    if len(ids) < batch:
                        break
                done[state] = removed
            else:
                done[state] = len(await queue.clean(grace_ms, limit, state))
        return done

    ctx["result"]["cleaned"] = run_with_queue(params, ctx["queue"], ctx["prefix"], clean)
    ctx["audit"].record("bullmq_clean", _target(ctx), before=_state_counts(ctx["depths"]),
                        after=dict(removed=ctx["result"]["cleaned"], grace_seconds=grace_ms // 1000, limit=limit))


def _op_pause(ctx):
    pause = ctx["state"] == "paused"
    if not _ensure_exists(ctx, "pause" if pause else "resume"):
        return
    if ctx["depths"]["is_paused"] == pause:
        return
    ctx["result"]["changed"] = True
    _predict(ctx, is_paused=pause)
    _guard_write(ctx)
    if ctx["check_mode"]:
        return
    run_with_queue(ctx["params"], ctx["queue"], ctx["prefix"],
                   lambda queue: queue.pause() if pause else queue.resume())
    ctx["audit"].record("bullmq_pause" if pause else "bullmq_resume", _target(ctx),
                        before=dict(is_paused=not pause), after=dict(is_paused=pause))


def _op_obliterate(ctx):
    if not _ensure_exists(ctx, "obliterate"):
        return
    depths, force = ctx["depths"], bool(ctx["params"].get("force"))
    if depths["active"] and not force:
        raise CerniqError("queue {0} has {1} active job(s) being processed by a worker: obliterate refuses; wait for "
                          "them, or set force=true to remove them too".format(ctx["queue"], depths["active"]))
    ctx["result"]["removed"] = dict(_state_counts(depths), schedulers=len(ctx["schedulers"]))
    ctx["result"]["changed"] = True
    ctx["result"]["_predicted_after"] = dict(dict.fromkeys(STATES, 0), is_paused=False, schedulers=[])
    _guard_write(ctx)
    if ctx["check_mode"]:
        return
    was_paused = depths["is_paused"]

    async def obliterate(queue):
        try:
            await queue.obliterate(force)
        except Exception as exc:
            # obliterate pauses first and leaves the queue paused when it gives up: undo that.
            if not was_paused:
                await queue.resume()
            if redis_exceptions is not None and isinstance(exc, redis_exceptions.RedisError):
                raise
            raise CerniqError("obliterating {0} failed: {1}; the queue was resumed and keeps its remaining "
                              "jobs".format(ctx["queue"], exc)) from exc

    try:
        run_with_queue(ctx["params"], ctx["queue"], ctx["prefix"], obliterate)
    except CerniqError as exc:
        # obliterate works in chunks: some may be gone already, so the attempt is on record too.
        ctx["audit"].record("bullmq_obliterate_failed", _target(ctx), before=_queue_snapshot(depths, ctx["schedulers"]),
                            after=dict(error=exc.msg, force=force))
        raise
    ctx["audit"].record("bullmq_obliterate", _target(ctx), before=_queue_snapshot(depths, ctx["schedulers"]),
                        after=dict(obliterated=True, force=force))


# --- Dead-letter queues ------------------------------------------------------------------------------------------

DLQ_TYPES = ("list", "failed", "queue")


def manage_dlq(params, check_mode=False, want_diff=False):
    """Count and trim a dead-letter queue of an explicit type:

    - list: an application list (the runbook's bull:dlq:outreach, LPUSHed): LLEN, LTRIM keeping the newest N;
    - failed: a queue's failed set, trimmed oldest first through BullMQ's removeJob script;
    - queue: a separate BullMQ queue whose waiting jobs are the dead letters; keep 0 drains it (delayed too),
      keep N removes the oldest waiting jobs beyond N through BullMQ.
    """
    dlq_type = params["dlq_type"]
    if dlq_type not in DLQ_TYPES:
        raise CerniqError("dlq_type {0!r} must be one of {1}".format(dlq_type, ", ".join(DLQ_TYPES)))
    keep = params.get("dlq_keep")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 0):
        raise CerniqError("dlq_keep {0!r} must be a non-negative integer (how many of the newest entries to "
                          "keep)".format(keep))
    if params.get("dlq_pattern") is not None and dlq_type != "list":
        raise CerniqError("dlq_pattern goes with dlq_type=list (application lists), not dlq_type={0}".format(dlq_type))
    if dlq_type == "list":
        return _dlq_list(params, keep, check_mode, want_diff)
    prefix = params.get("prefix") or BULLMQ_PREFIX
    queue_name = validate_queue_name(params.get("queue"))
    client = redis_client(params, params["bullmq_db"])
    depths = queue_depths(client, [queue_name], prefix)[queue_name]
    result = dict(changed=False, queue=queue_name, dlq_type=dlq_type, warnings=[])
    if not depths["exists"]:
        if params.get("allow_missing") or keep is None:
            result["dlq"] = dict(type=dlq_type, queue=queue_name, exists=False, length=0, removed=0, keep=keep)
            return result
        raise _missing_queue(queue_name, prefix, params, "trim")
    if dlq_type == "failed":
        entries_state = "failed"
    else:
        entries_state = "paused" if depths["is_paused"] and depths["paused"] else "wait"
    length = depths[entries_state]
    remove = 0 if keep is None else max(0, length - keep)
    dlq = dict(type=dlq_type, queue=queue_name, exists=True, state=entries_state, length=length, keep=keep,
               removed=remove, counts=_state_counts(depths))
    result["dlq"] = dlq
    if want_diff:
        result["diff"] = dict(before=dict(length=length), after=dict(length=length - remove))
    if not remove:
        return result
    result["changed"] = True
    check_pairing(queue_name, depths, params.get("expect_node_major") or DEFAULT_NODE_MAJOR)
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


def _dlq_list(params, keep, check_mode, want_diff):
    if params.get("dlq_pattern") is not None:
        return _dlq_lists(params, keep, check_mode, want_diff)
    key = params.get("dlq_key") or DLQ_LIST_KEY
    push_side = params.get("dlq_push_side") or "left"
    client = redis_client(params, params["bullmq_db"])
    where = _client_where(client)
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

# More matching keys than this and the pattern is refused before anything changes: it is not a set of DLQ lists.
DLQ_PATTERN_MAX_KEYS = 1000
_GLOB_CHARS_RE = re.compile(r"[*?\[\\]")
# The lists a BullMQ queue keeps under its own prefix; a pattern that catches them must leave them alone.
_BULLMQ_LIST_SUFFIXES = LIST_STATES

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


def validate_dlq_pattern(pattern):
    """A SCAN MATCH pattern with a literal prefix up to a ':' (bull:dlq:*), so it cannot reach the whole keyspace."""
    first_glob = _GLOB_CHARS_RE.search(pattern or "")
    literal = pattern[:first_glob.start()] if first_glob else (pattern or "")
    if not pattern or ":" not in literal:
        raise CerniqError("dlq_pattern {0!r} must start with a literal key prefix ending in ':' before any wildcard, "
                          "e.g. bull:dlq:* (it trims every list it matches)".format(pattern))
    return pattern


def _bullmq_list_key(client, key):
    """Whether `key` is one of a BullMQ queue's own lists (<prefix>:<queue>:wait|paused|active with a meta or id)."""
    base, _sep, suffix = key.rpartition(":")
    if suffix not in _BULLMQ_LIST_SUFFIXES or not base:
        return False
    return bool(client.exists(base + ":meta", base + ":id"))


def scan_dlq_lists(client, pattern, keep):
    """(lists, skipped) for every key matching `pattern` (SCAN, never KEYS), each TYPE-checked.

    lists: [{key, length, removed}] of plain lists; skipped: [{key, type, why}] of keys left alone (not a list, or a
    BullMQ queue's own list).
    """
    keys = set()
    for key in client.scan_iter(match=pattern, count=MAX_CHUNK):
        keys.add(key)
        if len(keys) > DLQ_PATTERN_MAX_KEYS:
            raise CerniqError("dlq_pattern {0!r} matches more than {1} keys: these are not a set of dead-letter lists; "
                              "give a narrower pattern. Nothing was changed".format(pattern, DLQ_PATTERN_MAX_KEYS))
    keys = sorted(keys)
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    kinds = pipe.execute()
    lists, skipped = [], []
    for key, kind in zip(keys, kinds):
        if kind == "none":
            continue  # expired or deleted since SCAN returned it
        if kind != "list":
            skipped.append(dict(key=key, type=kind, why="not a list: never touched"))
        elif _bullmq_list_key(client, key):
            skipped.append(dict(key=key, type=kind, why="a BullMQ queue's own list: never touched"))
        else:
            length = client.llen(key)
            lists.append(dict(key=key, length=length, removed=0 if keep is None else max(0, length - keep)))
    return lists, skipped


def _dlq_lists(params, keep, check_mode, want_diff):
    """dlq_type=list with dlq_pattern: count every matching list and trim each to its newest `keep` entries."""
    pattern = validate_dlq_pattern(params.get("dlq_pattern"))
    push_side = params.get("dlq_push_side") or "left"
    client = redis_client(params, params["bullmq_db"])
    where = _client_where(client)
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


# --- Job operations after an alert: retry failed, promote delayed, retry / promote / remove one job ---------------

# Which finished set a bulk retry takes jobs from; BullMQ's moveJobsToWait script (Node's Queue.retryJobs) selects
# them by score (finishedOn) up to a cut-off time, oldest first.
RETRY_STATES = ("failed", "completed")
# At most this many ids are listed in a result or an audit row; the counts are always complete.
LISTED_IDS = 100
# A job hash's fields as BullMQ stores them (`atm`: attempts made).
JOB_FIELDS = ("name", "data", "failedReason", "atm", "timestamp", "processedOn", "finishedOn", "delay")


# States of bullmq_queue that take a job_id (one job) instead of acting on many.
JOB_ID_STATES = ("retried", "promoted", "removed")


def _op_retry(ctx):
    """state=retried / promoted / removed: one job by id, or (retried, promoted) many by state, count, cut-off."""
    if not _ensure_exists(ctx, dict(retried="retry", promoted="promote", removed="remove")[ctx["state"]]):
        return
    if ctx["job_id"] is not None:
        _op_job(ctx, dict(retried="retry", promoted="promote", removed="remove")[ctx["state"]])
    else:
        _op_retry_bulk(ctx, ctx["state"])


def _validate_count(value, option):
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CerniqError("{0} {1!r} must be a non-negative integer (0: all)".format(option, value))
    return value


def parse_cutoff_ms(value, tz_name):
    """A time cut-off (epoch ms or ISO 8601) or None (now, when the run starts)."""
    if value in (None, ""):
        return None
    return parse_due_ms(value, tz_name, "retry_finished_before")


def job_state(client, prefix, queue_name, job_id):
    """(state, fields) of one job: the set or list that holds it (one pipeline), its hash; state None: no such job."""
    key = job_key(prefix, queue_name, job_id)
    pipe = client.pipeline(transaction=False)
    for state in ZSET_STATES:
        pipe.zscore(queue_key(prefix, queue_name, state), job_id)
    for state in LIST_STATES:
        pipe.lpos(queue_key(prefix, queue_name, state), job_id)
    pipe.type(key)
    pipe.hmget(key, *JOB_FIELDS)
    replies = pipe.execute(raise_on_error=False)
    where = _client_where(client)
    errors = [r for r in replies if isinstance(r, Exception)]
    if errors:
        raise CerniqError("{0} answered an error reading job {1} of {2}: {3}".format(where, job_id, queue_name,
                                                                                     errors[0]))
    kind, values = replies[-2], replies[-1]
    if kind not in ("hash", "none"):
        raise CerniqError("{0}: {1} is a {2}, not a BullMQ job hash; something else writes under {3}:{4}:*".format(
            where, key, kind, prefix, queue_name))
    states = ZSET_STATES + LIST_STATES
    found = [state for state, hit in zip(states, replies[:len(states)]) if hit is not None]
    fields = dict(zip(JOB_FIELDS, values)) if kind == "hash" else None
    state = found[0] if found else ("unknown" if fields else None)
    return state, fields


def _job_view(job_id, state, fields, redact_keys=None, queue_name=None):
    fields = fields or {}
    view = dict(id=job_id, state=state, name=fields.get("name"),
                data=redact(_json_or_raw(fields.get("data"), {}), redact_keys),
                failed_reason=fields.get("failedReason"), attempts_made=_int_or_none(fields.get("atm")),
                timestamp=_int_or_none(fields.get("timestamp")), finished_on=_int_or_none(fields.get("finishedOn")),
                processed_on=_int_or_none(fields.get("processedOn")))
    if queue_name is not None:
        view["queue"] = queue_name
    return view


def _op_retry_bulk(ctx, state):
    """Retry every `retry_state` job finished before the cut-off (at most `job_count`), oldest first, in chunks of
    at most chunk_size through BullMQ's moveJobsToWait script; each call holds Redis for one chunk only."""
    params, client, prefix, name = ctx["params"], ctx["client"], ctx["prefix"], ctx["queue"]
    from_state = "delayed" if state == "promoted" else (params.get("retry_state") or "failed")
    if from_state not in RETRY_STATES + ("delayed",):
        raise CerniqError("retry_state {0!r} must be one of {1}".format(from_state, ", ".join(RETRY_STATES)))
    limit = ctx["job_count"]
    # Delayed scores are due << 12: every delayed job sits below +inf. Finished jobs are scored by finishedOn, so a
    # job failing again while we retry (finishedOn after the cut-off) is not picked up a second time.
    cutoff = "+inf" if from_state == "delayed" else (ctx["cutoff_ms"] if ctx["cutoff_ms"] is not None else _now_ms())
    key = queue_key(prefix, name, from_state)
    with redis_errors(_client_where(client)):
        matching = client.zcount(key, 0, cutoff)
        total = min(matching, limit) if limit else matching
        ids = client.zrangebyscore(key, 0, cutoff, start=0, num=min(total, LISTED_IDS)) if total else []
    verb = "promoted" if state == "promoted" else "retried"
    summary = {"from_state": from_state, verb: total, "ids": ids, "ids_truncated": total > len(ids),
               "finished_before": None if from_state == "delayed" else _iso_ms(cutoff),
               "finished_before_ms": None if from_state == "delayed" else cutoff, "limit": limit}
    ctx["result"]["jobs"] = summary
    if not total:
        return
    if ctx["depths"]["prioritized"] and from_state == "delayed":
        ctx["result"]["warnings"].append("BullMQ's promoteJobs moves delayed jobs to wait without their priority "
                                         "(as Node's Queue.promoteJobs does)")
    ctx["result"]["changed"] = True
    target = "paused" if ctx["depths"]["is_paused"] else "wait"
    _predict(ctx, **{from_state: lambda n: n - total, target: lambda n: n + total})
    _guard_write(ctx)
    if ctx["check_mode"]:
        return
    chunk = params.get("chunk_size") or MAX_CHUNK

    async def move(queue):
        done, calls = 0, 0
        max_calls = (total + chunk - 1) // chunk + 1
        while done < total and calls < max_calls:
            calls += 1
            batch = min(chunk, total - done)
            before = await queue.client.zcount(key, 0, cutoff)
            if from_state == "delayed":
                keys, args = queue.scripts.moveJobsToWaitArgs("delayed", batch, 1.7976931348623157e+308)
            else:
                keys, args = queue.scripts.moveJobsToWaitArgs(from_state, batch, cutoff)
            await queue.scripts.commands["moveJobsToWait"](keys=keys, args=args)
            moved = before - await queue.client.zcount(key, 0, cutoff)
            done += max(0, moved)
            if moved <= 0:
                break
        return done

    try:
        summary[verb] = run_with_queue(params, name, prefix, move)
    finally:
        ctx["audit"].record("bullmq_promote_jobs" if verb == "promoted" else "bullmq_retry_jobs", _target(ctx),
                            before=dict(_state_counts(ctx["depths"]), matching=matching),
                            after=dict(summary, planned=total))


def _op_job(ctx, action):
    """Retry, promote or remove one job by id, through BullMQ's own reprocessJob / promote / removeJob scripts."""
    params, client, prefix, name, job_id = ctx["params"], ctx["client"], ctx["prefix"], ctx["queue"], ctx["job_id"]
    state, fields = job_state(client, prefix, name, job_id)
    view = _job_view(job_id, state, fields, params.get("redact_keys"))
    ctx["result"]["job"] = view
    wanted = dict(retry=RETRY_STATES, promote=("delayed",), remove=None)[action]
    if state is None:
        if action == "remove":
            ctx["result"]["msg"] = "job {0} is not in queue {1}: nothing to remove".format(job_id, name)
            return
        raise CerniqError("queue {0} has no job {1} (no {2}): check the id (bullmq_job_info finds jobs by "
                          "data)".format(name, job_id, job_key(prefix, name, job_id)))
    if wanted is not None and state not in wanted:
        ctx["result"]["msg"] = "job {0} is {1}, not {2}: nothing to {3}".format(job_id, state, " or ".join(wanted),
                                                                                action)
        return
    if action == "remove" and state == "active":
        raise CerniqError("job {0} of {1} is active (a worker holds its lock): BullMQ refuses to remove it; wait for "
                          "it to finish. Nothing was changed".format(job_id, name))
    ctx["result"]["changed"] = True
    target = "paused" if ctx["depths"]["is_paused"] else "wait"
    if action == "remove":
        if state in STATES:
            _predict(ctx, **{state: lambda n: n - 1})
    else:
        _predict(ctx, **{state: lambda n: n - 1, target: lambda n: n + 1})
    _guard_write(ctx)
    if ctx["check_mode"]:
        return

    async def operate(queue):
        if action == "remove":
            return await queue.scripts.remove(job_id, True)
        if action == "promote":
            await queue.scripts.promote(job_id)
            return 1
        job = await Job.fromId(queue, job_id)
        if job is None:
            return 0
        await job.retry(state)
        return 1

    try:
        done = run_with_queue(params, name, prefix, operate)
    except CerniqError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        if redis_exceptions is not None and isinstance(exc, redis_exceptions.RedisError):
            raise
        raise CerniqError("{0} job {1} of {2} failed: {3}".format(action, job_id, name, exc)) from exc
    if not done:
        raise CerniqError("job {0} of {1} could not be {2}d: it is locked by a worker or was removed meanwhile".format(
            job_id, name, action))
    ctx["audit"].record("bullmq_{0}_job".format(action), job_key(prefix, name, job_id),
                        before=dict(state=state, name=view["name"], failed_reason=view["failed_reason"]),
                        after=dict(state=None if action == "remove" else target))


# --- Reading jobs: the newest of a state, or a search by data (read only, bounded) --------------------------------

DEFAULT_REDACT_KEYS = ("password", "token", "api_key", "authorization", "secret")
REDACTED = "********"
SEARCH_STATES = ("wait", "paused", "active", "prioritized", "delayed", "waiting-children", "failed", "completed")
SEARCH_PAGE = 1000


def redact(value, keys=None):
    """A copy of job data with the value of every key whose name contains one of `keys` (case-insensitive) masked,
    at any depth."""
    keys = tuple(k.lower() for k in (DEFAULT_REDACT_KEYS if keys is None else keys))
    if not keys:
        return value
    if isinstance(value, dict):
        return {k: (REDACTED if any(word in str(k).lower() for word in keys) else redact(v, keys))
                for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, keys) for v in value]
    return value


def _lookup(data, path):
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _MISSING
        data = data[part]
    return data


_MISSING = object()


def _matches(data, match):
    for path, wanted in match.items():
        found = _lookup(data, path)
        if found is _MISSING:
            return False
        if found != wanted and str(found) != str(wanted):
            return False
    return True


def validate_match(match):
    if match is None:
        return {}
    if not isinstance(match, dict):
        raise CerniqError("match must be a dictionary of job data fields and values, e.g. {leadId: lead-42}")
    for path, wanted in match.items():
        if not isinstance(path, str) or not path or any(not p for p in path.split(".")):
            raise CerniqError("match field {0!r} must be a field name of the job data (a.b for a nested one)".format(
                path))
        if isinstance(wanted, (dict, list)):
            raise CerniqError("match {0}: give a single value (string, number, boolean), not {1}".format(
                path, type(wanted).__name__))
    return dict(match)


def _needles(match):
    """Strings every matching job's raw JSON data must contain: a cheap test before json.loads.

    Only forms every JSON writer spells the same: ASCII text (Node's JSON.stringify keeps non-ASCII characters as
    they are, Python's json.dumps escapes them) and integers (1.0 is written 1 by Node); the rest is left to the
    comparison after parsing."""
    needles = []
    for path, wanted in match.items():
        field = json.dumps(path.split(".")[-1])
        if field.isascii():
            needles.append(field)
        if isinstance(wanted, str) and wanted.isascii():
            needles.append(json.dumps(wanted)[1:-1])
        elif isinstance(wanted, int) and not isinstance(wanted, bool):
            needles.append(str(wanted))
    return needles


def _state_page(client, key, state, start, size):
    if state in LIST_STATES:
        return client.lrange(key, start, start + size - 1)
    # Newest first: failed and completed by finishedOn, delayed by due time, the others by score.
    return client.zrevrange(key, start, start + size - 1)


def find_jobs(params, queue_name, match=None, states=None, limit=20, max_scanned=0, time_budget_ms=5000,
              page_size=SEARCH_PAGE, prefix=BULLMQ_PREFIX, redact_keys=None):
    """Jobs of one queue whose data matches `match` (all of them when empty), newest first per state.

    Bounded: pages of `page_size` ids (LRANGE / ZREVRANGE by index, never KEYS), one pipeline of HGET data per page,
    the full fields only of the matches; stops at `limit` matches, `max_scanned` jobs examined or `time_budget_ms`.
    """
    validate_queue_name(queue_name)
    match = validate_match(match)
    states = list(dict.fromkeys(states or SEARCH_STATES))
    bad = [s for s in states if s not in SEARCH_STATES]
    if bad:
        raise CerniqError("states {0} must be among {1}".format(bad, ", ".join(SEARCH_STATES)))
    for option, value in (("limit", limit), ("max_scanned", max_scanned), ("time_budget_ms", time_budget_ms)):
        _validate_count(value, option)
    if not 1 <= page_size <= MAX_CHUNK:
        raise CerniqError("page_size {0} must be between 1 and {1}".format(page_size, MAX_CHUNK))
    client = redis_client(params, params["bullmq_db"])
    where = _client_where(client)
    needles = _needles(match)
    started = time.monotonic()
    deadline = started + time_budget_ms / 1000.0 if time_budget_ms else None
    found, seen = [], set()
    scanned = dict.fromkeys(states, 0)
    stop_reason = None
    with redis_errors(where):
        for state in states:
            key = queue_key(prefix, queue_name, state)
            start = 0
            while stop_reason is None:
                size = page_size
                if max_scanned:
                    size = min(size, max_scanned - sum(scanned.values()))
                ids = _state_page(client, key, state, start, size)
                if not ids:
                    break
                start += len(ids)
                scanned[state] += len(ids)
                pipe = client.pipeline(transaction=False)
                for job_id in ids:
                    pipe.hget(job_key(prefix, queue_name, job_id), "data")
                hits = []
                for job_id, raw in zip(ids, pipe.execute(raise_on_error=False)):
                    if job_id in seen or not isinstance(raw, str):
                        continue
                    if needles and not all(n in raw for n in needles):
                        continue
                    data = _json_or_raw(raw, {})
                    if match and not _matches(data, match):
                        continue
                    seen.add(job_id)
                    hits.append(job_id)
                    if limit and len(found) + len(hits) >= limit:
                        break
                if hits:
                    pipe = client.pipeline(transaction=False)
                    for job_id in hits:
                        pipe.hmget(job_key(prefix, queue_name, job_id), *JOB_FIELDS)
                    for job_id, values in zip(hits, pipe.execute()):
                        found.append(_job_view(job_id, state, dict(zip(JOB_FIELDS, values)), redact_keys,
                                               queue_name))
                if limit and len(found) >= limit:
                    stop_reason = "limit"
                elif max_scanned and sum(scanned.values()) >= max_scanned:
                    stop_reason = "max_scanned"
                elif deadline is not None and time.monotonic() >= deadline:
                    stop_reason = "time_budget"
                elif len(ids) < size:
                    break
            if stop_reason:
                break
    return dict(changed=False, queue=queue_name, match=match, states=states, jobs=found, found=len(found),
                scanned=dict(scanned, total=sum(scanned.values())), stopped_early=stop_reason is not None,
                stop_reason=stop_reason, elapsed_ms=int((time.monotonic() - started) * 1000))


def newest_list_entries(params, keys, count=10, redact_keys=None):
    """The newest `count` entries of application dead-letter lists (LPUSHed: the head), JSON parsed and redacted."""
    client = redis_client(params, params["bullmq_db"])
    keys = list(keys or ())
    with redis_errors(_client_where(client)):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = pipe.execute() if keys else []
        pipe = client.pipeline(transaction=False)
        listed = [key for key, kind in zip(keys, kinds) if kind == "list"]
        for key in listed:
            pipe.lrange(key, 0, count - 1)
            pipe.llen(key)
        replies = pipe.execute() if listed else []
    entries = dict(zip(listed, zip(replies[0::2], replies[1::2])))
    out = []
    for key, kind in zip(keys, kinds):
        items, length = entries.get(key, ([], 0))
        out.append(dict(key=key, type=kind, length=length,
                        newest=[redact(_json_or_raw(item, item), redact_keys) for item in items]))
    return out


def oldest_waiting_ms(client, queue_names, prefix=BULLMQ_PREFIX):
    """{queue: timestamp (ms) of its oldest waiting job, or None}: the tail of `wait` (BullMQ LPUSHes), two
    pipelines for any number of queues."""
    names = list(dict.fromkeys(queue_names))
    with redis_errors(_client_where(client)):
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.lindex(queue_key(prefix, name, "wait"), -1)
        tails = pipe.execute() if names else []
        pipe = client.pipeline(transaction=False)
        for name, job_id in zip(names, tails):
            if job_id is not None:
                pipe.hget(job_key(prefix, name, job_id), "timestamp")
        stamps = iter(pipe.execute() if any(t is not None for t in tails) else [])
    return {name: (_int_or_none(next(stamps)) if job_id is not None else None) for name, job_id in zip(names, tails)}
