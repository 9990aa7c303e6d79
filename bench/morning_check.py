"""The morning check (runbook 1.1) for 20 and 1,000 phones: the runbook's shell script beside check_morning.yml.

Baseline: bench/baseline/morning_check.sh (psql per question, one redis-cli per phone and loop, KEYS for the
queues). Ours: `ansible-playbook playbooks/check_morning.yml`, the whole playbook as an operator or AWX runs it
(Ansible start-up, one module run reading the four views at once - never a task per phone - the judgement, the
JSON report), with TimelinesAI answered by the local fake (the baseline does not ask TimelinesAI at all). Both run
on the same seeded data (tests/support/seed.py, with the seed's deliberate faults, which ours reports as failed
checks; the playbook is told not to fail on them so the timing is of a normal run).

    python -m bench --only morning_check [--size full|tiny] [--repeat N]
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
from pathlib import Path

from bench._harness import PlaybookCommand, alternate, baseline_env, run_baseline
from bench._scenario import Scenario, private_servers
from tests.fakes.timelinesai import TimelinesAIFake
from tests.support.seed import SeedPlan, seed_all

TIMELINES_TOKEN = "bench-timelinesai-token"
# Issue 5's targets for the whole playbook on 2 cores; issue 7 asks 2 s and 3 s.
TARGET_S = {20: 3.0, 1000: 5.0}
SIZES = {"full": {"phones": (20, 1000)}, "tiny": {"phones": (5,)}}


def seed(redis_server, pg, phones):
    for db in (0, 2):
        redis_server.client(db).flushdb()
    pg.reset_data()
    conn = pg.connect()
    try:
        seed_all(conn, redis_server, SeedPlan(phones=phones, leads=max(5000, phones * 5)))
    finally:
        conn.close()


def playbook_vars(report_dir, timelines):
    return {"check_morning_fail_on_failed_checks": False, "cerniq_report_dir": str(report_dir),
            "cerniq_timelinesai_base_url": timelines.base_url, "cerniq_timelinesai_api_token": TIMELINES_TOKEN,
            "cerniq_vendor_allow_http": True}


def run(sizes, repeat):
    rows = []
    cpu_seconds = {}
    with private_servers() as (redis_server, pg), tempfile.TemporaryDirectory(prefix="bench-morning-") as tmp:
        playbook = PlaybookCommand(redis_server, pg, tmp)
        for phones in sizes["phones"]:
            seed(redis_server, pg, phones)
            with TimelinesAIFake(api_key=TIMELINES_TOKEN, phones=phones) as timelines:
                report_dir = Path(tmp) / "reports-{0}".format(phones)

                def baseline():
                    run_baseline("morning_check.sh", baseline_env(redis_server, pg))

                def ours(phones=phones, report_dir=report_dir, timelines=timelines):
                    child = playbook.measured("check_morning.yml", playbook_vars(report_dir, timelines))
                    cpu_seconds.setdefault(phones, []).append(child.cpu_s)
                    report = json.loads(next(report_dir.glob("check_morning-*.json")).read_text())
                    return {"rss": child.peak_rss_mb, "counts": report["counts"], "failed": report["failed"],
                            "phones": phones}

                base, mine = alternate(baseline, ours, repeat, redis_server=redis_server)
            target = TARGET_S.get(phones)
            counts = mine.extra["counts"]
            rows.append(dict(
                scenario="morning check, {0:,} phones".format(phones), baseline_s=base.median, ours_s=mine.median,
                figure="{0:.2f} s wall, {1:.2f} s CPU; {2} fail, {3} warn, {4} pass".format(
                    mine.median, statistics.median(cpu_seconds[phones]), counts["fail"], counts["warn"],
                    counts["pass"]),
                target="<= {0:.0f} s wall".format(target) if target else "-",
                met=(mine.median <= target) if target else None, worst_ping_ms=mine.worst_ping_ms,
                peak_rss_mb=mine.extra["rss"],
                note="load {0:.1f}; 7 checks from 4 views read in 1 module run incl. TimelinesAI (fake), JSON "
                     "report; Ansible start-up and 2 module runs dominate; baseline asks no vendor, judges "
                     "nothing".format(
                         os.getloadavg()[0])))
    return rows


SCENARIOS = [Scenario("morning_check", run, repeat=3, sizes=SIZES)]
