"""bullmq_queue / bullmq_queue_info cores against real Redis, PostgreSQL (audit) and a real Node BullMQ worker."""

from __future__ import annotations

import time

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _bullmq_ops, _bullmq_queue
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import JobWriter, prepare_jobs
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import QueueRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import run_with_queue
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_queue import operate_queue
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import (
    DLQ_PATTERN_MAX_KEYS,
    queue_depths,
    queue_info,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import redis_client
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    DLQ_LIST_KEY,
    QUEUE_FOLLOWUP,
    QUEUE_QUOTA_RESET,
    QUOTA_RESET_CRON,
    QUOTA_RESET_SCHEDULER_ID,
    followup_job_id,
    phone_queue,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.cores import run
from tests.support.nodeworker import NodeWorker
from tests.support.producers import add_jobs, fail_jobs, now_ms, wait_for_meta_version
from tests.support.snapshots import assert_unchanged, platform_state

PHONE_Q = phone_queue("phone_07")


def info(platform, **given):
    """bullmq_queue_info's core with the test servers' connections and `given` (its keyword options)."""
    return queue_info(platform.params, **given)


def keys_of(r, queue=PHONE_Q):
    return sorted(r.scan_iter(match="bull:{0}:*".format(queue), count=1000))


# --- The Node worker runs what the module added ------------------------------------------------------------------

def test_node_worker_processes_immediate_delayed_bulk_and_scheduled_jobs_the_module_added(platform):
    r = platform.r(2)
    with NodeWorker(platform.redis, [PHONE_Q, QUEUE_QUOTA_RESET], timeout=60) as worker:
        version = wait_for_meta_version(r, PHONE_Q)
        wait_for_meta_version(r, QUEUE_QUOTA_RESET)
        due = now_ms() + 1500
        jobs = [dict(id="now-1", data={"to": "+40712345678"}), dict(id="later-1", due_at=due, data={"n": 1})]
        jobs += [dict(id="bulk-{0}".format(i), data={"i": i}) for i in range(30)]
        added = run(platform, queue=PHONE_Q, jobs=jobs, job_name="send", chunk_size=7)
        assert added["jobs"] == dict(requested=32, added=32, existing=0, delayed=1)
        # Every second, as the Node worker reads a 6-field pattern (seconds first).
        scheduler = dict(id="every-second", pattern="* * * * * *", job_name="tick", data={"k": 1})
        assert run(platform, queue=QUEUE_QUOTA_RESET, scheduler=scheduler)["changed"] is True

        done = worker.wait_completed(34, timeout=20)
        by_id = {e["id"]: e for e in done}
        assert {"now-1", "later-1"} | {"bulk-{0}".format(i) for i in range(30)} <= set(by_id)
        assert by_id["now-1"]["name"] == "send" and by_id["now-1"]["data"] == {"to": "+40712345678"}
        # The delayed job ran at its due time, not before.
        assert by_id["later-1"]["processedOn"] >= due
        ticks = [e for e in done if e["queue"] == QUEUE_QUOTA_RESET]
        assert ticks and ticks[0]["name"] == "tick" and ticks[0]["id"].startswith("repeat:every-second:")
    # What the Node Queue stamped is what the pairing check reads, and it pairs with the installed package.
    assert version.startswith("bullmq:5.")
    entry = info(platform, queues=[PHONE_Q])["queues"][0]
    assert entry["version"] == version and entry["pairing_problem"] is None


def test_drained_jobs_never_reach_the_node_worker(platform):
    r = platform.r(2)
    run(platform, queue=PHONE_Q, jobs=[dict(id="x-1"), dict(id="x-2", delay_ms=1000), dict(id="x-3", delay_ms=60000)])
    before = platform_state(platform)
    check = run(platform, check_mode=True, diff=True, queue=PHONE_Q, state="drained", include_delayed=True)
    assert_unchanged(before, platform_state(platform))
    real = run(platform, diff=True, queue=PHONE_Q, state="drained", include_delayed=True, reason="test")
    assert check["drained"] == real["drained"] == dict(waiting=1, paused=0, prioritized=0, delayed=2, removed=3)
    assert check["diff"] == real["diff"]
    assert real["diff"]["after"]["delayed"] == 0
    assert run(platform, queue=PHONE_Q, state="drained", include_delayed=True)["changed"] is False
    assert platform.audit("bullmq_drain")[0][6]["removed"] == 3
    run(platform, queue=PHONE_Q, jobs=[dict(id="sentinel")])
    with NodeWorker(platform.redis, [PHONE_Q]) as worker:
        worker.wait_completed(1)
        time.sleep(1.2)
        assert [e["id"] for e in worker.completed()] == ["sentinel"]
    assert not r.exists("bull:{0}:x-2".format(PHONE_Q))


# --- Idempotence and check mode -------------------------------------------------------------------------------

def test_re_adding_1000_jobs_is_a_no_op_and_check_mode_writes_nothing(platform):
    r = platform.r(2)
    base = now_ms() + 3600_000
    jobs = [dict(id=followup_job_id("lead-{0}".format(i), base + i), due_at=base + i, data={"i": i})
            for i in range(1000)]
    before = platform_state(platform)
    predicted = run(platform, check_mode=True, diff=True, queue=QUEUE_FOLLOWUP, jobs=jobs)
    assert_unchanged(before, platform_state(platform))
    first = run(platform, diff=True, queue=QUEUE_FOLLOWUP, jobs=jobs, reason="reschedule")
    assert predicted["jobs"] == first["jobs"] == dict(requested=1000, added=1000, existing=0, delayed=1000)
    assert predicted["diff"]["after"]["delayed"] == first["diff"]["after"]["delayed"] == 1000
    # Due times are exact: BullMQ's score is due_ms << 12 (+ a sequence number).
    score = r.zscore("bull:{0}:delayed".format(QUEUE_FOLLOWUP), jobs[10]["id"])
    assert int(score) >> 12 == base + 10
    counter = r.get("bull:{0}:id".format(QUEUE_FOLLOWUP))

    again = run(platform, queue=QUEUE_FOLLOWUP, jobs=jobs)
    assert again["changed"] is False and again["jobs"]["existing"] == 1000
    assert r.zcard("bull:{0}:delayed".format(QUEUE_FOLLOWUP)) == 1000
    assert r.get("bull:{0}:id".format(QUEUE_FOLLOWUP)) == counter  # not even a no-op script call
    audit = platform.audit("bullmq_add_jobs")
    assert len(audit) == 1 and audit[0][4] == "reschedule" and audit[0][6]["added"] == 1000


def write_chunks(platform, chunks, between=None, queue=QUEUE_FOLLOWUP):
    """JobWriter on its own: each chunk of prepared jobs added in turn, `between(n)` called after chunk n."""
    client = redis_client(platform.params, 2)

    async def work(bull_queue):
        with JobWriter(bull_queue, client, "test Redis") as writer:
            for number, chunk in enumerate(chunks):
                await writer.add(prepare_jobs(chunk, "followup", None, "Europe/Bucharest"))
                if between:
                    writer.wait()
                    between(number)
        return writer.confirmed

    return run_with_queue(platform.params, queue, "bull", work)


def test_the_job_writer_reloads_bullmqs_scripts_when_redis_forgets_them_between_chunks(platform):
    r = platform.r(2)
    base = now_ms() + 3600_000
    chunks = [[dict(id="fu-{0}-{1}".format(n, i), due_at=base + i) for i in range(50)] for n in range(3)]
    # SCRIPT FLUSH is what a Redis restart does to the script cache; the writer believed them loaded.
    confirmed = write_chunks(platform, chunks, between=lambda number: r.script_flush())
    assert confirmed == 150 and r.zcard("bull:{0}:delayed".format(QUEUE_FOLLOWUP)) == 150


def test_the_job_writer_names_the_job_redis_refused_and_keeps_what_it_confirmed(platform):
    r = platform.r(2)
    r.set("bull:{0}:fu-bad".format(QUEUE_FOLLOWUP), "not a hash")
    good = [dict(id="fu-good-{0}".format(i), delay_ms=60000) for i in range(10)]
    with pytest.raises(CerniqError, match="adding job 'fu-bad' failed.*WRONGTYPE"):
        write_chunks(platform, [good, [dict(id="fu-bad", delay_ms=60000)]])
    # The first chunk stays: re-running the module completes the rest (ids make it idempotent).
    assert r.zcard("bull:{0}:delayed".format(QUEUE_FOLLOWUP)) == 10


def test_scheduler_upsert_is_idempotent_and_keeps_the_platform_time_zone(platform):
    r = platform.r(2)
    scheduler = dict(id=QUOTA_RESET_SCHEDULER_ID, pattern=QUOTA_RESET_CRON, job_name="reset")
    before = platform_state(platform)
    assert run(platform, check_mode=True, queue=QUEUE_QUOTA_RESET, scheduler=scheduler)["changed"] is True
    assert_unchanged(before, platform_state(platform))
    first = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=scheduler)
    second = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=scheduler)
    assert first["changed"] is True and second["changed"] is False
    stored = r.hgetall("bull:{0}:repeat:{1}".format(QUEUE_QUOTA_RESET, QUOTA_RESET_SCHEDULER_ID))
    assert stored["pattern"] == "0 0 * * *" and stored["tz"] == "Europe/Bucharest"
    entry = info(platform, queues=[QUEUE_QUOTA_RESET])["queues"][0]
    (view,) = entry["schedulers"]
    # The next run is midnight in Bucharest (22:00 or 21:00 UTC), and its job waits in delayed.
    assert view["next"][11:] in ("22:00:00Z", "21:00:00Z") and entry["counts"]["delayed"] == 1
    changed = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(scheduler, tz="UTC"))
    assert changed["scheduler"]["changed_fields"] == ["tz"]
    removed = run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(id=QUOTA_RESET_SCHEDULER_ID, state="absent"))
    assert removed["changed"] is True and r.zcard("bull:{0}:repeat".format(QUEUE_QUOTA_RESET)) == 0
    assert r.zcard("bull:{0}:delayed".format(QUEUE_QUOTA_RESET)) == 0
    assert [row[2] for row in platform.audit()] == ["bullmq_upsert_scheduler", "bullmq_upsert_scheduler",
                                                    "bullmq_remove_scheduler"]


