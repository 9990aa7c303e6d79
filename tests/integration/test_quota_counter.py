"""quota_counter / quota_counter_info cores against real Redis and PostgreSQL."""

from __future__ import annotations

import fnmatch
import threading
from datetime import datetime, timedelta, timezone
from datetime import time as dtime

import pytest
import redis as redis_py

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from ansible_collections.cerniq.outreach.plugins.module_utils import _quota as quota
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.seed import TENANT_ID
from tests.support.snapshots import assert_unchanged, platform_state, redis_dump

TZ = contract.DEFAULT_TIMEZONE


def today():
    return contract.business_day(TZ)


def key(phone_id, day=None):
    return contract.quota_key(phone_id, day or today())


def snapshot(r, pattern=None):
    """Every key of r's db (or those matching pattern) with its DUMP and whether it has a TTL."""
    kwargs = r.connection_pool.connection_kwargs
    raw = redis_py.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs["db"], password=kwargs["password"])
    return {k: v for k, v in redis_dump(raw).items() if pattern is None or fnmatch.fnmatchcase(k, pattern.encode())}


def audit_rows(platform, action):
    return platform.audit(action)


# What the compare-and-set script calls inside Redis: counted in the stats, but not round trips.
SCRIPT_COMMANDS = ("type", "get", "ttl", "set", "expireat")


def client_commands(r):
    """{command: calls} clients sent since CONFIG RESETSTAT, leaving out what the Lua script ran inside Redis."""
    stats = r.info("commandstats")
    return {name[len("cmdstat_"):]: entry["calls"] for name, entry in stats.items()
            if name[len("cmdstat_"):] not in SCRIPT_COMMANDS}


@pytest.fixture()
def seeded(platform):
    facts = platform.seed(phones=8, leads=200, old_log_rows=10, reviews=0, jobs_per_phone=0, dlq_entries=0,
                          offline=("phone_07",), banned=("phone_08",), drift_phone="phone_07", leak_phone="phone_05",
                          no_ttl_phone="phone_03")
    return facts


# --- info -------------------------------------------------------------------------------------------------------

def test_info_reports_counters_ttl_limits_leaks_and_missing_ttl(platform, seeded):
    info = quota.quota_counters_info(platform.params)
    by_phone = {c["phone_id"]: c for c in info["counters"]}
    assert list(by_phone) == ["phone_{0:02d}".format(n) for n in range(1, 9)]
    counts = seeded["wa_counts"]
    assert by_phone["phone_01"]["value"] == counts["phone_01"]
    assert by_phone["phone_01"]["limit"] == 200
    assert by_phone["phone_01"]["used_percent"] == round(100.0 * counts["phone_01"] / 200, 1)
    assert 0 < by_phone["phone_01"]["ttl"] <= contract.QUOTA_KEY_TTL_SECONDS
    # The seeded leak: Redis 15 above the log; flagged with tolerance 0, not with tolerance 20.
    assert info["leaks"] == [dict(phone_id="phone_05", redis=counts["phone_05"] + 15, db=counts["phone_05"],
                                  difference=15)]
    assert quota.quota_counters_info(platform.params, tolerance=20)["leaks"] == []
    # The classic INCR on a missing key: a counter with no TTL.
    assert info["without_ttl"] == [key("phone_03")]
    assert by_phone["phone_03"]["no_ttl"] is True and by_phone["phone_03"]["ttl"] == -1
    # Offline and banned phones have no counter today: missing, 0 used, no leak (no log rows either).
    assert by_phone["phone_08"]["exists"] is False and by_phone["phone_08"]["value"] is None
    assert by_phone["phone_08"]["leak"] is False


def test_info_for_one_phone_and_unknown_phone(platform, seeded):
    info = quota.quota_counters_info(platform.params, phone_ids=["phone_02"])
    assert [c["phone_id"] for c in info["counters"]] == ["phone_02"]
    with pytest.raises(CerniqError, match="unknown phone.*phone_42"):
        quota.quota_counters_info(platform.params, phone_ids=["phone_42"])


