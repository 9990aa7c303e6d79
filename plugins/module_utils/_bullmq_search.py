# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading jobs (bullmq_job_info): one job's state, the newest of a state, a search by data; read only, bounded.

Job data may carry secrets: every view of it is redacted (`redact_keys`).
"""

from __future__ import annotations

import dataclasses
import json
import time

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    LIST_STATES,
    MAX_CHUNK,
    ZSET_STATES,
    client_where,
    int_or_none,
    job_key,
    json_or_raw,
    queue_key,
    validate_limit,
    validate_queue_name,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_client, redis_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError, request_from_params

# A job hash's fields as BullMQ stores them (`atm`: attempts made).
JOB_FIELDS = ("name", "data", "failedReason", "atm", "timestamp", "processedOn", "finishedOn", "delay")
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


# --- One job ---------------------------------------------------------------------------------------------------------

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
    where = client_where(client)
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


def job_view(job_id, state, fields, redact_keys=None, queue_name=None):
    """One job as the modules return it, its data redacted."""
    fields = fields or {}
    view = dict(id=job_id, state=state, name=fields.get("name"),
                data=redact(json_or_raw(fields.get("data"), {}), redact_keys),
                failed_reason=fields.get("failedReason"), attempts_made=int_or_none(fields.get("atm")),
                timestamp=int_or_none(fields.get("timestamp")), finished_on=int_or_none(fields.get("finishedOn")),
                processed_on=int_or_none(fields.get("processedOn")))
    if queue_name is not None:
        view["queue"] = queue_name
    return view


# --- A search by data ----------------------------------------------------------------------------------------------

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
        validate_limit(value, option)
    if not 1 <= page_size <= MAX_CHUNK:
        raise CerniqError("page_size {0} must be between 1 and {1}".format(page_size, MAX_CHUNK))
    client = redis_client(params, params["bullmq_db"])
    where = client_where(client)
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
                    data = json_or_raw(raw, {})
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
                        found.append(job_view(job_id, state, dict(zip(JOB_FIELDS, values)), redact_keys,
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
    with redis_errors(client_where(client)):
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
                        newest=[redact(json_or_raw(item, item), redact_keys) for item in items]))
    return out


@dataclasses.dataclass(frozen=True)
class JobSearchRequest:
    """What one bullmq_job_info call asks: the module's options, with its defaults.

    A test builds one with keyword options; the module's parameters give one through from_params.
    """

    queue: str | None = None
    prefix: str = BULLMQ_PREFIX
    match: dict | None = None
    states: tuple = SEARCH_STATES
    limit: int = 20
    max_scanned: int = 0
    time_budget_ms: int = 5000
    page_size: int = SEARCH_PAGE
    redact_keys: tuple = DEFAULT_REDACT_KEYS
    dlq_keys: tuple = ()
    dlq_count: int = 10

    @classmethod
    def from_params(cls, params):
        return request_from_params(cls, params)


def job_info(params, request):
    """bullmq_job_info's core: the search (when a queue and states are given) and the dead-letter lists' newest
    entries; `params` are the Redis connection parameters, `request` a JobSearchRequest."""
    if request.dlq_count is None or not 0 <= request.dlq_count <= 1000:
        raise CerniqError("dlq_count {0} must be between 0 and 1000".format(request.dlq_count))
    if request.states and not request.queue:
        raise CerniqError("queue is required to search jobs (e.g. q:wa:phone_07); give states: [] to read only "
                          "dlq_keys")
    if request.queue and request.states:
        result = find_jobs(params, request.queue, match=request.match, states=request.states, limit=request.limit,
                           max_scanned=request.max_scanned, time_budget_ms=request.time_budget_ms,
                           page_size=request.page_size, prefix=request.prefix, redact_keys=request.redact_keys)
    else:
        result = dict(changed=False, jobs=[], found=0, scanned=dict(total=0), stopped_early=False, stop_reason=None,
                      elapsed_ms=0)
    result["dlq_lists"] = newest_list_entries(params, request.dlq_keys, request.dlq_count,
                                              request.redact_keys) if request.dlq_keys else []
    return result