# --- Version pairing --------------------------------------------------------------------------------------------

def test_a_queue_managed_by_node_v6_is_refused_and_nothing_changes(platform):
    r = platform.r(2)
    add_jobs(platform.redis, PHONE_Q, [("old-1", {})])
    r.hset("bull:{0}:meta".format(PHONE_Q), "version", "bullmq:6.7.0")
    before = {key: r.dump(key) for key in keys_of(r)}
    message = ("queue q:wa:phone_07 is managed by Node BullMQ 6.7.0; install bullmq>=3,<4 on the host running this "
               "module")
    for kwargs in (dict(jobs=[dict(id="new-1")]), dict(state="drained"), dict(state="paused"),
                   dict(state="absent"), dict(scheduler=dict(id="s", every=1000))):
        for check_mode in (True, False):
            with pytest.raises(CerniqError) as err:
                run(platform, check_mode=check_mode, queue=PHONE_Q, **kwargs)
            assert err.value.msg.startswith(message), kwargs
    assert {key: r.dump(key) for key in keys_of(r)} == before
    assert platform.audit() == []
    assert info(platform, queues=[PHONE_Q])["queues"][0]["pairing_problem"].startswith(message)


# --- Bad input: one clear message, nothing changed ----------------------------------------------------------------

@pytest.mark.parametrize(("job", "match"), [
    (dict(id="12345"), "is an integer"),
    (dict(id="fu:1"), "contains ':'"),
    (dict(id="ok", due_at=1790000000), "looks like epoch seconds"),
    (dict(id="ok", due_at="tomorrow"), "neither epoch milliseconds nor an ISO 8601"),
    (dict(id="ok", opts={"jobId": "x"}), "may not set jobId"),
    (dict(id="ok", opts={"priority": -1}), "priority -1"),
])
def test_bad_jobs_are_refused_before_any_is_added(platform, job, match):
    with pytest.raises(CerniqError, match=match):
        run(platform, queue=PHONE_Q, jobs=[dict(id="fine-1"), job])
    assert keys_of(platform.r(2)) == []


