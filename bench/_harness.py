"""What every benchmark needs: private servers, a concurrent PING sampler, alternating timed runs, peak memory.

Benchmarks print figures; they assert nothing about speed (tests do not time things). The suite runs the runbook's
own procedure (the baseline) and ours alternately on the same data, several times, and reports medians.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
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


# The measuring wrapper: its only child is the measured command; it is a child subreaper, so what the command leaves
# running (Ansible's async module process, daemonised) is re-parented to it and reaped here too. At the end
# getrusage(RUSAGE_CHILDREN) holds exactly the command's process tree: ru_maxrss is the peak RSS of the largest
# single process of that tree (ansible-playbook, a forked worker, a module's Python), never of the bench process's
# other children (seeding, servers, earlier runs). SSH ControlPersist masters (a few MB, outliving the run on
# purpose) are not waited for.
_MEASURE = r"""
import ctypes, json, os, resource, sys, time
report, argv = sys.argv[1], sys.argv[2:]
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except (OSError, AttributeError):
    pass
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
status = os.waitpid(pid, 0)[1]
seconds = time.perf_counter() - started

def children():
    found = []
    for task in os.listdir("/proc/self/task"):
        try:
            with open("/proc/self/task/%s/children" % task) as handle:
                found += handle.read().split()
        except OSError:
            pass
    return found

deadline = time.monotonic() + 5
while True:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        break
    waiting = []
    for child in children():
        try:
            with open("/proc/%s/cmdline" % child, "rb") as handle:
                name = os.path.basename(handle.read().split(b"\0")[0])
        except OSError:
            continue
        if name != b"ssh":
            waiting.append(child)
    if not waiting or time.monotonic() > deadline:
        break
    time.sleep(0.02)
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
with open(report, "w") as handle:
    json.dump({"seconds": seconds, "maxrss_kb": usage.ru_maxrss, "cpu_s": usage.ru_utime + usage.ru_stime}, handle)
sys.exit(os.waitstatus_to_exitcode(status))
"""


@dataclass
class ChildRun:
    """One measured command: wall seconds (fork to exit, as the wrapper saw them), peak RSS of its largest
    process in MB, CPU seconds of its whole tree, its output."""
    seconds: float
    peak_rss_mb: float
    cpu_s: float
    stdout: str
    stderr: str = ""


def measured(cmd, env=None, cwd=None, timeout=None, check=True):
    """Run `cmd` under the measuring wrapper (see _MEASURE): a ChildRun of that command's own process tree."""
    fd, report = tempfile.mkstemp(prefix="bench-rss-", suffix=".json")
    os.close(fd)
    try:
        proc = subprocess.run([sys.executable, "-S", "-c", _MEASURE, report, *[str(part) for part in cmd]],
                              env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
        figures = json.loads(Path(report).read_text() or "{}")
    finally:
        os.unlink(report)
    if check and proc.returncode != 0:
        raise RuntimeError("{0} failed ({1}):\n{2}\n{3}".format(
            cmd[0], proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    return ChildRun(seconds=figures.get("seconds", 0.0), peak_rss_mb=figures.get("maxrss_kb", 0) / 1024.0,
                    cpu_s=figures.get("cpu_s", 0.0), stdout=proc.stdout, stderr=proc.stderr)


def run_child(cmd, env=None, cwd=None, timeout=None):
    """Run a command (a playbook, a shell baseline) and return (seconds, peak RSS of its own largest process in MB,
    stdout); a failed run raises."""
    child = measured(cmd, env=env, cwd=cwd, timeout=timeout)
    return child.seconds, child.peak_rss_mb, child.stdout


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

    def __init__(self, redis_server, pg, directory, inventory=None):
        """`inventory`: an inventory dict to use instead (the lab's, tests/support/lab.py); then the servers are
        not used."""
        if inventory is None:
            inventory = inventory_for(redis_server, pg, {"cerniq_audit_actor": "bench"})
        Path(directory).mkdir(parents=True, exist_ok=True)
        self.inventory_path = Path(directory) / "inventory.yml"
        self.inventory_path.write_text(yaml.safe_dump(inventory))
        self.env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
                        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")

    def command(self, playbook, extra_vars):
        return [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(self.inventory_path),
                str(REPO_ROOT / "playbooks" / playbook), "-e", json.dumps(extra_vars)]

    def run(self, playbook, extra_vars):
        """(seconds, peak RSS MB, stdout) of one run; a failed run raises."""
        return run_child(self.command(playbook, extra_vars), env=self.env)

    def measured(self, playbook, extra_vars, timeout=None):
        """A ChildRun of one run (seconds, peak RSS, CPU of the playbook's own process tree); a failed run raises."""
        return measured(self.command(playbook, extra_vars), env=self.env, timeout=timeout)
