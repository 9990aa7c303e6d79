"""wa_phone / wa_phone_info cores against real Redis, PostgreSQL and a Node BullMQ worker."""

from __future__ import annotations

import time
import uuid

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils import _phones as phones
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._phones import PhoneRequest
from tests.support.nodeworker import NodeWorker
from tests.support.producers import add_jobs
from tests.support.seed import TENANT_ID
from tests.support.snapshots import platform_state

TZ = contract.DEFAULT_TIMEZONE
OTHER_TENANT = "0d7c7a52-7a51-4c1d-9d0e-5a1e00000002"
NEW_PHONE = dict(phone_number="+40700000777", tenant_id=str(TENANT_ID), label="Sales 77",
                 timelinesai_account_id="40700000777@s.whatsapp.net", daily_quota_limit=180)


def today():
    return contract.business_day(TZ)


def neighbour_queue(platform):
    """Every key of phone_03's queue, DUMPed."""
    return {k: v for k, v in platform_state(platform)["redis2"].items() if k.startswith(b"bull:q:wa:phone_03:")}


def phone_row(platform, phone_id):
    rows = platform.sql("SELECT status, status_changed_at, phone_label, daily_quota_limit, tenant_id::text "
                        "FROM wa_phone_numbers WHERE id = %s", (phone_id,))
    return rows[0] if rows else None


@pytest.fixture()
def small(platform):
    return platform.seed(phones=6, leads=0, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0,
                         offline=("phone_05",), banned=("phone_06",), drift_phone="phone_05",
                         leak_phone="phone_02", no_ttl_phone="phone_03", stale_yesterday_keys=False)


def add_leads(platform, phone_id, stages, count):
    """`count` leads of `phone_id`, their stages cycling through `stages`; returns {lead_id: stage}."""
    leads = {str(uuid.uuid4()): stages[i % len(stages)] for i in range(count)}
    platform.sql("INSERT INTO gold_lead_journey (lead_id, tenant_id, engagement_stage, assigned_phone_id, "
                 "assigned_at) SELECT l.id::uuid, %s, l.stage, %s, now() - interval '1 day' "
                 "FROM unnest(%s::text[], %s::text[]) AS l(id, stage)",
                 (str(TENANT_ID), phone_id, list(leads), list(leads.values())))
    return leads


# --- onboarding ---------------------------------------------------------------------------------------------------

def test_onboard_takes_the_next_id_sets_redis_and_is_idempotent(platform, small):
    r = platform.r()
    result = phones.ensure_phone(platform.params, PhoneRequest(**NEW_PHONE, reason="new SIM"), want_diff=True)
    assert result["changed"] is True and result["created"] is True and result["phone_id"] == "phone_07"
    assert result["phone"]["status"] == "ACTIVE" and result["phone"]["daily_quota_limit"] == 180
    assert result["diff"]["before"] == {} and result["diff"]["after"]["phone_label"] == "Sales 77"
    assert r.get("phone:status:phone_07") == "ACTIVE"
    counter = contract.quota_key("phone_07", today())
    assert r.get(counter) == "0" and r.expiretime(counter) == contract.quota_key_expire_at(today(), TZ)
    (audit,) = platform.audit("phone_onboard")
    assert audit[3] == "phone_07" and audit[4] == "new SIM" and audit[6]["phone_number"] == "+40700000777"

    again = phones.ensure_phone(platform.params, PhoneRequest(**NEW_PHONE))
    assert again["changed"] is False and again["phone_id"] == "phone_07" and again["changes"] == []
    assert len(platform.audit()) == 1


def test_onboard_with_an_explicit_id_never_resets_an_existing_counter(platform, small):
    r = platform.r()
    counter = contract.quota_key("phone_42", today())
    r.set(counter, 37)  # a worker already counted (INCR on a missing key: no TTL)
    result = phones.ensure_phone(platform.params, PhoneRequest(**NEW_PHONE, phone_id="phone_42"))
    assert result["phone_id"] == "phone_42" and result["quota_key_created"] is False
    assert r.get(counter) == "37"


