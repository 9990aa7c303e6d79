"""review_sla.yml (runbook 5.1) for real: depth, bottleneck, emergency assignment and auto-approve, with exact end
states and the audit log."""

from __future__ import annotations

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    PRIORITY_LOW,
    PRIORITY_URGENT,
    REVIEW_ASSIGNED,
    REVIEW_AUTO_APPROVED,
    REVIEW_PENDING,
    TABLE_REVIEWS,
)
from tests.support.seed import TENANT_ID
from tests.support.snapshots import assert_unchanged, platform_state

# (priority, status, assigned_to, created hours ago, SLA due in hours (negative: past), how many)
ITEMS = [
    (PRIORITY_URGENT, REVIEW_PENDING, None, 5, -4, 9),     # breached
    (PRIORITY_URGENT, REVIEW_PENDING, None, 0.5, 0.5, 5),  # due soon
    (PRIORITY_URGENT, REVIEW_ASSIGNED, "ana", 3, -2, 2),
    ("HIGH", REVIEW_PENDING, None, 2, 2, 5),
    ("NORMAL", REVIEW_PENDING, None, 2, 10, 6),
    (PRIORITY_LOW, REVIEW_PENDING, None, 72, -48, 8),      # old enough to auto-approve
    (PRIORITY_LOW, REVIEW_PENDING, None, 1, 23, 4),        # too young
    ("NORMAL", "RESOLVED", "ana", 20, -8, 3),
]


@pytest.fixture()
def review_scenario(platform):
    platform.seed(phones=2, leads=20, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, offline=(),
                  banned=(), drift_phone="", leak_phone="", no_ttl_phone="")
    for priority, status, user, age_h, due_h, count in ITEMS:
        platform.sql(
            "INSERT INTO " + TABLE_REVIEWS + " (tenant_id, reason, priority, status, assigned_to, assigned_at, "
            "sla_due_at, created_at, resolved_at) SELECT %(tenant)s, 'negative_sentiment', %(priority)s, %(status)s, "
            "%(user)s, CASE WHEN %(user)s::text IS NULL THEN NULL ELSE now() END, "
            "now() + make_interval(secs => %(due)s * 3600 + g), now() - make_interval(secs => %(age)s * 3600 - g), "
            "CASE WHEN %(status)s = 'RESOLVED' THEN now() END FROM generate_series(1, %(count)s) AS g",
            dict(tenant=str(TENANT_ID), priority=priority, status=status, user=user, age=age_h, due=due_h,
                 count=count))


def test_read_only_run_names_the_bottleneck_and_changes_nothing(platform, review_scenario):
    before = platform_state(platform)
    run = platform.play("review_sla.yml")
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed_tasks == []
    depth = run.result("Show the depth")["msg"]
    assert depth[0].startswith("37 pending, 2 assigned"), depth
    assert "14 URGENT item(s) pending, 2 assigned" in depth
    assert "created in the last 24h: URGENT PENDING 14" in depth
    next_steps = run.result("Summary")["msg"]["next"]
    assert any("Assign the 14 unassigned URGENT item(s)" in line for line in next_steps), next_steps
    assert run.stats["artifact_data"]["review_sla"]["pending"] == 37
    assert platform_state(platform) == before and platform.audit() == []


def test_plan_check_mode_and_refusal_change_nothing(platform, review_scenario):
    before = platform_state(platform)
    extravars = {"assign_to": "bob", "review_sla_assign_count": "10", "auto_approve": "true"}
    checked = platform.play("review_sla.yml", extravars=extravars, check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    plan = checked.result("What this run will change")["msg"]
    assert plan == ["bob holds 10 open URGENT item(s) (wanted 10): 10 newly assigned",
                    plan[1]] and plan[1].startswith("8 pending LOW item(s) created before"), plan
    refused = platform.play("review_sla.yml", extravars=extravars)
    assert refused.rc != 0 and "Nothing was changed" in refused.stdout
    assert platform_state(platform) == before and platform.audit() == []


def test_assignment_and_auto_approve_exact_end_state_audited_and_idempotent(platform, review_scenario):
    pending_urgent = platform.sql("SELECT id FROM " + TABLE_REVIEWS + " WHERE priority = 'URGENT' AND status = "
                                  "'PENDING' ORDER BY sla_due_at, created_at, id")
    expected_assigned = [row[0] for row in pending_urgent[:10]]
    old_low = [row[0] for row in platform.sql("SELECT id FROM " + TABLE_REVIEWS + " WHERE priority = 'LOW' AND "
                                              "created_at < now() - interval '48 hours' ORDER BY id")]
    extravars = {"assign_to": "bob", "review_sla_assign_count": "10", "auto_approve": "true", "confirm": "true",
                 "reason": "INC-77"}

    run = platform.play("review_sla.yml", extravars=extravars)
    assert run.rc == 0, run.stdout[-3000:]
    held = platform.sql("SELECT id FROM " + TABLE_REVIEWS + " WHERE assigned_to = 'bob' AND status = %s "
                        "ORDER BY id", (REVIEW_ASSIGNED,))
    assert [row[0] for row in held] == sorted(expected_assigned)
    approved = platform.sql("SELECT id FROM " + TABLE_REVIEWS + " WHERE status = %s ORDER BY id",
                            (REVIEW_AUTO_APPROVED,))
    assert [row[0] for row in approved] == old_low and len(old_low) == 8
    assert platform.sql("SELECT count(*) FROM " + TABLE_REVIEWS + " WHERE priority = 'LOW' AND status = 'PENDING'"
                        ) == [(4,)]
    assign_rows = platform.audit("review_assign")
    approve_rows = platform.audit("review_auto_approve")
    assert len(assign_rows) == 1 and sorted(assign_rows[0][6]["ids"]) == sorted(expected_assigned)
    assert assign_rows[0][4] == "INC-77" and assign_rows[0][0] == "pytest"
    assert len(approve_rows) == 1 and approve_rows[0][6]["ids"] == old_low
    stats = run.stats["artifact_data"]["review_sla"]
    assert (stats["newly_assigned"], stats["auto_approved"]) == (10, 8)

    before = platform_state(platform)
    again = platform.play("review_sla.yml", extravars=extravars)
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed_tasks == []
    assert_unchanged(before, platform_state(platform))


def test_survey_strings_false_leave_the_queue_alone(platform, review_scenario):
    before = platform_state(platform)
    run = platform.play("review_sla.yml", extravars={"auto_approve": "false", "review_sla_assign_count": "6399",
                                                     "confirm": "false"})
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed_tasks == [] and platform_state(platform) == before


def test_tags_depth_only_reads(platform, review_scenario):
    before = platform_state(platform)
    run = platform.play("review_sla.yml", extravars={"assign_to": "bob", "auto_approve": "true", "confirm": "true"},
                        tags="depth")
    assert run.rc == 0, run.stdout[-3000:]
    assert run.changed_tasks == [] and platform_state(platform) == before and platform.audit() == []
    assert run.result("Summary")["msg"]["done"][-1] == "no change to the queue"
