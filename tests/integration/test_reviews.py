"""review_queue_info and review_queue against real PostgreSQL: figures, the bottleneck, assignment under concurrency."""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils import _reviews as reviews
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.playbooks import MODULE_DEFAULTS
from tests.support.seed import TENANT_ID

SMALL = dict(phones=3, leads=200, reviews=300, old_log_rows=0, jobs_per_phone=0, followups=0, dlq_entries=0)


def add_items(platform, count, priority, status=contract.REVIEW_PENDING, reason="pricing_question",
              assigned_to=None, age="1 hour", sla_in="1 hour", resolved_after=None):
    """`count` review items created `age` ago, due `sla_in` after creation; returns their ids."""
    rows = platform.sql(
        "INSERT INTO human_review_queue (tenant_id, reason, priority, status, assigned_to, assigned_at, sla_due_at, "
        "created_at, resolved_at) SELECT %s, %s, %s, %s, %s, CASE WHEN %s IS NULL THEN NULL ELSE now() END, "
        "now() - %s::interval + %s::interval, now() - %s::interval - g * interval '1 second', "
        "CASE WHEN %s IS NULL THEN NULL ELSE now() - %s::interval + %s::interval END "
        "FROM generate_series(1, %s) AS g RETURNING id",
        (str(TENANT_ID), reason, priority, status, assigned_to, assigned_to, age, sla_in, age, resolved_after, age,
         resolved_after, count))
    return sorted(r[0] for r in rows)


def queue_state(platform):
    """Everything that matters of the queue and the audit log, to prove nothing changed."""
    return (platform.sql("SELECT md5(string_agg(q::text, ',' ORDER BY id)) FROM human_review_queue AS q")[0][0],
            platform.sql("SELECT count(*) FROM ops_audit_log")[0][0])


def test_overview_figures_match_the_rows(platform):
    platform.seed(**SMALL)
    info = reviews.review_queue_overview(platform.params, window="24h", breaches_since="6h")
    rows = platform.sql("SELECT priority, status, assigned_to, created_at, sla_due_at, resolved_at, reason, id, "
                        "now() FROM human_review_queue")
    now = rows[0][8]
    window_start = datetime.fromisoformat(info["window_start"])
    since = datetime.fromisoformat(info["breaches_since"])
    depth = {}
    for priority, status, _who, created, *_rest in rows:
        if created >= window_start:
            depth[(priority, status)] = depth.get((priority, status), 0) + 1
    assert {(d["priority"], d["status"]): d["count"] for d in info["depth_window"]} == depth
    assert [d["priority"] for d in info["depth_window"]] == sorted(
        (d["priority"] for d in info["depth_window"]), key=contract.REVIEW_PRIORITIES.index)
    for priority in contract.REVIEW_PRIORITIES:
        mine = [r for r in rows if r[0] == priority]
        pending = [r for r in mine if r[1] == "PENDING"]
        entry = info["open"][priority]
        assert entry["pending"] == len(pending)
        assert entry["assigned"] == sum(1 for r in mine if r[1] == "ASSIGNED")
        assert entry["breached"] == sum(1 for r in mine if r[1] in ("PENDING", "ASSIGNED") and r[4] < now)
        oldest = min(pending, key=lambda r: (r[3], r[7]))
        assert entry["oldest_pending_id"] == oldest[7]
    assert info["unassigned_urgent"] == sum(1 for r in rows if r[0] == "URGENT" and r[1] == "PENDING")
    assert info["sla_breaches"]["open"] == sum(1 for r in rows if r[1] in ("PENDING", "ASSIGNED") and r[4] < now)
    assert info["sla_breaches"]["since"] == sum(
        1 for r in rows if since <= r[4] < now and (r[5] is None or r[5] > r[4]))
    assert sum(info["sla_breaches"]["since_by_priority"].values()) == info["sla_breaches"]["since"]
    reasons = {}
    for r in rows:
        if r[1] == "PENDING":
            reasons[r[6]] = reasons.get(r[6], 0) + 1
    assert {r["reason"]: r["count"] for r in info["reasons_pending"]} == reasons
    holders = {r[2] for r in rows if r[1] == "ASSIGNED"}
    assert {r["reviewer"]: r["assigned"] for r in info["reviewers"]} == {
        who: sum(1 for r in rows if r[1] == "ASSIGNED" and r[2] == who) for who in holders}
    assert info["changed"] is False and info["summary"]


