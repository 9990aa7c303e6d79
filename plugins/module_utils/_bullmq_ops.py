# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Operations on one BullMQ queue, all through the `bullmq` package's own scripts: add jobs, put a job scheduler in
place, drain, clean, pause/resume, obliterate; and the ban's cancel of a queue's pending jobs.

Each operation is a function of a QueueRun (the request, the queue as read at the start, the connections) that
returns an Outcome (what it did, or in check mode would do). _bullmq_queue.py validates the request, reads the queue
and picks the operation; retried/promoted/removed live in _bullmq_job_ops.py.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import RedisChangeAudit
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import add_job_chunks
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    LARGE_QUEUE_JOBS,
    MAX_CHUNK,
    STATES,
    client_where,
    clock_ms,
    job_key,
    key_types,
    queue_key,
    validate_queue_name,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import (
    DEFAULT_NODE_MAJOR,
    check_pairing,
    run_with_queue,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import (
    missing_queue_error,
    pending_counts,
    queue_depths,
    queue_snapshot,
    state_counts,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_repeat import (
    node_compatible_repeat_strategy,
    remove_legacy_repeatables,
    schedule_summary,
    scheduler_differs,
    scheduler_jobs_pending,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import DEFAULT_REDACT_KEYS
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_client, redis_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import redis.exceptions as redis_exceptions
except ImportError:
    redis_exceptions = None

CLEAN_STATES = ("completed", "failed", "wait", "paused", "delayed", "prioritized")


# --- A request, its run, its outcome -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class QueueRequest:
    """What one bullmq_queue call asks of one queue: the module's options (without dlq_*), with its defaults.

    A test or another core builds one with keyword options; the module's parameters give one through from_params.
    Raw as asked: _bullmq_queue.operate_queue validates it all before the first read.
    """

    queue: str
    prefix: str = BULLMQ_PREFIX
    state: str = "present"
    jobs: tuple = ()
    job_name: str = "job"
    job_opts: dict | None = None
    chunk_size: int = MAX_CHUNK
    scheduler: dict | None = None
    include_delayed: bool = False
    clean_states: tuple = ("completed", "failed")
    grace_seconds: int = 0
    clean_limit: int = 0
    force: bool = False
    allow_missing: bool = False
    job_id: str | None = None
    job_count: int = 0
    retry_state: str = "failed"
    retry_finished_before: int | str | None = None
    redact_keys: tuple = DEFAULT_REDACT_KEYS
    expect_node_major: int = DEFAULT_NODE_MAJOR
    reason: str | None = None

    @classmethod
    def from_params(cls, params):
        """The request in a module's parameters (lists as tuples); an option left unset (None or "") keeps its
        default."""
        return cls(**{field.name: tuple(params[field.name]) if isinstance(params[field.name], list)
                      else params[field.name]
                      for field in dataclasses.fields(cls) if params.get(field.name) not in (None, "")})


@dataclasses.dataclass(frozen=True)
class QueueRun:
    """Everything one operation works from: the request, what it prepared, the queue as read at the start."""

    request: QueueRequest
    params: dict  # connection parameters: Redis (bullmq_db), PostgreSQL for the audit trail
    client: object  # redis-py on the bullmq db
    depths: dict  # queue_depths of the queue
    schedulers: list  # read_schedulers of the queue
    audit: RedisChangeAudit
    check_mode: bool
    jobs: tuple = ()  # prepare_jobs of request.jobs
    scheduler: dict | None = None  # prepare_scheduler of request.scheduler
    cutoff_ms: int | None = None  # request.retry_finished_before, in epoch ms

    @property
    def queue(self):
        return self.request.queue

    @property
    def prefix(self):
        return self.request.prefix

    @property
    def target(self):
        """The audit row's target: every key of the queue."""
        return queue_key(self.prefix, self.queue, "*")

    @property
    def where(self):
        return client_where(self.client)

    def guard_write(self):
        """Before a write (and in check mode, which must fail where the real run would): the pairing, the audit log."""
        check_pairing(self.queue, self.depths, self.request.expect_node_major)
        self.audit.prepare()

    def predict(self, **changes):
        """The queue snapshot after a change: each field given a new value or a function of the old one."""
        after = queue_snapshot(self.depths, self.schedulers)
        for key, value in changes.items():
            after[key] = value(after[key]) if callable(value) else value
        return after

    def missing(self, action):
        """None when the queue exists; else an Outcome saying so (allow_missing) or the error."""
        if self.depths["exists"]:
            return None
        if self.request.allow_missing:
            return Outcome(report=dict(msg="queue {0} does not exist; nothing to {1}".format(self.queue, action)))
        raise missing_queue_error(self.queue, self.prefix, self.params, action)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one operation did (in check mode: would do)."""

    changed: bool = False
    report: dict = dataclasses.field(default_factory=dict)  # fields of the module result (jobs, drained, msg, ...)
    warnings: tuple = ()
    after: dict | None = None  # the queue snapshot it leads to, when it changes counts (the check-mode diff)


def combined(outcomes):
    """One Outcome of operations run one after the other (state=present: jobs, then the scheduler)."""
    report, warnings, after = {}, (), None
    for outcome in outcomes:
        report.update(outcome.report)
        warnings += outcome.warnings
        after = outcome.after if outcome.after is not None else after
    return Outcome(changed=any(o.changed for o in outcomes), report=report, warnings=warnings, after=after)


# --- state=present: jobs and a job scheduler ----------------------------------------------------------------------

def put_present(run):
    """Add the requested jobs that are not there yet, then put the requested scheduler in place."""
    if not run.jobs and not run.scheduler:
        return Outcome(report=dict(msg="nothing to do: give jobs, a scheduler, or another state"))
    run.guard_write()
    outcomes = []
    if run.jobs:
        outcomes.append(add_jobs(run))
    if run.scheduler:
        outcomes.append(put_scheduler(run))
    return combined(outcomes)


def add_jobs(run):
    client, jobs, prefix, name = run.client, run.jobs, run.prefix, run.queue
    keys = [job_key(prefix, name, job["id"]) for job in jobs]
    with redis_errors(run.where):
        types = key_types(client, keys)
    wrong = [(key, kind) for key, kind in zip(keys, types) if kind not in ("none", "hash")]
    if wrong:
        raise CerniqError("{0}: key {1} is a {2}, not a BullMQ job hash, so adding that job would fail with "
                          "WRONGTYPE ({3} such key(s)); nothing was added. Something else writes under "
                          "{4}:{5}:*".format(run.where, wrong[0][0], wrong[0][1], len(wrong), prefix, name))
    new_jobs = [job for job, kind in zip(jobs, types) if kind == "none"]
    now = clock_ms()
    delayed = sum(1 for job in new_jobs if (job["delay_ms"] if job["due_ms"] is None else job["due_ms"] - now) > 0)
    summary = dict(requested=len(jobs), added=len(new_jobs), existing=len(jobs) - len(new_jobs), delayed=delayed)
    warnings = ()
    if len(new_jobs) > LARGE_QUEUE_JOBS:
        warnings = ("adding {0} jobs to {1} in chunks of {2}".format(len(new_jobs), name, run.request.chunk_size),)
    if new_jobs and not run.check_mode:
        run_with_queue(run.params, name, prefix, lambda queue: add_job_chunks(
            queue, client, run.where, new_jobs, run.request.chunk_size))
        ids = [job["id"] for job in new_jobs]
        run.audit.record("bullmq_add_jobs", run.target, before=state_counts(run.depths),
                         after=dict(summary, ids=ids[:1000], ids_truncated=len(ids) > 1000))
    if not new_jobs:
        return Outcome(report=dict(jobs=summary), warnings=warnings)
    waiting = len(new_jobs) - delayed
    target = "paused" if run.depths["is_paused"] else "wait"
    return Outcome(changed=True, report=dict(jobs=summary), warnings=warnings,
                   after=run.predict(delayed=lambda n: n + delayed, **{target: lambda n: n + waiting}))


def put_scheduler(run):
    """Create, update or remove the requested job scheduler; `other_schedules` says what to do beside others."""
    spec = run.scheduler
    stored = next((s for s in run.schedulers if s["id"] == spec["id"]), None)
    if spec["state"] == "absent":
        view = dict(id=spec["id"], state="absent", removed=stored is not None)
        if stored is None:
            return Outcome(report=dict(scheduler=view))
        if not run.check_mode:
            run_with_queue(run.params, run.queue, run.prefix, lambda queue: queue.removeJobScheduler(spec["id"]))
            run.audit.record("bullmq_remove_scheduler", run.target, before=stored, after=None)
        return Outcome(changed=True, report=dict(scheduler=view))
    differs = scheduler_differs(spec, stored)
    view = dict(id=spec["id"], state="present", pattern=spec["pattern"], every=spec["every"], tz=spec["tz"],
                job_name=spec["job_name"], changed_fields=differs)
    mode = spec.get("other_schedules") or "ignore"
    others = [s for s in run.schedulers if s["id"] != spec["id"]]
    legacy = [s for s in others if s.get("legacy")]
    other_schedulers = [s for s in others if not s.get("legacy")]
    view["other_schedules"] = list(others)
    view["registration"] = "+".join(kind for kind, present in (("scheduler", stored is not None),
                                                               ("legacy", bool(legacy)),
                                                               ("other_scheduler", bool(other_schedulers))) if present)
    view["registration"] = view["registration"] or "none"
    if mode == "migrate" and other_schedulers:
        raise CerniqError("queue {0}: not migrating - besides {1}, it has {2}: a migration would leave two schedules. "
                          "Remove the one you do not want first. Nothing was changed".format(
                              run.queue, "its legacy repeatable job(s)" if legacy else "the requested scheduler",
                              "; ".join(schedule_summary(s) for s in other_schedulers)))
    if mode == "keep" and others and stored is None:
        # Never a second schedule beside an existing one: report what is there, create nothing.
        view["created"] = False
        view["kept"] = [schedule_summary(s) for s in others]
        return Outcome(report=dict(scheduler=view, msg="queue {0} already has {1}; job scheduler {2} was not created "
                                   "beside it{3}".format(run.queue, "; ".join(view["kept"]), spec["id"],
                                                         " (migrate the legacy registration to it with "
                                                         "other_schedules=migrate)" if legacy else "")))
    if not differs:
        view["next"] = stored.get("next")
    elif not run.check_mode:

        async def upsert(queue):
            from bullmq.job_scheduler import JobScheduler

            repeat = {"pattern": spec["pattern"]} if spec["pattern"] else {"every": spec["every"]}
            repeat["tz"] = spec["tz"]
            scheduler = JobScheduler(queue, repeat_strategy=node_compatible_repeat_strategy)
            job = await scheduler.upsertJobScheduler(spec["id"], repeat, spec["job_name"], spec["data"], spec["opts"])
            return job.id if job else None

        view["next_job_id"] = run_with_queue(run.params, run.queue, run.prefix, upsert)
        run.audit.record("bullmq_upsert_scheduler", run.target, before=stored,
                         after=dict(view, data=spec["data"], opts=spec["opts"]))
    migrating = mode == "migrate" and bool(legacy)
    if migrating:
        _migrate_legacy(run, spec, legacy, view)
    return Outcome(changed=bool(differs) or migrating, report=dict(scheduler=view))


def _migrate_legacy(run, spec, legacy, view):
    """After ours is in place: remove each legacy repeatable job it replaces, audited one by one."""
    view["migrated"] = list(legacy)
    if run.check_mode:
        return
    outcome = run_with_queue(run.params, run.queue, run.prefix,
                             lambda queue: remove_legacy_repeatables(queue, legacy))
    failed = []
    for legacy_view, (key, removed, gone) in zip(legacy, outcome):
        run.audit.record("bullmq_migrate_legacy_repeat", run.target, before=legacy_view,
                         after=dict(removed=removed, next_job_removed=gone, replaced_by=spec["id"],
                                    scheduler=dict(pattern=spec["pattern"], every=spec["every"], tz=spec["tz"])))
        if not (removed and gone):
            failed.append(key)
    if failed:
        raise CerniqError("queue {0}: job scheduler {1} is in place, but legacy repeatable job(s) {2} could not be "
                          "removed completely (their next job may be running): both schedules exist now; re-run "
                          "the migration".format(run.queue, spec["id"], ", ".join(failed)))


# --- drained, cleaned, paused / resumed, absent ----------------------------------------------------------------------

def drain(run):
    """Remove the waiting (and with include_delayed, delayed) jobs; each job scheduler keeps its next job."""
    missing = run.missing("drain")
    if missing is not None:
        return missing
    include_delayed = run.request.include_delayed
    kept = scheduler_jobs_pending(run.client, [run.queue], run.prefix)[run.queue]
    counts = pending_counts(run.depths, kept)
    if not include_delayed:
        counts["cancelled"] -= counts["delayed"]
        counts["delayed"] = 0
    counts["removed"] = counts.pop("cancelled")
    if counts["removed"] == 0:
        return Outcome(report=dict(drained=counts))
    warnings = ()
    if counts["removed"] > LARGE_QUEUE_JOBS:
        warning = ("draining {0} jobs of {1} is one Lua call that blocks Redis about 1 s per 100,000 jobs; for very "
                   "large queues prefer state=absent (obliterate works in chunks)".format(counts["removed"], run.queue))
        warnings = (warning,)
    outcome = Outcome(changed=True, report=dict(drained=counts), warnings=warnings, after=run.predict(
        wait=lambda n: n - counts["waiting"], paused=lambda n: n - counts["paused"],
        prioritized=lambda n: n - counts["prioritized"], delayed=lambda n: n - counts["delayed"]))
    run.guard_write()
    if run.check_mode:
        return outcome
    run_with_queue(run.params, run.queue, run.prefix, lambda queue: queue.drain(include_delayed))
    run.audit.record("bullmq_drain", run.target, before=state_counts(run.depths), after=counts)
    return outcome


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


def clean(run):
    """Remove the jobs of clean_states older than grace_seconds (at most clean_limit per state)."""
    missing = run.missing("clean")
    if missing is not None:
        return missing
    grace_ms = run.request.grace_seconds * 1000
    limit = run.request.clean_limit
    cutoff = clock_ms() - grace_ms
    with redis_errors(run.where):
        would = {state: _clean_would_remove(run.client, run.prefix, run.queue, state, cutoff, limit)
                 for state in dict.fromkeys(run.request.clean_states)}
    if not any(would.values()):
        return Outcome(report=dict(cleaned=would))
    after = run.predict(**{state: (lambda n, k=count: n - k) for state, count in would.items()})
    run.guard_write()
    if run.check_mode:
        return Outcome(changed=True, report=dict(cleaned=would), after=after)

    async def clean_states(queue):
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

    cleaned = run_with_queue(run.params, run.queue, run.prefix, clean_states)
    run.audit.record("bullmq_clean", run.target, before=state_counts(run.depths),
                     after=dict(removed=cleaned, grace_seconds=grace_ms // 1000, limit=limit))
    return Outcome(changed=True, report=dict(cleaned=cleaned), after=after)


def pause_or_resume(run):
    pause = run.request.state == "paused"
    missing = run.missing("pause" if pause else "resume")
    if missing is not None:
        return missing
    if run.depths["is_paused"] == pause:
        return Outcome()
    outcome = Outcome(changed=True, after=run.predict(is_paused=pause))
    run.guard_write()
    if run.check_mode:
        return outcome
    run_with_queue(run.params, run.queue, run.prefix, lambda queue: queue.pause() if pause else queue.resume())
    run.audit.record("bullmq_pause" if pause else "bullmq_resume", run.target,
                     before=dict(is_paused=not pause), after=dict(is_paused=pause))
    return outcome


def obliterate(run):
    """Remove the queue and everything in it; refuses while a worker holds a job, unless force."""
    missing = run.missing("obliterate")
    if missing is not None:
        return missing
    depths, force = run.depths, run.request.force
    if depths["active"] and not force:
        raise CerniqError("queue {0} has {1} active job(s) being processed by a worker: obliterate refuses; wait for "
                          "them, or set force=true to remove them too".format(run.queue, depths["active"]))
    outcome = Outcome(changed=True, report=dict(removed=dict(state_counts(depths), schedulers=len(run.schedulers))),
                      after=dict(dict.fromkeys(STATES, 0), is_paused=False, schedulers=[]))
    run.guard_write()
    if run.check_mode:
        return outcome
    was_paused = depths["is_paused"]

    async def obliterate_queue(queue):
        try:
            await queue.obliterate(force)
        except Exception as exc:
            # obliterate pauses first and leaves the queue paused when it gives up: undo that.
            if not was_paused:
                await queue.resume()
            if redis_exceptions is not None and isinstance(exc, redis_exceptions.RedisError):
                raise
            raise CerniqError("obliterating {0} failed: {1}; the queue was resumed and keeps its remaining "
                              "jobs".format(run.queue, exc)) from exc

    before = queue_snapshot(depths, run.schedulers)
    try:
        run_with_queue(run.params, run.queue, run.prefix, obliterate_queue)
    except CerniqError as exc:
        # obliterate works in chunks: some may be gone already, so the attempt is on record too.
        run.audit.record("bullmq_obliterate_failed", run.target, before=before, after=dict(error=exc.msg, force=force))
        raise
    run.audit.record("bullmq_obliterate", run.target, before=before, after=dict(obliterated=True, force=force))
    return outcome


# --- Cancel a queue's pending jobs (wa_phone ban) ---------------------------------------------------------------

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

    async def drain_all(queue):
        await queue.drain(True)

    run_with_queue(params, queue_name, prefix, drain_all)
    if audit is not None:
        audit.record("bullmq_cancel_pending", queue_key(prefix, queue_name, "*"), reason=reason,
                     before=state_counts(depths), after=dict(counts))
    return counts