def test_info_reports_a_wrong_typed_counter_by_name(platform, seeded):
    r = platform.r()
    r.delete(key("phone_02"))
    r.hset(key("phone_02"), "count", 3)
    info = quota.quota_counters_info(platform.params)
    assert any(key("phone_02") + " is a hash, not a counter" in p for p in info["problems"]), info["problems"]


def test_usage_date_reads_wa_quota_usage_and_lists_phones_without_a_row(platform, seeded):
    yesterday = today() - timedelta(days=1)
    platform.sql("DELETE FROM wa_quota_usage WHERE phone_id = 'phone_04'")
    # A phone onboarded today is not expected to have yesterday's row.
    platform.sql("INSERT INTO wa_phone_numbers (id, tenant_id, phone_number, phone_label) "
                 "VALUES ('phone_09', %s, '+40700000909', 'New today')", (str(TENANT_ID),))
    info = quota.quota_counters_info(platform.params, usage_date="yesterday", leak_report=False)
    usage = info["usage"]
    assert usage["date"] == yesterday.isoformat()
    assert [row["phone_id"] for row in usage["rows"]] == [p for p in ("phone_{0:02d}".format(n) for n in
                                                                      range(1, 9)) if p != "phone_04"]
    assert usage["missing"] == ["phone_04"]
    assert "leaks" not in info


# --- set --------------------------------------------------------------------------------------------------------

def test_set_is_audited_keeps_the_ttl_and_is_idempotent(platform, seeded):
    r = platform.r()
    expiry_before = r.expiretime(key("phone_01"))
    old = int(r.get(key("phone_01")))

    before = platform_state(platform)
    preview = quota.set_counter(platform.params, "phone_01", 150, "INC-1 double count", check_mode=True,
                                want_diff=True)
    assert preview["changed"] is True and preview["before"] == old
    assert_unchanged(before, platform_state(platform))  # every key, its expiry, the audit log

    done = quota.set_counter(platform.params, "phone_01", 150, "INC-1 double count")
    assert done["changed"] is True and r.get(key("phone_01")) == "150"
    assert r.expiretime(key("phone_01")) == expiry_before  # kept, not reset to 48 h
    (row,) = audit_rows(platform, "quota_set")
    actor, module, _action, target, reason, before, after = row
    assert (actor, module, target, reason) == ("pytest", "quota_counter", key("phone_01"), "INC-1 double count")
    assert before["value"] == old and after["value"] == 150

    assert quota.set_counter(platform.params, "phone_01", 150, "INC-1 double count")["changed"] is False
    assert len(audit_rows(platform, "quota_set")) == 1


def test_set_racing_a_workers_incr_loses_none_of_them(platform, seeded):
    """A worker INCRs the counter from another connection before, while and after the set runs. Every INCR is
    accounted for: those before the set are in the value it reports replacing, those after are on top of the new
    value; none fell between the set's read and its write."""
    counter, value = key("phone_01"), 100000  # far above any count before, so each INCR's reply tells its side
    old = int(platform.r().get(counter))
    replies, started, set_done = [], threading.Event(), threading.Event()

    def worker():
        client = platform.r()
        after = 0
        for _attempt in range(200000):  # bounded; the loop ends well before
            replies.append(client.incr(counter))
            if len(replies) == 200:
                started.set()
            if set_done.is_set():
                after += 1
                if after == 200:
                    return

    thread = threading.Thread(target=worker)
    thread.start()
    assert started.wait(60)
    done = quota.set_counter(platform.params, "phone_01", value, "INC-9 racing INCR")
    set_done.set()
    thread.join(60)
    assert not thread.is_alive()

    before_set = [n for n in replies if n < value]
    after_set = [n for n in replies if n > value]
    assert len(before_set) + len(after_set) == len(replies)
    assert len(before_set) >= 200 and len(after_set) >= 200
    # Each side is an unbroken run: nothing counted twice, nothing skipped.
    assert before_set == list(range(old + 1, old + len(before_set) + 1))
    assert after_set == list(range(value + 1, value + len(after_set) + 1))
    # The set replaced exactly what the INCRs before it had made, and the final value counts every INCR after it.
    assert done["before"] == old + len(before_set)
    assert int(platform.r().get(counter)) == value + len(after_set)


