"""What every benchmark needs: private servers, a concurrent PING sampler, alternating timed runs, peak memory.

Benchmarks print figures; they assert nothing about speed (tests do not time things). The suite runs the runbook's
own procedure (the baseline) and ours alternately on the same data, several times, and reports medians.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


class PingSampler:
    """Another client's view of Redis during a run: PING every few ms; the worst wait is the stall we caused."""

    def __init__(self, redis_server, interval=0.005):
        self.client = redis.Redis(host=redis_server.host, port=redis_server.port, password=redis_server.password,
                                  socket_timeout=30)
        self.interval = interval
        self.worst_ms = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self._stop.clear()
        self.worst_ms = 0.0
        self.samples = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            started = time.perf_counter()
            self.client.ping()
            self.worst_ms = max(self.worst_ms, (time.perf_counter() - started) * 1000)
            self.samples += 1
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@dataclass
class Measurement:
    seconds: list = field(default_factory=list)
    worst_ping_ms: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def median(self):
        return statistics.median(self.seconds) if self.seconds else None


def measure(run, redis_server=None, reset=None):
    """Time one run (after `reset()` restored the data), with the PING sampler watching Redis."""
    if reset:
        reset()
    sampler = PingSampler(redis_server) if redis_server else None
    started = time.perf_counter()
    if sampler:
        with sampler:
            extra = run()
    else:
        extra = run()
    elapsed = time.perf_counter() - started
    return elapsed, (sampler.worst_ms if sampler else 0.0), extra or {}


def alternate(baseline, ours, repeat, redis_server=None, reset=None):
    """Run baseline and ours alternately `repeat` times each; returns (baseline, ours) Measurements."""
    results = (Measurement(), Measurement())
    for _round in range(repeat):
        for measurement, run in zip(results, (baseline, ours)):
            if run is None:
                continue
            elapsed, worst_ping, extra = measure(run, redis_server, reset)
            measurement.seconds.append(elapsed)
            measurement.worst_ping_ms = max(measurement.worst_ping_ms, worst_ping)
            measurement.extra.update(extra)
    return results


def run_child(cmd, env=None, cwd=None):
    """Run a command (a playbook, a shell baseline) and return (seconds, peak RSS of the child in MB, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError("{0} failed ({1}):\n{2}\n{3}".format(
            cmd[0], proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, max(peak, before) / 1024.0, proc.stdout


def python_cmd(*args):
    return [sys.executable, *args]


BASELINE_DIR = Path(__file__).resolve().parent / "baseline"


def baseline_env(redis_server, pg, **extra):
    """Environment for bench/baseline/*.sh: the runbook's redis-cli and psql pointed at the benchmark's servers."""
    env = dict(os.environ, REDIS_HOST=redis_server.host, REDIS_PORT=str(redis_server.port),
               REDISCLI_AUTH=redis_server.password or "", PGHOST=pg.host, PGPORT=str(pg.port), PGUSER="cerniq",
               PGPASSWORD=pg.password, PGDATABASE="cerniq")
    env.update({key: str(value) for key, value in extra.items()})
    return env


def run_baseline(script, env):
    """Run one of the runbook's procedures; returns (seconds, peak RSS MB, stdout)."""
    return run_child(["bash", str(BASELINE_DIR / script)], env=env)