@pytest.mark.parametrize("state", ["drained", "absent", "paused", "cleaned"])
def test_a_queue_that_does_not_exist_is_refused_unless_allowed(platform, state):
    with pytest.raises(CerniqError, match="queue q:wa:phone_70 does not exist.*allow_missing"):
        run(platform, queue="q:wa:phone_70", state=state)
    assert run(platform, queue="q:wa:phone_70", state=state, allow_missing=True)["changed"] is False
    assert platform.r(2).dbsize() == 0


def test_a_job_key_of_the_wrong_type_is_refused_before_adding_anything(platform):
    r = platform.r(2)
    r.lpush("bull:dlq:outreach", "x")  # the application's list, where a queue `dlq` would keep job `outreach`
    with pytest.raises(CerniqError, match="bull:dlq:outreach is a list, not a BullMQ job hash.*nothing was added"):
        run(platform, queue="dlq", jobs=[dict(id="first"), dict(id="outreach")])
    assert not r.exists("bull:dlq:first", "bull:dlq:id")


def test_a_queue_key_of_the_wrong_type_is_named(platform):
    platform.r(2).hset("bull:{0}:wait".format(PHONE_Q), "a", 1)
    with pytest.raises(CerniqError, match="wrong Redis type.*q:wa:phone_07"):
        run(platform, queue=PHONE_Q, state="drained")


