"""bullmq_queue state=retried / promoted / removed against real Redis, PostgreSQL (audit) and a real Node BullMQ v5
worker: jobs the Node worker failed are retried by the module and then processed by the same worker; delayed jobs
promoted run now; one job retried or removed by id. Check mode writes nothing; each change is audited."""

from __future__ import annotations

import time

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import REDACTED, JobSearchRequest, job_info
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import phone_queue
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.modules.bullmq_queue import destructive
from tests.support.cores import run
from tests.support.nodeworker import NodeWorker
from tests.support.producers import wait_for_meta_version
from tests.support.snapshots import assert_unchanged, platform_state

Q = phone_queue("phone_07")


def snapshot(r, queue=Q):
    """Every key of the queue with its exact serialized value: byte-level 'nothing written'."""
    keys = sorted(r.scan_iter(match="bull:{0}:*".format(queue), count=1000))
    return {key: r.dump(key) for key in keys if not key.endswith(":events")}


def fail_jobs_with_node(platform, count, tag="TimelinesAI 401"):
    """count jobs added by the module, each failed once by the Node worker (its real failed path)."""
    r = platform.r(2)
    jobs = [dict(id="send-{0}".format(i), data={"leadId": "lead-{0}".format(i), "failFirst": tag,
                                                "token": "tl-secret-{0}".format(i)}) for i in range(count)]
    with NodeWorker(platform.redis, [Q], timeout=60) as worker:
        wait_for_meta_version(r, Q)
        run(platform, queue=Q, jobs=jobs, job_name="send")
        worker.wait_for(lambda e: sum(1 for x in worker.events if x.get("event") == "failed") >= count, 30,
                        "{0} failed jobs".format(count))
    assert r.zcard("bull:{0}:failed".format(Q)) == count
    return jobs


def test_jobs_failed_by_node_are_retried_in_chunks_then_processed_by_node(platform):
    r = platform.r(2)
    fail_jobs_with_node(platform, 25)
    assert r.hget("bull:{0}:send-3".format(Q), "failedReason") == "failing on purpose: TimelinesAI 401"
    before = platform_state(platform)

    plan = run(platform, check_mode=True, diff=True, queue=Q, state="retried", job_count=20)
    assert plan["changed"] is True
    assert plan["jobs"]["retried"] == 20 and plan["jobs"]["from_state"] == "failed"
    assert len(plan["jobs"]["ids"]) == 20 and plan["jobs"]["ids_truncated"] is False
    assert plan["diff"]["before"]["failed"] == 25 and plan["diff"]["after"]["failed"] == 5
    assert plan["diff"]["after"]["wait"] == 20
    assert_unchanged(before, platform_state(platform))

    # 20 of 25 in chunks of 7: three script calls, none holding more than 7 jobs.
    done = run(platform, queue=Q, state="retried", job_count=20, chunk_size=7, reason="token renewed")
    assert done["jobs"]["retried"] == 20
    assert r.zcard("bull:{0}:failed".format(Q)) == 5 and r.llen("bull:{0}:wait".format(Q)) == 20
    retried = set(plan["jobs"]["ids"])
    assert set(r.lrange("bull:{0}:wait".format(Q), 0, -1)) == retried
    # BullMQ's script clears the failure; the attempt count stays (Node's retryJobs does the same).
    job = r.hgetall("bull:{0}:{1}".format(Q, sorted(retried)[0]))
    assert "failedReason" not in job and "finishedOn" not in job and job["atm"] == "1"
    audit = platform.audit("bullmq_retry_jobs")
    assert len(audit) == 1 and audit[0][4] == "token renewed"
    assert audit[0][6]["retried"] == 20 and audit[0][5]["failed"] == 25

    # The Node worker picks up exactly the retried jobs and now completes them.
    with NodeWorker(platform.redis, [Q], timeout=60) as worker:
        done_events = worker.wait_completed(20, timeout=30)
    assert {e["id"] for e in done_events} == retried
    assert r.zcard("bull:{0}:failed".format(Q)) == 5 and r.zcard("bull:{0}:completed".format(Q)) == 20

    # retry_state=completed runs completed jobs again: check mode lists them and writes nothing, then they move.
    before = platform_state(platform)
    plan = run(platform, check_mode=True, queue=Q, state="retried", retry_state="completed")
    assert plan["jobs"]["retried"] == 20 and plan["jobs"]["from_state"] == "completed"
    assert set(plan["jobs"]["ids"]) == retried
    assert_unchanged(before, platform_state(platform))
    assert run(platform, queue=Q, state="retried", retry_state="completed")["jobs"]["retried"] == 20
    assert r.zcard("bull:{0}:completed".format(Q)) == 0 and set(r.lrange("bull:{0}:wait".format(Q), 0, -1)) == retried
    assert r.zcard("bull:{0}:failed".format(Q)) == 5, "retry_state=completed leaves the failed jobs alone"

    # Re-run: the 5 left are retried; then nothing is left to retry.
    assert run(platform, queue=Q, state="retried")["jobs"]["retried"] == 5
    again = run(platform, queue=Q, state="retried")
    assert again["changed"] is False and again["jobs"]["retried"] == 0


