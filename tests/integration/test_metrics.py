"""metrics.yml and the morning check's metrics file for real: the Prometheus text file parsed with the Prometheus
text parser (prometheus_client), every value checked against the seeded Redis and PostgreSQL; replaced atomically
(the collector's *.prom never half written, no temp left under a *.prom name); check mode writes nothing."""

from __future__ import annotations

import time

from prometheus_client.parser import text_string_to_metric_families

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    DLQ_LIST_KEY,
    business_day,
    phone_queue,
    quota_key,
)
from tests.support.producers import add_waiting_and_due


def samples(path):
    """{(metric, frozenset(labels)): value} of a Prometheus text file, through the official parser."""
    out, types = {}, {}
    for family in text_string_to_metric_families(path.read_text()):
        types[family.name] = family.type
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out, types


def seed(platform):
    platform.seed(phones=3, leads=50, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=12)
    # The platform's other dead-letter lists beside bull:dlq:outreach, and a key under the pattern that is no list.
    platform.r(2).lpush("bull:dlq:followup", *range(5))
    platform.r(2).rpush("bull:dlq:email", "bounced")
    platform.r(2).hset("bull:dlq:stats", "count", "7")
    add_waiting_and_due(platform.redis, phone_queue("phone_01"), waiting=7, due_delayed=2)
    r = platform.r(2)
    # The oldest waiting job (the tail of wait) was added two minutes ago.
    tail = r.lindex("bull:{0}:wait".format(phone_queue("phone_01")), -1)
    r.hset("bull:{0}:{1}".format(phone_queue("phone_01"), tail), "timestamp", int(time.time() * 1000) - 120000)
    r.zadd("bull:{0}:failed".format(phone_queue("phone_01")), {"gone-1": 1, "gone-2": 2})
    platform.r(0).set(quota_key("phone_02", business_day("Europe/Bucharest")), 150)


def test_metrics_file_parses_and_matches_the_seeded_state(platform, tmp_path):
    seed(platform)
    r0, r2 = platform.r(0), platform.r(2)
    metrics_dir = tmp_path / "textfile"
    check = platform.play("metrics.yml", extravars={"metrics_dir": str(metrics_dir)}, check=True)
    assert check.rc == 0 and not (metrics_dir / "cerniq.prom").exists()

    ran_from = time.time()
    run = platform.play("metrics.yml", extravars={"metrics_dir": str(metrics_dir)})
    ran_to = time.time()
    assert run.rc == 0, run.stdout[-3000:]
    values, types = samples(metrics_dir / "cerniq.prom")
    assert types["cerniq_bullmq_jobs"] == "gauge" and types["cerniq_quota_used"] == "gauge"
    q = phone_queue("phone_01")

    def job(state):
        return values[("cerniq_bullmq_jobs", frozenset({("queue", q), ("state", state)}))]

    assert job("wait") == 7 == r2.llen("bull:{0}:wait".format(q))
    assert job("delayed") == 2 and job("failed") == 2 and job("active") == 0
    assert values[("cerniq_bullmq_due_delayed_jobs", frozenset({("queue", q)}))] in (0, 2)
    age = values[("cerniq_bullmq_oldest_waiting_seconds", frozenset({("queue", q)}))]
    assert 120 <= age < 600
    assert values[("cerniq_dlq_entries", frozenset({("key", DLQ_LIST_KEY)}))] == 12 == r2.llen(DLQ_LIST_KEY)
    # One series per bull:dlq:* list; the hash is counted apart, never read as a list.
    assert {dict(labels)["key"]: value for (name, labels), value in values.items() if name == "cerniq_dlq_entries"} \
        == {DLQ_LIST_KEY: 12, "bull:dlq:followup": 5, "bull:dlq:email": 1}
    assert values[("cerniq_dlq_pattern_other_keys", frozenset({("pattern", "bull:dlq:*")}))] == 1
    assert r2.hgetall("bull:dlq:stats") == {"count": "7"}
    day = business_day("Europe/Bucharest")
    for phone in ("phone_01", "phone_02", "phone_03"):
        stored = r0.get(quota_key(phone, day))
        assert values[("cerniq_quota_used", frozenset({("phone", phone)}))] == int(stored or 0)
    limit = values[("cerniq_quota_limit", frozenset({("phone", "phone_02")}))]
    assert limit > 0
    assert values[("cerniq_quota_used_ratio", frozenset({("phone", "phone_02")}))] == round(150 / limit, 4)
    # Generated during this run (the clock read around it, whole seconds either way), however long the run took.
    assert ran_from - 1 <= values[("cerniq_metrics_generated_timestamp_seconds", frozenset())] <= ran_to + 1
    # Only the collector's file and the hidden staging file (not *.prom) are in the directory.
    assert sorted(p.name for p in metrics_dir.iterdir()) == [".cerniq.prom.tmp", "cerniq.prom"]

    # A second run replaces the file with the new figures (the inode changes: a rename, not a rewrite in place);
    # with no pattern, only the named lists are read.
    inode = (metrics_dir / "cerniq.prom").stat().st_ino
    r2.lpush(DLQ_LIST_KEY, "one more")
    assert platform.play("metrics.yml", extravars={"metrics_dir": str(metrics_dir), "metrics_dlq_pattern": ""}).rc == 0
    values, _types = samples(metrics_dir / "cerniq.prom")
    assert values[("cerniq_dlq_entries", frozenset({("key", DLQ_LIST_KEY)}))] == 13
    dlq_series = [labels for (name, labels) in values if name.startswith("cerniq_dlq")]
    assert dlq_series == [frozenset({("key", DLQ_LIST_KEY)})]
    assert (metrics_dir / "cerniq.prom").stat().st_ino != inode


def test_the_morning_check_writes_the_same_metrics_file(platform, tmp_path):
    seed(platform)
    run = platform.play("check_morning.yml", tags="queues,report", extravars={
        "cerniq_report_dir": str(tmp_path / "reports"), "check_morning_timelinesai": "false",
        "check_morning_fail_on_failed_checks": "false", "metrics_dir": str(tmp_path / "textfile"),
        "check_morning_write_metrics": "true"})
    assert run.rc == 0, run.stdout[-3000:]
    values, _types = samples(tmp_path / "textfile" / "cerniq.prom")
    q = phone_queue("phone_01")
    assert values[("cerniq_bullmq_jobs", frozenset({("queue", q), ("state", "wait")}))] == 7
    assert values[("cerniq_dlq_entries", frozenset({("key", DLQ_LIST_KEY)}))] == 12
    assert values[("cerniq_dlq_entries", frozenset({("key", "bull:dlq:followup")}))] == 5
    assert values[("cerniq_dlq_pattern_other_keys", frozenset({("pattern", "bull:dlq:*")}))] == 1
    assert run.changed_tasks == []