def test_bottlenecks_are_named(platform):
    add_items(platform, 12, "URGENT", reason="negative_sentiment")
    add_items(platform, 6, "NORMAL", reason="negative_sentiment")
    add_items(platform, 12, "NORMAL", reason="pricing_question")
    add_items(platform, 30, "HIGH", status="ASSIGNED", assigned_to="ana")
    add_items(platform, 3, "HIGH", status="ASSIGNED", assigned_to="bogdan")
    info = reviews.review_queue_overview(platform.params)
    assert info["bottleneck"] == "12 URGENT item(s) pending, none assigned"
    assert "reason negative_sentiment is 60 % of pending (18 of 30)" in info["bottlenecks"]
    assert any(b.startswith("reviewer ana holds 30 assigned item(s) (91 % of assigned") for b in info["bottlenecks"])
    assert info["unassigned_urgent"] == 12


def test_quiet_queue_names_no_bottleneck(platform):
    add_items(platform, 3, "LOW")
    for who in ("ana", "bogdan", "carmen"):
        add_items(platform, 4, "HIGH", status="ASSIGNED", assigned_to=who)
    info = reviews.review_queue_overview(platform.params)
    assert info["bottleneck"] is None and info["summary"][-1] == "no bottleneck"


def test_breaches_since_counts_only_deadlines_missed_in_that_time(platform):
    add_items(platform, 2, "HIGH", age="3 hours", sla_in="1 hour")                        # open, due 2 h ago
    add_items(platform, 3, "HIGH", status="RESOLVED", age="3 hours", sla_in="1 hour",
              resolved_after="90 minutes")                                                 # resolved late
    add_items(platform, 4, "HIGH", status="RESOLVED", age="3 hours", sla_in="1 hour",
              resolved_after="30 minutes")                                                 # resolved in time
    add_items(platform, 5, "LOW", age="30 hours", sla_in="1 hour")                         # due 29 h ago, open
    info = reviews.review_queue_overview(platform.params, breaches_since="12h")
    assert info["sla_breaches"]["since"] == 5
    assert info["sla_breaches"]["open"] == 7
    assert info["sla_breaches"]["open_by_priority"] == dict(URGENT=0, HIGH=2, NORMAL=0, LOW=5)


def test_assignment_takes_the_most_urgent_pending_items_and_is_idempotent(platform):
    early = add_items(platform, 5, "URGENT", age="50 minutes", sla_in="1 hour")
    late = add_items(platform, 10, "URGENT", age="10 minutes", sla_in="1 hour")
    add_items(platform, 5, "HIGH", age="2 hours")
    before = queue_state(platform)
    preview = reviews.change_review_queue(platform.params, assign_to="ana", ensure_assigned=8, check_mode=True)
    assert queue_state(platform) == before
    assert preview["changed"] is True
    # Oldest deadline first: the 5 early items, then the 3 late ones due soonest.
    expected = early + sorted(late, key=lambda i: -i)[:3]
    assert sorted(preview["assigned_ids"]) == sorted(expected)

    done = reviews.change_review_queue(platform.params, assign_to="ana", ensure_assigned=8, reason="INC-12")
    assert done["assigned_ids"] == preview["assigned_ids"]
    assert (done["held_before"], done["held_after"], done["shortfall"]) == (0, 8, 0)
    assert done["diff"]["after"][str(expected[0])] == dict(status="ASSIGNED", assigned_to="ana")
    rows = platform.sql("SELECT id FROM human_review_queue WHERE assigned_to = 'ana' AND status = 'ASSIGNED' "
                        "AND assigned_at IS NOT NULL")
    assert sorted(r[0] for r in rows) == sorted(expected)
    (audit,) = platform.audit("review_assign")
    assert audit[0] == "pytest" and audit[1] == "review_queue" and audit[4] == "INC-12"
    assert sorted(audit[6]["ids"]) == sorted(expected) and audit[6]["count"] == 8 and audit[5]["held"] == 0

    again = reviews.change_review_queue(platform.params, assign_to="ana", ensure_assigned=8)
    assert again["changed"] is False and again["assigned_ids"] == [] and again["held_before"] == 8
    assert len(platform.audit("review_assign")) == 1

    # Ana resolved two: ensuring 8 again tops her back up with two more.
    platform.sql("UPDATE human_review_queue SET status = 'RESOLVED', resolved_at = now() WHERE id = ANY(%s)",
                 (expected[:2],))
    topped = reviews.change_review_queue(platform.params, assign_to="ana", ensure_assigned=8)
    assert len(topped["assigned_ids"]) == 2 and topped["held_after"] == 8

    # More than there is: take what is left and say how many are missing.
    rest = reviews.change_review_queue(platform.params, assign_to="bogdan", ensure_assigned=20)
    assert len(rest["assigned_ids"]) == 15 - 10 and rest["shortfall"] == 15
    assert "15 short" in rest["msg"]


