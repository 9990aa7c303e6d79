"""The morning check, the ban and dr_redis.yml on the lab's real hosts (tests/support/lab.py): over SSH, with a local
connection, and the runbook's shell on the DB host, alternately on the same data.

One "single" lab (redis-1, db-1, workers-1; Redis and PostgreSQL on their hosts' addresses) is built for the whole
scenario. Each row times three runs per round, in this order, and reports medians:

- baseline: the runbook's script (bench/baseline/*.sh: psql and redis-cli, as the runbook does) run ON db-1
  (`lab.run`, inside the host's namespaces, as the lab's operator user), against the lab's services. For dr_redis the
  operator's follow-up loop (one `queue.add` per lead, bench/dr_redis.py) runs on the controller: the DB host has no
  Python with bullmq (its system Python is bare; /root, where this machine's Python lives, is private to the host).
- ours over SSH: `ansible-playbook playbooks/<name>` with the lab's inventory (`lab.inventory()`: SSH as cerniq-sre,
  the hosts' bare system Python, ansible.cfg's pipelining and ControlPersist). The service-level modules run on the
  controller, delegated (docs/hosts.md), so the SSH cost is Ansible's per-host work, not the modules'.
- ours with a local connection: the same playbook, the same lab and data, every host `ansible_connection: local`
  with the controller's Python.

The data builders are the other scenarios' (bench/morning_check.py, bench/ban_phone.py, bench/dr_redis.py), pointed
at the lab's servers. Peak RSS is the controller's: the playbook's own process tree, measured by bench/_harness.py's
wrapper; no module process runs on the hosts in these playbooks (the DB host's virtualenv is for backup/restore).

At tiny size (the smoke test in `make test`) only the ban runs (50 leads, 300 jobs, one round): building the lab is
~4 s, a ban run ~3 s; with the morning check (then ~7 s of CPU a run, ~3 s since it is one module run) the smoke
test took 29 s, with the ban alone far less. The morning check and dr_redis rows run at full size only.

    python -m bench --only lab_ssh [--size full|tiny] [--repeat N]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import ban_phone, dr_redis, morning_check
from bench._harness import BASELINE_DIR, PlaybookCommand, baseline_env, measure
from bench._scenario import Scenario
from tests.fakes.timelinesai import TimelinesAIFake
from tests.support.lab import LAB_USER, Lab

DB_HOST = "db-1"
# Issue 12's targets over SSH.
MORNING_TARGET_S = {20: 2.8, 1000: 3.5}
BAN_TARGET_S = 3.0
DR_REDIS_TARGET_S = 12.0
SIZES = {
    "full": {"morning_phones": (20, 1000), "ban": {"leads": 2000, "jobs": 10000},
             "dr_redis": {"phones": 1000, "followups": 100000}},
    # The ban is one of the cheapest (~2.5-3 s of CPU a run, as the morning check since 2026-12-03): it alone keeps
    # the lab path (both inventories, the shell on db-1) from rotting in `make test`.
    "tiny": {"morning_phones": (), "ban": {"leads": 50, "jobs": 300}, "dr_redis": None},
}


class LabBench:
    """The lab and the two ways of running a playbook against it."""

    def __init__(self, lab, directory):
        self.lab = lab
        extra = {"cerniq_audit_actor": "bench"}
        self.ssh = PlaybookCommand(None, None, Path(directory) / "ssh", inventory=lab.inventory(extra))
        local = {name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
                 for name in lab.hosts}
        self.local = PlaybookCommand(None, None, Path(directory) / "local",
                                     inventory=lab.inventory(extra, host_vars=local))
        self.env = baseline_env(lab.redis, lab.pg)

    def on_db_host(self, argv, timeout=900, **env):
        """Run argv on the DB host as the operator (the runbook's shell); its stdout."""
        return self.lab.run(DB_HOST, argv, user=LAB_USER, timeout=timeout,
                            env=dict(self.env, **{key: str(value) for key, value in env.items()})).stdout

    def script(self, name, timeout=900, **env):
        return self.on_db_host(["bash", str(BASELINE_DIR / name)], timeout=timeout, **env)

    def rounds(self, repeat, baseline, playbook, extra_vars, reset=None, check=None, timeout=600):
        """`repeat` rounds of baseline, SSH, local; returns {"baseline"|"ssh"|"local": Measurement-like dict}."""
        figures = {way: {"seconds": [], "ping": 0.0, "rss": 0.0, "cpu": []} for way in ("baseline", "ssh", "local")}

        def ours(command):
            def run():
                child = command.measured(playbook, extra_vars() if callable(extra_vars) else extra_vars,
                                         timeout=timeout)
                return {"rss": child.peak_rss_mb, "cpu": child.cpu_s}
            return run

        def base():
            baseline()

        for _round in range(repeat):
            for way, run in (("baseline", base), ("ssh", ours(self.ssh)), ("local", ours(self.local))):
                elapsed, worst_ping, extra = measure(run, self.lab.redis, reset)
                if check:
                    check(way)
                figure = figures[way]
                figure["seconds"].append(elapsed)
                figure["ping"] = max(figure["ping"], worst_ping)
                figure["rss"] = max(figure["rss"], extra.get("rss", 0.0))
                if "cpu" in extra:
                    figure["cpu"].append(extra["cpu"])
        for figure in figures.values():
            figure["median"] = statistics.median(figure["seconds"])
        return figures


def _row(scenario, figures, target, figure, note):
    ssh, local, base = figures["ssh"], figures["local"], figures["baseline"]
    return dict(scenario=scenario, baseline_s=base["median"], ours_s=ssh["median"],
                figure="SSH {0:.2f} s ({1:.2f} s CPU), local {2:.2f} s; {3}".format(
                    ssh["median"], statistics.median(ssh["cpu"]), local["median"], figure),
                target="<= {0:g} s over SSH".format(target) if target else "-",
                met=(ssh["median"] <= target) if target else None, worst_ping_ms=ssh["ping"],
                peak_rss_mb=ssh["rss"], local_s=local["median"], local_peak_rss_mb=local["rss"],
                note="load {0:.1f}; baseline = runbook shell on {1}; peak RSS: controller's playbook tree (SSH "
                     "{2:.0f} MB, local {3:.0f} MB), no module runs on the hosts; {4}".format(
                         os.getloadavg()[0], DB_HOST, ssh["rss"], local["rss"], note))


def morning_rows(bench, phones_sizes, repeat, tmp):
    rows = []
    for phones in phones_sizes:
        morning_check.seed(bench.lab.redis, bench.lab.pg, phones)
        report_dir = Path(tmp) / "reports-{0}".format(phones)
        with TimelinesAIFake(api_key=morning_check.TIMELINES_TOKEN, phones=phones) as timelines:
            figures = bench.rounds(repeat, lambda: bench.script("morning_check.sh"), "check_morning.yml",
                                   morning_check.playbook_vars(report_dir, timelines))
        report = json.loads(sorted(report_dir.glob("check_morning-*.json"))[-1].read_text())
        counts = report["counts"]
        rows.append(_row("lab: morning check, {0:,} phones".format(phones), figures, MORNING_TARGET_S.get(phones),
                         "{0} fail, {1} warn, {2} pass".format(counts["fail"], counts["warn"], counts["pass"]),
                         "TimelinesAI answered by the local fake (the baseline asks no vendor)"))
    return rows


def ban_rows(bench, sizes, repeat):
    leads, jobs = sizes["leads"], sizes["jobs"]
    lab = bench.lab
    lab.sql("DROP TABLE IF EXISTS bench_banned_leads")
    lab.pg.reset_data()
    lab.redis.client().flushall()
    ban_phone.seed(lab.redis, lab.pg, leads)
    expected = sum(1 for g in range(1, leads + 1)
                   if ban_phone._stage_wheel()[(g * 97) % 100] in ban_phone.contract.RELEASABLE_STAGES)
    orphans = {}

    def check(way):
        assert ban_phone.released_leads(lab.pg) == expected, way
        orphans[way] = max(orphans.get(way, 0), ban_phone.orphaned_job_keys(lab.redis))

    figures = bench.rounds(repeat, lambda: bench.script("ban_phone.sh", PHONE_ID=ban_phone.PHONE), "phone_banned.yml",
                           {"phone": ban_phone.PHONE, "confirm": "true"},
                           reset=lambda: ban_phone.reset(lab.redis, lab.pg, jobs), check=check)
    return [_row("lab: ban a phone, {0:,} leads, {1:,} pending jobs".format(leads, jobs), figures, BAN_TARGET_S,
                 "{0} orphaned job keys (SSH), {1} (local)".format(orphans["ssh"], orphans["local"]),
                 "baseline leaves {0:,} orphaned job keys; {1:,} leads released by each".format(
                     orphans["baseline"], expected))]


def dr_redis_rows(bench, sizes, repeat):
    phones, count = sizes["phones"], sizes["followups"]
    lab = bench.lab
    dr_redis.seed_platform(lab.redis, lab.pg, phones, count)
    added = {}

    def baseline():
        bench.script("dr_redis.sh")
        # The operator's follow-up loop (runbook 6.2 step 4 only echoes) needs a Python with bullmq: the DB host's
        # system Python has none and the collection's host virtualenv is not the operator's, so it runs on the
        # controller, in the bench's process, as bench/dr_redis.py runs it.
        dr_redis.baseline(lab.redis, lab.pg)

    def check(way):
        added[way] = lab.r(2).zcard("bull:{0}:delayed".format(dr_redis.FOLLOWUP_QUEUE))

    figures = bench.rounds(repeat, baseline, "dr_redis.yml", {"confirm": "true"},
                           reset=lambda: dr_redis._lose_redis(lab.redis), check=check)
    started = time.perf_counter()
    again = bench.ssh.measured("dr_redis.yml", {"confirm": "true"}, timeout=600)
    again_s = time.perf_counter() - started
    return [_row("lab: dr_redis.yml, {0:,} phones + {1:,} follow-ups".format(phones, count), figures,
                 DR_REDIS_TARGET_S,
                 "{0:,} delayed jobs after (SSH), {1:,} (local), {2:,} (baseline)".format(
                     added["ssh"], added["local"], added["baseline"]),
                 "re-run over SSH on the result {0:.2f} s ({1}); baseline = counters + status SETs (shell) + one "
                 "queue.add per follow-up (the loop on the controller)".format(
                     again_s, "0 added" if "Follow-ups: 0 added" in again.stdout else "ADDED AGAIN"))]


def run(sizes, repeat):
    rows = []
    with Lab("single", seed=False) as lab, tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        bench = LabBench(lab, tmp)
        print("lab built in {0:.1f} s".format(lab.build_seconds), file=sys.stderr, flush=True)
        parts = [lambda: morning_rows(bench, sizes["morning_phones"], repeat, tmp)]
        if sizes.get("ban"):
            parts.append(lambda: ban_rows(bench, sizes["ban"], repeat))
        if sizes.get("dr_redis"):
            parts.append(lambda: dr_redis_rows(bench, sizes["dr_redis"], repeat))
        for part in parts:
            for row in part():
                # Each row as soon as it is measured: a long run that fails later keeps what it measured.
                print("row: " + json.dumps(row, default=str), file=sys.stderr, flush=True)
                rows.append(row)
    return rows


SCENARIOS = [Scenario("lab_ssh", run, repeat=3, sizes=SIZES)]