def test_onboard_check_mode_predicts_the_id_and_writes_nothing(platform, small):
    before = platform_state(platform)
    preview = phones.ensure_phone(platform.params, PhoneRequest(**NEW_PHONE), check_mode=True)
    assert preview["changed"] is True and preview["phone_id"] == "phone_07" and preview["quota_key_created"]
    assert platform_state(platform) == before


def test_update_changes_only_what_differs_and_the_diff_names_it(platform, small):
    result = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", label="Sales 02 (night)",
                                                               daily_quota_limit=250, tenant_id=str(TENANT_ID)),
                                 want_diff=True)
    assert result["changed"] is True and result["changes"] == ["daily_quota_limit", "phone_label"]
    assert result["diff"]["before"]["phone_label"] == "Sales 02" and result["diff"]["after"]["daily_quota_limit"] == 250
    assert phone_row(platform, "phone_02")[2:4] == ("Sales 02 (night)", 250)
    (audit,) = platform.audit("phone_update")
    assert audit[5]["daily_quota_limit"] == 200 and audit[6]["daily_quota_limit"] == 250
    assert phones.ensure_phone(platform.params, PhoneRequest(phone_number="+40700000002", label="Sales 02 (night)"))[
        "changed"] is False


def test_present_repairs_a_drifted_redis_status(platform, small):
    r = platform.r()
    assert r.get("phone:status:phone_05") == "ACTIVE"  # the seeded drift: DB says OFFLINE
    result = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_05"))
    assert result["changed"] is True and result["changes"] == ["redis_status"]
    assert r.get("phone:status:phone_05") == "OFFLINE"


# --- status -----------------------------------------------------------------------------------------------------

def test_status_change_updates_db_and_redis_and_stamps_only_a_real_change(platform, small):
    r = platform.r()
    stamp_before = phone_row(platform, "phone_01")[1]
    result = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_01", status="OFFLINE"))
    assert result["changed"] is True and result["status_changed"] is True
    status, stamp = phone_row(platform, "phone_01")[:2]
    assert status == "OFFLINE" and stamp > stamp_before and r.get("phone:status:phone_01") == "OFFLINE"
    assert len(platform.audit("phone_status")) == 1

    assert phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_01", status="OFFLINE"))["changed"] is False
    phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_01", status="OFFLINE", label="Renamed"))
    assert phone_row(platform, "phone_01")[1] == stamp  # a label change is not a status change


def test_redis_refusing_the_write_rolls_the_database_back(platform, small):
    """A Redis user that may read but not write: the DB change is rolled back, nothing is half-done."""
    r = platform.r()
    r.acl_setuser("reader", enabled=True, passwords=["+reader-pw"], keys=["*"],
                  commands=["+@read", "+ping", "+client", "+multi", "+exec", "+discard"])
    try:
        params = dict(platform.params, redis_username="reader", redis_password="reader-pw")
        before = platform_state(platform)
        with pytest.raises(CerniqError, match="NOPERM|no permissions"):
            phones.ensure_phone(params, PhoneRequest(phone_id="phone_01", status="OFFLINE"))
        assert platform_state(platform) == before and phone_row(platform, "phone_01")[0] == "ACTIVE"
    finally:
        r.acl_deluser("reader")


# --- bad input --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "message"), [
    (dict(NEW_PHONE, phone_number="0740123456"), "is not E.164"),
    (dict(NEW_PHONE, phone_number="+4070000077a"), "is not E.164"),
    (dict(phone_id="phone_42", status="OFFLINE"), "unknown phone phone_42.*give phone_number, tenant_id, label"),
    (dict(phone_number="+40799999999", status="BANNED"), "unknown phone \\+40799999999"),
    (dict(phone_id="phone_01", tenant_id=OTHER_TENANT, label="x"), "tenant mismatch: phone_01 belongs to tenant"),
    (dict(NEW_PHONE, daily_quota_limit=-5), "daily_quota_limit must be a non-negative integer, got -5"),
    (dict(NEW_PHONE, daily_quota_limit="12.5"), "daily_quota_limit must be a non-negative integer, got '12.5'"),
    (dict(NEW_PHONE, daily_quota_limit="many"), "daily_quota_limit must be a non-negative integer"),
    (dict(NEW_PHONE, tenant_id="acme"), "tenant_id 'acme' is not a UUID"),
    (dict(NEW_PHONE, label="  "), "label must not be empty"),
    (dict(NEW_PHONE, timelinesai_account_id="40711111111@s.whatsapp.net"), "belongs to \\+40711111111"),
    (dict(NEW_PHONE, phone_id="phone_7"), "not of the form phone_NN"),
    (dict(phone_id="phone_01", phone_number="+40700000002"), "\\+40700000002 belongs to phone_02"),
    (dict(phone_id="phone_01", status="PAUSED"), "status 'PAUSED' is not one of"),
    (dict(label="x"), "give phone_id .* or phone_number"),
])
def test_bad_input_is_one_clear_error_and_changes_nothing(platform, small, options, message):
    before = platform_state(platform)
    with pytest.raises(CerniqError, match=message):
        phones.ensure_phone(platform.params, PhoneRequest(**options))
    assert platform_state(platform) == before


