#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bullmq_queue
short_description: Add, retry, promote or remove jobs; schedulers; drain, clean, pause, obliterate a queue; trim a DLQ
version_added: 0.1.0
description:
  - Changes one BullMQ queue of the platform only through the Python C(bullmq) package (BullMQ's own Lua
    scripts), so markers, events, delayed scores and job-id checks stay exactly as the Node workers expect.
    Reads (counts, the version check, what check mode reports) use plain Redis commands in one pipeline.
  - O(queue) is the queue's B(key path) under O(prefix). C(q:wa:phone_07) with prefix C(bull) is the queue the
    Node workers open as prefix C(bull:q:wa), name C(phone_07) (Node BullMQ 5.12.12 and later refuse C(:) in queue
    names); both address the same Redis keys C(bull:q:wa:phone_07:*).
  - B(Version pairing.) The Python package's major must pair with the workers' Node BullMQ major (Node 5 with
    Python C(bullmq) 2.x, Node 6 with 3.x); mixing them loses jobs on pause and resume. Before any write the module
    reads the queue's C(meta.version) (written by Node queues as C(bullmq:<x.y.z>)) and refuses on a mismatch, naming
    the package to install. A queue without C(meta.version) is checked against O(expect_node_major).
  - B(Jobs) need deterministic ids (not all digits, no C(:), as Node requires); adding an id that exists is a no-op,
    so re-running the task reports C(changed=false). Due times are absolute (O(jobs[].due_at)); the delay is
    computed when the job is added. Jobs go in plain pipelines of at most 1,000 BullMQ C(addJob) scripts so Redis
    never stalls; two chunks are in flight while the next is built (about 25,000 jobs/s with C(hiredis)).
  - B(Dead-letter queues) (O(dlq_type)) are counted and trimmed by their explicit type; see O(dlq_type).
  - Every change is written to C(ops_audit_log) right after Redis accepted it (so the PostgreSQL options are needed
    for changes, not for check mode or no-op runs). Bad input fails with one message before anything changes.
  - Warns when Redis' C(maxmemory-policy) is not C(noeviction) or persistence is off (BullMQ's production rules),
    and before a drain of more than 100,000 jobs (one Lua call, about 1 s of blocked Redis per 100,000).
  - Draining (O(state=drained)), cleaning (O(state=cleaned)), obliterating (O(state=absent)), trimming a dead-letter
    queue (O(dlq_keep)) and removing legacy repeatable jobs (O(scheduler.other_schedules=migrate)) are destructive, so
    they need O(confirmed=true). Adding jobs, creating or updating a scheduler, pausing and resuming do not.
  - B(After an alert) (C(dlq:overflow), "fix errors, then retry"), O(state=retried) moves failed (or completed) jobs
    back to wait with BullMQ's own C(moveJobsToWait) script (Node's C(Queue.retryJobs)), by O(retry_state), at most
    O(job_count) of them, finished before O(retry_finished_before); O(state=promoted) moves delayed jobs to wait
    now (Node's C(Queue.promoteJobs)). Both go in script calls of at most O(chunk_size) jobs, so one call holds Redis
    for one chunk only, and both need O(confirmed=true) (the jobs run again, or early).
  - With O(job_id), O(state=retried), V(promoted) or V(removed) act on that one job, through BullMQ's
    C(reprocessJob) (Node's C(Job.retry)), C(promote) (C(Job.promote)) and C(removeJob) (C(Job.remove)) scripts.
    Removing needs O(confirmed=true); retrying or promoting one job does not. A job in another state is left
    alone (C(changed=false), a message says why); an active job is never removed.
  - Check mode reports how many jobs and which ids (at most 100 listed, read with one bounded C(ZRANGEBYSCORE)).
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._audit
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._confirm
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.MUTATING
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.audit,
                 cerniq.outreach.all]
options:
  queue:
    description:
      - The queue's key path under O(prefix), for example C(q:wa:phone_07), C(outreach:followup) or
        C(quota:guardian:reset).
      - Required unless O(dlq_type=list).
    type: str
  prefix:
    description:
      - BullMQ key prefix. Keep C(bull) and put the rest of the path in O(queue).
    type: str
    default: bull
  state:
    description:
      - V(present) adds O(jobs) and creates, updates or removes O(scheduler); the queue is created by its first job.
      - V(drained) removes every job waiting (C(wait), C(paused), C(prioritized)) and, with O(include_delayed), the
        delayed ones; never the active ones. A job scheduler keeps its next job.
      - V(cleaned) removes jobs of O(clean_states) older than O(grace_seconds), at most O(clean_limit) per state.
      - V(paused) / V(resumed) pause or resume the queue for every worker.
      - V(absent) obliterates the queue (jobs, schedulers, meta, events), in chunks of 1,000 jobs; if it fails the
        queue is resumed (BullMQ leaves it paused), unless it was paused before.
      - V(retried) retries O(retry_state) jobs (or the one O(job_id)); V(promoted) promotes delayed jobs (or the
        one O(job_id)) to wait; V(removed) removes the one job O(job_id) (its hash, logs and dependencies).
      - V(drained), V(cleaned), V(paused), V(resumed), V(absent), V(retried), V(promoted) and V(removed) fail on a
        queue that does not exist, unless O(allow_missing=true).
    type: str
    choices: [present, drained, cleaned, paused, resumed, absent, retried, promoted, removed]
    default: present
  jobs:
    description:
      - Jobs to add (O(state=present)). Jobs whose id exists in the queue are left as they are (BullMQ keeps the
        first write); the result says how many were added and how many existed.
      - A job whose id was removed (for example by C(removeOnComplete)) is added again.
    type: list
    elements: dict
    suboptions:
      id:
        description:
          - Deterministic job id, for example C(fu-<lead_id>-<due_epoch_ms>). Not all digits, no C(:), no spaces.
        type: str
        required: true
      name:
        description:
          - Job name the Node processor sees. Defaults to O(job_name).
        type: str
      data:
        description:
          - Job payload (any JSON value).
        type: raw
      due_at:
        description:
          - When the job is due, as epoch milliseconds or an ISO 8601 time (a time without offset is in the
            platform O(timezone)). The delay is C(max(0, due - now)) at the time of adding; a past time makes a
            waiting job.
          - Mutually exclusive with O(jobs[].delay_ms).
        type: raw
      delay_ms:
        description:
          - Delay in milliseconds from the time of adding.
        type: int
      opts:
        description:
          - Further BullMQ job options (C(attempts), C(backoff), C(priority), C(lifo), C(removeOnComplete),
            C(removeOnFail)...), merged over O(job_opts). C(jobId), C(delay), C(repeat), C(parent) and
            C(timestamp) are set by the module and refused here.
        type: dict
  job_name:
    description:
      - Default job name for O(jobs).
    type: str
    default: job
  job_opts:
    description:
      - BullMQ job options applied to every job of O(jobs).
      - Node workers keep completed jobs forever unless C(removeOnComplete) is set here or on the worker; while a
        job is kept, re-adding its id stays a no-op.
    type: dict
  chunk_size:
    description:
      - Jobs per Redis pipeline when adding, at most 1,000.
    type: int
    default: 1000
  scheduler:
    description:
      - A BullMQ job scheduler on the queue (O(state=present)), such as the runbook's daily quota reset on
        C(quota:guardian:reset) with pattern C(0 0 * * *).
      - Compared with the stored C(repeat:<id>) hash; an up-to-date scheduler is not touched (C(changed=false)).
    type: dict
    suboptions:
      id:
        description:
          - Scheduler id (no C(:)).
        type: str
        required: true
      state:
        description:
          - V(absent) removes the scheduler and its pending job.
        type: str
        choices: [present, absent]
        default: present
      pattern:
        description:
          - Cron pattern; 5 fields, or 6 with seconds first (as Node BullMQ reads it).
          - Exactly one of O(scheduler.pattern) and O(scheduler.every) when present.
        type: str
      every:
        description:
          - Repeat every this many milliseconds.
        type: int
      tz:
        description:
          - IANA time zone of the pattern, stored with the scheduler so the Node workers compute the same times.
            Defaults to the platform O(timezone).
        type: str
      job_name:
        description:
          - Name of the jobs it produces. Defaults to the scheduler id.
        type: str
      data:
        description:
          - Payload of the jobs it produces.
        type: raw
      opts:
        description:
          - BullMQ job options of the jobs it produces.
        type: dict
      other_schedules:
        description:
          - What to do about the queue's other registrations - job schedulers under other ids, and legacy repeatable
            jobs (Node BullMQ 5 C(Queue.add(name, data, {repeat})), the runbook's way to register the quota reset).
            The result's C(scheduler.registration) says which are there (C(scheduler), C(legacy),
            C(other_scheduler), joined by C(+), or C(none)) and C(scheduler.other_schedules) lists them.
          - V(ignore) creates or updates this scheduler whatever else is there.
          - V(keep) never creates it beside another registration (a second schedule would run the job twice); it
            reports what is there instead (C(changed=false)). An existing scheduler with this id is still updated.
          - V(migrate) replaces the queue's legacy repeatable jobs by this scheduler - it is created (or updated)
            first, then each legacy job is removed with BullMQ's own C(removeRepeatable) script (its C(repeat)
            entry, hash and next delayed job), audited. Refused when the queue has a job scheduler under another id.
            Check mode shows what would be migrated.
        type: str
        choices: [ignore, keep, migrate]
        default: ignore
  include_delayed:
    description:
      - With O(state=drained), also remove delayed jobs.
    type: bool
    default: false
  clean_states:
    description:
      - With O(state=cleaned), the states to clean.
    type: list
    elements: str
    choices: [completed, failed, wait, paused, delayed, prioritized]
    default: [completed, failed]
  grace_seconds:
    description:
      - With O(state=cleaned), keep jobs younger than this (finished time for completed and failed jobs, creation
        time for the others).
    type: int
    default: 0
  clean_limit:
    description:
      - With O(state=cleaned), remove at most this many jobs per state; C(0) means all. Completed and failed jobs
        are removed in calls of at most 1,000.
    type: int
    default: 0
  force:
    description:
      - With O(state=absent), also remove jobs that are being processed (active). Without it, a queue with active
        jobs is refused before anything changes.
    type: bool
    default: false
  allow_missing:
    description:
      - Accept a queue that does not exist for O(state=drained), V(cleaned), V(paused), V(resumed), V(absent) and
        DLQ trims, reporting C(changed=false), instead of failing (a mistyped name fails by default).
    type: bool
    default: false
  job_id:
    description:
      - With O(state=retried), V(promoted) or V(removed), the one job to act on (an id as BullMQ stores it, not all
        digits, no C(:)). Required with O(state=removed).
    type: str
  job_count:
    description:
      - With O(state=retried) or V(promoted) and no O(job_id), act on at most this many jobs (oldest first);
        C(0) means all of them.
    type: int
    default: 0
  retry_state:
    description:
      - With O(state=retried) and no O(job_id), which finished jobs to retry.
    type: str
    choices: [failed, completed]
    default: failed
  retry_finished_before:
    description:
      - With O(state=retried) and no O(job_id), retry only jobs that finished before this time (epoch milliseconds,
        or ISO 8601; a time without offset is in the platform O(timezone)). Default - the time the run starts, so a
        job that fails again during the retry is not retried twice.
    type: raw
  redact_keys:
    description:
      - With O(job_id), the job data shown in RV(job) has the value of every key whose name contains one of these
        (case-insensitive) replaced by C(********).
    type: list
    elements: str
    default: [password, token, api_key, authorization, secret]
  expect_node_major:
    description:
      - Node BullMQ major the workers run, used when the queue has no C(meta.version) yet. The platform runs 5.
    type: int
    choices: [5, 6]
    default: 5
  dlq_type:
    description:
      - Work on a dead-letter queue instead, of this type (BullMQ has no DLQ of its own; say which one you mean).
      - V(list) is an application list such as the runbook's C(bull:dlq:outreach) (O(dlq_key)), counted with
        C(LLEN) and trimmed with C(LTRIM) to the newest O(dlq_keep) entries. Not a BullMQ structure; a key of
        another type is refused.
      - V(failed) is the failed set of O(queue); trimming removes the oldest failed jobs through BullMQ (never a raw
        C(ZREM), which would orphan job hashes).
      - V(queue) is a separate BullMQ queue O(queue) whose waiting jobs are the dead letters; O(dlq_keep=0) drains it
        (delayed jobs too), a larger O(dlq_keep) removes the oldest waiting jobs beyond it through BullMQ.
      - Without O(dlq_keep) the DLQ is only counted.
    type: str
    choices: [list, failed, queue]
  dlq_key:
    description:
      - With O(dlq_type=list), the list's Redis key (in the O(bullmq_db) database).
    type: str
    default: bull:dlq:outreach
  dlq_pattern:
    description:
      - With O(dlq_type=list), every key matching this pattern instead of the one O(dlq_key) (runbook 8.1 step 3
        trims every C(bull:dlq:*) list). Keys are found with C(SCAN MATCH), never C(KEYS), and each is C(TYPE)-checked
        - a key that is not a list, or is one of a BullMQ queue's own lists (C(wait), C(paused), C(active) beside its
        C(meta) or C(id)), is reported in C(dlq.skipped) and a warning, never touched.
      - Each list is trimmed on its own, atomically (type, length and C(LTRIM) in one Lua call), and audited.
      - The pattern must start with a literal prefix ending in C(:) (for example C(bull:dlq:*)); more than 1,000
        matching keys is refused before anything changes.
    type: str
  dlq_keep:
    description:
      - How many of the newest DLQ entries to keep; older ones are removed. Not negative.
    type: int
  dlq_push_side:
    description:
      - With O(dlq_type=list), which end the application pushes to. V(left) (C(LPUSH), the runbook's) keeps
        C(0..N-1), V(right) (C(RPUSH)) keeps C(-N..-1).
    type: str
    choices: [left, right]
    default: left
  reason:
    description:
      - Why, written to the audit log with every change.
    type: str
notes:
  - Runs the C(bullmq) package with C(asyncio.run) on the managed host, which needs Python 3.10 or later and
    C(bullmq==2.26.0) (the port that pairs with Node BullMQ 5).
  - A drain, clean or obliterate races with producers adding jobs at the same moment; counts are taken just before.
seealso:
  - module: cerniq.outreach.bullmq_queue_info
requirements:
  - bullmq==2.26.0 (Python, pairs with Node BullMQ 5)
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Schedule follow-ups (re-running adds nothing twice)
  cerniq.outreach.bullmq_queue:
    queue: outreach:followup
    job_name: followup
    job_opts:
      removeOnComplete: true
      attempts: 3
    jobs: "{{ followups }}"   # [{id: fu-<lead>-<due_ms>, due_at: <due_ms>, data: {leadId: ...}}, ...]

- name: The midnight quota reset, in the platform's time zone
  cerniq.outreach.bullmq_queue:
    queue: quota:guardian:reset
    scheduler:
      id: quota-reset-daily
      pattern: "0 0 * * *"
      tz: Europe/Bucharest
      job_name: reset

- name: Cancel everything a banned phone still had queued
  cerniq.outreach.bullmq_queue:
    queue: q:wa:phone_07
    state: drained
    include_delayed: true
    reason: phone_07 banned by WhatsApp
    confirmed: true

- name: Remove completed and failed jobs older than a week
  cerniq.outreach.bullmq_queue:
    queue: outreach:followup
    state: cleaned
    grace_seconds: 604800
    confirmed: true

- name: After fixing the cause, retry the jobs that failed before now, in chunks of 1000
  cerniq.outreach.bullmq_queue:
    queue: q:wa:phone_07
    state: retried
    retry_state: failed
    reason: dlq:overflow - TimelinesAI token renewed
    confirmed: true

- name: Run every delayed follow-up now
  cerniq.outreach.bullmq_queue:
    queue: outreach:followup
    state: promoted
    confirmed: true

- name: Retry one failed job
  cerniq.outreach.bullmq_queue:
    queue: q:wa:phone_07
    state: retried
    job_id: fu-lead-42-1764000000000

- name: Remove one job
  cerniq.outreach.bullmq_queue:
    queue: q:wa:phone_07
    state: removed
    job_id: fu-lead-42-1764000000000
    confirmed: true

- name: Keep the newest 1000 entries of the application's dead-letter list
  cerniq.outreach.bullmq_queue:
    dlq_type: list
    dlq_key: bull:dlq:outreach
    dlq_keep: 1000
    confirmed: true

- name: Keep the newest 1000 entries of every dead-letter list (runbook 8.1 step 3)
  cerniq.outreach.bullmq_queue:
    dlq_type: list
    dlq_pattern: "bull:dlq:*"
    dlq_keep: 1000
    confirmed: true
"""

RETURN = r"""
queue:
  description: The queue's key path.
  returned: when O(queue) was used
  type: str
  sample: q:wa:phone_07
jobs:
  description:
    - With O(jobs), jobs requested, added (ids that did not exist), existing (left alone) and added as delayed.
    - With O(state=retried) or V(promoted) and no O(job_id) - C(from_state), how many were (or would be)
      C(retried) or C(promoted), the first 100 C(ids) (oldest first) and C(ids_truncated), C(finished_before) (the
      cut-off, ISO 8601 UTC), C(finished_before_ms) (the same in epoch milliseconds) and C(limit).
  returned: when O(jobs) was given, or O(state=retried) or V(promoted) without O(job_id)
  type: dict
  sample: {requested: 1000, added: 0, existing: 1000, delayed: 0}
job:
  description: With O(job_id), the job as it was - C(id), C(state) (null - no such job), C(name), C(data) (redacted
    by O(redact_keys)), C(failed_reason), C(attempts_made), C(timestamp), C(processed_on), C(finished_on).
  returned: when O(job_id) was given
  type: dict
  sample: {id: fu-lead-42-1764000000000, state: failed, name: send, data: {leadId: lead-42, token: "********"},
           failed_reason: "TimelinesAI 401", attempts_made: 3}
scheduler:
  description:
    - The scheduler's wanted settings and which stored fields differed (C(changed_fields)).
    - C(registration) - which registrations the queue had (C(scheduler), C(legacy), C(other_scheduler) joined by
      C(+), or C(none)); C(other_schedules) - those other than this scheduler; C(kept) - with
      O(scheduler.other_schedules=keep), what was there instead of a new scheduler; C(migrated) - with
      O(scheduler.other_schedules=migrate), the legacy repeatable jobs removed (or that would be).
  returned: when O(scheduler) was given
  type: dict
  sample: {id: quota-reset-daily, state: present, pattern: "0 0 * * *", tz: Europe/Bucharest, changed_fields: []}
drained:
  description: Jobs removed (or that would be, in check mode) by state, and in all (C(removed)).
  returned: when O(state=drained)
  type: dict
  sample: {waiting: 12, paused: 0, prioritized: 1, delayed: 0, removed: 13}
cleaned:
  description: Jobs removed (or that would be) per cleaned state.
  returned: when O(state=cleaned)
  type: dict
  sample: {completed: 1500, failed: 3}
removed:
  description: What the obliterated queue held, by state, and its number of schedulers.
  returned: when O(state=absent) and the queue existed
  type: dict
dlq:
  description: The dead-letter queue's type, key or queue, length before, C(keep) and how many entries were (or
    would be) removed. With O(dlq_pattern) - C(pattern), C(lists) (each matching list's C(key), C(length) and
    C(removed)), C(skipped) (C(key), C(type), C(why) of each matching key left alone) and the totals C(length) and
    C(removed).
  returned: when O(dlq_type) was given
  type: dict
  sample: {type: list, key: bull:dlq:outreach, exists: true, length: 1500, keep: 1000, removed: 500, push_side: left}
