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
  `async_redis_client()` (few retries, so a dead Redis fails in seconds).
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import traceback

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    async_redis_client,
    redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

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
_ALL_DIGITS_RE = re.compile(r"^-?[0-9]+$")


# --- Keys and names -------------------------------------------------------------------------------------------

def queue_key(prefix, queue_name, suffix):
    return "{0}:{1}:{2}".format(prefix, queue_name, suffix)


def job_key(prefix, queue_name, job_id):
    return queue_key(prefix, queue_name, job_id)


def node_address(prefix, queue_name):
    """(prefix, name) a Node worker uses for a key path: Node BullMQ >= 5.12.12 refuses ':' in queue names."""
    path = "{0}:{1}".format(prefix, queue_name)
    node_prefix, _, name = path.rpartition(":")
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
    if any(ch.isspace() for ch in job_id):
        raise CerniqError("job id {0!r} contains whitespace".format(job_id))
    return job_id


def split_queue_key(key):
    """(prefix, queue) of a `<prefix>:<queue>:id` key, split like BullMQ's tools (greedy `(.*):(.*):id`).

    The greedy split puts every ':' of a key path into the prefix, as Node sees it; joined back, prefix + name
    is the same key path either way.
    """
    match = re.match(r"^(.*):(.*):id$", key)
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
        return int(str(version).split(".")[0])
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


def _check_replies(replies, what):
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


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


def scheduler_jobs_pending(client, queue_names, prefix=BULLMQ_PREFIX):
    """{queue: {state: n}}: each job scheduler's next job sitting in a pending state (drain keeps those).

    Two pipelines for any number of queues: the `repeat` sets, then one lookup per scheduler.
    """
    names = list(dict.fromkeys(queue_names))
    where = _client_where(client)
    with redis_errors(where):
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.zrange(queue_key(prefix, name, "repeat"), 0, -1, withscores=True)
        schedulers = _check_replies(pipe.execute(), "repeat") if names else []
        lookups = []
        pipe = client.pipeline(transaction=False)
        for name, entries in zip(names, schedulers):
            for scheduler_id, millis in entries:
                job_id = "repeat:{0}:{1}".format(scheduler_id, int(millis))
                lookups.append(name)
                pipe.zscore(queue_key(prefix, name, "delayed"), job_id)
                pipe.zscore(queue_key(prefix, name, "prioritized"), job_id)
                pipe.lpos(queue_key(prefix, name, "wait"), job_id)
                pipe.lpos(queue_key(prefix, name, "paused"), job_id)
        found = _check_replies(pipe.execute(), "scheduler jobs") if lookups else []
    result = {name: dict.fromkeys(PENDING_STATES, 0) for name in names}
    for index, name in enumerate(lookups):
        delayed, prioritized, in_wait, in_paused = found[index * 4:index * 4 + 4]
        for state, hit in (("delayed", delayed), ("prioritized", prioritized), ("wait", in_wait),
                           ("paused", in_paused)):
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
    if counts["cancelled"] == 0 or check_mode:
        return counts
    check_pairing(queue_name, depths, expect_node_major)

    async def drain(queue):
        await queue.drain(True)

    run_with_queue(params, queue_name, prefix, drain)
    if audit is not None:
        audit.record("bullmq_cancel_pending", queue_key(prefix, queue_name, "*"), reason=reason,
                     before=_state_counts(depths), after=dict(counts))
    return counts


def _state_counts(depths):
    return {state: depths[state] for state in STATES}