def test_a_wrong_typed_status_key_is_named_and_nothing_changes(platform, small):
    r = platform.r()
    r.delete("phone:status:phone_02")
    r.hset("phone:status:phone_02", "status", "ACTIVE")
    before = platform_state(platform)
    with pytest.raises(CerniqError, match="phone:status:phone_02 is not a string"):
        phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", status="OFFLINE"))
    assert platform_state(platform) == before


# --- ban --------------------------------------------------------------------------------------------------------

def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_ban_releases_the_right_leads_and_cancels_only_pending_jobs(platform, small):
    r0, r2 = platform.r(0), platform.r(2)
    banned_q, other_q = contract.phone_queue("phone_02"), contract.phone_queue("phone_03")
    leads = add_leads(platform, "phone_02", contract.ENGAGEMENT_STAGES, 50)
    others = add_leads(platform, "phone_03", ("COLD", "CONTACTED_WA"), 10)
    releasable = sorted(lead for lead, stage in leads.items() if stage in contract.RELEASABLE_STAGES)
    add_jobs(platform.redis, banned_q, [("wa-{0}".format(i), {}) for i in range(150)] +
             [("wa-d{0}".format(i), {"delay": 3600_000 + i}) for i in range(150)])
    add_jobs(platform.redis, other_q, [("wa-o{0}".format(i), {}) for i in range(5)] + [("wa-od", {"delay": 3600_000})])
    other_queue_before = neighbour_queue(platform)
    other_leads_before = platform.sql("SELECT lead_id::text, assigned_phone_id, assigned_at FROM gold_lead_journey "
                                      "WHERE assigned_phone_id <> 'phone_02' ORDER BY lead_id")
    later_stage_before = platform.sql("SELECT lead_id::text, assigned_phone_id, assigned_at FROM gold_lead_journey "
                                      "WHERE assigned_phone_id = 'phone_02' AND engagement_stage NOT IN "
                                      "('COLD', 'CONTACTED_WA') ORDER BY lead_id")

    with NodeWorker(platform.redis, [banned_q], work_ms=6000) as worker:
        wait_until(lambda: r2.llen("bull:{0}:active".format(banned_q)) == 1, 15, "the worker to take a job")
        active_id = r2.lrange("bull:{0}:active".format(banned_q), 0, -1)[0]

        result = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", status="BANNED",
                                                                   reason="TimelinesAI 403 blocked"), want_diff=True)

        assert result["changed"] is True and result["phone"]["status"] == "BANNED"
        assert result["released"]["count"] == len(releasable) == 18
        assert result["released"]["lead_ids"] == releasable and result["released"]["truncated"] is False
        assert result["cancelled"] == dict(waiting=149, paused=0, prioritized=0, delayed=150, cancelled=299)
        assert result["diff"]["after"]["released_leads"] == 18 and result["diff"]["after"]["cancelled_jobs"] == 299
        # The active job is still being processed; nothing pending is left.
        assert r2.lrange("bull:{0}:active".format(banned_q), 0, -1) == [active_id]
        assert r2.llen("bull:{0}:wait".format(banned_q)) == 0 and r2.zcard("bull:{0}:delayed".format(banned_q)) == 0
        assert not r2.exists("bull:{0}:wa-d7".format(banned_q))
        assert r2.exists("bull:{0}:{1}".format(banned_q, active_id))
        # The active job runs to completion, and no cancelled job ever runs.
        worker.wait_completed(1, timeout=20)
        time.sleep(0.5)
        assert [e["id"] for e in worker.completed()] == [active_id]

    assert r0.get("phone:status:phone_02") == "BANNED" and phone_row(platform, "phone_02")[0] == "BANNED"
    assert platform.sql("SELECT count(*) FROM gold_lead_journey WHERE lead_id = ANY(%s::uuid[]) "
                        "AND assigned_phone_id IS NULL AND assigned_at IS NULL", (releasable,))[0][0] == 18
    assert platform.sql("SELECT lead_id::text, assigned_phone_id, assigned_at FROM gold_lead_journey "
                        "WHERE assigned_phone_id = 'phone_02' AND engagement_stage NOT IN "
                        "('COLD', 'CONTACTED_WA') ORDER BY lead_id") == later_stage_before
    assert platform.sql("SELECT lead_id::text, assigned_phone_id, assigned_at FROM gold_lead_journey "
                        "WHERE assigned_phone_id <> 'phone_02' ORDER BY lead_id") == other_leads_before
    assert len(others) == 10
    assert neighbour_queue(platform) == other_queue_before
    assert [r0.get("phone:status:phone_{0:02d}".format(n)) for n in (1, 3, 4)] == ["ACTIVE"] * 3

    (audit,) = platform.audit()
    actor, module, action, target, reason, before, after_row = audit
    assert (actor, module, action, target, reason) == ("pytest", "wa_phone", "phone_ban", "phone_02",
                                                       "TimelinesAI 403 blocked")
    assert before["status"] == "ACTIVE" and before["redis_status"] == "ACTIVE"
    assert after_row["status"] == "BANNED" and after_row["released"]["count"] == 18
    assert sorted(after_row["released"]["lead_ids"]) == releasable and after_row["cancelled"]["cancelled"] == 299

    again = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", status="BANNED"))
    assert again["changed"] is False and again["released"]["count"] == 0 and again["cancelled"]["cancelled"] == 0
    assert len(platform.audit()) == 1