def test_set_gives_a_counter_without_ttl_its_absolute_expiry(platform, seeded):
    r = platform.r()
    quota.set_counter(platform.params, "phone_03", 10, "fix")
    assert r.expiretime(key("phone_03")) == contract.quota_key_expire_at(today(), TZ)


@pytest.mark.parametrize(("phone_id", "value", "reason", "message"), [
    ("phone_01", 5, "", "reason is required"),
    ("phone_01", 5, "   ", "reason is required"),
    ("phone_01", -1, "r", "non-negative integer, got -1"),
    ("phone_01", "1.5", "r", "non-negative integer, got '1.5'"),
    ("phone_01", True, "r", "non-negative integer"),
    ("phone_42", 5, "r", "unknown phone.*phone_42"),
    ("phone-1", 5, "r", "not of the form phone_NN"),
])
def test_set_refuses_bad_input_and_changes_nothing(platform, seeded, phone_id, value, reason, message):
    r = platform.r()
    before = snapshot(r)
    with pytest.raises(CerniqError, match=message):
        quota.set_counter(platform.params, phone_id, value, reason)
    assert snapshot(r) == before and audit_rows(platform, "quota_set") == []


def test_set_on_a_wrong_typed_key_names_it_and_changes_nothing(platform, seeded):
    r = platform.r()
    r.delete(key("phone_03"))
    r.hset(key("phone_03"), "count", 7)
    before = snapshot(r)
    with pytest.raises(CerniqError) as err:
        quota.set_counter(platform.params, "phone_03", 5, "fix")
    assert key("phone_03") in err.value.msg and "hash" in err.value.msg
    assert snapshot(r) == before


def test_set_refuses_a_future_day_and_an_expired_day(platform, seeded):
    with pytest.raises(CerniqError, match="in the future"):
        quota.set_counter(platform.params, "phone_01", 1, "r", day=(today() + timedelta(days=1)).isoformat())
    with pytest.raises(CerniqError, match="expired"):
        quota.set_counter(platform.params, "phone_01", 1, "r", day=(today() - timedelta(days=3)).isoformat())


# --- sync from the database -------------------------------------------------------------------------------------

def test_sync_from_db_recounts_every_phone_in_one_query_and_one_script(platform, seeded):
    r = platform.r()
    counts = seeded["wa_counts"]
    ttl_kept = r.ttl(key("phone_05"))
    r.config_resetstat()
    result = quota.sync_counters_from_db(platform.params, want_diff=True)
    sent = client_commands(r)
    # Connecting (AUTH, CLIENT SETNAME, PING), the script (EVALSHA, SCRIPT LOAD once): nothing per phone.
    assert sent.get("evalsha", 0) + sent.get("eval", 0) <= 2 and max(sent.values()) <= 2, sent
    assert r.info("commandstats")["cmdstat_get"]["calls"] == 8  # the script's own reads, one per phone
    assert result["changed"] is True
    corrected = {c["phone_id"]: (c["before"], c["after"]) for c in result["corrected"]}
    # The leak is fixed; offline/banned phones (no counter, no messages) get 0.
    assert corrected == {"phone_05": (counts["phone_05"] + 15, counts["phone_05"]), "phone_07": (None, 0),
                         "phone_08": (None, 0)}
    assert result["ttl_repaired"] == [key("phone_03")]
    assert r.get(key("phone_05")) == str(counts["phone_05"])
    assert abs(r.ttl(key("phone_05")) - ttl_kept) <= 2
    expire_at = contract.quota_key_expire_at(today(), TZ)
    assert r.expiretime(key("phone_03")) == expire_at and r.expiretime(key("phone_07")) == expire_at
    assert "quota:wa:phone_05" in result["diff"]["before"]
    (row,) = audit_rows(platform, "quota_sync")
    assert row[6]["corrected"] == 3 and row[6]["ttl_repaired"] == [key("phone_03")]

    again = quota.sync_counters_from_db(platform.params)
    assert again["changed"] is False and again["corrected"] == [] and again["ttl_repaired"] == []
    assert len(audit_rows(platform, "quota_sync")) == 1


