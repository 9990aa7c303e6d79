"""What every benchmark needs: private servers, a concurrent PING sampler, alternating timed runs, peak memory.

Benchmarks print figures; they assert nothing about speed (tests do not time things). The suite runs the runbook's
own procedure (the baseline) and ours alternately on the same data, several times, and reports medians.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
import yaml

from tests.support.playbooks import COLLECTIONS_PATH, inventory_for
from tests.support.services import REPO_ROOT


def _ping_loop(connection, interval, stop, worst_us, samples):
    client = redis.Redis(socket_timeout=30, **connection)
    client.ping()
    samples.value = 0
    while not stop.is_set():
        started = time.perf_counter()
        client.ping()
        worst_us.value = max(worst_us.value, int((time.perf_counter() - started) * 1e6))
        samples.value += 1
        time.sleep(interval)


class PingSampler:
    """Another client's view of Redis during a run: PING every few ms; the worst wait is the stall we caused.

    The sampler is its own process, as the platform's other clients are: a thread of the benchmark would also count
    the time it waits for the benchmark's own GIL, which no Node worker ever does."""

    def __init__(self, redis_server, interval=0.005):
        self.connection = dict(host=redis_server.host, port=redis_server.port, password=redis_server.password)
        self.interval = interval
        self.worst_ms = 0.0
        self.samples = 0
        self._context = multiprocessing.get_context("spawn")
        self._process = None

    def __enter__(self):
        self._stop = self._context.Event()
        self._worst_us = self._context.Value("q", 0)
        self._samples = self._context.Value("q", -1)
        self._process = self._context.Process(target=_ping_loop, daemon=True, args=(
            self.connection, self.interval, self._stop, self._worst_us, self._samples))
        self._process.start()
        deadline = time.monotonic() + 30
        while self._samples.value < 0 and self._process.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._process.join(5)
        self.worst_ms = self._worst_us.value / 1000.0
        self.samples = max(0, self._samples.value)


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
    with sampler or contextlib.nullcontext():
        # The sampler's own process is up before the clock starts.
        started = time.perf_counter()
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


class PlaybookCommand:
    """`ansible-playbook playbooks/<name>` as an operator runs it, against the benchmark's servers: the inventory is
    written into `directory`, the environment points at this checkout's collection and ansible.cfg."""

    def __init__(self, redis_server, pg, directory):
        self.inventory_path = Path(directory) / "inventory.yml"
        self.inventory_path.write_text(yaml.safe_dump(inventory_for(redis_server, pg,
                                                                    {"cerniq_audit_actor": "bench"})))
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
                        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")

    def command(self, playbook, extra_vars):
        return [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(self.inventory_path),
                str(REPO_ROOT / "playbooks" / playbook), "-e", json.dumps(extra_vars)]

    def run(self, playbook, extra_vars):
        """(seconds, peak RSS MB, stdout) of one run; a failed run raises."""
        return run_child(self.command(playbook, extra_vars), env=self.env)
