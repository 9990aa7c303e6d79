"""Rescheduling pending follow-ups (runbook 6.2 step 4) against real Redis, PostgreSQL and a Node BullMQ worker."""

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._followups import FollowupRequest, reschedule_followups
from ansible_collections.cerniq.outreach.plugins.module_utils._stats import outreach_stats
from tests.support.nodeworker import NodeWorker
from tests.support.services import module_params
from tests.support.snapshots import assert_unchanged, platform_state

FOLLOWUP = contract.QUEUE_FOLLOWUP
DELAYED_KEY = "bull:{0}:delayed".format(FOLLOWUP)


def add_leads(platform, due_offsets, paused=()):
    """Leads due at now + offset seconds (negative: already past), some paused; returns their ids in order."""
    now = datetime.now(timezone.utc)
    ids = [uuid.uuid4() for _offset in due_offsets]
    platform.sql("INSERT INTO wa_phone_numbers (id, tenant_id, phone_number, phone_label) VALUES "
                 "('phone_01', %s, '+40700000001', 'Sales 01') ON CONFLICT DO NOTHING", (str(uuid.uuid4()),))
    platform.sql("INSERT INTO gold_lead_journey (lead_id, tenant_id, engagement_stage, next_action_at, "
                 "sequence_paused) SELECT lead, %s, 'COLD', due, paused "
                 "FROM unnest(%s::uuid[], %s::timestamptz[], %s::bool[]) AS t(lead, due, paused)",
                 (str(uuid.uuid4()), [str(i) for i in ids], [now + timedelta(seconds=o) for o in due_offsets],
                  [index in paused for index in range(len(ids))]))
    return ids


def test_every_pending_followup_gets_exactly_one_delayed_job(platform):
    ids = add_leads(platform, [3600, 7200, -60, 86400, 5000], paused={3})
    result = reschedule_followups(platform.params)
    # Due in the future and not paused: leads 0, 1 and 4.
    assert result["followups"] == dict(pending=3, added=3, existing=0, present=3)
    assert result["verified"] is True and result["changed"] is True
    bullmq = platform.r(2)
    assert bullmq.zcard(DELAYED_KEY) == 3
    job_ids = set(bullmq.zrange(DELAYED_KEY, 0, -1))
    assert {contract.followup_job_id(lead_id, due) for lead_id, due in platform.sql(
        "SELECT lead_id::text, floor(extract(epoch FROM next_action_at) * 1000)::bigint FROM gold_lead_journey "
        "WHERE lead_id = ANY(%s::uuid[])", ([str(ids[i]) for i in (0, 1, 4)],))} == job_ids
    # The due time is the lead's next_action_at: score >> 12 is the due millisecond.
    due_ms = {int(score) >> 12 for _member, score in bullmq.zrange(DELAYED_KEY, 0, -1, withscores=True)}
    expected = {int(row[0].timestamp() * 1000) for row in platform.sql(
        "SELECT next_action_at FROM gold_lead_journey WHERE next_action_at > now() AND NOT sequence_paused")}
    assert due_ms == expected
    audit = platform.audit("followup_reschedule")
    assert len(audit) == 1 and audit[0][6]["added"] == 3


def test_second_run_adds_nothing(platform):
    add_leads(platform, [600 + i for i in range(25)])
    first = reschedule_followups(platform.params, FollowupRequest(chunk_size=7))
    second = reschedule_followups(platform.params, FollowupRequest(chunk_size=7))
    assert first["followups"]["added"] == 25
    assert second["changed"] is False and second["followups"] == dict(pending=25, added=0, existing=25, present=25)
    assert platform.r(2).zcard(DELAYED_KEY) == 25
    assert len(platform.audit("followup_reschedule")) == 1


def test_check_mode_counts_without_writing(platform):
    add_leads(platform, [900, 1800])
    before = platform_state(platform)
    result = reschedule_followups(platform.params, check_mode=True)
    assert result["changed"] is True and result["followups"]["added"] == 2 and result["verified"] is True
    assert_unchanged(before, platform_state(platform))


def test_chunk_size_over_1000_is_refused(platform):
    with pytest.raises(CerniqError, match="chunk_size 5000 must be between 1 and 1000"):
        reschedule_followups(platform.params, FollowupRequest(chunk_size=5000))


def test_a_node_worker_processes_the_rescheduled_followups_when_due(platform):
    ids = add_leads(platform, [2, 3])
    reschedule_followups(platform.params)
    with NodeWorker(platform.redis, [FOLLOWUP], db=2, timeout=30) as worker:
        done = worker.wait_completed(2, timeout=20)
    assert sorted(job["data"]["leadId"] for job in done) == sorted(str(i) for i in ids)
    assert all(job["processedOn"] >= job["data"]["dueAt"] for job in done)


def test_redis_killed_midway_fails_clearly_and_a_rerun_completes(platform, private_redis):
    params = module_params(private_redis, platform.pg)
    add_leads(platform, [3600 + i for i in range(3000)])
    private_redis.kill()
    with pytest.raises(CerniqError, match="cannot reach Redis at 127.0.0.1:{0}".format(private_redis.port)):
        reschedule_followups(params)
    private_redis.start()
    first = reschedule_followups(params)
    second = reschedule_followups(params)
    assert first["followups"]["present"] == 3000 and second["followups"]["added"] == 0
    assert private_redis.client(2).zcard(DELAYED_KEY) == 3000


def test_the_pending_followups_figure_counts_what_the_reschedule_schedules(platform):
    add_leads(platform, [-60, 900, 1800, 2700, 3600], paused=(3,))
    figure = outreach_stats(platform.params, figures=["pending_followups"])["pending_followups"]
    result = reschedule_followups(platform.params, check_mode=True)
    assert figure["leads"] == result["followups"]["pending"] == 3  # not the past one, not the paused one
    assert figure["next_due"] < figure["last_due"]
