"""Whole-state snapshots, to prove a run changed nothing: every Redis key's DUMP and absolute expiry, every table's
checksum."""

from __future__ import annotations

import redis

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ALL_TABLES
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import (
    database_facts,
    database_snapshot,
    snapshot_cursor,
    table_figures,
)


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
    return services_state(platform.params)


def services_state(params, redis_dbs=None, every_database=False):
    """The state of the services that module parameters `params` point at, as one comparable value.

    `redisN`: every key of Redis db N (redis_dump()), for the platform's and BullMQ's dbs (`redis_db`, `bullmq_db`),
    or the dbs `redis_dbs` names; "all" adds every other db that holds a key. `postgres`: each contract table's row
    count, newest created_at and checksum in `db_name`. With `every_database`, also `postgres:<name>` for every other
    database the user may connect to (a recovery's restored or kept database), and each database's marker (the
    COMMENT a recovery writes, see _snapshot.parse_marker) as the entry "(marker)".
    """
    state = {}
    dbs = {params["redis_db"], params["bullmq_db"]} if redis_dbs in (None, "all") else set(redis_dbs)
    if redis_dbs == "all":
        with _redis(params, 0) as client:
            dbs.update(int(name[2:]) for name in client.info("keyspace"))
    for db in sorted(dbs):
        with _redis(params, db) as client:
            state["redis{0}".format(db)] = redis_dump(client)
    if not every_database:
        state["postgres"] = database_snapshot(params)["tables"]
        return state
    with snapshot_cursor(params, require=()) as cur:
        cur.execute("SELECT datname::text FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' "
                    "AND has_database_privilege(datname, 'CONNECT') ORDER BY 1")
        names = [row[0] for row in cur.fetchall()]
    for name in names:
        with snapshot_cursor(dict(params, db_name=name), require=()) as cur:
            marker = database_facts(cur)["marker"]
            cur.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL", (list(ALL_TABLES),))
            present = [row[0] for row in cur.fetchall()]
            figures = table_figures(cur, present) if present else {}
        state["postgres" if name == params["db_name"] else "postgres:" + name] = dict(figures, **{"(marker)": marker})
    return state


def _redis(params, db):
    return redis.Redis(host=params["redis_host"], port=params["redis_port"], db=db,
                       username=params.get("redis_username") or None, password=params.get("redis_password") or None,
                       ssl=bool(params.get("redis_tls")), ssl_ca_certs=params.get("redis_tls_ca_cert") or None)


def state_differences(before, after):
    """What differs between two platform_state() values, one line per Redis key or table ([] when equal)."""
    lines = []
    for part in sorted(set(before) | set(after)):
        old, new = before.get(part, {}), after.get(part, {})
        if not isinstance(old, dict) or not isinstance(new, dict):
            if old != new:
                lines.append("{0}: {1!r} -> {2!r}".format(part, old, new))
            continue
        for name in sorted(set(old) | set(new), key=str):
            if name not in old:
                lines.append("{0}: {1} appeared".format(part, name))
            elif name not in new:
                lines.append("{0}: {1} went away".format(part, name))
            elif old[name] != new[name]:
                lines.append("{0}: {1} changed ({2} -> {3})".format(part, name, _short(old[name]), _short(new[name])))
    return lines


def _short(value, limit=160):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def without_keys(state, *prefixes):
    """platform_state() less the Redis keys starting with any of `prefixes` (what a test changed on purpose)."""
    return {part: ({key: value for key, value in content.items()
                    if not any(_text(key).startswith(prefix) for prefix in prefixes)}
                   if part.startswith("redis") else content)
            for part, content in state.items()}


def without_tables(state, *tables):
    """platform_state() less the PostgreSQL tables named (a table a run writes to by design, checked on its own)."""
    return dict(state, postgres={table: figures for table, figures in state["postgres"].items()
                                 if table not in tables})


def _text(key):
    return key.decode() if isinstance(key, bytes) else key


def assert_unchanged(before, after):
    """Assert two platform_state() values are equal, naming each key or table that is not."""
    differences = state_differences(before, after)
    assert not differences, "the run changed state:\n" + "\n".join(differences)