def test_a_scheduler_with_a_bad_pattern_or_zone_is_refused(platform):
    with pytest.raises(CerniqError, match="not a cron expression"):
        run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(id="s", pattern="61 * * * *"))
    with pytest.raises(CerniqError, match="time zone 'Mars/Olympus' is unknown"):
        run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(id="s", pattern="0 0 * * *", tz="Mars/Olympus"))
    assert platform.r(2).dbsize() == 0


# --- Pause, clean, obliterate -------------------------------------------------------------------------------------

def test_pause_holds_jobs_back_from_the_node_worker_until_resumed(platform):
    r = platform.r(2)
    run(platform, queue=PHONE_Q, jobs=[dict(id="p-1")])
    before = platform_state(platform)
    assert run(platform, check_mode=True, queue=PHONE_Q, state="paused")["changed"] is True
    assert_unchanged(before, platform_state(platform))
    assert run(platform, queue=PHONE_Q, state="paused")["changed"] is True
    assert run(platform, queue=PHONE_Q, state="paused")["changed"] is False
    run(platform, queue=PHONE_Q, jobs=[dict(id="p-2")])
    assert r.llen("bull:{0}:paused".format(PHONE_Q)) == 2  # Python 2.x keeps v5 semantics: no job lost
    with NodeWorker(platform.redis, [PHONE_Q]) as worker:
        time.sleep(1)
        assert worker.completed() == []
        assert run(platform, queue=PHONE_Q, state="resumed")["changed"] is True
        assert {e["id"] for e in worker.wait_completed(2)} == {"p-1", "p-2"}
    assert [row[2] for row in platform.audit()] == ["bullmq_add_jobs", "bullmq_pause", "bullmq_add_jobs",
                                                    "bullmq_resume"]


def test_clean_removes_finished_jobs_by_age_in_chunks_and_check_mode_predicts_it(platform):
    r = platform.r(2)
    run(platform, queue=PHONE_Q, jobs=[dict(id="c-{0}".format(i)) for i in range(25)])
    with NodeWorker(platform.redis, [PHONE_Q]) as worker:
        worker.wait_completed(25)
    assert r.zcard("bull:{0}:completed".format(PHONE_Q)) == 25
    assert run(platform, queue=PHONE_Q, state="cleaned", grace_seconds=3600)["changed"] is False
    before = platform_state(platform)
    check = run(platform, check_mode=True, queue=PHONE_Q, state="cleaned", clean_limit=10)
    assert check["cleaned"] == dict(completed=10, failed=0)
    assert_unchanged(before, platform_state(platform))
    real = run(platform, queue=PHONE_Q, state="cleaned", clean_limit=10)
    assert real["cleaned"] == check["cleaned"]
    rest = run(platform, queue=PHONE_Q, state="cleaned", clean_states=["completed"])
    assert rest["cleaned"] == dict(completed=15)
    assert not [k for k in keys_of(r) if k.split(":")[-1].startswith("c-")]  # hashes gone too, none orphaned


