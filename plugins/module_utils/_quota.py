# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-phone daily WhatsApp quota counters (`quota:wa:{phone}:{business-day}`): read, set, recount, reset, repair.

Every operation is one SQL statement and one Redis round trip for any number of phones (SCAN batches for a reset).
Writes go through one Lua compare-and-set, so a worker's INCR between our read and our write is never lost.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_reading,
    redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    CHANNEL_WHATSAPP,
    QUOTA_COST_COUNTED,
    TABLE_COMM_LOG,
    TABLE_PHONES,
    TABLE_QUOTA_USAGE,
    business_day,
    business_day_bounds,
    parse_day,
    parse_quota_key,
    phone_sort_key,
    quota_key,
    quota_key_expire_at,
    quota_key_pattern,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import (
    validate_count,
    validate_phone_id,
    validate_phone_ids,
)

MODULE_SET = "quota_counter"
SCAN_COUNT = 1000
UNLINK_BATCH = 1000
# Which keys an audit row lists in full; the count is always exact.
AUDIT_KEY_CAP = 1000

# KEYS: counters. ARGV[1]: absolute expiry (epoch s) for a counter that has none. ARGV[2]: '1' writes, '0' only
# reports (check mode). ARGV[2+i]: wanted value of KEYS[i], or '' to keep the value and only give a counter without
# TTL its expiry. A counter that has a TTL keeps it (KEEPTTL); a new one or one without TTL gets the absolute expiry.
# Every key's type is checked before the first write, so a wrong-typed key leaves everything untouched.
# Returns {'WRONGTYPE', key, type} or, per key, its value and TTL before the call.
_COMPARE_AND_SET_LUA = """
for i = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  if kind ~= 'none' and kind ~= 'string' then
    return {'WRONGTYPE', KEYS[i], kind}
  end
end
local expire_at = ARGV[1]
local write = ARGV[2] == '1'
local out = {}
for i = 1, #KEYS do
  local key = KEYS[i]
  local old = redis.call('GET', key)
  local ttl = redis.call('TTL', key)
  local want = ARGV[2 + i]
  if write then
    if want ~= '' and old ~= want then
      if ttl > 0 then
        redis.call('SET', key, want, 'KEEPTTL')
      else
        redis.call('SET', key, want, 'EXAT', expire_at)
      end
    elseif old and ttl == -1 then
      redis.call('EXPIREAT', key, expire_at)
    end
  end
  out[#out + 1] = old or false
  out[#out + 1] = ttl
end
return out
"""

# KEYS: any keys. Per key: its type, its value when it is a string (else false), its TTL. Reads only.
_READ_KEYS_LUA = """
local out = {}
for i = 1, #KEYS do
  local kind = redis.call('TYPE', KEYS[i])['ok']
  out[#out + 1] = kind
  if kind == 'string' then
    out[#out + 1] = redis.call('GET', KEYS[i])
  else
    out[#out + 1] = false
  end
  out[#out + 1] = redis.call('TTL', KEYS[i])
end
return out
"""

TTL_NONE = -1  # Redis TTL of a key without expiry
TTL_MISSING = -2  # Redis TTL of a key that does not exist


# --- Input ------------------------------------------------------------------------------------------------------

def validate_reason(reason):
    if not (reason or "").strip():
        raise CerniqError("reason is required for a manual quota adjustment (emergency only): say why, e.g. "
                          "'INC-4711 TimelinesAI double-counted sends'; it goes to ops_audit_log")
    return reason.strip()


def writable_day(value, tz_name, now=None):
    """The business day of a set or a recount: not in the future, and its counters not already expired."""
    now = now or datetime.now(timezone.utc)
    today = business_day(tz_name, now)
    day = parse_day(value, tz_name)
    if day > today:
        raise CerniqError("date {0} is in the future (today is {1} in {2}): there is no counter to write yet"
                          .format(day, today, tz_name))
    expire_at = quota_key_expire_at(day, tz_name)
    if expire_at <= now.timestamp():
        raise CerniqError("the counters of {0} expired at {1} UTC (48 h after the day began in {2}); only today's "
                          "and yesterday's counters can be written".format(
                              day, datetime.fromtimestamp(expire_at, timezone.utc).strftime("%Y-%m-%d %H:%M"),
                              tz_name))
    return day, expire_at


