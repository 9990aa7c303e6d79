"""queue_depths and cancel_pending_jobs (used by wa_phone / wa_phone_info) against real Redis and a Node worker."""

from __future__ import annotations

import time

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import cancel_pending_jobs
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_depths
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import phone_queue
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.nodeworker import NodeWorker
from tests.support.producers import add_jobs, wait_for_meta_version
from tests.support.snapshots import assert_unchanged, platform_state

PHONE_Q = phone_queue("phone_07")
OTHER_Q = phone_queue("phone_08")


def test_queue_depths_reads_every_state_of_many_queues_in_one_pipeline(platform):
    r = platform.r(2)
    add_jobs(platform.redis, PHONE_Q, [("w-1", {}), ("w-2", {}), ("p-1", {"priority": 3}),
                                       ("d-1", {"delay": 3600_000})])
    add_jobs(platform.redis, OTHER_Q, [("w-1", {})])
    now_ms = int(time.time() * 1000)
    # A delayed job already due but not promoted (no worker ran): the due_delayed figure.
    r.zadd("bull:{0}:delayed".format(PHONE_Q), {"d-due": (now_ms - 5000) * 4096})
    r.hset("bull:{0}:meta".format(OTHER_Q), mapping={"paused": 1, "version": "bullmq:5.81.5"})
    calls_before = r.info("stats")["total_commands_processed"]
    depths = queue_depths(r, [PHONE_Q, OTHER_Q, "q:wa:phone_99"], now_ms=now_ms)
    calls = r.info("stats")["total_commands_processed"] - calls_before
    mine = depths[PHONE_Q]
    assert (mine["wait"], mine["prioritized"], mine["delayed"], mine["due_delayed"]) == (2, 1, 2, 1)
    assert (mine["active"], mine["completed"], mine["failed"], mine["paused"]) == (0, 0, 0, 0)
    assert mine["is_paused"] is False and mine["version"] is None and mine["exists"] is True
    assert depths[OTHER_Q]["is_paused"] is True and depths[OTHER_Q]["version"] == "bullmq:5.81.5"
    assert depths["q:wa:phone_99"]["exists"] is False and depths["q:wa:phone_99"]["wait"] == 0
    # 11 reads per queue + the INFO call itself: one pipeline, no per-queue round trips beyond its commands.
    assert calls == 3 * 11 + 1


def test_queue_depths_names_the_queue_on_a_wrong_type_key(platform):
    r = platform.r(2)
    r.set("bull:{0}:wait".format(PHONE_Q), "oops")
    with pytest.raises(CerniqError, match="wrong Redis type.*q:wa:phone_07"):
        queue_depths(r, [PHONE_Q])


def test_cancel_pending_jobs_drains_through_bullmq_and_the_node_worker_never_sees_them(platform):
    r = platform.r(2)
    # The Node side stamps meta.version first (as the platform's workers do), then stops: jobs pile up.
    with NodeWorker(platform.redis, [PHONE_Q]):
        wait_for_meta_version(r, PHONE_Q)
    add_jobs(platform.redis, PHONE_Q, [("c-1", {}), ("c-2", {}), ("c-3", {"priority": 5}),
                                       ("c-4", {"delay": 1500}), ("c-5", {"delay": 60_000})])
    expected = {"waiting": 2, "paused": 0, "prioritized": 1, "delayed": 2, "cancelled": 5}

    before = platform_state(platform)
    assert cancel_pending_jobs(platform.params, PHONE_Q, check_mode=True) == expected
    assert_unchanged(before, platform_state(platform))  # check mode wrote nothing

    assert cancel_pending_jobs(platform.params, PHONE_Q, check_mode=False) == expected
    assert not r.exists("bull:{0}:c-1".format(PHONE_Q), "bull:{0}:c-4".format(PHONE_Q))
    assert cancel_pending_jobs(platform.params, PHONE_Q, check_mode=False)["cancelled"] == 0

    add_jobs(platform.redis, PHONE_Q, [("after-ban", {})])
    with NodeWorker(platform.redis, [PHONE_Q]) as worker:
        worker.wait_completed(1)
        time.sleep(2)  # past c-4's due time: had it survived, the worker would run it now
        assert [e["id"] for e in worker.completed()] == ["after-ban"]


def test_cancel_pending_jobs_of_a_missing_queue_is_zeros(platform):
    assert cancel_pending_jobs(platform.params, "q:wa:phone_42", check_mode=False) == dict.fromkeys(
        ("waiting", "paused", "prioritized", "delayed", "cancelled"), 0)


def test_cancel_pending_jobs_refuses_a_node_v6_queue_and_changes_nothing(platform):
    r = platform.r(2)
    add_jobs(platform.redis, PHONE_Q, [("v6-1", {})])
    r.hset("bull:{0}:meta".format(PHONE_Q), "version", "bullmq:6.7.0")
    with pytest.raises(CerniqError, match=r"managed by Node BullMQ 6\.7\.0; install bullmq>=3,<4"):
        cancel_pending_jobs(platform.params, PHONE_Q, check_mode=False)
    assert r.lrange("bull:{0}:wait".format(PHONE_Q), 0, -1) == ["v6-1"]


def test_cancel_pending_jobs_records_its_audit_row_on_the_callers_trail(platform):
    from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail

    add_jobs(platform.redis, PHONE_Q, [("a-1", {}), ("a-2", {"delay": 5000})])
    conn = platform.pg.connect()
    try:
        counts = cancel_pending_jobs(platform.params, PHONE_Q, False, audit=AuditTrail(conn, "wa_phone", "pytest"),
                                     reason="phone_07 banned")
        conn.commit()
    finally:
        conn.close()
    ((actor, module, action, target, reason, before, after),) = platform.audit("bullmq_cancel_pending")
    assert (actor, module, action) == ("pytest", "wa_phone", "bullmq_cancel_pending")
    assert (target, reason) == ("bull:q:wa:phone_07:*", "phone_07 banned")
    assert after == counts and after["cancelled"] == 2 and before["delayed"] == 1