def test_sync_check_mode_writes_nothing_and_reports_the_same(platform, seeded):
    before = platform_state(platform)
    preview = quota.sync_counters_from_db(platform.params, check_mode=True)
    assert_unchanged(before, platform_state(platform))
    done = quota.sync_counters_from_db(platform.params)
    assert (preview["changed"], preview["corrected"], preview["ttl_repaired"]) == \
        (done["changed"], done["corrected"], done["ttl_repaired"])


def test_sync_for_one_phone_leaves_the_others_alone(platform, seeded):
    r = platform.r()
    before = r.get(key("phone_03")), r.ttl(key("phone_03"))
    result = quota.sync_counters_from_db(platform.params, phone_ids=["phone_05"])
    assert [c["phone_id"] for c in result["corrected"]] == ["phone_05"]
    assert (r.get(key("phone_03")), r.ttl(key("phone_03"))) == before


def test_sync_refuses_a_wrong_typed_counter_naming_it_and_writes_nothing(platform, seeded):
    r = platform.r()
    r.delete(key("phone_03"))
    r.hset(key("phone_03"), "count", 7)
    before = snapshot(r)
    with pytest.raises(CerniqError) as err:
        quota.sync_counters_from_db(platform.params)
    assert key("phone_03") in err.value.msg and "nothing was changed" in err.value.msg
    assert snapshot(r) == before


def test_sync_counts_by_business_day_in_the_platform_zone(platform):
    """23:30 UTC is already the next day in Bucharest: a message sent then counts for that next day."""
    platform.sql("INSERT INTO wa_phone_numbers (id, tenant_id, phone_number, phone_label) "
                 "VALUES ('phone_01', %s, '+40700000001', 'Sales 01')", (str(TENANT_ID),))
    day = today()
    start, end = contract.business_day_bounds(day, TZ)
    late_evening_utc = datetime.combine(start.date(), dtime(23, 30), tzinfo=timezone.utc)  # today in Bucharest
    assert start <= late_evening_utc < end
    rows = [late_evening_utc, start, start - timedelta(seconds=1), start - timedelta(minutes=30), end]
    for created in rows:
        platform.sql("INSERT INTO gold_communication_log (tenant_id, phone_id, channel, status, quota_cost, "
                     "created_at) VALUES (%s, 'phone_01', 'WHATSAPP', 'SENT', 1, %s)", (str(TENANT_ID), created))
    # Neither an e-mail nor a free WhatsApp message counts.
    platform.sql("INSERT INTO gold_communication_log (tenant_id, phone_id, channel, status, quota_cost, created_at) "
                 "VALUES (%s, 'phone_01', 'EMAIL', 'SENT', 1, %s), (%s, 'phone_01', 'WHATSAPP', 'SENT', 0, %s)",
                 (str(TENANT_ID), late_evening_utc, str(TENANT_ID), late_evening_utc))
    assert quota.sync_counters_from_db(platform.params)["counters"] == {"phone_01": 2}
    yesterday = quota.sync_counters_from_db(platform.params, day="yesterday")
    assert yesterday["counters"] == {"phone_01": 2}
    assert platform.r().get(key("phone_01", day - timedelta(days=1))) == "2"
    # The UTC calendar would have put the 23:30 message on the previous day.
    assert late_evening_utc.date() == day - timedelta(days=1)


# --- reset of a past day ----------------------------------------------------------------------------------------

