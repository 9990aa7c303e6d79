"""bullmq_queue dlq_type=list with dlq_pattern against real Redis: every bull:dlq:* list trimmed (runbook 8.1 step 3),
found by SCAN, each key typed; a non-list key and a BullMQ queue's own lists matching the pattern are reported and
never touched."""

from __future__ import annotations

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_dlq import (
    _TRIM_LIST_LUA,
    DLQ_PATTERN_MAX_KEYS,
    scan_dlq_lists,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import DLQ_LIST_PATTERN
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.cores import run


def dump(r, key):
    """A key's exact serialized value (DUMP) and TTL: byte-level 'never touched'."""
    return r.dump(key), r.pttl(key)


def seed(r):
    # Three application DLQ lists the app LPUSHes (newest at the head), of different lengths, entries numbered.
    for name, length in (("outreach", 1500), ("followup", 1200), ("email", 40)):
        key = "bull:dlq:" + name
        for start in range(0, length, 500):
            r.lpush(key, *["{0}-{1}".format(name, i) for i in range(start, min(length, start + 500))])
    # A key matching the pattern that is not a list, and a BullMQ queue named "dlq" whose wait list matches too.
    r.hset("bull:dlq:stats", mapping={"count": "7", "last": "2026-12-01"})
    r.zadd("bull:dlq:index", {"a": 1, "b": 2})
    r.hset("bull:dlq:meta", mapping={"version": "bullmq:5.34.0"})
    r.lpush("bull:dlq:wait", *["job-{0}".format(i) for i in range(1100)])
    r.set("bull:other:outreach", "not matched")


def test_every_matching_list_is_trimmed_and_other_keys_are_reported_untouched(platform):
    r = platform.r(2)
    seed(r)
    untouched = {key: dump(r, key) for key in ("bull:dlq:stats", "bull:dlq:index", "bull:dlq:meta", "bull:dlq:wait",
                                               "bull:other:outreach")}

    plan = run(platform, check_mode=True, diff=True, dlq_type="list", dlq_pattern=DLQ_LIST_PATTERN,
               dlq_keep=1000)
    assert plan["changed"] is True
    assert plan["dlq"]["lists"] == [dict(key="bull:dlq:email", length=40, removed=0),
                                    dict(key="bull:dlq:followup", length=1200, removed=200),
                                    dict(key="bull:dlq:outreach", length=1500, removed=500)]
    assert plan["dlq"]["removed"] == 700 and plan["dlq"]["length"] == 2740
    skipped = {s["key"]: (s["type"], s["why"]) for s in plan["dlq"]["skipped"]}
    assert skipped == {"bull:dlq:index": ("zset", "not a list: never touched"),
                       "bull:dlq:meta": ("hash", "not a list: never touched"),
                       "bull:dlq:stats": ("hash", "not a list: never touched"),
                       "bull:dlq:wait": ("list", "a BullMQ queue's own list: never touched")}
    assert any("bull:dlq:stats is a hash, not a list: never touched" in w for w in plan["warnings"])
    assert plan["diff"]["after"] == {"bull:dlq:email": 40, "bull:dlq:followup": 1000, "bull:dlq:outreach": 1000}
    assert (r.llen("bull:dlq:outreach"), r.llen("bull:dlq:followup")) == (1500, 1200)
    assert platform.audit("bullmq_dlq_trim") == []

    done = run(platform, dlq_type="list", dlq_pattern=DLQ_LIST_PATTERN, dlq_keep=1000)
    assert done["changed"] is True and done["dlq"]["removed"] == 700
    # The newest 1,000 of each list stay, in order; the short list is as it was.
    assert r.lrange("bull:dlq:outreach", 0, -1) == ["outreach-{0}".format(i) for i in range(1499, 499, -1)]
    assert r.lrange("bull:dlq:followup", 0, -1) == ["followup-{0}".format(i) for i in range(1199, 199, -1)]
    assert r.llen("bull:dlq:email") == 40
    assert {key: dump(r, key) for key in untouched} == untouched
    audited = {row[3]: row[6] for row in platform.audit("bullmq_dlq_trim")}
    assert set(audited) == {"bull:dlq:outreach", "bull:dlq:followup"}
    assert audited["bull:dlq:outreach"]["removed"] == 500 and audited["bull:dlq:followup"]["pattern"] == "bull:dlq:*"

    again = run(platform, dlq_type="list", dlq_pattern=DLQ_LIST_PATTERN, dlq_keep=1000)
    assert again["changed"] is False and len(platform.audit("bullmq_dlq_trim")) == 2


def test_a_key_that_stops_being_a_list_before_its_trim_is_left_alone(platform):
    """The Lua trim re-checks the type atomically: what SCAN saw as a list and is now a hash is never touched."""
    r = platform.r(2)
    r.lpush("bull:dlq:a", *range(20))
    lists, skipped = scan_dlq_lists(r, "bull:dlq:*", 5)
    assert lists == [dict(key="bull:dlq:a", length=20, removed=15)] and skipped == []
    r.delete("bull:dlq:a")
    r.hset("bull:dlq:a", "f", "v")
    trim = r.register_script(_TRIM_LIST_LUA)
    assert trim(keys=["bull:dlq:a"], args=[5, "left"]) == ["hash", -1]
    assert r.hgetall("bull:dlq:a") == {"f": "v"}


@pytest.mark.parametrize("pattern", ["*", "bull*", "*:dlq:*", "", "bull?dlq:*"])
def test_a_pattern_without_a_literal_prefix_is_refused(platform, pattern):
    r = platform.r(2)
    r.lpush("bull:dlq:outreach", *range(10))
    with pytest.raises(CerniqError, match="must start with a literal key prefix ending in ':'"):
        run(platform, dlq_type="list", dlq_pattern=pattern, dlq_keep=1)
    assert r.llen("bull:dlq:outreach") == 10


def test_a_pattern_matching_too_many_keys_is_refused_before_anything_changes(platform):
    r = platform.r(2)
    pipe = r.pipeline(transaction=False)
    for i in range(DLQ_PATTERN_MAX_KEYS + 1):
        pipe.rpush("bull:dlq:k{0}".format(i), "a", "b")
    pipe.execute()
    with pytest.raises(CerniqError, match="matches more than 1000 keys.*Nothing was changed"):
        run(platform, dlq_type="list", dlq_pattern="bull:dlq:*", dlq_keep=1)
    assert r.llen("bull:dlq:k0") == 2 and r.llen("bull:dlq:k1000") == 2
