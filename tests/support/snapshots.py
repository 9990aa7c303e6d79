"""Whole-state snapshots, to prove a run changed nothing: every Redis key's DUMP and absolute expiry, every table's
checksum."""

from __future__ import annotations

import redis

from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import database_snapshot


def redis_dump(client):
    """{key: (DUMP, absolute expiry)} for every key of one Redis db, found with SCAN.

    The expiry is PEXPIRETIME (Unix ms; -1 without one): unlike a TTL it does not move while the test runs, so a
    run that re-sets a key's expiry, even to "the same TTL" a moment later, shows up. A hash stands as its sorted
    fields and values instead of its DUMP: the server may re-lay a small hash's fields in another order with nothing
    written to it (seen with BullMQ job hashes), and the order of a hash's fields carries no meaning.
    """
    keys = sorted(client.scan_iter(count=1000))
    if not keys:
        return {}
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    types = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for key, kind in zip(keys, types):
        if kind in (b"hash", "hash"):
            pipe.hgetall(key)
        else:
            pipe.dump(key)
        pipe.execute_command("PEXPIRETIME", key)
    replies = pipe.execute()
    state = {}
    for i, key in enumerate(keys):
        value = replies[2 * i]
        if isinstance(value, dict):
            value = ("hash", tuple(sorted(value.items())))
        state[key] = (value, replies[2 * i + 1])
    return state


def platform_state(platform):
    """Redis (platform and BullMQ dbs, raw bytes) and PostgreSQL (row counts, checksums) as one comparable value."""
    state = {}
    for db in (platform.params["redis_db"], platform.params["bullmq_db"]):
        raw = redis.Redis(host=platform.redis.host, port=platform.redis.port, password=platform.redis.password, db=db)
        state["redis{0}".format(db)] = redis_dump(raw)
    state["postgres"] = database_snapshot(platform.params)["tables"]
    return state
