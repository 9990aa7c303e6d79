"""phone_banned.yml (runbook 2.2) for real: a phone with 50 leads in every stage and 300 pending jobs, beside other
phones and queues that must come out untouched."""

from __future__ import annotations

import asyncio

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    BULLMQ_PREFIX,
    RELEASABLE_STAGES,
    TABLE_LEADS,
    phone_queue,
    phone_status_key,
)
from tests.support.producers import add_jobs
from tests.support.seed import TENANT_ID
from tests.support.snapshots import assert_unchanged, platform_state, without_keys

BANNED = "phone_02"
NEIGHBOUR = "phone_03"
# 50 leads on the banned phone, in every stage: 27 releasable (COLD, CONTACTED_WA), 23 that keep their phone.
LEADS_BY_STAGE = {"COLD": 15, "CONTACTED_WA": 12, "CONTACTED_EMAIL": 8, "REPLIED": 7, "CONVERTED": 5, "DEAD": 3}
RELEASABLE = sum(n for stage, n in LEADS_BY_STAGE.items() if stage in RELEASABLE_STAGES)
# 300 pending jobs on the banned phone's queue: waiting, delayed and prioritized.
JOBS = {"wait": 120, "delayed": 150, "prioritized": 30}


def insert_leads(platform, phone_id, by_stage, tag):
    for stage, count in by_stage.items():
        platform.sql(
            "INSERT INTO " + TABLE_LEADS + " (lead_id, tenant_id, engagement_stage, assigned_phone_id, assigned_at, "
            "email, phone_number) SELECT gen_random_uuid(), %s, %s, %s, now() - interval '3 days', "
            "%s || g || '@example.ro', '+4075' || lpad(g::text, 7, '0') FROM generate_series(1, %s) AS g",
            (str(TENANT_ID), stage, phone_id, "{0}-{1}-".format(tag, stage.lower()), count))


def pause_queue(redis_server, queue_name, db=2):
    """BullMQ's Queue.pause, as an operator would stop a queue."""
    from bullmq import Queue

    async def run():
        queue = Queue(queue_name, {"connection": {"host": redis_server.host, "port": redis_server.port, "db": db,
                                                  "password": redis_server.password}, "prefix": BULLMQ_PREFIX})
        try:
            await queue.pause()
        finally:
            await queue.close()

    asyncio.run(run())


def leads_snapshot(platform):
    return {str(lead): (stage, phone, at) for lead, stage, phone, at in platform.sql(
        "SELECT lead_id, engagement_stage, assigned_phone_id, assigned_at FROM " + TABLE_LEADS)}


@pytest.fixture()
def ban_scenario(platform):
    facts = platform.seed(phones=4, leads=0, old_log_rows=0, reviews=0, jobs_per_phone=12, dlq_entries=5,
                          offline=(), banned=(), drift_phone="", leak_phone="", no_ttl_phone="")
    insert_leads(platform, BANNED, LEADS_BY_STAGE, "banned")
    insert_leads(platform, NEIGHBOUR, {"COLD": 10, "CONTACTED_WA": 10, "REPLIED": 5}, "neighbour")
    queue = phone_queue(BANNED)
    # The seed already gave the phone 12 jobs (4 waiting, 8 delayed); top it up to exactly 300 pending.
    platform.r(2).delete(*platform.r(2).scan_iter(match="{0}:{1}:*".format(BULLMQ_PREFIX, queue)))
    jobs = [("ban-w-{0}".format(i), {}) for i in range(JOBS["wait"])]
    jobs += [("ban-d-{0}".format(i), {"delay": 3600_000 + i * 1000}) for i in range(JOBS["delayed"])]
    jobs += [("ban-p-{0}".format(i), {"priority": 1 + i % 5}) for i in range(JOBS["prioritized"])]
    add_jobs(platform.redis, queue, jobs)
    return facts