def test_retry_honours_the_cut_off_time(platform):
    r = platform.r(2)
    fail_jobs_with_node(platform, 4)
    failed = r.zrange("bull:{0}:failed".format(Q), 0, -1, withscores=True)
    # A cut-off before the last failure leaves the jobs that failed after it.
    cut = int(failed[-1][1]) - 1
    before = platform_state(platform)
    plan = run(platform, check_mode=True, queue=Q, state="retried", retry_finished_before=cut)
    assert plan["jobs"]["retried"] == sum(1 for _id, score in failed if score <= cut)
    assert_unchanged(before, platform_state(platform))
    run(platform, queue=Q, state="retried", retry_finished_before=cut)
    assert r.zrange("bull:{0}:failed".format(Q), 0, -1) == [i for i, score in failed if score > cut]
    with pytest.raises(CerniqError, match="epoch seconds"):
        run(platform, queue=Q, state="retried", retry_finished_before=1700000000)


def test_delayed_jobs_promoted_run_now_on_the_node_worker(platform):
    r = platform.r(2)
    due = int(time.time() * 1000) + 3600 * 1000
    jobs = [dict(id="later-{0}".format(i), due_at=due, data={"i": i}) for i in range(12)]
    with NodeWorker(platform.redis, [Q], timeout=60) as worker:
        wait_for_meta_version(r, Q)
        run(platform, queue=Q, jobs=jobs)
        assert r.zcard("bull:{0}:delayed".format(Q)) == 12
        # The queue's keys only: the running worker keeps writing its own (stalled-jobs check, its events).
        before = snapshot(r)
        plan = run(platform, check_mode=True, queue=Q, state="promoted", job_count=10)
        assert plan["jobs"]["promoted"] == 10 and snapshot(r) == before
        run(platform, queue=Q, state="promoted", job_count=10, chunk_size=4)
        completed = worker.wait_completed(10, timeout=30)
        assert all(e["processedOn"] < due for e in completed)
        # One more by id (BullMQ's promote script), not needing confirmation.
        left = r.zrange("bull:{0}:delayed".format(Q), 0, -1)
        assert len(left) == 2
        one = run(platform, queue=Q, state="promoted", job_id=left[0])
        assert one["changed"] is True and one["job"]["state"] == "delayed"
        worker.wait_completed(11, timeout=30)
    assert r.zrange("bull:{0}:delayed".format(Q), 0, -1) == left[1:]
    assert len(platform.audit("bullmq_promote_jobs")) == 1 and len(platform.audit("bullmq_promote_job")) == 1


def test_one_job_retried_and_one_removed_by_id(platform):
    r = platform.r(2)
    fail_jobs_with_node(platform, 3)
    key = "bull:{0}:send-1".format(Q)
    before = platform_state(platform)
    plan = run(platform, check_mode=True, queue=Q, state="retried", job_id="send-1")
    assert_unchanged(before, platform_state(platform))
    assert plan["changed"] is True and plan["job"]["state"] == "failed"
    assert plan["job"]["failed_reason"] == "failing on purpose: TimelinesAI 401"
    # Job data is shown with its secrets masked.
    assert plan["job"]["data"]["token"] == REDACTED and plan["job"]["data"]["leadId"] == "lead-1"
    run(platform, queue=Q, state="retried", job_id="send-1")
    assert r.lrange("bull:{0}:wait".format(Q), 0, -1) == ["send-1"] and "failedReason" not in r.hgetall(key)
    # Retrying it again: it is waiting now, nothing to do.
    assert run(platform, queue=Q, state="retried", job_id="send-1")["changed"] is False

    removed = run(platform, queue=Q, state="removed", job_id="send-2")
    assert removed["changed"] is True and not r.exists("bull:{0}:send-2".format(Q))
    assert r.zscore("bull:{0}:failed".format(Q), "send-2") is None
    assert run(platform, queue=Q, state="removed", job_id="send-2")["changed"] is False
    audit = platform.audit("bullmq_remove_job")
    assert [row[3] for row in audit] == ["bull:{0}:send-2".format(Q)] and audit[0][5]["state"] == "failed"
    assert len(platform.audit("bullmq_retry_job")) == 1