def resettable_day(value, tz_name, now=None):
    """The day of a reset: strictly before today, because today's counters are the ones workers count against."""
    today = business_day(tz_name, now)
    if value in (None, ""):
        raise CerniqError("a reset needs date: the past business day whose counters to delete (e.g. yesterday)")
    day = parse_day(value, tz_name)
    if day > today:
        raise CerniqError("date {0} is in the future (today is {1} in {2}): only a past day's counters can be "
                          "reset".format(day, today, tz_name))
    if day == today:
        raise CerniqError("date {0} is today in {1}: today's counters are live (workers count against them) and "
                          "are never reset; give a past day such as yesterday, or set one counter with value and "
                          "reason".format(day, tz_name))
    return day


# --- Reading ----------------------------------------------------------------------------------------------------

def load_phones(cur, phone_ids=None, day=None, tz_name=None, count_log=False):
    """Phones (id, limit, status, created_at) with, when count_log, the day's counted WhatsApp messages.

    One statement for any number of phones; a phone_ids filter naming an unknown phone is an error.
    """
    bounds = business_day_bounds(day, tz_name) if count_log else (None, None)
    counts = ("(SELECT phone_id, count(*) AS sent FROM " + TABLE_COMM_LOG + " WHERE channel = %(channel)s "
              "AND quota_cost = %(cost)s AND created_at >= %(start)s AND created_at < %(end)s "
              "AND (%(all)s OR phone_id = ANY(%(ids)s)) GROUP BY phone_id)") if count_log \
        else "(SELECT NULL::text AS phone_id, NULL::bigint AS sent WHERE false)"
    query = ("SELECT p.id, p.daily_quota_limit, p.status, p.created_at, coalesce(c.sent, 0) FROM " + TABLE_PHONES +
             " p LEFT JOIN " + counts + " c ON c.phone_id = p.id WHERE (%(all)s OR p.id = ANY(%(ids)s)) "
             "ORDER BY length(p.id), p.id")
    args = dict(channel=CHANNEL_WHATSAPP, cost=QUOTA_COST_COUNTED, start=bounds[0], end=bounds[1],
                all=not phone_ids, ids=list(phone_ids or []))
    cur.execute(query, args)
    rows = cur.fetchall()
    phones = [dict(phone_id=r[0], limit=r[1], status=r[2], created_at=r[3], db_count=r[4]) for r in rows]
    if phone_ids:
        unknown = sorted(set(phone_ids) - {p["phone_id"] for p in phones}, key=phone_sort_key)
        if unknown:
            raise CerniqError("unknown phone(s) {0}: not in {1} (see cerniq.outreach.wa_phone_info for the list)"
                              .format(", ".join(unknown), TABLE_PHONES))
    return phones


def read_keys(client, where, keys):
    """(value, ttl, wrong type or None) per key, in one read-only script call; a key that is not a string is not read.

    One command instead of a GET and a TTL per key: for 1,000 phones, redis-py's packing and parsing of the
    per-key commands cost more than Redis' work.
    """
    if not keys:
        return []
    with redis_errors(where):
        reply = client.register_script(_READ_KEYS_LUA)(keys=keys)
    triples = (reply[i:i + 3] for i in range(0, len(reply), 3))
    return [(value, ttl, None if kind in ("string", "none") else kind) for kind, value, ttl in triples]


def wrong_type_message(where, key, kind):
    return ("{0}: {1} is a {2}, not a counter (a string holding an integer). Inspect it (redis-cli -n <db> TYPE "
            "{1}) and delete it if it is debris, then re-run".format(where, key, kind))