def test_ban_plan_check_mode_and_refusal_change_nothing(platform, ban_scenario):
    before = platform_state(platform)

    checked = platform.play("phone_banned.yml", extravars={"phone": BANNED}, check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    plan = checked.result("What this run will change")["msg"]
    assert any("DB ACTIVE, Redis ACTIVE -> BANNED in both" in line for line in plan), plan
    assert any("release {0} lead(s)".format(RELEASABLE) in line and "COLD 15, CONTACTED_WA 12" in line
               for line in plan), plan
    assert any("cancel 300 pending job(s)" in line and "120 waiting, 150 delayed, 30 prioritized" in line
               for line in plan), plan
    ban = checked.result("Ban the phone")
    assert ban["changed"] is True and ban["released"]["count"] == RELEASABLE
    assert ban["cancelled"]["cancelled"] == 300
    assert_unchanged(before, platform_state(platform))

    refused = platform.play("phone_banned.yml", extravars={"phone": BANNED})
    assert refused.rc != 0
    assert "Nothing was changed" in refused.stdout
    assert_unchanged(before, platform_state(platform))


def test_ban_releases_only_the_right_leads_cancels_only_that_queue_and_audits_it(platform, ban_scenario):
    leads_before = leads_snapshot(platform)
    queue_prefix = "{0}:{1}:".format(BULLMQ_PREFIX, phone_queue(BANNED))
    # Every key but the banned phone's status key and queue, byte for byte with its expiry.
    others_before = without_keys(platform_state(platform), phone_status_key(BANNED), queue_prefix)
    phones_before = platform.sql("SELECT id, status, status_changed_at FROM wa_phone_numbers WHERE id <> %s "
                                 "ORDER BY id", (BANNED,))

    run = platform.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": "true", "reason": "INC-1234",
                                                       "phone_banned_verify": "true"})
    assert run.rc == 0, run.stdout[-3000:]

    # The phone: BANNED in both places.
    assert platform.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (BANNED,)) == [("BANNED",)]
    assert platform.r(0).get(phone_status_key(BANNED)) == "BANNED"
    # Leads: exactly the releasable ones of the banned phone lost their phone; every other lead is as it was.
    leads_after = leads_snapshot(platform)
    released = {lead for lead, (stage, phone, _at) in leads_before.items()
                if phone == BANNED and stage in RELEASABLE_STAGES}
    assert len(released) == RELEASABLE
    for lead, (stage, phone, at) in leads_after.items():
        if lead in released:
            assert (stage, phone, at) == (leads_before[lead][0], None, None)
        else:
            assert (stage, phone, at) == leads_before[lead]
    kept = platform.sql("SELECT engagement_stage, count(*) FROM " + TABLE_LEADS + " WHERE assigned_phone_id = %s "
                        "GROUP BY 1 ORDER BY 1", (BANNED,))
    assert dict(kept) == {s: n for s, n in LEADS_BY_STAGE.items() if s not in RELEASABLE_STAGES}
    # Jobs: the queue holds nothing pending and no job hash is left behind (the runbook's DEL orphans all 300).
    r2 = platform.r(2)
    assert [r2.llen(queue_prefix + "wait"), r2.zcard(queue_prefix + "delayed"),
            r2.zcard(queue_prefix + "prioritized")] == [0, 0, 0]
    assert list(r2.scan_iter(match=queue_prefix + "ban-*", count=1000)) == []
    # Everything else: other phones' rows, keys and queues, the follow-up queue, the DLQ.
    others_after = without_keys(platform_state(platform), phone_status_key(BANNED), queue_prefix)
    assert_unchanged({k: v for k, v in others_before.items() if k != "postgres"},
                     {k: v for k, v in others_after.items() if k != "postgres"})
    assert platform.sql("SELECT id, status, status_changed_at FROM wa_phone_numbers WHERE id <> %s ORDER BY id",
                        (BANNED,)) == phones_before
    # The audit log: one row saying what was touched.
    rows = platform.audit("phone_ban")
    assert len(rows) == 1
    actor, module, _action, target, reason, before, after = rows[0]
    assert (actor, module, target, reason) == ("pytest", "wa_phone", BANNED, "INC-1234")
    assert before["status"] == "ACTIVE" and after["status"] == "BANNED" and after["redis_status"] == "BANNED"
    assert after["released"]["count"] == RELEASABLE
    assert after["cancelled"] == {"waiting": 120, "delayed": 150, "prioritized": 30, "paused": 0, "cancelled": 300}
    summary = run.result("Summary")["msg"]
    assert any("{0} lead(s)".format(RELEASABLE) in line and "released (COLD 15, CONTACTED_WA 12)" in line
               for line in summary["done"]), summary
    assert any("TimelinesAI support" in line for line in summary["next"]), summary
    assert any("phone_onboard" in line for line in summary["next"]), summary
    assert any("3 phone(s) remain ACTIVE" in line for line in summary["next"]), summary
    stats = run.stats["artifact_data"]["phone_banned"]
    assert (stats["leads_released"], stats["jobs_cancelled"], stats["changed"]) == (RELEASABLE, 300, True)

    before = platform_state(platform)
    again = platform.play("phone_banned.yml", extravars={"phone": BANNED})
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed_tasks == []
    assert_unchanged(before, platform_state(platform))
    assert again.result("Summary")["msg"]["done"][0].startswith("nothing: {0} is already BANNED".format(BANNED))