def test_ban_check_mode_reports_the_same_counts_and_writes_nothing(platform, small):
    queue = contract.phone_queue("phone_02")
    add_leads(platform, "phone_02", contract.ENGAGEMENT_STAGES, 12)
    add_jobs(platform.redis, queue, [("wa-{0}".format(i), {}) for i in range(7)] + [("wa-d", {"delay": 60_000})])
    before = platform_state(platform)
    preview = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", status="BANNED", lead_ids_cap=2),
                                  check_mode=True, want_diff=True)
    assert platform_state(platform) == before
    done = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", status="BANNED", lead_ids_cap=2))
    assert preview["changed"] is done["changed"] is True
    assert preview["released"] == done["released"] and done["released"]["count"] == 4
    assert len(done["released"]["lead_ids"]) == 2 and done["released"]["truncated"] is True
    assert preview["cancelled"] == done["cancelled"] and done["cancelled"]["cancelled"] == 8
    assert preview["diff"]["after"]["released_leads"] == 4 and preview["diff"]["after"]["cancelled_jobs"] == 8
    assert preview["diff"]["before"]["status"] == "ACTIVE" and preview["diff"]["after"]["status"] == "BANNED"


def test_ban_with_both_switches_off_only_changes_the_status(platform, small):
    queue = contract.phone_queue("phone_02")
    add_leads(platform, "phone_02", ("COLD",), 3)
    add_jobs(platform.redis, queue, [("wa-1", {})])
    result = phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", status="BANNED",
                                                               release_leads=False, cancel_jobs=False))
    assert result["released"] is None and result["cancelled"] is None
    assert platform.sql("SELECT count(*) FROM gold_lead_journey WHERE assigned_phone_id = 'phone_02'")[0][0] == 3
    assert platform.r(2).llen("bull:{0}:wait".format(queue)) == 1