def counter_number(value):
    """The integer a counter holds, None when missing or not an integer."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def describe_counter(phone, key, value, ttl, problem, now_ts, expire_at, tolerance=None):
    used = counter_number(value)
    entry = dict(phone_id=phone["phone_id"], key=key, value=used, exists=ttl != TTL_MISSING, ttl=ttl,
                 expires_at=_iso(now_ts + ttl) if ttl is not None and ttl >= 0 else None,
                 no_ttl=ttl == TTL_NONE, expected_expires_at=_iso(expire_at), limit=phone["limit"],
                 used_percent=_percent(used or 0, phone["limit"]), status=phone["status"], problem=problem)
    if value is not None and used is None and problem is None:
        entry["problem"] = "{0} holds {1!r}, not an integer".format(key, value)
    if tolerance is not None:
        difference = (used or 0) - phone["db_count"]
        entry.update(db_count=phone["db_count"], difference=difference, leak=abs(difference) > tolerance)
    return entry


def _percent(used, limit):
    return round(100.0 * used / limit, 1) if limit else None


def _iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def quota_counters_info(params, *, phone_ids=None, date="today", leak_report=True, tolerance=0, usage_date=None,
                        now=None):
    """Read-only: the day's counters with TTL, limit and use; the leak report; wa_quota_usage for usage_date."""
    tz_name = params["timezone"]
    tolerance = validate_count(tolerance, "tolerance")
    phone_ids = validate_phone_ids(phone_ids)
    now = now or datetime.now(timezone.utc)
    day = parse_day(date, tz_name)
    usage_day = parse_day(usage_date, tz_name, "usage_date") if usage_date else None
    expire_at = quota_key_expire_at(day, tz_name)
    with postgres_reading(params, require=(TABLE_PHONES, TABLE_COMM_LOG, TABLE_QUOTA_USAGE)) as cur:
        phones = load_phones(cur, phone_ids, day, tz_name, count_log=leak_report)
        usage = quota_usage(cur, usage_day, tz_name, phone_ids) if usage_day else None
    client = redis_client(params)
    where = redis_where(params, params["redis_db"])
    keys = [quota_key(p["phone_id"], day) for p in phones]
    now_ts = int(time.time())
    counters = [describe_counter(phone, key, value, ttl, wrong_type and wrong_type_message(where, key, wrong_type),
                                 now_ts, expire_at, tolerance if leak_report else None)
                for phone, key, (value, ttl, wrong_type) in zip(phones, keys, read_keys(client, where, keys))]
    result = dict(changed=False, date=day.isoformat(), timezone=tz_name, counters=counters,
                  without_ttl=[c["key"] for c in counters if c["no_ttl"]],
                  problems=[c["problem"] for c in counters if c["problem"]],
                  total_used=sum(c["value"] or 0 for c in counters))
    if leak_report:
        result["leaks"] = [dict(phone_id=c["phone_id"], redis=c["value"], db=c["db_count"],
                                difference=c["difference"]) for c in counters if c["leak"]]
        result["tolerance"] = tolerance
    if usage is not None:
        result["usage"] = usage
    return result


def quota_usage(cur, usage_day, tz_name, phone_ids=None):
    """The nightly roll-up for one day (runbook 3.2 step 3): its rows, and the phones that should have one and don't.

    A phone onboarded after that day ended is not expected to have a row.
    """
    day_end = business_day_bounds(usage_day, tz_name)[1]
    query = ("SELECT p.id, u.phone_id IS NOT NULL, u.messages_sent, u.quota_limit, p.created_at < %(end)s "
             "FROM " + TABLE_PHONES + " p LEFT JOIN " + TABLE_QUOTA_USAGE + " u "
             "ON u.phone_id = p.id AND u.usage_date = %(day)s WHERE (%(all)s OR p.id = ANY(%(ids)s)) "
             "UNION ALL SELECT u.phone_id, true, u.messages_sent, u.quota_limit, true FROM " + TABLE_QUOTA_USAGE +
             " u WHERE u.usage_date = %(day)s AND (%(all)s OR u.phone_id = ANY(%(ids)s)) AND NOT EXISTS "
             "(SELECT 1 FROM " + TABLE_PHONES + " p WHERE p.id = u.phone_id)")
    cur.execute(query, dict(day=usage_day, end=day_end, all=not phone_ids, ids=list(phone_ids or [])))
    rows = sorted(cur.fetchall(), key=lambda r: phone_sort_key(r[0]))
    present = [dict(phone_id=r[0], messages_sent=r[2], quota_limit=r[3]) for r in rows if r[1]]
    missing = [r[0] for r in rows if not r[1] and r[4]]
    return dict(date=usage_day.isoformat(), rows=present, missing=missing,
                total_sent=sum(r["messages_sent"] for r in present))


# --- Writing ----------------------------------------------------------------------------------------------------