def test_ban_refuses_an_unknown_phone_and_a_missing_one(platform, ban_scenario):
    before = platform_state(platform)
    unknown = platform.play("phone_banned.yml", extravars={"phone": "phone_42", "confirm": True})
    assert unknown.rc != 0 and "phone_42" in unknown.stdout
    missing = platform.play("phone_banned.yml", extravars={"confirm": True})
    assert missing.rc != 0 and "-e phone=phone_NN" in missing.stdout
    assert_unchanged(before, platform_state(platform))


def test_tags_plan_runs_only_the_plan_even_when_confirmed(platform, ban_scenario):
    before = platform_state(platform)
    run = platform.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": "true"}, tags="plan")
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed_tasks == [] and platform_state(platform) == before
    done = run.result("Summary")["msg"]["done"]
    assert done[0].startswith("Only the plan ran (--tags)") and "released" not in " ".join(done), done
    assert "{0} lead(s) in COLD/CONTACTED_WA to release (COLD 15, CONTACTED_WA 12)".format(RELEASABLE) in " ".join(done)


def test_ban_of_a_phone_whose_queue_is_paused_cancels_every_job_and_leaves_the_queue_paused(platform, ban_scenario):
    queue_prefix = "{0}:{1}:".format(BULLMQ_PREFIX, phone_queue(BANNED))
    # An operator paused the queue (the phone misbehaved), and producers kept adding: 40 more jobs while paused.
    pause_queue(platform.redis, phone_queue(BANNED))
    add_jobs(platform.redis, phone_queue(BANNED), [("ban-x-{0}".format(i), {}) for i in range(40)])
    r2 = platform.r(2)
    assert r2.hget(queue_prefix + "meta", "paused") is not None
    others_before = without_keys(platform_state(platform), phone_status_key(BANNED), queue_prefix)

    run = platform.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": "true", "reason": "INC-77"})
    assert run.rc == 0, run.stdout[-3000:]

    assert platform.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (BANNED,)) == [("BANNED",)]
    cancelled = platform.audit("phone_ban")[0][6]["cancelled"]
    # Every pending job, the 300 and the 40 added while paused, wherever the pause put them.
    assert cancelled["cancelled"] == 340
    assert cancelled["waiting"] + cancelled["paused"] == JOBS["wait"] + 40
    assert (cancelled["delayed"], cancelled["prioritized"]) == (JOBS["delayed"], JOBS["prioritized"])
    assert [r2.llen(queue_prefix + "wait"), r2.llen(queue_prefix + "paused"), r2.zcard(queue_prefix + "delayed"),
            r2.zcard(queue_prefix + "prioritized")] == [0, 0, 0, 0]
    assert list(r2.scan_iter(match=queue_prefix + "ban-*", count=1000)) == []
    # The operator's pause stays: the ban cancels jobs, it does not resume a queue someone stopped.
    assert r2.hget(queue_prefix + "meta", "paused") is not None
    others_after = without_keys(platform_state(platform), phone_status_key(BANNED), queue_prefix)
    assert_unchanged({k: v for k, v in others_before.items() if k != "postgres"},
                     {k: v for k, v in others_after.items() if k != "postgres"})