diff:
  description: Job counts by state, paused flag and scheduler ids before and after (predicted in check mode).
  returned: in diff mode
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_dlq import DlqRequest, manage_dlq
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import QueueRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import (
    BULLMQ_IMPORT_ERROR,
    BULLMQ_REQUIREMENT,
    require_bullmq,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_queue import operate_queue
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import DEFAULT_REDACT_KEYS
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX, DLQ_LIST_KEY
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import (
    CONFIRMED_ARGUMENT_SPEC,
    run_destructive,
    with_warnings,
)


def argument_spec():
    spec = common_argument_spec("redis", "postgres", "platform", "audit")
    spec.update(
        queue=dict(type="str"),
        prefix=dict(type="str", default=BULLMQ_PREFIX),
        state=dict(type="str", default="present",
                   choices=["present", "drained", "cleaned", "paused", "resumed", "absent", "retried", "promoted",
                            "removed"]),
        jobs=dict(type="list", elements="dict", options=dict(
            id=dict(type="str", required=True),
            name=dict(type="str"),
            data=dict(type="raw"),
            due_at=dict(type="raw"),
            delay_ms=dict(type="int"),
            opts=dict(type="dict"),
        ), mutually_exclusive=[("due_at", "delay_ms")]),
        job_name=dict(type="str", default="job"),
        job_opts=dict(type="dict"),
        chunk_size=dict(type="int", default=1000),
        scheduler=dict(type="dict", options=dict(
            id=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            pattern=dict(type="str"),
            every=dict(type="int"),
            tz=dict(type="str"),
            job_name=dict(type="str"),
            data=dict(type="raw"),
            opts=dict(type="dict"),
            other_schedules=dict(type="str", default="ignore", choices=["ignore", "keep", "migrate"]),
        ), mutually_exclusive=[("pattern", "every")]),
        include_delayed=dict(type="bool", default=False),
        clean_states=dict(type="list", elements="str", default=["completed", "failed"],
                          choices=["completed", "failed", "wait", "paused", "delayed", "prioritized"]),
        grace_seconds=dict(type="int", default=0),
        clean_limit=dict(type="int", default=0),
        force=dict(type="bool", default=False),
        allow_missing=dict(type="bool", default=False),
        job_id=dict(type="str"),
        job_count=dict(type="int", default=0),
        retry_state=dict(type="str", default="failed", choices=["failed", "completed"]),
        retry_finished_before=dict(type="raw"),
        redact_keys=dict(type="list", elements="str", no_log=False, default=list(DEFAULT_REDACT_KEYS)),
        expect_node_major=dict(type="int", default=5, choices=[5, 6]),
        dlq_type=dict(type="str", choices=["list", "failed", "queue"]),
        dlq_key=dict(type="str", default=DLQ_LIST_KEY, no_log=False),
        dlq_pattern=dict(type="str"),
        dlq_keep=dict(type="int"),
        dlq_push_side=dict(type="str", default="left", choices=["left", "right"]),
        reason=dict(type="str"),
        **CONFIRMED_ARGUMENT_SPEC
    )
    return spec


def manage_queue(params, check_mode, want_diff):
    """The core the parameters ask for: a dead-letter queue (dlq_type) or one operation on one queue."""
    require_bullmq()
    if params["dlq_type"]:
        return manage_dlq(params, DlqRequest.from_params(params), check_mode, want_diff)
    return operate_queue(params, QueueRequest.from_params(params), check_mode, want_diff)


def destructive(params):
    """What this call would change that needs confirmation (see run_destructive)."""
    if params["dlq_type"]:
        return "trimming a dead-letter queue" if params["dlq_keep"] is not None else None
    if (params["scheduler"] or {}).get("other_schedules") == "migrate":
        return "removing the legacy repeatable job(s) a scheduler replaces"
    if params["state"] in ("retried", "promoted") and params["job_id"]:
        return None
    return {"drained": "draining a queue", "cleaned": "cleaning jobs out of a queue",
            "absent": "obliterating a queue", "removed": "removing a job",
            "retried": "retrying jobs (they run again)", "promoted": "promoting delayed jobs (they run now)"}.get(
                params["state"])


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_if=[("dlq_type", "failed", ("queue",)), ("dlq_type", "queue", ("queue",))],
        mutually_exclusive=[("dlq_type", "jobs"), ("dlq_type", "scheduler"), ("dlq_key", "dlq_pattern")],
    )
    if not module.params["dlq_type"] and not module.params["queue"]:
        module.fail_json(msg="queue is required (e.g. q:wa:phone_07), unless dlq_type=list")
    require_libraries(module)
    if BULLMQ_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib(BULLMQ_REQUIREMENT), exception=BULLMQ_IMPORT_ERROR)
    run_destructive(module, lambda check_mode: with_warnings(
        module, manage_queue(module.params, check_mode, module._diff)), destructive(module.params))


if __name__ == "__main__":
    main()
