"""Whole-state snapshots, to prove a run changed nothing: every Redis key's DUMP and absolute expiry, every table's
checksum."""

from __future__ import annotations

import redis

from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import database_snapshot


def redis_dump(client):
    """{key: (DUMP, absolute expiry)} for every key of one Redis db, found with SCAN.

    The expiry is PEXPIRETIME (Unix ms; -1 without one): unlike a TTL it does not move while the test runs, so a
    run that re-sets a key's expiry, even to "the same TTL" a moment later, shows up.
    """
    keys = sorted(client.scan_iter(count=1000))
    if not keys:
        return {}
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.dump(key)
        pipe.execute_command("PEXPIRETIME", key)
    replies = pipe.execute()
    return {key: (replies[2 * i], replies[2 * i + 1]) for i, key in enumerate(keys)}


def platform_state(platform):
    """Redis (platform and BullMQ dbs, raw bytes) and PostgreSQL (row counts, checksums) as one comparable value."""
    state = {}
    for db in (platform.params["redis_db"], platform.params["bullmq_db"]):
        raw = redis.Redis(host=platform.redis.host, port=platform.redis.port, password=platform.redis.password, db=db)
        state["redis{0}".format(db)] = redis_dump(raw)
    state["postgres"] = database_snapshot(platform.params)["tables"]
    return state
