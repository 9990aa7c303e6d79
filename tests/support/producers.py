"""BullMQ jobs added as the platform's producers add them (the bullmq package), and what the Node side writes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    QUEUE_QUOTA_RESET,
    QUOTA_RESET_CRON,
)
from tests.support.services import REPO_ROOT

LEGACY_REPEAT_JS = REPO_ROOT / "tests" / "node" / "legacy_repeat.js"


def add_jobs(redis_server, queue_name, jobs, db=2):
    """The bullmq package's addBulk, 500 jobs a call; `jobs` = [(id, opts)], opts as BullMQ takes them (delay, ...)."""
    from bullmq import Queue

    async def add():
        queue = Queue(queue_name, {"connection": {"host": redis_server.host, "port": redis_server.port, "db": db,
                                                  "password": redis_server.password}, "prefix": BULLMQ_PREFIX})
        try:
            for start in range(0, len(jobs), 500):
                await queue.addBulk([{"name": "send", "data": {"id": job_id}, "opts": dict(opts, jobId=job_id)}
                                     for job_id, opts in jobs[start:start + 500]])
        finally:
            await queue.close()

    asyncio.run(add())


def add_waiting_and_due(redis_server, queue_name, waiting=0, due_delayed=0):
    """`waiting` jobs now (w-<n>) and `due_delayed` jobs due in 1 ms (d-<n>)."""
    add_jobs(redis_server, queue_name, [("w-{0}".format(i), {}) for i in range(waiting)]
             + [("d-{0}".format(i), {"delay": 1}) for i in range(due_delayed)])


def wait_for_meta_version(r, queue_name, timeout=10):
    """The version a Node Queue writes into the queue's meta hash once it has connected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        version = r.hget("{0}:{1}:meta".format(BULLMQ_PREFIX, queue_name), "version")
        if version:
            return version
        time.sleep(0.05)
    raise AssertionError("the Node Queue did not write meta.version")


def now_ms():
    """Now in BullMQ's unit (milliseconds since the epoch)."""
    return int(time.time() * 1000)


def fail_jobs(redis_server, queue_name, count, db=2):
    """`count` jobs (f-<n>) added, then failed once each by a real (Python) BullMQ worker whose processor raises:
    they land in the queue's `failed` set as a worker's failure leaves them. The worker's own `stalled-check` key
    (it expires on its own) is removed, so the queue is at rest afterwards."""
    from bullmq import Worker

    add_jobs(redis_server, queue_name, [("f-{0}".format(i), {}) for i in range(count)], db=db)
    connection = {"host": redis_server.host, "port": redis_server.port, "db": db, "password": redis_server.password}

    async def go():
        failed = asyncio.Event()
        seen = []

        async def process(job, token):
            seen.append(job.id)
            if len(seen) >= count:
                asyncio.get_running_loop().call_later(0.3, failed.set)
            raise RuntimeError("TimelinesAI 503")

        worker = Worker(queue_name, process, {"connection": connection, "prefix": BULLMQ_PREFIX})
        try:
            await asyncio.wait_for(failed.wait(), 20)
        finally:
            await worker.close()

    asyncio.run(go())
    client = redis_server.client(db)
    client.delete("{0}:{1}:stalled-check".format(BULLMQ_PREFIX, queue_name))
    assert client.zcard("{0}:{1}:failed".format(BULLMQ_PREFIX, queue_name)) == count


def node_legacy_repeat(redis_server, queue=QUEUE_QUOTA_RESET, pattern=QUOTA_RESET_CRON, tz=None, db=2):
    """The runbook's registration of the reset, `Queue.add('reset', {}, {repeat})`: a LEGACY repeatable job, by the
    real Node BullMQ 5 (tests/node/legacy_repeat.js). Returns what Node reported (id, repeatJobKey, repeatables)."""
    cmd = ["node", str(LEGACY_REPEAT_JS), "--host", redis_server.host, "--port", str(redis_server.port), "--db",
           str(db), "--queue", queue, "--pattern", pattern]
    if tz:
        cmd += ["--tz", tz]
    env = dict(os.environ, CERNIQ_REDIS_PASSWORD=redis_server.password or "")
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30, check=False)
    event = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0 and event["event"] == "added", done.stdout + done.stderr
    return event
