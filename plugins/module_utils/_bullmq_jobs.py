# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Jobs in bulk: validated job specs, added and removed through the `bullmq` package's own scripts.

Bulk adds differ from the package in transport only: the package still builds every addJob call, and JobWriter
sends them on the synchronous client (see its docstring).
"""

from __future__ import annotations

import collections
import contextlib
import gc
import json
import sys
from datetime import datetime

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    MAX_CHUNK,
    clock_ms,
    validate_job_id,
    validate_job_opts,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import platform_zone
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import redis.exceptions as redis_exceptions
except ImportError:
    redis_exceptions = None

# Epoch milliseconds below this (1973) are almost certainly seconds: a job due "in 1970" would run at once.
_SMALLEST_EPOCH_MS = 10 ** 11


# --- Validating job specs (everything checked before the first change) --------------------------------------------

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


def prepare_jobs(jobs, default_name, default_opts, tz_name):
    """Validated job specs: id, name, data, opts, due_ms or delay_ms. Refuses duplicates within the request."""
    defaults = validate_job_opts(default_opts, "job_opts")
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
        opts.update(validate_job_opts(job.get("opts"), "job {0}".format(job_id)))
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


# --- Adding jobs: the package builds the calls, a plain pipeline sends them ----------------------------------------

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

        from bullmq.job import Job

        self._job = Job
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
        now_ms = clock_ms()
        calls = _RecordedScriptCalls()
        for spec in jobs:
            opts = dict(spec["opts"], jobId=spec["id"])
            delay = spec["delay_ms"] if spec["due_ms"] is None else max(0, spec["due_ms"] - now_ms)
            if delay:
                opts["delay"] = delay
            job = self._job(self._queue, spec["name"], spec["data"], opts)
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


# --- Removing jobs -------------------------------------------------------------------------------------------------

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