def test_obliterate_refuses_active_jobs_and_resumes_the_queue_when_bullmq_gives_up(platform, monkeypatch):
    r = platform.r(2)
    run(platform, queue=PHONE_Q, jobs=[dict(id="slow-1"), dict(id="w-2")])
    with NodeWorker(platform.redis, [PHONE_Q], work_ms=4000):
        deadline = time.monotonic() + 10
        while not r.llen("bull:{0}:active".format(PHONE_Q)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(CerniqError, match="1 active job.*force=true"):
            run(platform, queue=PHONE_Q, state="absent")
        assert not r.hexists("bull:{0}:meta".format(PHONE_Q), "paused")
        # A job that turns active between our read and BullMQ's obliterate: the script refuses and pauses.
        real_depths = queue_depths
        monkeypatch.setattr(_bullmq_queue, "queue_depths", lambda *a, **k: {
            name: dict(d, active=0) for name, d in real_depths(*a, **k).items()})
        with pytest.raises(CerniqError, match="Cannot obliterate queue with active jobs; the queue was resumed"):
            run(platform, queue=PHONE_Q, state="absent")
        monkeypatch.undo()
        assert not r.hexists("bull:{0}:meta".format(PHONE_Q), "paused")
        assert r.exists("bull:{0}:w-2".format(PHONE_Q))
        assert platform.audit("bullmq_obliterate_failed")
    gone = run(platform, diff=True, queue=PHONE_Q, state="absent")
    assert gone["changed"] is True and keys_of(r) == []
    assert gone["diff"]["after"]["completed"] == 0


# --- Dead-letter queues ------------------------------------------------------------------------------------------

def test_dlq_list_keeps_the_newest_entries_the_application_lpushed(platform):
    r = platform.r(2)
    r.lpush(DLQ_LIST_KEY, *["dead-{0}".format(i) for i in range(1500)])  # dead-1499 is the newest
    before = platform_state(platform)
    check = run(platform, check_mode=True, diff=True, dlq_type="list", dlq_keep=1000)
    assert check["dlq"]["removed"] == 500
    assert_unchanged(before, platform_state(platform))
    real = run(platform, dlq_type="list", dlq_keep=1000)
    assert real["dlq"]["removed"] == 500 and r.llen(DLQ_LIST_KEY) == 1000
    assert r.lindex(DLQ_LIST_KEY, 0) == "dead-1499" and r.lindex(DLQ_LIST_KEY, -1) == "dead-500"
    assert run(platform, dlq_type="list", dlq_keep=1000)["changed"] is False
    assert run(platform, dlq_type="list", dlq_keep=0)["dlq"]["removed"] == 1000 and not r.exists(DLQ_LIST_KEY)
    r.rpush("app:dlq", "a", "b", "c")
    run(platform, dlq_type="list", dlq_key="app:dlq", dlq_keep=1, dlq_push_side="right")
    assert r.lrange("app:dlq", 0, -1) == ["c"]
    assert [row[6]["removed"] for row in platform.audit("bullmq_dlq_trim")] == [500, 1000, 2]


def test_dlq_list_of_the_wrong_type_or_a_negative_keep_is_refused(platform):
    r = platform.r(2)
    r.hset(DLQ_LIST_KEY, "name", "a BullMQ job hash")
    with pytest.raises(CerniqError, match="bull:dlq:outreach is a hash, not a list.*Nothing was changed"):
        run(platform, dlq_type="list", dlq_keep=10)
    with pytest.raises(CerniqError, match="dlq_keep -1 must be a non-negative integer"):
        run(platform, dlq_type="list", dlq_keep=-1)
    assert r.hgetall(DLQ_LIST_KEY) == {"name": "a BullMQ job hash"}


def test_dlq_failed_set_is_trimmed_oldest_first_through_bullmq(platform):
    r = platform.r(2)
    fail_jobs(platform.redis, PHONE_Q, 12)
    failed_key = "bull:{0}:failed".format(PHONE_Q)
    oldest_first = r.zrange(failed_key, 0, -1)
    counted = run(platform, queue=PHONE_Q, dlq_type="failed")
    assert counted["changed"] is False and counted["dlq"]["length"] == 12
    trimmed = run(platform, queue=PHONE_Q, dlq_type="failed", dlq_keep=5)
    assert trimmed["dlq"]["removed"] == 7
    assert r.zrange(failed_key, 0, -1) == oldest_first[7:]
    assert not r.exists(*["bull:{0}:{1}".format(PHONE_Q, job_id) for job_id in oldest_first[:7]])


def test_dlq_queue_keeps_its_newest_waiting_jobs_and_keep_zero_drains_it(platform):
    r = platform.r(2)
    run(platform, queue="outreach:dlq", jobs=[dict(id="d-{0}".format(i)) for i in range(8)])
    assert run(platform, queue="outreach:dlq", dlq_type="queue", dlq_keep=3)["dlq"]["removed"] == 5
    assert sorted(r.lrange("bull:outreach:dlq:wait", 0, -1)) == ["d-5", "d-6", "d-7"]
    assert run(platform, queue="outreach:dlq", dlq_type="queue", dlq_keep=0)["dlq"]["removed"] == 3
    assert r.llen("bull:outreach:dlq:wait") == 0 and not r.exists("bull:outreach:dlq:d-7")


# --- Info -------------------------------------------------------------------------------------------------------

def test_info_discovers_queues_by_pattern_with_a_constant_number_of_round_trips(platform):
    r = platform.r(2)
    for n in range(1, 31):
        add_jobs(platform.redis, phone_queue("phone_{0:02d}".format(n)), [("j-1", {})])
    add_jobs(platform.redis, QUEUE_FOLLOWUP, [("fu-1", {"delay": 3600_000})])
    r.zadd("bull:q:wa:phone_03:delayed", {"stuck": (now_ms() - 60_000) * 4096})
    r.hset("bull:q:wa:phone_05:x:id", "name", "a job whose id is 'id', not a queue's counter")
    calls_before = r.info("stats")["total_commands_processed"]
    found = info(platform, pattern="q:wa:*")
    calls = r.info("stats")["total_commands_processed"] - calls_before
    names = [q["name"] for q in found["queues"]]
    assert "q:wa:phone_01" in names and "q:wa:phone_30" in names and len(names) == 30
    by_name = {q["name"]: q for q in found["queues"]}
    assert by_name["q:wa:phone_03"]["due_delayed"] == 1 and by_name["q:wa:phone_01"]["counts"]["wait"] == 1
    assert by_name["q:wa:phone_01"]["node_prefix"] == "bull:q:wa" and by_name["q:wa:phone_01"]["node_name"] == \
        "phone_01"
    assert found["totals"]["wait"] == 30 and found["dlq_lists"] == [dict(key=DLQ_LIST_KEY, type="none", length=0)]
    assert any("persistence is off" in w for w in found["warnings"])
    # SCAN + TYPE + depths + schedulers + CLIENT LIST + preflight: per queue only the commands of its pipelines.
    # depths, repeat ZRANGE, TYPE of its id key; LINDEX + HGET of the oldest waiting job (two pipelines in all)
    per_queue_commands = 11 + 1 + 1 + 2
    assert calls <= len(names) * per_queue_commands + 30


def test_info_counts_every_dead_letter_list_a_pattern_matches_in_one_scan_and_one_pipeline(platform):
    """The platform's several bull:dlq:* lists, a hash under the pattern and a BullMQ queue named dlq: every plain
    list counted, the others reported and never read as lists; explicit keys still work, alone with no pattern."""
    r = platform.r(2)
    for name, length in (("outreach", 7), ("followup", 1200), ("email", 3)):
        r.lpush("bull:dlq:" + name, *["{0}-{1}".format(name, i) for i in range(length)])
    r.hset("bull:dlq:stats", mapping={"count": "7"})
    r.hset("bull:dlq:meta", mapping={"version": "bullmq:5.81.5"})
    r.lpush("bull:dlq:wait", "job-1", "job-2")
    for i in range(3000):  # keys the pattern does not match, so SCAN needs several pages
        r.set("bull:other:{0}".format(i), "x")
    before = r.info("commandstats")
    found = info(platform, queues=[PHONE_Q])
    stats = r.info("commandstats")
    assert found["dlq_pattern"] == "bull:dlq:*"
    assert found["dlq_lists"] == [dict(key=DLQ_LIST_KEY, type="list", length=7),
                                  dict(key="bull:dlq:email", type="list", length=3),
                                  dict(key="bull:dlq:followup", type="list", length=1200)]
    assert found["dlq_skipped"] == [dict(key="bull:dlq:meta", type="hash", why="not a list"),
                                    dict(key="bull:dlq:stats", type="hash", why="not a list"),
                                    dict(key="bull:dlq:wait", type="list", why="a BullMQ queue's own list")]

    def calls(command):
        return sum(s.get("cmdstat_" + command, {}).get("calls", 0) * sign for s, sign in ((stats, 1), (before, -1)))
    # SCAN: one round per page of 1,000 (3,000 other keys and a few more), never KEYS; then TYPE and LLEN once per
    # dead-letter key (6) in one pipeline, beside the queue's own depths (3 LLENs, 1 EXISTS); EXISTS of meta/id only
    # for bull:dlq:wait, the one name a queue's list could have. The LLEN of a hash fails (WRONGTYPE), never a length.
    assert 1 <= calls("scan") <= 3016 // 1000 + 2 and calls("keys") == 0
    assert (calls("type"), calls("llen"), calls("exists")) == (6, 6 + 3, 1 + 1)
    explicit = info(platform, queues=[PHONE_Q], dlq_list_keys=["bull:dlq:stats", "bull:dlq:email", "bull:dlq:none"],
                    dlq_pattern="")
    assert explicit["dlq_pattern"] is None and explicit["dlq_skipped"] == []
    assert explicit["dlq_lists"] == [dict(key="bull:dlq:stats", type="hash", length=None),
                                     dict(key="bull:dlq:email", type="list", length=3),
                                     dict(key="bull:dlq:none", type="none", length=0)]
    with pytest.raises(CerniqError, match="must start with a literal key prefix"):
        info(platform, queues=[PHONE_Q], dlq_pattern="*")


def test_info_reads_at_most_1000_keys_a_dead_letter_pattern_matches_and_says_so(platform):
    r = platform.r(2)
    pipe = r.pipeline(transaction=False)
    for i in range(DLQ_PATTERN_MAX_KEYS + 5):
        pipe.rpush("bull:dlq:k{0:04d}".format(i), "a")
    pipe.execute()
    found = info(platform, queues=[PHONE_Q], dlq_list_keys=[])
    assert len(found["dlq_lists"]) == DLQ_PATTERN_MAX_KEYS
    assert any("matches more than 1000 keys, only the first 1000" in w for w in found["warnings"])


def test_info_counts_node_workers_of_each_queue(platform):
    with NodeWorker(platform.redis, [PHONE_Q]):
        found = info(platform, queues=[PHONE_Q, "q:wa:phone_08"])
    workers = {q["name"]: q["workers"] for q in found["queues"]}
    assert workers[PHONE_Q] >= 1 and workers["q:wa:phone_08"] == 0


def test_a_large_drain_warns_about_blocking_redis(platform, monkeypatch):
    monkeypatch.setattr(_bullmq_ops, "LARGE_QUEUE_JOBS", 2)
    run(platform, queue=PHONE_Q, jobs=[dict(id="l-{0}".format(i)) for i in range(3)])
    result = run(platform, check_mode=True, queue=PHONE_Q, state="drained")
    assert any("blocks Redis about 1 s per 100,000 jobs" in w for w in result["warnings"])


@pytest.mark.parametrize(("given", "match"), [
    (dict(chunk_size=5000, jobs=[dict(id="n-1")]), "chunk_size 5000 must be between 1 and 1000"),
    (dict(state="cleaned", grace_seconds=-1), "grace_seconds -1 must not be negative"),
    (dict(state="drained", jobs=[dict(id="a-1")]), "jobs and scheduler go with state=present"),
])
def test_bad_options_are_refused_before_anything_changes(platform, given, match):
    run(platform, queue=PHONE_Q, jobs=[dict(id="keep-1")])
    before = platform_state(platform)
    with pytest.raises(CerniqError, match=match):
        run(platform, queue=PHONE_Q, **given)
    assert_unchanged(before, platform_state(platform))


@pytest.mark.parametrize("given", [
    dict(jobs=[dict(id="z-1"), dict(id="z-2", delay_ms=60_000)]),
    dict(state="retried", job_count=10),
    dict(state="promoted", job_count=10),
    dict(state="drained", include_delayed=True),
    dict(state="cleaned"),
], ids=["add", "retried", "promoted", "drained", "cleaned"])
@pytest.mark.parametrize("check_mode", [True, False], ids=["check", "real"])
def test_chunk_size_0_is_refused_with_one_clear_message_and_nothing_changes(platform, given, check_mode):
    run(platform, queue=PHONE_Q, jobs=[dict(id="keep-1"), dict(id="keep-2", delay_ms=60_000)])
    before = platform_state(platform)
    with pytest.raises(CerniqError) as refused:
        run(platform, check_mode=check_mode, queue=PHONE_Q, chunk_size=0, reason="INC-9", **given)
    assert refused.value.msg == ("chunk_size 0 must be between 1 and 1000 (larger chunks stall Redis for every other "
                                 "client)")
    assert_unchanged(before, platform_state(platform))  # no job, no queue key, no audit row


def test_a_queue_operation_runs_from_the_connections_and_a_request_of_keyword_options(platform):
    """operate_queue needs no module defaults: the connections plus the options this call sets."""
    jobs = (dict(id="k-1"), dict(id="k-2", delay_ms=60_000))
    added = operate_queue(platform.params, QueueRequest(queue=PHONE_Q, jobs=jobs, reason="INC-1"))
    assert added["changed"] is True and added["jobs"] == dict(requested=2, added=2, existing=0, delayed=1)
    assert platform.audit("bullmq_add_jobs")[0][4] == "INC-1"
    request = QueueRequest(queue=PHONE_Q, state="drained", include_delayed=True)
    before = platform_state(platform)
    check = operate_queue(platform.params, request, check_mode=True, want_diff=True)
    after = check["diff"]["after"]
    assert check["drained"]["removed"] == 2 and (after["wait"], after["delayed"]) == (0, 0)
    assert_unchanged(before, platform_state(platform))
    assert operate_queue(platform.params, request, want_diff=True)["diff"] == check["diff"]


def test_drain_counts_leave_out_the_schedulers_next_job_which_bullmq_keeps(platform):
    r = platform.r(2)
    run(platform, queue=QUEUE_QUOTA_RESET, scheduler=dict(id=QUOTA_RESET_SCHEDULER_ID, pattern=QUOTA_RESET_CRON),
        jobs=[dict(id="manual-reset", delay_ms=60_000)])
    assert r.zcard("bull:{0}:delayed".format(QUEUE_QUOTA_RESET)) == 2
    result = run(platform, queue=QUEUE_QUOTA_RESET, state="drained", include_delayed=True)
    assert result["drained"]["delayed"] == 1 and result["drained"]["removed"] == 1
    (kept,) = r.zrange("bull:{0}:delayed".format(QUEUE_QUOTA_RESET), 0, -1)
    assert kept.startswith("repeat:{0}:".format(QUOTA_RESET_SCHEDULER_ID))


def test_a_dead_redis_fails_fast_with_one_clear_line(platform, private_redis):
    from tests.support.services import module_params

    params = module_params(private_redis, platform.pg)
    # Killed: nothing listens on the port, so the connection is refused at once (no wall-clock bound asserted).
    private_redis.kill()
    with pytest.raises(CerniqError, match="cannot reach Redis at 127.0.0.1:{0} .*redis-server is running".format(
            private_redis.port)):
        operate_queue(params, QueueRequest(queue=PHONE_Q, jobs=(dict(id="j-1"),)))
    # The bullmq package's own connection (built on async_redis_client) gives up as quickly.
    with pytest.raises(CerniqError, match="cannot reach Redis at 127.0.0.1:{0}".format(private_redis.port)):
        run_with_queue(params, PHONE_Q, "bull", lambda queue: queue.getJobCounts())
