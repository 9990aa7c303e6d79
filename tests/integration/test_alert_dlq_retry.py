"""dlq:overflow through alert_response.yml for real: the newest dead letters and the newest failures of the worst
queues shown with their data and failed reason, secrets in job data masked (never in the output); the retry offered
behind the confirm gate (nothing changes without confirm), then done with BullMQ's script and audited."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import DLQ_LIST_KEY, phone_queue
from tests.support.cores import run
from tests.support.producers import now_ms

Q = phone_queue("phone_03")
SECRET = "tl-live-SECRET-77"


@pytest.fixture()
def failing(platform):
    """phone_03's queue: 6 jobs failed (as a worker leaves them) with a token in their data; the platform's three
    dead-letter lists (bull:dlq:*) and a hash under the same pattern."""
    jobs = [dict(id="send-{0}".format(i), data={"leadId": "lead-{0}".format(i), "token": SECRET,
                                                "headers": {"Authorization": "Bearer " + SECRET}}) for i in range(6)]
    run(platform, queue=Q, jobs=jobs, job_name="send")
    r = platform.r(2)
    for i in range(6):
        job_id = "send-{0}".format(i)
        r.lrem("bull:{0}:wait".format(Q), 0, job_id)
        r.zadd("bull:{0}:failed".format(Q), {job_id: now_ms() - 60000 + i})
        r.hset("bull:{0}:{1}".format(Q, job_id), mapping={"failedReason": "TimelinesAI 401 Unauthorized",
                                                          "finishedOn": now_ms() - 60000 + i, "atm": 3})
    for i in range(8):
        r.lpush(DLQ_LIST_KEY, json.dumps({"jobId": "dead-{0}".format(i), "error": "invalid number",
                                          "data": {"to": "+4071000000{0}".format(i), "api_key": SECRET}}))
    r.lpush("bull:dlq:followup", *[json.dumps({"jobId": "fu-{0}".format(i), "secret": SECRET}) for i in range(3)])
    r.rpush("bull:dlq:email", json.dumps({"jobId": "mail-0", "error": "bounced"}))
    r.hset("bull:dlq:stats", mapping={"count": "12", "token": SECRET})
    return r


def test_newest_failures_shown_redacted_and_the_retry_behind_the_gate(platform, failing):
    r = failing
    shown = platform.play("alert_response.yml", extravars={"alert": "dlq:overflow"})
    assert shown.rc == 0, shown.stdout[-3000:]
    depth = shown.result("Show the dead-letter depth and the queues where jobs fail")["msg"]
    assert depth[:4] == ["{0}: 8 dead letters".format(DLQ_LIST_KEY), "bull:dlq:email: 1 dead letters",
                         "bull:dlq:followup: 3 dead letters",
                         "bull:dlq:stats: matches bull:dlq:* but is a hash (not a list), not read as a dead-letter "
                         "list"]
    lines = shown.result("Show them")["msg"]
    assert lines[0] == "{0}, newest 5 of 8:".format(DLQ_LIST_KEY)
    assert json.loads(lines[1].strip()) == {"jobId": "dead-7", "error": "invalid number",
                                            "data": {"to": "+40710000007", "api_key": "********"}}
    # Every dead-letter list's newest entries, each redacted; the hash never read as a list.
    assert lines[6:11] == ["bull:dlq:email, newest 1 of 1:", '  {"jobId": "mail-0", "error": "bounced"}',
                           "bull:dlq:followup, newest 3 of 3:", '  {"jobId": "fu-2", "secret": "********"}',
                           '  {"jobId": "fu-1", "secret": "********"}']
    assert not any("bull:dlq:stats," in line for line in lines)
    failed_header = lines.index("{0}, newest 5 failed:".format(Q))
    assert lines[failed_header + 1].startswith("  send-5 (send, 3 attempt(s)): TimelinesAI 401 Unauthorized | data ")
    newest_failure = lines[failed_header + 1]
    assert '"token": "********"' in newest_failure and '"Authorization": "********"' in newest_failure
    # The secret never reaches the output, in any task.
    assert SECRET not in shown.stdout and SECRET not in json.dumps([e.get("event_data") for e in shown.events])
    assert shown.changed_tasks == [] and r.zcard("bull:{0}:failed".format(Q)) == 6
    assert r.hgetall("bull:dlq:stats") == {"count": "12", "token": SECRET} and r.llen("bull:dlq:followup") == 3

    # The retry asked for without confirm: the plan is shown, nothing changes.
    refused = platform.play("alert_response.yml",
                            extravars={"alert": "dlq:overflow", "alert_response_dlq_retry": "true"})
    assert refused.rc != 0
    plan = refused.result("What this run will change")["msg"]
    assert plan[0].startswith("retry 6 failed job(s) of {0} that failed before ".format(Q))
    assert "(first: send-0, send-1, send-2, send-3, send-4)" in plan[0]
    assert r.zcard("bull:{0}:failed".format(Q)) == 6 and r.llen("bull:{0}:wait".format(Q)) == 0
    assert platform.audit("bullmq_retry_jobs") == []

    # Skipping the gate's tag (always) retries nothing either (the module's own lock is confirmed: true).
    platform.play("alert_response.yml", skip_tags="always",
                  extravars={"alert": "dlq:overflow", "alert_response_dlq_retry": "true"})
    assert r.zcard("bull:{0}:failed".format(Q)) == 6 and platform.audit("bullmq_retry_jobs") == []

    done = platform.play("alert_response.yml", extravars={"alert": "dlq:overflow", "alert_response_dlq_retry": "true",
                                                          "confirm": "true"})
    assert done.rc == 0, done.stdout[-3000:]
    assert r.zcard("bull:{0}:failed".format(Q)) == 0
    assert sorted(r.lrange("bull:{0}:wait".format(Q), 0, -1)) == ["send-{0}".format(i) for i in range(6)]
    assert "failedReason" not in r.hgetall("bull:{0}:send-0".format(Q))
    audit = platform.audit("bullmq_retry_jobs")
    assert len(audit) == 1 and audit[0][6]["retried"] == 6 and audit[0][4] == "dlq:overflow retry after the fix"


def test_a_custom_redact_list_masks_its_keys_and_only_those(platform, failing):
    """alert_response_redact_keys replaces the default list: a key named in it is masked wherever it sits, a default
    key left out of it (token, api_key) is shown as it is."""
    shown = platform.play("alert_response.yml", extravars={"alert": "dlq:overflow",
                                                           "alert_response_redact_keys": ["leadid", "jobid"]})
    assert shown.rc == 0, shown.stdout[-3000:]
    lines = shown.result("Show them")["msg"]
    assert json.loads(lines[1].strip()) == {"jobId": "********", "error": "invalid number",
                                            "data": {"to": "+40710000007", "api_key": SECRET}}
    failed_header = lines.index("{0}, newest 5 failed:".format(Q))
    newest_failure = lines[failed_header + 1]
    assert '"leadId": "********"' in newest_failure and '"token": "{0}"'.format(SECRET) in newest_failure
    assert '"Authorization": "Bearer {0}"'.format(SECRET) in newest_failure
    assert "lead-5" not in shown.stdout and "dead-7" not in shown.stdout
