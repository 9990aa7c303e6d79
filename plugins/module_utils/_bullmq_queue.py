# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bullmq_queue module's core for one operation on one queue (a dead-letter queue is _bullmq_dlq.manage_dlq).

A queue operation validates the whole request before the first read, reads the queue once (depths, schedulers,
preflight), runs the operation the state names and returns the module result, with the diff (predicted in check
mode) when asked.
"""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import RedisChangeAudit
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_job_ops import (
    JOB_ID_STATES,
    parse_cutoff_ms,
    retry_promote_or_remove,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import gc_paused, prepare_jobs
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    MAX_CHUNK,
    client_where,
    validate_job_id,
    validate_limit,
    validate_queue_name,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import (
    CLEAN_STATES,
    QueueRun,
    clean,
    drain,
    obliterate,
    pause_or_resume,
    put_present,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import require_bullmq
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import (
    preflight,
    queue_depths,
    queue_snapshot,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_repeat import prepare_scheduler, read_schedulers
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_client, redis_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import DEFAULT_TIMEZONE
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

# What each state of bullmq_queue runs: a function of a QueueRun returning an Outcome.
OPERATIONS = dict(present=put_present, drained=drain, cleaned=clean, paused=pause_or_resume, resumed=pause_or_resume,
                  absent=obliterate, retried=retry_promote_or_remove, promoted=retry_promote_or_remove,
                  removed=retry_promote_or_remove)


def operate_queue(params, request, check_mode=False, want_diff=False):
    """Run one QueueRequest on its queue; `params` are the connections (Redis, PostgreSQL for the audit, timezone).

    Returns the module result: changed, queue, state, warnings, what the operation reports, and the diff (queue
    snapshots before and after; in check mode the predicted after) when `want_diff`.
    """
    require_bullmq()
    with gc_paused(len(request.jobs or ()) > MAX_CHUNK):
        prepared = _prepare(request, params.get("timezone") or DEFAULT_TIMEZONE)
        client = redis_client(params, params["bullmq_db"])
        depths = queue_depths(client, [request.queue], request.prefix)[request.queue]
        schedulers = read_schedulers(client, [request.queue], request.prefix)[request.queue]
        with redis_errors(client_where(client)):
            warnings = preflight(client)["warnings"]
        audit_params = params if request.reason is None else dict(params, reason=request.reason)
        audit = RedisChangeAudit(audit_params, "bullmq_queue", check_mode)
        run = QueueRun(request=request, params=params, client=client, depths=depths, schedulers=schedulers,
                       audit=audit, check_mode=check_mode, **prepared)
        try:
            outcome = OPERATIONS[request.state](run)
        finally:
            audit.close()
    result = dict(changed=outcome.changed, queue=request.queue, state=request.state,
                  warnings=warnings + list(outcome.warnings))
    result.update(outcome.report)
    if want_diff:
        before = queue_snapshot(depths, schedulers)
        after = before
        if outcome.changed and not check_mode:
            after = queue_snapshot(queue_depths(client, [request.queue], request.prefix)[request.queue],
                                   read_schedulers(client, [request.queue], request.prefix)[request.queue])
        elif outcome.changed and outcome.after is not None:
            after = outcome.after
        result["diff"] = dict(before=before, after=after)
    return result


def _prepare(request, tz_name):
    """Validate the whole request before anything is read or written: {jobs, scheduler, cutoff_ms} for QueueRun."""
    validate_queue_name(request.queue)
    state = request.state
    if state not in OPERATIONS:
        raise CerniqError("state {0!r} must be one of {1}".format(state, ", ".join(OPERATIONS)))
    jobs = prepare_jobs(request.jobs, request.job_name or "job", request.job_opts, tz_name)
    scheduler = prepare_scheduler(request.scheduler, tz_name)
    if state != "present" and (jobs or scheduler):
        raise CerniqError("jobs and scheduler go with state=present, not state={0}".format(state))
    if state == "cleaned":
        bad = [s for s in request.clean_states or () if s not in CLEAN_STATES]
        if bad or not request.clean_states:
            raise CerniqError("clean_states {0} must be a non-empty list of {1}".format(
                list(request.clean_states or ()), ", ".join(CLEAN_STATES)))
    for option in ("grace_seconds", "clean_limit"):
        if getattr(request, option) < 0:
            raise CerniqError("{0} {1} must not be negative".format(option, getattr(request, option)))
    validate_limit(request.job_count, "job_count")
    if not 1 <= request.chunk_size <= MAX_CHUNK:
        raise CerniqError("chunk_size {0} must be between 1 and {1} (larger chunks stall Redis for every other "
                          "client)".format(request.chunk_size, MAX_CHUNK))
    if request.job_id is not None:
        validate_job_id(request.job_id)
        if state not in JOB_ID_STATES:
            raise CerniqError("job_id goes with state={0}, not state={1}".format(", ".join(JOB_ID_STATES), state))
    elif state == "removed":
        raise CerniqError("state=removed removes one job: give its job_id (state=absent obliterates the queue)")
    return dict(jobs=tuple(jobs), scheduler=scheduler,
                cutoff_ms=parse_cutoff_ms(request.retry_finished_before, tz_name))
