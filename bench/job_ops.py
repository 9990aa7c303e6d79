"""Retrying 100,000 failed jobs and promoting 100,000 delayed jobs (bullmq_queue state=retried / promoted), beside
what bull-board's "retry all" / "promote all" and the runbook's Node shell do: BullMQ's own Queue.retryJobs /
Queue.promoteJobs from the Node package of tests/node (bench/bullmq_queue_ops.js).

Ours: the module's core (operate_queue) as the module calls it, confirmed and audited: BullMQ's moveJobsToWait /
promote scripts in calls of chunk_size (1,000) jobs. Node's calls default to 1,000 jobs a script call too. A PING
sampler in its own process measures the longest wait another client saw during each run (issue 13's bound: Redis
never stalls over 100 ms). Node's time is the call alone (connected before its clock starts); ours includes the
core's reads, its connections and its audit row.
"""

from __future__ import annotations

import importlib
import json
import statistics
import subprocess
import time

from bench._harness import PingSampler
from bench._scenario import Scenario, private_servers
from tests.support.services import REPO_ROOT, module_params

queue_core = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_queue")
queue_ops = importlib.import_module("ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops")

FAILED_QUEUE = "q:wa:phone_07"
DELAYED_QUEUE = "outreach:followup"
NODE_JS = REPO_ROOT / "bench" / "bullmq_queue_ops.js"
NODE_MODULES = REPO_ROOT / "tests" / "node" / "node_modules"


def fill(client, jobs):
    """`jobs` failed jobs in FAILED_QUEUE (as a worker leaves them: finishedOn, failedReason, one attempt made) and
    `jobs` delayed jobs in DELAYED_QUEUE (due in an hour), job hashes shaped as BullMQ writes them."""
    client.flushdb()
    now = int(time.time() * 1000)
    failed_base, delayed_base = "bull:{0}:".format(FAILED_QUEUE), "bull:{0}:".format(DELAYED_QUEUE)
    for start in range(0, jobs, 10000):
        pipe = client.pipeline(transaction=False)
        failed, delayed = {}, {}
        for i in range(start, min(jobs, start + 10000)):
            data = json.dumps({"leadId": "lead-{0}".format(i), "phone": "+4071{0:07d}".format(i % 50000)})
            send_id, later_id = "send-{0}".format(i), "fu-{0}".format(i)
            finished = now - 3600000 + i // 100
            pipe.hset(failed_base + send_id, mapping={
                "name": "send", "data": data, "opts": '{"attempts":1}', "timestamp": finished - 50,
                "processedOn": finished - 20, "finishedOn": finished, "atm": 1, "ats": 1, "delay": 0, "priority": 0,
                "failedReason": "TimelinesAI 401 Unauthorized", "stacktrace": '["Error: TimelinesAI 401"]'})
            failed[send_id] = finished
            pipe.hset(delayed_base + later_id, mapping={
                "name": "followup", "data": data, "opts": '{"delay":3600000}', "timestamp": now,
                "delay": 3600000, "priority": 0, "atm": 0, "ats": 0})
            delayed[later_id] = (now + 3600000) * 4096 + i % 4096
        pipe.zadd(failed_base + "failed", failed)
        pipe.zadd(delayed_base + "delayed", delayed)
        pipe.execute()
    client.set(failed_base + "id", jobs)
    client.set(delayed_base + "id", jobs)


def ours(params, state, queue):
    result = queue_core.operate_queue(params, queue_ops.QueueRequest(queue=queue, state=state, reason="bench"))
    return result["jobs"]["retried" if state == "retried" else "promoted"]


def node(redis_server, op, queue):
    env = {"NODE_PATH": str(NODE_MODULES), "CERNIQ_REDIS_PASSWORD": redis_server.password or "",
           "PATH": "/usr/local/bin:/usr/bin:/bin"}
    proc = subprocess.run(["node", str(NODE_JS), "--op", op, "--queue", queue, "--host", redis_server.host,
                           "--port", str(redis_server.port), "--db", "2"], env=env, capture_output=True, text=True,
                          timeout=1800, check=False)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines or lines[-1].get("event") != "done":
        raise RuntimeError("node {0} failed: {1} {2}".format(op, proc.stdout[-2000:], proc.stderr[-2000:]))
    return lines[-1]["ms"] / 1000.0


def timed(redis_server, run):
    """(seconds, worst PING ms, what `run` returned): `run` returns (its own seconds or None, jobs moved or None)."""
    with PingSampler(redis_server) as sampler:
        started = time.perf_counter()
        own, count = run()
        wall = time.perf_counter() - started
    return (own if own is not None else wall), sampler.worst_ms, count


# op -> (bullmq_queue state, queue, the state its jobs leave, Node's method)
OPS = dict(retry=("retried", FAILED_QUEUE, "failed", "retryJobs"),
           promote=("promoted", DELAYED_QUEUE, "delayed", "promoteJobs"))


def one_run(redis_server, params, side, op):
    state, queue = OPS[op][:2]
    if side == "node":
        return lambda: (node(redis_server, op, queue), None)
    return lambda: (None, ours(params, state, queue))


def run(sizes, repeat):
    jobs = sizes["jobs"]
    figures = dict((op, dict(ours=[], node=[], ours_ping=0.0, node_ping=0.0, complete=True)) for op in OPS)
    with private_servers() as (redis_server, pg):
        params = module_params(redis_server, pg, audit_actor="bench")
        client = redis_server.client(2)
        for _round in range(repeat):
            for side in ("node", "ours"):
                fill(client, jobs)
                for op, (_state, queue, source, _method) in OPS.items():
                    seconds, ping, count = timed(redis_server, one_run(redis_server, params, side, op))
                    figure = figures[op]
                    figure[side].append(seconds)
                    figure[side + "_ping"] = max(figure[side + "_ping"], ping)
                    # Every job moved, by either side: none left behind, all waiting.
                    left = client.zcard("bull:{0}:{1}".format(queue, source))
                    waiting = client.llen("bull:{0}:wait".format(queue))
                    figure["complete"] &= left == 0 and waiting == jobs and count in (None, jobs)
    rows = []
    for op, (state, _queue, source, method) in OPS.items():
        figure = figures[op]
        mine, theirs = statistics.median(figure["ours"]), statistics.median(figure["node"])
        rows.append(dict(
            scenario="{0} {1:,} {2} jobs".format(op, jobs, source), baseline_s=theirs, ours_s=mine,
            figure="{0:,.0f} jobs/s (Node {1:,.0f}); Node's worst PING {2:.0f} ms".format(
                jobs / mine, jobs / theirs, figure["node_ping"]),
            target="worst PING <= 100 ms", met=figure["ours_ping"] <= 100 and figure["complete"],
            worst_ping_ms=figure["ours_ping"],
            note="bullmq_queue state={0} (1,000 a script call, audited) vs Node Queue.{1}{2}".format(
                state, method, "" if figure["complete"] else "; NOT every job moved")))
    return rows


SCENARIOS = [Scenario("job_ops", run, repeat=1, sizes={"full": {"jobs": 100000}, "tiny": {"jobs": 500}})]
