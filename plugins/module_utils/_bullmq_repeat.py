# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A queue's repeating registrations: job schedulers and legacy repeatable jobs, read, validated and compared.

Both live in the queue's `repeat` sorted set (member: the registration's id, score: its next run in ms). A job
scheduler (`upsertJobScheduler`) keeps a `repeat:<id>` hash with `ic`; a legacy repeatable job (Node BullMQ 5
`Queue.add(name, data, {repeat})`, the runbook's registration) never has `ic`, and old ones have no hash at all.
"""

from __future__ import annotations

import hashlib

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    PENDING_STATES,
    client_where,
    int_or_none,
    iso_ms,
    json_or_raw,
    queue_key,
    validate_job_opts,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX, platform_zone
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

# What `other_schedules` of a scheduler request may be: the queue's other registrations are ignored (a second schedule
# may be created beside them), kept (ours is not created while another exists), or legacy ones migrated to ours.
OTHER_SCHEDULES = ("ignore", "keep", "migrate")


# --- Reads: any number of queues in two pipelines ----------------------------------------------------------------

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
    with redis_errors(client_where(client)):
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


def read_schedulers(client, queue_names, prefix=BULLMQ_PREFIX):
    """{queue: [scheduler]} for any number of queues: one pipeline of ZRANGE repeat, one of HGETALL repeat:<id>."""
    names = list(dict.fromkeys(queue_names))
    with redis_errors(client_where(client)):
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
    view = dict(id=scheduler_id, next_ms=next_ms, next=iso_ms(next_ms), legacy=False, name=fields.get("name"),
                pattern=fields.get("pattern"), every=int_or_none(fields.get("every")), tz=fields.get("tz"),
                iteration_count=int_or_none(fields.get("ic")),
                next_job_id="repeat:{0}:{1}".format(scheduler_id, next_ms),
                data=json_or_raw(fields.get("data"), {}), opts=json_or_raw(fields.get("opts"), {}))
    for extra in ("limit", "startDate", "endDate", "offset"):
        if extra in fields:
            view[extra] = int_or_none(fields[extra])
    return view


def schedule_summary(view):
    """One registration on a queue in words: a job scheduler or a legacy repeatable job, with its timing."""
    kind = "legacy repeatable job" if view.get("legacy") else "job scheduler"
    timing = view.get("pattern") or ("every {0} ms".format(view["every"]) if view.get("every") else "?")
    return "{0} {1} ({2}, {3}, next {4})".format(kind, view["id"], timing,
                                                 view.get("tz") or "no tz: the worker host's local time",
                                                 view.get("next"))


# --- Job schedulers: the request, its cron, whether the stored one differs ----------------------------------------

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
                opts=validate_job_opts(spec.get("opts"), "scheduler {0}".format(scheduler_id)),
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

def _md5(text):
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
        every, end_date = int_or_none(fields.get("every")), int_or_none(fields.get("endDate"))
        next_job_id = "repeat:{0}:{1}".format(key, next_ms)
    else:
        parts = key.split(":")
        name = parts[0]
        end_date = int_or_none(parts[2]) if len(parts) > 2 else None
        tz = (parts[3] or None) if len(parts) > 3 else None
        suffix = ":".join(parts[4:])
        pattern, every = (None, int(suffix)) if suffix.isdigit() else (suffix or None, None)
        next_job_id = _old_format_job_id_prefix(name, key) + str(next_ms)
    return dict(id=key, legacy=True, name=name, pattern=pattern, every=every, tz=tz, endDate=end_date,
                next_ms=next_ms, next=iso_ms(next_ms), next_job_id=next_job_id, key_format="hash" if fields else "key")


def _old_format_job_id_prefix(name, key):
    return "repeat:{0}:".format(_md5(name + _md5(key)))


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