def test_remove_and_promote_by_id_in_check_mode_change_nothing(platform):
    """One job removed or promoted by id, and the delayed jobs promoted, in check mode: the jobs named, the counts
    the real run would change, and the whole platform byte for byte as it was (no audit row either)."""
    due = int(time.time() * 1000) + 3600 * 1000
    run(platform, queue=Q, job_name="send", jobs=[dict(id="send-{0}".format(i), data={"i": i}) for i in range(3)]
        + [dict(id="later-{0}".format(i), due_at=due, data={"i": i}) for i in range(2)])
    before = platform_state(platform)
    removal = run(platform, check_mode=True, diff=True, queue=Q, state="removed", job_id="send-1")
    assert removal["changed"] is True and removal["job"]["id"] == "send-1" and removal["job"]["state"] == "wait"
    assert removal["diff"]["before"]["wait"] == 3 and removal["diff"]["after"]["wait"] == 2
    promotion = run(platform, check_mode=True, diff=True, queue=Q, state="promoted", job_id="later-1")
    assert promotion["changed"] is True and promotion["job"]["id"] == "later-1"
    assert promotion["job"]["state"] == "delayed"
    assert (promotion["diff"]["after"]["delayed"], promotion["diff"]["after"]["wait"]) == (1, 4)
    every = run(platform, check_mode=True, queue=Q, state="promoted")
    assert every["jobs"]["promoted"] == 2 and sorted(every["jobs"]["ids"]) == ["later-0", "later-1"]
    assert_unchanged(before, platform_state(platform))
    assert platform.audit("bullmq_remove_job") == [] and platform.audit("bullmq_promote_job") == []
    # What check mode said is what the real run does.
    run(platform, queue=Q, state="removed", job_id="send-1")
    run(platform, queue=Q, state="promoted", job_id="later-1")
    r = platform.r(2)
    assert not r.exists("bull:{0}:send-1".format(Q)) and r.zrange("bull:{0}:delayed".format(Q), 0, -1) == ["later-0"]


def test_a_custom_redact_list_masks_its_keys_and_shows_a_default_one_left_out(platform):
    """redact_keys given (bullmq_queue by id, bullmq_job_info's jobs and dead letters) replaces the default list: a
    key it names is masked at any depth, token and api_key (defaults left out of it) are shown as they are."""
    data = {"leadId": "lead-0", "token": "tl-visible-0", "auth": {"PIN": "4321"}}
    run(platform, queue=Q, job_name="send", jobs=[dict(id="send-0", data=data)])
    platform.r(2).lpush("bull:dlq:outreach", '{"jobId": "dead-0", "pin": "9876", "api_key": "k-visible"}')
    custom = ["pin"]
    shown = run(platform, check_mode=True, queue=Q, state="removed", job_id="send-0", redact_keys=custom)
    assert shown["job"]["data"] == {"leadId": "lead-0", "token": "tl-visible-0", "auth": {"PIN": REDACTED}}
    found = job_info(platform.params, JobSearchRequest(queue=Q, match={"leadId": "lead-0"}, redact_keys=custom,
                                                       dlq_keys=["bull:dlq:outreach"]))
    assert [job["data"] for job in found["jobs"]] == [shown["job"]["data"]]
    assert found["dlq_lists"][0]["newest"] == [{"jobId": "dead-0", "pin": REDACTED, "api_key": "k-visible"}]
    # The defaults, for contrast: token and api_key masked, the pin shown.
    default = job_info(platform.params, JobSearchRequest(queue=Q, match={"leadId": "lead-0"},
                                                         dlq_keys=["bull:dlq:outreach"]))
    assert default["jobs"][0]["data"] == {"leadId": "lead-0", "token": REDACTED, "auth": {"PIN": "4321"}}
    assert default["dlq_lists"][0]["newest"] == [{"jobId": "dead-0", "pin": "9876", "api_key": REDACTED}]


def test_bad_inputs_fail_once_and_the_confirm_gate(platform):
    r = platform.r(2)
    fail_jobs_with_node(platform, 1)
    before = snapshot(r)
    for given, message in ((dict(state="removed"), "give its job_id"),
                           (dict(state="removed", job_id="123"), "is an integer"),
                           (dict(state="retried", job_id="a:b"), "contains ':'"),
                           (dict(state="drained", job_id="send-0"), "job_id goes with"),
                           (dict(state="retried", job_count=-1), "non-negative"),
                           (dict(state="retried", job_id="nope"), "has no job nope")):
        with pytest.raises(CerniqError, match=message):
            run(platform, queue=Q, **given)
    assert snapshot(r) == before
    # What the module's gate sees: removing, bulk retry and bulk promote need confirmed; one job's retry does not.
    # The module's parameters the gate reads (a queue operation: no dlq_type, no scheduler).
    params = dict(queue=Q, dlq_type=None, scheduler=None, job_id=None)
    assert destructive(dict(params, state="removed", job_id="send-0")) == "removing a job"
    assert destructive(dict(params, state="retried")) and destructive(dict(params, state="promoted"))
    assert destructive(dict(params, state="retried", job_id="send-0")) is None
