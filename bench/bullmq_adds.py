"""Adding 100,000 delayed BullMQ jobs, and adding them again (no duplicates), while another client PINGs Redis.

    python -m bench.bullmq_adds [--jobs 100000] [--chunk 1000] [--repeat 1]

Ways compared, each on an emptied database of a private redis-server, same jobs (deterministic ids, absolute due
times one to two hours ahead):
- baseline: the runbook's way, one `queue.add` per job (the bullmq package's own call, one round trip each);
- addBulk: the package's `Queue.addBulk` per chunk (MULTI/EXEC: the chunk is one atomic block on the server);
- pipeline: `add_job_chunks`, what bullmq_queue uses: the same addJob scripts and Job objects, one plain
  (non-transactional) pipeline per chunk, sent from a thread while the next chunk is built;
- module: the bullmq_queue core end to end (validation, TYPE pre-check, pairing check, adds, audit row).
Re-adding runs the module core again on the same jobs: it must add none (the delayed count stays).
Figures only; nothing is asserted about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

from bench._harness import PingSampler
from bench._scenario import Scenario, private_servers
from tests.support.services import module_params

QUEUE = "outreach:followup"
TARGET_RATE = 20000
TARGET_PING_MS = 100


def make_jobs(count):
    due0 = int(time.time() * 1000) + 3600_000
    return [dict(id="fu-bench-{0}-{1}".format(i, due0 + i), name="followup", data={"leadId": "bench-{0}".format(i)},
                 opts={"removeOnComplete": True}, due_ms=due0 + i, delay_ms=0) for i in range(count)]


def _connection(redis_server):
    return {"host": redis_server.host, "port": redis_server.port, "db": 2, "password": redis_server.password}


async def _one_by_one(redis_server, jobs):
    from bullmq import Queue

    queue = Queue(QUEUE, {"connection": _connection(redis_server)})
    try:
        for job in jobs:
            await queue.add(job["name"], job["data"], dict(job["opts"], jobId=job["id"],
                                                           delay=max(0, job["due_ms"] - int(time.time() * 1000))))
    finally:
        await queue.close()


async def _add_bulk(redis_server, jobs, chunk):
    from bullmq import Queue

    queue = Queue(QUEUE, {"connection": _connection(redis_server)})
    try:
        for start in range(0, len(jobs), chunk):
            now_ms = int(time.time() * 1000)
            await queue.addBulk([{"name": job["name"], "data": job["data"],
                                  "opts": dict(job["opts"], jobId=job["id"], delay=max(0, job["due_ms"] - now_ms))}
                                 for job in jobs[start:start + chunk]])
    finally:
        await queue.close()


async def _pipelined(redis_server, jobs, chunk):
    from bullmq import Queue

    from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import add_job_chunks

    queue = Queue(QUEUE, {"connection": _connection(redis_server)})
    try:
        await add_job_chunks(queue, redis_server.client(2), "bench Redis", jobs, chunk)
    finally:
        await queue.close()


def _module(params, jobs, chunk):
    from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import QueueRequest
    from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_queue import operate_queue

    module_jobs = [dict(id=job["id"], name=job["name"], data=job["data"], due_at=job["due_ms"], opts=job["opts"])
                   for job in jobs]
    result = operate_queue(params, QueueRequest(queue=QUEUE, prefix="bull", state="present", jobs=tuple(module_jobs),
                                                job_name="followup", chunk_size=chunk, expect_node_major=5,
                                                reason="bench"))
    return result["jobs"]


def _server_cpu(redis_server):
    """CPU seconds redis-server has used (user + system), from /proc."""
    with open("/proc/{0}/stat".format(redis_server.pid)) as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(redis_server, run):
    """(wall seconds, worst PING ms, PING samples, run's result, client CPU s, server CPU s).

    CPU seconds are what a busy shared machine cannot distort: wall time there is mostly waiting for a core.
    """
    with PingSampler(redis_server, interval=0.002) as sampler:
        cpu, server = time.process_time(), _server_cpu(redis_server)
        started = time.perf_counter()
        extra = run()
        elapsed = time.perf_counter() - started
        cpu, server = time.process_time() - cpu, _server_cpu(redis_server) - server
    return elapsed, sampler.worst_ms, sampler.samples, extra, cpu, server


def measure(count=100000, chunk=1000, repeat=1, with_baseline=True):
    """{way: {seconds, jobs_per_s, worst_ping_ms, ...}} on private servers; the median of `repeat` runs."""
    jobs = make_jobs(count)
    figures = {}
    with private_servers() as (redis_server, pg):
        params = module_params(redis_server, pg, audit_actor="bench")
        client = redis_server.client(2)
        ways = [("addBulk (MULTI/EXEC per chunk)", lambda: asyncio.run(_add_bulk(redis_server, jobs, chunk))),
                ("pipeline (add_job_chunks)", lambda: asyncio.run(_pipelined(redis_server, jobs, chunk))),
                ("module core (bullmq_queue)", lambda: _module(params, jobs, chunk))]
        if with_baseline:
            ways.insert(0, ("baseline: queue.add one by one", lambda: asyncio.run(_one_by_one(redis_server, jobs))))
        for name, run in ways:
            runs = []
            for _round in range(repeat):
                client.flushdb()
                runs.append(_timed(redis_server, run))
            runs.sort(key=lambda r: r[0])
            elapsed, _ping, samples, _extra, cpu, server = runs[len(runs) // 2]
            figures[name] = _figures(count, elapsed, max(r[1] for r in runs), samples, cpu, server,
                                     delayed=client.zcard("bull:{0}:delayed".format(QUEUE)))
        # The data is there from the module's run: add it all again.
        memory = client.info("memory")["used_memory"]
        elapsed, worst, samples, extra, cpu, server = _timed(redis_server, lambda: _module(params, jobs, chunk))
        figures["module core, re-adding the same jobs"] = _figures(
            count, elapsed, worst, samples, cpu, server, delayed=client.zcard("bull:{0}:delayed".format(QUEUE)),
            added=extra["added"], existing=extra["existing"], used_memory_mb=memory / 1048576.0)
        figures["_load"] = os.getloadavg()
    return figures


def _figures(count, elapsed, worst_ping, samples, cpu, server, **extra):
    # Client and server work in parallel (pipelining), so on an idle machine with a core each the slower side sets
    # the pace; with one round trip per job (the baseline) they take turns and the costs add up.
    return dict(extra, seconds=elapsed, jobs_per_s=count / elapsed, worst_ping_ms=worst_ping, ping_samples=samples,
                client_us_per_job=cpu * 1e6 / count, server_us_per_job=server * 1e6 / count)


def report(figures, count):
    load = figures.get("_load")
    lines = ["{0:,} delayed jobs, {1}; load average {2}".format(
        count, "chunks of 1,000 unless one by one", " ".join("{0:.1f}".format(x) for x in load) if load else "?"),
        "{0:<38} {1:>8} {2:>9} {3:>9} {4:>10} {5:>10} {6:>9}".format(
            "way", "seconds", "jobs/s", "worst PING", "client us", "server us", "delayed")]
    for name, fig in figures.items():
        if name.startswith("_"):
            continue
        lines.append("{0:<38} {1:>8.2f} {2:>9,.0f} {3:>7.1f}ms {4:>10.1f} {5:>10.1f} {6:>9,}".format(
            name, fig["seconds"], fig["jobs_per_s"], fig["worst_ping_ms"], fig["client_us_per_job"],
            fig["server_us_per_job"], fig["delayed"]))
    lines.append("client/server us = CPU microseconds per job in this process / in redis-server (a loaded machine "
                 "stretches wall time, not CPU time)")
    again = figures.get("module core, re-adding the same jobs")
    if again:
        lines.append("re-adding: {0} added, {1:,} already there; Redis used_memory {2:.0f} MB".format(
            again["added"], again["existing"], again["used_memory_mb"]))
    lines.append("targets: >= {0:,} jobs/s, no PING wait over {1} ms".format(TARGET_RATE, TARGET_PING_MS))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.bullmq_adds", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100000)
    parser.add_argument("--chunk", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args(argv)
    figures = measure(args.jobs, args.chunk, args.repeat, not args.no_baseline)
    print(report(figures, args.jobs))
    return 0


def run(sizes, repeat):
    """The suite's entry (python -m bench): one row, ours = the module core, beside the one-by-one baseline."""
    count = sizes["jobs"]
    figures = measure(count, 1000, repeat)
    base = figures["baseline: queue.add one by one"]
    ours = figures["module core (bullmq_queue)"]
    again = figures["module core, re-adding the same jobs"]
    return [dict(scenario="add {0:,} delayed jobs".format(count), baseline_s=base["seconds"],
                 ours_s=ours["seconds"], figure="{0:,.0f} jobs/s".format(ours["jobs_per_s"]),
                 target=">= {0:,} jobs/s, PING <= {1} ms".format(TARGET_RATE, TARGET_PING_MS),
                 met=ours["jobs_per_s"] >= TARGET_RATE and ours["worst_ping_ms"] <= TARGET_PING_MS,
                 worst_ping_ms=ours["worst_ping_ms"],
                 note="CPU per job: client {0:.0f} us, redis {1:.0f} us; re-add: {2} added in {3:.2f} s; addBulk "
                      "{4:,.0f} jobs/s (PING {5:.0f} ms); baseline PING {6:.0f} ms; load {7:.1f}".format(
                          ours["client_us_per_job"], ours["server_us_per_job"], again["added"], again["seconds"],
                          figures["addBulk (MULTI/EXEC per chunk)"]["jobs_per_s"],
                          figures["addBulk (MULTI/EXEC per chunk)"]["worst_ping_ms"], base["worst_ping_ms"],
                          figures["_load"][0]))]


SCENARIOS = [Scenario("bullmq_adds", run, repeat=1, sizes={"full": {"jobs": 100000}, "tiny": {"jobs": 2000}})]


if __name__ == "__main__":
    sys.exit(main())