def compare_and_set(client, where, keys, wanted, expire_at, write):
    """Run the Lua compare-and-set on keys; returns [(old value, old ttl)] or raises on a wrong-typed key."""
    if not keys:
        return []
    script = client.register_script(_COMPARE_AND_SET_LUA)
    args = [expire_at, "1" if write else "0"] + ["" if w is None else str(w) for w in wanted]
    with redis_errors(where):
        reply = script(keys=keys, args=args)
    if reply and reply[0] == "WRONGTYPE":
        raise CerniqError(wrong_type_message(where, reply[1], reply[2]) + "; nothing was changed")
    return [(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]


def plan_counter_writes(keys, before, wanted):
    """What compare_and_set did (or would do) given each key's value and TTL before the call."""
    plan = []
    for key, (old, ttl), want in zip(keys, before, wanted):
        sets_value = want is not None and old != str(want)
        number = counter_number(old)
        plan.append(dict(key=key, before=old if number is None else number,
                         after=want if sets_value else number, value_changed=sets_value, ttl_before=ttl,
                         gains_expiry=ttl <= 0 if sets_value else (old is not None and ttl == TTL_NONE),
                         ttl_repaired=old is not None and ttl == TTL_NONE))
    return plan


def _audit_redis_change(params, action, target, reason, before, after):
    """A Redis-only change, recorded right after Redis accepted it."""
    conn = postgres_connect(params, require=None)
    try:
        with postgres_errors(params, conn):
            AuditTrail(conn, MODULE_SET, params.get("audit_actor")).record(action, target, reason, before, after)
            conn.commit()
    finally:
        conn.close()


def write_counters(params, phone_ids, day, check_mode, now=None, value=None, recount=False):
    """The day's counters of the phones (all when phone_ids is empty) through the compare-and-set script.

    recount: each becomes the log's count; value: each becomes value; neither: only counters without TTL change
    (they get their expiry). Returns (day, expire_at, phones, plan), the plan as plan_counter_writes gives it.
    """
    tz_name = params["timezone"]
    day, expire_at = writable_day(day, tz_name, now)
    with postgres_reading(params, require=(TABLE_PHONES, TABLE_COMM_LOG)) as cur:
        phones = load_phones(cur, phone_ids, day, tz_name, count_log=recount)
    keys = [quota_key(p["phone_id"], day) for p in phones]
    wanted = [p["db_count"] if recount else value for p in phones]
    before = compare_and_set(redis_client(params), redis_where(params, params["redis_db"]), keys, wanted,
                             expire_at, write=not check_mode)
    return day, expire_at, phones, plan_counter_writes(keys, before, wanted)


def set_counter(params, phone_id, value, reason, day=None, check_mode=False, want_diff=False, now=None):
    """Emergency adjustment of one phone's counter: audited with before/after; keeps or sets the absolute expiry."""
    phone_id = validate_phone_id(phone_id)
    value = validate_count(value, "value")
    reason = validate_reason(reason)
    day, expire_at, _phones, (plan,) = write_counters(params, [phone_id], day, check_mode, now, value=value)
    key = plan["key"]
    changed = plan["value_changed"] or plan["gains_expiry"]
    if changed and not check_mode:
        _audit_redis_change(params, "quota_set", key, reason,
                            dict(value=plan["before"], ttl=plan["ttl_before"]),
                            dict(value=value, expires_at=_iso(expire_at) if plan["gains_expiry"] else "kept"))
    result = dict(changed=changed, date=day.isoformat(), key=key, before=plan["before"], value=value,
                  ttl_before=plan["ttl_before"], expiry_set=changed and plan["gains_expiry"])
    if want_diff:
        result["diff"] = dict(before="{0} = {1}\n".format(key, plan["before"]), after="{0} = {1}\n".format(key, value))
    return result


def sync_counters_from_db(params, phone_ids=None, day=None, check_mode=False, want_diff=False, now=None):
    """Recount the day's counters from gold_communication_log: one query, one script call for any number of phones.

    Phones with no counted message get 0; a counter without TTL gets its absolute expiry; one that has a TTL keeps it.
    """
    day, _expire_at, phones, plan = write_counters(params, validate_phone_ids(phone_ids), day, check_mode, now,
                                                   recount=True)
    corrected = [dict(phone_id=p["phone_id"], key=step["key"], before=step["before"], after=step["after"])
                 for p, step in zip(phones, plan) if step["value_changed"]]
    ttl_repaired = [step["key"] for step in plan if step["ttl_repaired"]]
    changed = bool(corrected or ttl_repaired)
    if changed and not check_mode:
        _audit_redis_change(params, "quota_sync", quota_key_pattern(day), "recount from " + TABLE_COMM_LOG,
                            dict(counters={c["phone_id"]: c["before"] for c in corrected[:AUDIT_KEY_CAP]}),
                            dict(counters={c["phone_id"]: c["after"] for c in corrected[:AUDIT_KEY_CAP]},
                                 corrected=len(corrected), ttl_repaired=ttl_repaired[:AUDIT_KEY_CAP],
                                 ttl_repaired_count=len(ttl_repaired), phones=len(phones)))
    result = dict(changed=changed, date=day.isoformat(), phones=len(phones), corrected=corrected,
                  corrected_count=len(corrected), ttl_repaired=ttl_repaired,
                  total_db_count=sum(p["db_count"] for p in phones),
                  counters={p["phone_id"]: p["db_count"] for p in phones})
    if want_diff:
        result["diff"] = _counters_diff(corrected)
    return result


def _counters_diff(corrected):
    return dict(before="".join("{0} = {1}\n".format(c["key"], c["before"]) for c in corrected),
                after="".join("{0} = {1}\n".format(c["key"], c["after"]) for c in corrected))


def repair_counter_ttls(params, phone_ids=None, day=None, check_mode=False, now=None):
    """Give every counter of the day that has no TTL (an INCR on a missing key) its absolute expiry."""
    day, expire_at, _phones, plan = write_counters(params, validate_phone_ids(phone_ids), day, check_mode, now)
    repaired = [step["key"] for step in plan if step["ttl_repaired"]]
    if repaired and not check_mode:
        _audit_redis_change(params, "quota_repair_ttl", quota_key_pattern(day), "counter without TTL",
                            dict(ttl=TTL_NONE), dict(keys=repaired[:AUDIT_KEY_CAP], count=len(repaired),
                                                     expires_at=_iso(expire_at)))
    return dict(changed=bool(repaired), date=day.isoformat(), ttl_repaired=repaired, expires_at=_iso(expire_at))


def reset_day(params, day, phone_ids=None, check_mode=False, want_diff=False, now=None):
    """Delete a past day's counters (runbook 3.2 step 2): SCAN with the day's pattern, UNLINK in batches.

    Check mode lists the keys it would delete. The audit row keeps each deleted counter's value.
    """
    tz_name = params["timezone"]
    phone_ids = validate_phone_ids(phone_ids)
    day = resettable_day(day, tz_name, now)
    client = redis_client(params)
    where = redis_where(params, params["redis_db"])
    wanted = set(phone_ids or [])
    with redis_errors(where):
        keys = sorted({key for key in client.scan_iter(match=quota_key_pattern(day), count=SCAN_COUNT)
                       if _is_counter_of(key, day, wanted)}, key=lambda k: phone_sort_key(parse_quota_key(k)[0]))
        values = {}
        if keys:
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            values = {key: ("<{0}>".format(reply) if isinstance(reply, Exception) else reply)
                      for key, reply in zip(keys, pipe.execute(raise_on_error=False))}
    deleted = 0
    if keys and not check_mode:
        with redis_errors(where):
            pipe = client.pipeline(transaction=False)
            for start in range(0, len(keys), UNLINK_BATCH):
                pipe.unlink(*keys[start:start + UNLINK_BATCH])
            deleted = sum(pipe.execute())
        _audit_redis_change(params, "quota_reset", quota_key_pattern(day), "reset of a past day's counters",
                            dict(counters={k: values[k] for k in keys[:AUDIT_KEY_CAP]}),
                            dict(deleted=deleted, keys=len(keys)))
    result = dict(changed=bool(keys), date=day.isoformat(), counter_keys=keys, count=len(keys),
                  deleted=deleted if not check_mode else 0)
    if want_diff:
        result["diff"] = dict(before="".join("{0} = {1}\n".format(k, values[k]) for k in keys), after="")
    return result


def _is_counter_of(key, day, phone_ids):
    parsed = parse_quota_key(key)
    if parsed is None or parsed[1] != day:
        return False
    return not phone_ids or parsed[0] in phone_ids


def quota_counter(params, *, phone_ids=None, date="today", value=None, reason=None, sync_from=None, repair_ttl=False,
                  state="present", check_mode=False, want_diff=False):
    """The quota_counter module: exactly one of set (value), recount (sync_from), reset (state=absent), repair_ttl."""
    phone_ids = list(phone_ids or [])
    if state == "absent":
        if value is not None or sync_from:
            raise CerniqError("state=absent deletes a past day's counters; it takes no value nor sync_from")
        return reset_day(params, date, phone_ids, check_mode, want_diff)
    if value is not None and sync_from:
        raise CerniqError("give either value (set one counter) or sync_from (recount from the database), not both")
    if value is not None:
        if len(phone_ids) != 1:
            raise CerniqError("setting a counter needs exactly one phone_id (got {0})".format(
                ", ".join(phone_ids) or "none"))
        return set_counter(params, phone_ids[0], value, reason, date, check_mode, want_diff)
    if sync_from:
        if sync_from != "db":
            raise CerniqError("sync_from must be 'db' (got {0!r})".format(sync_from))
        return sync_counters_from_db(params, phone_ids, date, check_mode, want_diff)
    if repair_ttl:
        return repair_counter_ttls(params, phone_ids, date, check_mode)
    raise CerniqError("nothing to do: give value (with reason), sync_from: db, repair_ttl: true or state: absent "
                      "(reset a past day); to read counters use cerniq.outreach.quota_counter_info")
