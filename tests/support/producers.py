"""BullMQ jobs added as the platform's producers add them (the bullmq package), and what the Node side writes."""

from __future__ import annotations

import asyncio
import time

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import BULLMQ_PREFIX


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
