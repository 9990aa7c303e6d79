"""bullmq_queue and bullmq_queue_info through ansible-playbook: module wiring, check mode, diff, idempotence, no_log."""

from __future__ import annotations

import time
from pathlib import Path

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import DLQ_LIST_KEY, followup_job_id

PLAYBOOK = str(Path(__file__).parent / "playbooks" / "bullmq_queue.yml")


def test_bullmq_modules_through_ansible_check_diff_idempotence_and_no_secret(platform):
    r = platform.r(2)
    r.lpush(DLQ_LIST_KEY, *["dead-{0}".format(i) for i in range(30)])
    due = int(time.time() * 1000) + 3600_000
    extravars = dict(dlq_keep=10, followups=[
        dict(id=followup_job_id("lead-{0}".format(i), due), due_at=due, data={"leadId": "lead-{0}".format(i)})
        for i in range(50)])

    check = platform.play(PLAYBOOK, extravars=extravars, check=True, diff=True)
    assert check.rc == 0, check.stdout
    assert check.result("Schedule follow-ups")["jobs"]["added"] == 50
    assert check.result("Schedule follow-ups")["diff"]["after"]["delayed"] == 50
    assert check.result("Quota reset scheduler")["changed"] is True
    assert check.result("Trim the dead-letter list")["dlq"]["removed"] == 20
    assert "queue q:wa:phone_99 does not exist" in check.result("Drain a queue that does not exist")["msg"]
    assert r.keys("bull:outreach:*") == [] and r.llen(DLQ_LIST_KEY) == 30 and platform.audit() == []

    real = platform.play(PLAYBOOK, extravars=extravars)
    assert real.rc == 0, real.stdout
    assert set(real.changed_tasks) == {"Schedule follow-ups", "Quota reset scheduler", "Trim the dead-letter list"}
    assert r.zcard("bull:outreach:followup:delayed") == 50 and r.llen(DLQ_LIST_KEY) == 10
    assert {row[2] for row in platform.audit()} == {"bullmq_add_jobs", "bullmq_upsert_scheduler", "bullmq_dlq_trim"}
    queues = {q["name"]: q for q in real.result("Read the queues")["queues"]}
    assert set(queues) == {"outreach:followup", "quota:guardian:reset"}
    assert queues["quota:guardian:reset"]["schedulers"][0]["tz"] == "Europe/Bucharest"

    again = platform.play(PLAYBOOK, extravars=extravars, verbosity=4)
    assert again.rc == 0, again.stdout
    assert again.changed_tasks == []
    # The passwords reached the modules through module_defaults (the servers require them) and were never printed,
    # though -vvvv prints every task's result.
    assert "existing: 50" in again.stdout
    assert platform.redis.password not in again.stdout and platform.pg.password not in again.stdout
