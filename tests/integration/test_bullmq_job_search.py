"""bullmq_job_info against real Redis: jobs found by data across states in bounded pages (never KEYS, one pipeline
of HGET per page, counted from Redis' own command statistics), limit / max_scanned / time budget, secrets in job
data redacted, the newest dead letters of an application list."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import REDACTED, JobSearchRequest, job_info
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import QUEUE_FOLLOWUP
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.cores import run
from tests.support.producers import now_ms


def search(platform, **given):
    """bullmq_job_info's core with the test servers' connections and JobSearchRequest(**given)."""
    return job_info(platform.params, JobSearchRequest(**given))


def seed(platform):
    """600 follow-ups for 200 leads (3 each): lead-7's in wait, delayed and failed; 2 of every lead delayed."""
    jobs = []
    for i in range(600):
        lead = "lead-{0}".format(i % 200)
        job = dict(id="fu-{0}".format(i), data={"leadId": lead, "phone": "+4071{0:07d}".format(i % 200),
                                                "auth": {"api_key": "k-{0}".format(i)}, "n": i})
        if i >= 200:
            job["delay_ms"] = 3600 * 1000
        jobs.append(job)
    run(platform, queue=QUEUE_FOLLOWUP, jobs=jobs, job_name="followup")
    r = platform.r(2)
    # fu-7 fails (as a worker would leave it): out of wait into failed with its reason.
    r.lrem("bull:{0}:wait".format(QUEUE_FOLLOWUP), 0, "fu-7")
    r.zadd("bull:{0}:failed".format(QUEUE_FOLLOWUP), {"fu-7": now_ms()})
    r.hset("bull:{0}:fu-7".format(QUEUE_FOLLOWUP), mapping={"failedReason": "TimelinesAI 401", "finishedOn": now_ms()})


def command_calls(r):
    stats = r.info("commandstats")
    return {name: stats.get("cmdstat_" + name, {}).get("calls", 0) for name in ("keys", "hget", "lrange", "zrevrange",
                                                                                "scan")}


def test_jobs_found_by_data_across_states_in_pages(platform):
    seed(platform)
    r = platform.r(2)
    r.config_resetstat()
    found = search(platform, queue=QUEUE_FOLLOWUP, match={"leadId": "lead-7"}, limit=0, page_size=100)
    assert sorted(j["id"] for j in found["jobs"]) == ["fu-207", "fu-407", "fu-7"]
    states = {j["id"]: j["state"] for j in found["jobs"]}
    assert states == {"fu-7": "failed", "fu-207": "delayed", "fu-407": "delayed"}
    failed = next(j for j in found["jobs"] if j["id"] == "fu-7")
    assert failed["failed_reason"] == "TimelinesAI 401" and failed["name"] == "followup"
    # Secrets in job data are masked at any depth; the rest is as stored.
    assert failed["data"] == {"leadId": "lead-7", "phone": "+40710000007", "auth": {"api_key": REDACTED}, "n": 7}
    assert found["scanned"]["total"] == 600 and found["scanned"]["wait"] == 199 and found["scanned"]["delayed"] == 400
    assert found["stopped_early"] is False and found["stop_reason"] is None
    calls = command_calls(r)
    # Never KEYS or SCAN; one HGET data per job examined (pipelined, 100 a page) plus nothing per job else.
    assert calls["keys"] == 0 and calls["scan"] == 0
    assert calls["hget"] == 600
    assert calls["lrange"] + calls["zrevrange"] <= 600 // 100 + 8

    # A number matches its text; nested fields by path.
    by_phone = search(platform, queue=QUEUE_FOLLOWUP, match={"phone": "+40710000009", "n": "9"})
    assert [j["id"] for j in by_phone["jobs"]] == ["fu-9"]
    assert search(platform, queue=QUEUE_FOLLOWUP, match={"auth.api_key": "k-11"})["found"] == 1
    assert search(platform, queue=QUEUE_FOLLOWUP, match={"leadId": "nobody"})["found"] == 0
    # Data as Node's JSON.stringify writes it (non-ASCII kept as is, 1.0 written 1) is found too.
    r.hset("bull:{0}:fu-3".format(QUEUE_FOLLOWUP), "data", '{"leadId":"lead-Ștefan","score":1}')
    unicode = search(platform, queue=QUEUE_FOLLOWUP, match={"leadId": "lead-Ștefan"})
    assert [j["id"] for j in unicode["jobs"]] == ["fu-3"]
    assert [j["id"] for j in search(platform, queue=QUEUE_FOLLOWUP, match={"score": 1.0})["jobs"]] == ["fu-3"]


def test_the_search_stops_at_limit_max_scanned_and_time_budget(platform):
    seed(platform)
    limited = search(platform, queue=QUEUE_FOLLOWUP, states=["delayed"], match={}, limit=5, page_size=50)
    assert limited["found"] == 5 and limited["stop_reason"] == "limit" and limited["stopped_early"] is True
    assert limited["scanned"]["total"] == 50
    # Newest first: the delayed set read from its highest score down.
    assert [j["state"] for j in limited["jobs"]] == ["delayed"] * 5
    capped = search(platform, queue=QUEUE_FOLLOWUP, match={"leadId": "lead-1"}, limit=0, max_scanned=150,
                    page_size=100)
    assert capped["scanned"]["total"] == 150 and capped["stop_reason"] == "max_scanned"
    assert search(platform, queue=QUEUE_FOLLOWUP, match={"leadId": "x"}, limit=0, time_budget_ms=1,
                  page_size=1)["stop_reason"] == "time_budget"


def test_newest_dead_letters_redacted_and_bad_inputs(platform):
    r = platform.r(2)
    for i in range(15):
        r.lpush("bull:dlq:outreach", json.dumps({"jobId": "dead-{0}".format(i), "error": "boom {0}".format(i),
                                                 "data": {"Authorization": "Bearer x{0}".format(i), "to": "+40"}}))
    r.lpush("bull:dlq:outreach", "not json")
    r.hset("bull:dlq:stats", "n", 1)
    out = search(platform, states=[], dlq_keys=["bull:dlq:outreach", "bull:dlq:stats"], dlq_count=3)
    lists = {d["key"]: d for d in out["dlq_lists"]}
    assert lists["bull:dlq:outreach"]["length"] == 16
    newest = lists["bull:dlq:outreach"]["newest"]
    assert newest[0] == "not json" and newest[1]["jobId"] == "dead-14"
    assert newest[1]["data"] == {"Authorization": REDACTED, "to": "+40"}
    assert lists["bull:dlq:stats"] == dict(key="bull:dlq:stats", type="hash", length=0, newest=[])
    for given, message in ((dict(queue="a b"), "glob character"),
                           (dict(queue=QUEUE_FOLLOWUP, match={"x": [1]}), "single value"),
                           (dict(queue=QUEUE_FOLLOWUP, page_size=5000), "page_size"),
                           (dict(queue=QUEUE_FOLLOWUP, limit=-1), "non-negative"), (dict(), "queue is required")):
        with pytest.raises(CerniqError, match=message):
            search(platform, **given)
