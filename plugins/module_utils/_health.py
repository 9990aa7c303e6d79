# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health of the platform's services: each answered with healthy/unhealthy and the figure behind it."""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_connect,
    postgres_errors,
    postgres_where,
    redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ALL_TABLES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import workers_hold


def redis_health(params, db, role):
    where = redis_where(params, db)
    try:
        client = redis_client(params, db, allow_replica=True)
        with redis_errors(where):
            pipe = client.pipeline(transaction=False)
            pipe.info("server")
            pipe.info("persistence")
            pipe.config_get("maxmemory-policy")
            pipe.config_get("save")
            pipe.dbsize()
            pipe.info("replication")
            server, persistence, policy, save, keys, replication = pipe.execute()
    except CerniqError as exc:
        return dict(service="redis", role=role, healthy=False, where=where, message=exc.msg)
    warnings = []
    eviction = policy.get("maxmemory-policy")
    if eviction != "noeviction":
        warnings.append("maxmemory-policy is {0}: BullMQ needs noeviction or it may lose jobs".format(eviction))
    # `save ""` switches RDB snapshots off; rdb_last_save_time is set at start-up even then.
    if not persistence.get("aof_enabled") and not save.get("save"):
        warnings.append("persistence is off (no AOF, no RDB save points): a restart loses every queue")
    if replication.get("role") != "master":
        warnings.append("this is a replica of {0}:{1}; the procedures refuse it".format(
            replication.get("master_host"), replication.get("master_port")))
    return dict(service="redis", role=role, healthy=True, where=where, version=server.get("redis_version"),
                replication_role=replication.get("role"),
                keys=keys, maxmemory_policy=eviction, aof_enabled=bool(persistence.get("aof_enabled")),
                warnings=warnings, message="ok")


def node_workers(params):
    """Connected BullMQ workers, from CLIENT LIST (Node names connections '<prefix>:<base64(queue)>')."""
    client = redis_client(params, params["bullmq_db"])
    with redis_errors(redis_where(params, params["bullmq_db"])):
        clients = client.client_list()
    return [c for c in clients if c.get("name", "").startswith("bull:") and c.get("db") == str(params["bullmq_db"])]


def postgres_health(params):
    where = postgres_where(params)
    try:
        conn = postgres_connect(params, require=ALL_TABLES)
    except CerniqError as exc:
        return dict(service="postgresql", role="db", healthy=False, where=where, message=exc.msg)
    try:
        with postgres_errors(params, conn), conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version')")
            version = cur.fetchone()[0]
            # Estimated counts: a health check must stay cheap on a 100-million-row log.
            cur.execute("SELECT relname, GREATEST(reltuples, 0)::bigint FROM pg_class "
                        "WHERE relname = ANY(%s) AND relkind IN ('r', 'p')", (list(ALL_TABLES),))
            rows = dict(cur.fetchall())
            # A recovery that stopped the workers and did not finish (dr_database.yml's hold, one indexed read).
            hold = workers_hold(cur)
        conn.rollback()
    except CerniqError as exc:
        return dict(service="postgresql", role="db", healthy=False, where=where, message=exc.msg)
    finally:
        conn.close()
    warnings = []
    if hold and hold["open"]:
        hosts = ", ".join(hold["hosts"]) or "the workers hosts"
        warnings.append("recovery {0} stopped the workers on {1} at {2} and did not finish: run dr_database.yml -e "
                        "confirm=true to finish it or start them".format(hold["recovery"], hosts, hold["at"]))
    return dict(service="postgresql", role="db", healthy=True, where=where, version=version,
                estimated_rows=rows, workers_hold=hold, warnings=warnings,
                message="; ".join(["ok"] + ["WARNING: " + w for w in warnings]))


def platform_health(params, *, expect_workers=0):
    services = [
        redis_health(params, params["redis_db"], "platform"),
        redis_health(params, params["bullmq_db"], "bullmq"),
        postgres_health(params),
    ]
    workers = None
    if services[1]["healthy"]:
        try:
            workers = len(node_workers(params))
        except CerniqError as exc:
            services[1].update(healthy=False, message=exc.msg)
    worker_entry = dict(service="bullmq-workers", role="workers", healthy=workers is not None and
                        workers >= expect_workers, connections=workers,
                        message="{0} worker connection(s), {1} expected at least".format(workers, expect_workers))
    services.append(worker_entry)
    summary = ["{0} ({1}): {2} - {3}".format(s["service"], s["role"], "healthy" if s["healthy"] else "UNHEALTHY",
                                             s["message"]) for s in services]
    return dict(changed=False, services=services, healthy=all(s["healthy"] for s in services), summary=summary)


def _candidate(entry, default_port):
    """{'name': inventory name, 'host': address, 'port': optional} -> (name, host, port)."""
    if not isinstance(entry, dict) or not entry.get("host"):
        raise CerniqError("each candidate needs a host (and optionally name and port); got {0!r}".format(entry))
    return entry.get("name") or entry["host"], entry["host"], int(entry.get("port") or default_port)


def _db_role(params, host, port):
    there = dict(params, db_host=host, db_port=port)
    conn = postgres_connect(there, require=(), writable=False)
    try:
        with postgres_errors(there, conn), conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            standby = cur.fetchone()[0]
        conn.rollback()
    finally:
        conn.close()
    return "standby" if standby else "primary"


def _redis_role(params, host, port):
    there = dict(params, redis_host=host, redis_port=port)
    client = redis_client(there, params["redis_db"], allow_replica=True)
    with redis_errors(redis_where(there, params["redis_db"])):
        role = client.execute_command("ROLE")
    return {"master": "primary", "slave": "replica"}.get(role[0], role[0])


def _elect(service, candidates, default_port, read_role):
    seen = []
    for entry in candidates:
        name, host, port = _candidate(entry, default_port)
        try:
            seen.append(dict(name=name, host=host, port=port, role=read_role(host, port), reachable=True, message="ok"))
        except CerniqError as exc:
            seen.append(dict(name=name, host=host, port=port, role=None, reachable=False, message=exc.msg))
    primaries = [c for c in seen if c["role"] == "primary"]
    if len(primaries) > 1:
        raise CerniqError("{0}: more than one primary answers ({1}): a split brain; fix the replication before any "
                          "procedure runs. Nothing was changed.".format(
                              service, ", ".join("{name} ({host}:{port})".format(**c) for c in primaries)))
    if not primaries:
        raise CerniqError("{0}: no primary among {1}: {2}. Nothing was changed.".format(
            service, ", ".join(c["name"] for c in seen),
            "; ".join("{0}: {1}".format(c["name"], c["message"] if not c["reachable"] else c["role"]) for c in seen)))
    return dict(primary=primaries[0], candidates=seen)


def find_primaries(params, *, db_candidates=(), redis_candidates=()):
    """Which of several PostgreSQL servers is the primary and which Redis the master, asked of each at run time."""
    result = dict(changed=False, db=None, redis=None)
    if db_candidates:
        result["db"] = _elect("PostgreSQL", db_candidates, params["db_port"], lambda h, p: _db_role(params, h, p))
    if redis_candidates:
        result["redis"] = _elect("Redis", redis_candidates, params["redis_port"],
                                 lambda h, p: _redis_role(params, h, p))
    return result