def test_a_refused_cancel_undoes_redis_and_rolls_back_the_ban(platform, small):
    """BullMQ refuses (queue run by Node v6): the status, the leads and Redis stay as they were."""
    queue = contract.phone_queue("phone_02")
    add_leads(platform, "phone_02", ("COLD",), 3)
    add_jobs(platform.redis, queue, [("wa-1", {})])
    platform.r(2).hset("bull:{0}:meta".format(queue), "version", "bullmq:6.7.0")
    before = platform_state(platform)
    with pytest.raises(CerniqError, match="managed by Node BullMQ 6.7.0"):
        phones.ensure_phone(platform.params, PhoneRequest(phone_id="phone_02", status="BANNED"))
    assert platform_state(platform) == before
    assert platform.r(2).llen("bull:{0}:wait".format(queue)) == 1


# --- wa_phone_info ----------------------------------------------------------------------------------------------

def test_info_reports_status_drift_quota_and_queues_in_one_query_and_pipelines(platform):
    facts = platform.seed(phones=8, leads=100, old_log_rows=0, reviews=0, jobs_per_phone=6, dlq_entries=0,
                          offline=("phone_07",), banned=("phone_08",), drift_phone="phone_07",
                          leak_phone="phone_02", no_ttl_phone="phone_03", stale_yesterday_keys=False)
    r0, r2 = platform.r(0), platform.r(2)
    r0.delete("phone:status:phone_04")
    r0.config_resetstat()
    r2.config_resetstat()
    info = phones.phones_info(platform.params, quota_warn_percent=50)
    by_id = {p["id"]: p for p in info["phones"]}
    assert list(by_id) == ["phone_{0:02d}".format(n) for n in range(1, 9)]
    assert by_id["phone_07"]["status"] == "OFFLINE" and by_id["phone_07"]["redis_status"] == "ACTIVE"
    assert by_id["phone_07"]["drift"] is True and by_id["phone_07"]["drift_reason"] == "differs"
    assert by_id["phone_04"]["drift_reason"] == "missing"
    assert by_id["phone_01"]["drift"] is False
    assert by_id["phone_01"]["quota"]["value"] == facts["wa_counts"]["phone_01"]
    assert by_id["phone_01"]["quota"]["limit"] == 200
    assert by_id["phone_01"]["queue"]["wait"] == 2 and by_id["phone_01"]["queue"]["delayed"] == 4
    assert by_id["phone_01"]["queue"]["pending"] == 6 and by_id["phone_08"]["queue"]["exists"] is False
    summary = info["summary"]
    assert summary["by_status"] == {"ACTIVE": 6, "OFFLINE": 1, "BANNED": 1}
    assert summary["drifted"] == ["phone_04", "phone_07"] and summary["quota_without_ttl"] == ["phone_03"]
    over = sorted(p for p, n in facts["wa_counts"].items() if n + (15 if p == "phone_02" else 0) >= 100)
    assert summary["over_quota_percent"] == over
    assert summary["pending_jobs"] == 36
    # The platform db: one script call reads every status and counter (its GETs run inside Redis); the BullMQ db:
    # one pipeline, each per-queue read once per queue.
    stats0, stats2 = r0.info("commandstats"), r2.info("commandstats")
    assert stats0["cmdstat_evalsha"]["calls"] + stats0.get("cmdstat_eval", {}).get("calls", 0) <= 2
    assert stats0["cmdstat_type"]["calls"] == 16 and stats0["cmdstat_ttl"]["calls"] == 16
    assert stats2["cmdstat_llen"]["calls"] == 3 * 8


def test_info_filters_and_unknown_phones(platform, small):
    assert [p["id"] for p in phones.phones_info(platform.params, statuses=["offline", "BANNED"])["phones"]] == \
        ["phone_05", "phone_06"]
    assert [p["id"] for p in phones.phones_info(platform.params, phone_ids=["phone_03", "phone_01"])["phones"]] == \
        ["phone_01", "phone_03"]
    assert phones.phones_info(platform.params, tenant_id=OTHER_TENANT)["phones"] == []
    # Known but filtered out is not unknown.
    assert phones.phones_info(platform.params, phone_ids=["phone_01"], statuses=["BANNED"])["phones"] == []
    with pytest.raises(CerniqError, match="unknown phone.*phone_77"):
        phones.phones_info(platform.params, phone_ids=["phone_01", "phone_77"])
    with pytest.raises(CerniqError, match="status 'GONE' is not one of"):
        phones.phones_info(platform.params, statuses=["GONE"])