def test_two_operators_at_the_same_moment_never_take_the_same_item(platform):
    available = add_items(platform, 25, "URGENT")
    other = platform.pg.connect()
    try:
        with other.cursor() as cur:
            # Operator 1's transaction has picked and locked its items but not committed yet.
            cur.execute(reviews.ASSIGN_SQL, dict(reviews.SQL_VALUES, user="ana", priority="URGENT", want=10))
            ana_ids = [item["id"] for item in cur.fetchone()[1]]
        # Operator 2 does not wait for operator 1: it skips the locked rows.
        bogdan = reviews.change_review_queue(platform.params, assign_to="bogdan", ensure_assigned=20)
        other.commit()
    finally:
        other.close()
    assert len(ana_ids) == 10 and len(bogdan["assigned_ids"]) == 15
    assert not set(ana_ids) & set(bogdan["assigned_ids"])
    assert sorted(ana_ids + bogdan["assigned_ids"]) == available
    owners = dict(platform.sql("SELECT id, assigned_to FROM human_review_queue"))
    assert all(owners[i] == "ana" for i in ana_ids) and all(owners[i] == "bogdan" for i in bogdan["assigned_ids"])


def test_many_threads_assign_disjoint_sets_within_what_is_available(platform):
    available = add_items(platform, 40, "URGENT")
    users = ["reviewer{0}".format(n) for n in range(6)]
    barrier = threading.Barrier(len(users))
    results, errors = {}, []

    def assign(user):
        try:
            barrier.wait(10)
            results[user] = reviews.change_review_queue(platform.params, assign_to=user, ensure_assigned=10)
        except Exception as exc:  # the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=assign, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    taken = [i for r in results.values() for i in r["assigned_ids"]]
    assert len(taken) == len(set(taken)) == len(available)
    assert all(len(r["assigned_ids"]) <= 10 for r in results.values())
    rows = platform.sql("SELECT assigned_to, count(*) FROM human_review_queue GROUP BY assigned_to")
    assert dict(rows) == {u: len(r["assigned_ids"]) for u, r in results.items() if r["assigned_ids"]}
    assert sum(a[6]["count"] for a in platform.audit("review_assign")) == 40


def test_same_reviewer_twice_at_once_still_holds_only_what_was_asked(platform):
    add_items(platform, 30, "URGENT")
    other = platform.pg.connect()
    outcome = {}
    try:
        with other.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        ("cerniq.outreach.review_queue:ana:URGENT",))
            cur.execute(reviews.ASSIGN_SQL, dict(reviews.SQL_VALUES, user="ana", priority="URGENT", want=10))
        second = threading.Thread(target=lambda: outcome.update(
            reviews.change_review_queue(platform.params, assign_to="ana", ensure_assigned=10)))
        second.start()
        second.join(1.0)
        assert second.is_alive(), "the second run should wait for the first one's advisory lock"
        other.commit()
        second.join(10)
    finally:
        other.close()
    assert outcome["held_before"] == 10 and outcome["assigned_ids"] == [] and outcome["changed"] is False
    assert platform.sql("SELECT count(*) FROM human_review_queue WHERE assigned_to = 'ana'")[0][0] == 10


