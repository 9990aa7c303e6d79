# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Job operations after an alert (bullmq_queue state=retried / promoted / removed): retry failed jobs, promote
delayed ones, or retry / promote / remove one job by id, through BullMQ's own scripts.

Each takes a QueueRun and returns an Outcome, like the queue operations in _bullmq_ops.py.
"""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import parse_due_ms
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    STATES,
    clock_ms,
    iso_ms,
    job_key,
    queue_key,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import Outcome
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import run_with_queue
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import state_counts
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import job_state, job_view
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import redis.exceptions as redis_exceptions
except ImportError:
    redis_exceptions = None

# Which finished set a bulk retry takes jobs from; BullMQ's moveJobsToWait script (Node's Queue.retryJobs) selects
# them by score (finishedOn) up to a cut-off time, oldest first.
RETRY_STATES = ("failed", "completed")
# At most this many ids are listed in a result or an audit row; the counts are always complete.
LISTED_IDS = 100
# States of bullmq_queue that take a job_id (one job) instead of acting on many, and what each does to it.
JOB_ID_STATES = ("retried", "promoted", "removed")
_ACTIONS = dict(retried="retry", promoted="promote", removed="remove")


def parse_cutoff_ms(value, tz_name):
    """A time cut-off (epoch ms or ISO 8601) or None (now, when the run starts)."""
    if value in (None, ""):
        return None
    return parse_due_ms(value, tz_name, "retry_finished_before")


def retry_promote_or_remove(run):
    """state=retried / promoted / removed: one job by id, or (retried, promoted) many by state, count, cut-off."""
    action = _ACTIONS[run.request.state]
    missing = run.missing(action)
    if missing is not None:
        return missing
    if run.request.job_id is not None:
        return _one_job(run, action)
    return _many_jobs(run, run.request.state)


def _many_jobs(run, state):
    """Retry every `retry_state` job finished before the cut-off (at most `job_count`), oldest first, in chunks of
    at most chunk_size through BullMQ's moveJobsToWait script; each call holds Redis for one chunk only."""
    client, prefix, name = run.client, run.prefix, run.queue
    from_state = "delayed" if state == "promoted" else run.request.retry_state
    if from_state not in RETRY_STATES + ("delayed",):
        raise CerniqError("retry_state {0!r} must be one of {1}".format(from_state, ", ".join(RETRY_STATES)))
    limit = run.request.job_count
    # Delayed scores are due << 12: every delayed job sits below +inf. Finished jobs are scored by finishedOn, so a
    # job failing again while we retry (finishedOn after the cut-off) is not picked up a second time.
    cutoff = "+inf" if from_state == "delayed" else (run.cutoff_ms if run.cutoff_ms is not None else clock_ms())
    key = queue_key(prefix, name, from_state)
    with redis_errors(run.where):
        matching = client.zcount(key, 0, cutoff)
        total = min(matching, limit) if limit else matching
        ids = client.zrangebyscore(key, 0, cutoff, start=0, num=min(total, LISTED_IDS)) if total else []
    verb = "promoted" if state == "promoted" else "retried"
    summary = {"from_state": from_state, verb: total, "ids": ids, "ids_truncated": total > len(ids),
               "finished_before": None if from_state == "delayed" else iso_ms(cutoff),
               "finished_before_ms": None if from_state == "delayed" else cutoff, "limit": limit}
    if not total:
        return Outcome(report=dict(jobs=summary))
    warnings = ()
    if run.depths["prioritized"] and from_state == "delayed":
        warnings = ("BullMQ's promoteJobs moves delayed jobs to wait without their priority (as Node's "
                    "Queue.promoteJobs does)",)
    target = "paused" if run.depths["is_paused"] else "wait"
    outcome = Outcome(changed=True, report=dict(jobs=summary), warnings=warnings,
                      after=run.predict(**{from_state: lambda n: n - total, target: lambda n: n + total}))
    run.guard_write()
    if run.check_mode:
        return outcome
    chunk = run.request.chunk_size

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
        summary[verb] = run_with_queue(run.params, name, prefix, move)
    finally:
        run.audit.record("bullmq_promote_jobs" if verb == "promoted" else "bullmq_retry_jobs", run.target,
                         before=dict(state_counts(run.depths), matching=matching),
                         after=dict(summary, planned=total))
    return outcome


def _one_job(run, action):
    """Retry, promote or remove one job by id, through BullMQ's own reprocessJob / promote / removeJob scripts."""
    prefix, name, job_id = run.prefix, run.queue, run.request.job_id
    state, fields = job_state(run.client, prefix, name, job_id)
    view = job_view(job_id, state, fields, run.request.redact_keys)
    wanted = dict(retry=RETRY_STATES, promote=("delayed",), remove=None)[action]
    if state is None:
        if action == "remove":
            return Outcome(report=dict(job=view, msg="job {0} is not in queue {1}: nothing to remove".format(
                job_id, name)))
        raise CerniqError("queue {0} has no job {1} (no {2}): check the id (bullmq_job_info finds jobs by "
                          "data)".format(name, job_id, job_key(prefix, name, job_id)))
    if wanted is not None and state not in wanted:
        return Outcome(report=dict(job=view, msg="job {0} is {1}, not {2}: nothing to {3}".format(
            job_id, state, " or ".join(wanted), action)))
    if action == "remove" and state == "active":
        raise CerniqError("job {0} of {1} is active (a worker holds its lock): BullMQ refuses to remove it; wait for "
                          "it to finish. Nothing was changed".format(job_id, name))
    target = "paused" if run.depths["is_paused"] else "wait"
    if action != "remove":
        after = run.predict(**{state: lambda n: n - 1, target: lambda n: n + 1})
    else:
        after = run.predict(**{state: lambda n: n - 1}) if state in STATES else None
    outcome = Outcome(changed=True, report=dict(job=view), after=after)
    run.guard_write()
    if run.check_mode:
        return outcome

    async def operate(queue):
        from bullmq.job import Job

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
        done = run_with_queue(run.params, name, prefix, operate)
    except CerniqError:
        raise
    except Exception as exc:  # pylint: disable=broad-except
        if redis_exceptions is not None and isinstance(exc, redis_exceptions.RedisError):
            raise
        raise CerniqError("{0} job {1} of {2} failed: {3}".format(action, job_id, name, exc)) from exc
    if not done:
        raise CerniqError("job {0} of {1} could not be {2}d: it is locked by a worker or was removed meanwhile".format(
            job_id, name, action))
    run.audit.record("bullmq_{0}_job".format(action), job_key(prefix, name, job_id),
                     before=dict(state=state, name=view["name"], failed_reason=view["failed_reason"]),
                     after=dict(state=None if action == "remove" else target))
    return outcome