def test_reset_deletes_only_that_past_days_counters_with_scan(platform, seeded):
    r = platform.r()
    yesterday = today() - timedelta(days=1)
    old_keys = sorted(r.scan_iter(match=contract.quota_key_pattern(yesterday)))
    assert len(old_keys) == 6  # the seeder's leftovers, one per active phone
    r.set("quota:wa:phone_01:{0}:extra".format(yesterday.isoformat()), 1)  # not a counter: kept
    todays = snapshot(r, "quota:wa:*:" + today().isoformat())

    before = platform_state(platform)
    preview = quota.reset_day(platform.params, "yesterday", check_mode=True)
    assert preview["changed"] is True and sorted(preview["counter_keys"]) == old_keys and preview["deleted"] == 0
    assert_unchanged(before, platform_state(platform))

    done = quota.reset_day(platform.params, "yesterday")
    assert done["deleted"] == 6 and sorted(done["counter_keys"]) == old_keys
    assert list(r.scan_iter(match=contract.quota_key_pattern(yesterday))) == []
    assert r.exists("quota:wa:phone_01:{0}:extra".format(yesterday.isoformat()))
    assert snapshot(r, "quota:wa:*:" + today().isoformat()) == todays
    (row,) = audit_rows(platform, "quota_reset")
    assert row[5]["counters"][old_keys[0]] == "150" and row[6]["deleted"] == 6

    assert quota.reset_day(platform.params, "yesterday")["changed"] is False


def test_reset_uses_scan_never_keys(platform, seeded):
    r = platform.r()
    r.config_resetstat()
    quota.reset_day(platform.params, "yesterday")
    stats = r.info("commandstats")
    assert "cmdstat_keys" not in stats
    assert stats["cmdstat_scan"]["calls"] >= 1 and stats["cmdstat_unlink"]["calls"] == 1


@pytest.mark.parametrize(("day", "message"), [
    ("today", "is today"),
    ("tomorrow", "in the future"),
    (None, "needs date"),
    ("2026-13-01", "not 'today', 'yesterday' or a YYYY-MM-DD date"),
])
def test_reset_refuses_today_the_future_and_no_date(platform, seeded, day, message):
    r = platform.r()
    before = snapshot(r)
    with pytest.raises(CerniqError, match=message):
        quota.reset_day(platform.params, (today() + timedelta(days=1)).isoformat() if day == "tomorrow" else day)
    assert snapshot(r) == before


# --- TTL repair ---------------------------------------------------------------------------------------------------

def test_repair_ttl_fixes_only_counters_without_one(platform, seeded):
    r = platform.r()
    r.incr(key("phone_02") + "x")  # not a phone's counter: left alone
    ttl_01 = r.ttl(key("phone_01"))
    before = platform_state(platform)
    preview = quota.repair_counter_ttls(platform.params, check_mode=True)
    assert preview["ttl_repaired"] == [key("phone_03")]
    assert_unchanged(before, platform_state(platform))
    done = quota.repair_counter_ttls(platform.params)
    assert done["ttl_repaired"] == [key("phone_03")]
    assert r.expiretime(key("phone_03")) == contract.quota_key_expire_at(today(), TZ)
    assert abs(r.ttl(key("phone_01")) - ttl_01) <= 2
    assert quota.repair_counter_ttls(platform.params)["changed"] is False
    assert len(audit_rows(platform, "quota_repair_ttl")) == 1


def test_quota_counter_dispatch_refuses_ambiguous_requests(platform, seeded):
    with pytest.raises(CerniqError, match="either value .* or sync_from"):
        quota.quota_counter(platform.params, phone_ids=["phone_01"], value=1, reason="r", sync_from="db")
    with pytest.raises(CerniqError, match="exactly one phone_id"):
        quota.quota_counter(platform.params, value=1, reason="r")
    with pytest.raises(CerniqError, match="nothing to do"):
        quota.quota_counter(platform.params)
    with pytest.raises(CerniqError, match="takes no value"):
        quota.quota_counter(platform.params, date="yesterday", value=1, state="absent")