def test_auto_approve_only_old_pending_low_items(platform):
    old_low = add_items(platform, 4, "LOW", age="3 days")
    add_items(platform, 3, "LOW", age="1 hour")
    add_items(platform, 2, "HIGH", age="3 days")
    add_items(platform, 2, "LOW", status="ASSIGNED", assigned_to="ana", age="3 days")
    before = queue_state(platform)
    preview = reviews.change_review_queue(platform.params, auto_approve=True, older_than="48h", check_mode=True)
    assert queue_state(platform) == before and preview["auto_approved_ids"] == old_low and preview["changed"]

    done = reviews.change_review_queue(platform.params, auto_approve=True, older_than="48h", reason="backlog")
    assert done["auto_approved_ids"] == old_low
    rows = platform.sql("SELECT id FROM human_review_queue WHERE status = 'AUTO_APPROVED' AND resolved_at IS NOT NULL")
    assert sorted(r[0] for r in rows) == old_low
    (audit,) = platform.audit("review_auto_approve")
    assert audit[6]["ids"] == old_low and audit[4] == "backlog"
    again = reviews.change_review_queue(platform.params, auto_approve=True, older_than="48h")
    assert again["changed"] is False and again["auto_approved_ids"] == []


@pytest.mark.parametrize("options, message", [
    (dict(assign_to="  ", ensure_assigned=5), "assign_to is empty"),
    (dict(assign_to="ana", ensure_assigned=-1), "ensure_assigned must be a non-negative integer, got -1"),
    (dict(assign_to="ana"), "go together"),
    (dict(assign_to="ana", ensure_assigned=3, priority="CRITICAL"), "priority 'CRITICAL' is unknown"),
    (dict(auto_approve=True), "auto_approve needs older_than"),
    (dict(auto_approve=True, older_than="2999-01-01T00:00"), "is in the future"),
    (dict(auto_approve=True, older_than="-2h"), "is not a duration"),
    (dict(older_than="48h"), "applies only with auto_approve"),
    (dict(), "nothing to do"),
])
def test_bad_input_is_one_clear_error_and_changes_nothing(platform, options, message):
    add_items(platform, 5, "URGENT")
    add_items(platform, 5, "LOW", age="5 days")
    before = queue_state(platform)
    with pytest.raises(CerniqError, match=message):
        reviews.change_review_queue(platform.params, **options)
    assert queue_state(platform) == before


def test_modules_through_ansible_with_check_and_diff(platform, tmp_path):
    add_items(platform, 12, "URGENT")
    playbook = tmp_path / "reviews.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Review queue", "hosts": "db", "gather_facts": False,
        "module_defaults": MODULE_DEFAULTS,
        "roles": [{"role": "cerniq.outreach.platform"}],
        "tasks": [
            {"name": "Read with a moment in words", "ignore_errors": True,
             "cerniq.outreach.review_queue_info": {"breaches_since": "overnight"}},
            {"name": "Read the queue again", "cerniq.outreach.review_queue_info": {}, "register": "info"},
            {"name": "Assign", "cerniq.outreach.review_queue": {"assign_to": "ana", "ensure_assigned": 5,
                                                                "confirmed": True}},
        ]}]))
    run = platform.play(str(playbook), check=True, diff=True)
    assert run.rc == 0, run.stdout
    assert "breaches_since 'overnight' is not a duration" in run.result("Read with a moment in words")["msg"]
    assert run.result("Read the queue again")["bottleneck"] == "12 URGENT item(s) pending, none assigned"
    assign = run.result("Assign")
    assert assign["changed"] is True and len(assign["assigned_ids"]) == 5 and "diff" in assign
    assert platform.sql("SELECT count(*) FROM human_review_queue WHERE status = 'PENDING'")[0][0] == 12
    assert platform.audit() == []
    run = platform.play(str(playbook))
    assert run.rc == 0 and run.result("Assign")["changed"] is True
    run = platform.play(str(playbook))
    assert run.rc == 0 and run.result("Assign")["changed"] is False
    assert platform.pg.password not in run.stdout


def test_connection_loss_is_one_clear_line(platform):
    params = dict(platform.params, db_port=1)
    with pytest.raises(CerniqError, match="cannot reach PostgreSQL at 127.0.0.1:1"):
        reviews.change_review_queue(params, assign_to="ana", ensure_assigned=1)
