# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""BullMQ's key layout, the names a request gives it (queue, job id, job options) and how it stores values.

Facts behind the BullMQ files: ../shared/reference/bullmq.md. Keys are `<prefix>:<queue>:<suffix>`; a queue name with
':' is a key path (`q:wa:phone_07` with prefix `bull` is what Node workers open as prefix `bull:q:wa`, name
`phone_07`). Everything here is pure or read-only.
"""

from __future__ import annotations

import base64
import json
import re
import time

from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_count

LIST_STATES = ("wait", "paused", "active")
ZSET_STATES = ("delayed", "prioritized", "waiting-children", "completed", "failed")
STATES = LIST_STATES + ZSET_STATES
# What a cancel/drain removes: everything not yet picked up by a worker.
PENDING_STATES = ("wait", "paused", "prioritized", "delayed")
# BullMQ's delayed score is (due_ms << 12) + a per-millisecond sequence number.
DELAYED_SCORE_SHIFT = 4096
# One drain Lua call blocks Redis about 1 s per 100k jobs.
LARGE_QUEUE_JOBS = 100000
# The most jobs (or ids) one call or pipeline handles: larger chunks stall Redis for every other client.
MAX_CHUNK = 1000

# Options the module sets itself; a job's own opts must not carry them.
RESERVED_JOB_OPTS = ("jobId", "delay", "repeat", "parent", "timestamp", "prevMillis", "repeatJobKey")
PRIORITY_LIMIT = 2 ** 21

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


def split_queue_key(key):
    """(prefix, queue) of a `<prefix>:<queue>:id` key, split like BullMQ's tools (greedy `(.*):(.*):id`).

    The greedy split puts every ':' of a key path into the prefix, as Node sees it; joined back, prefix + name
    is the same key path either way.
    """
    match = re.match(r"^(.*):(.*):id\Z", key)
    if not match:
        return None
    return match.group(1), match.group(2)


# --- What a request names ---------------------------------------------------------------------------------------

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


def validate_job_opts(opts, where):
    """A copy of a job's (or scheduler's) BullMQ options, without the ones the module sets itself."""
    if opts is None:
        return {}
    if not isinstance(opts, dict):
        raise CerniqError("{0}: opts must be a dictionary of BullMQ job options".format(where))
    reserved = [key for key in RESERVED_JOB_OPTS if key in opts]
    if reserved:
        raise CerniqError("{0}: opts may not set {1}; use the job's id, due_at or delay_ms (and scheduler= for "
                          "repeats)".format(where, ", ".join(reserved)))
    priority = opts.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)
                                 or not 0 <= priority <= PRIORITY_LIMIT):
        raise CerniqError("{0}: priority {1!r} must be an integer from 0 to {2}".format(
            where, priority, PRIORITY_LIMIT))
    return dict(opts)


def validate_limit(value, option):
    """A count option of the queue operations where 0 (or nothing) means no limit: _validate's count otherwise."""
    return 0 if value is None else validate_count(value, option + " (0: all)")


# --- Values as BullMQ stores them -------------------------------------------------------------------------------

def clock_ms():
    """Now, in epoch milliseconds (BullMQ's unit)."""
    return int(time.time() * 1000)


def iso_ms(millis):
    """Epoch milliseconds as an ISO 8601 UTC time (to the second), or None."""
    if millis is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(millis) / 1000.0))


def int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def json_or_raw(value, empty):
    """A hash field BullMQ wrote as JSON, parsed; `empty` when unset; the raw string when it is not JSON."""
    if value in (None, ""):
        return empty
    try:
        return json.loads(value)
    except ValueError:
        return value


def client_where(client):
    """Where a redis-py client points, for messages: `Redis at host:port (db n)`."""
    kwargs = client.connection_pool.connection_kwargs
    return "Redis at {0}:{1} (db {2})".format(kwargs.get("host"), kwargs.get("port"), kwargs.get("db", 0))


# KEYS: any keys. Their types, in order. Reads only.
_KEY_TYPES_LUA = """
local out = {}
for i = 1, #KEYS do
  out[i] = redis.call('TYPE', KEYS[i])['ok']
end
return out
"""


def key_types(client, keys, chunk_size=10 * MAX_CHUNK):
    """The type of each key, one read-only script call per 10,000 keys (a few ms of Redis each): a TYPE command per
    key costs the client more in packing and parsing than Redis spends answering it."""
    script = client.register_script(_KEY_TYPES_LUA)
    types = []
    for start in range(0, len(keys), chunk_size):
        types.extend(script(keys=keys[start:start + chunk_size]))
    return types
