"""The platform role's election (platform_primary_info) outside the lab: with two hosts in the redis and db groups, the
play asks each at run time and works against the one that answers as primary, whatever the inventory's order; with no
primary among them, or two (a split brain), the run fails before any change with one line naming each server.
The lab (tests/integration/lab) proves the election on real HA pairs; this runs in seconds. The first test also runs
under ansible-core 2.19 by `make compat` (tools/compat-check), where it is the one test that runs
platform_primary_info."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_PHONES
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._health import find_primaries
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import database_snapshot
from tests.support import services
from tests.support.playbooks import run_playbook, three_host_inventory
from tests.support.snapshots import assert_unchanged, platform_state

# Nothing listens there: the test servers bind 127.0.0.1 only.
DOWN = "127.0.0.3"
# A second loopback address, so a second server can listen on the session server's port (the election asks every
# host of a group on the one cerniq_db_port / cerniq_redis_port, as HA pairs run).
SECOND = "127.0.0.2"


@pytest.mark.compat
def test_the_play_elects_the_primary_that_answers_not_the_first_listed(platform):
    inventory = three_host_inventory(platform.redis, platform.pg)
    groups = inventory["all"]["children"]
    groups["db"]["hosts"] = {"db-1": {"ansible_host": DOWN}, "db-2": {"ansible_host": platform.pg.host}}
    groups["redis"]["hosts"] = {"redis-1": {"ansible_host": DOWN}, "redis-2": {"ansible_host": platform.redis.host}}

    run = run_playbook("stack_health.yml", inventory)

    assert run.rc == 0, run.stdout[-3000:]
    elected = run.result("Find the PostgreSQL primary and the Redis master")
    assert elected["db"]["primary"]["name"] == "db-2"
    assert elected["redis"]["primary"]["name"] == "redis-2"
    assert [(c["name"], c["reachable"]) for c in elected["db"]["candidates"]] == [("db-1", False), ("db-2", True)]
    assert [(c["name"], c["reachable"]) for c in elected["redis"]["candidates"]] == [
        ("redis-1", False),
        ("redis-2", True),
    ]
    assert run.result("Read the health")["healthy"] is True


# --- the servers: independent primaries, a real standby, a replica -------------------------------------------------


def candidate(name, server):
    return {"name": name, "host": server.host, "port": server.port}


def where(server):
    return "{0}:{1}".format(server.host, server.port)


def clone_standby(primary):
    """A real streaming-replication standby of `primary` (pg_basebackup -R), on a port of its own."""
    standby = services.PostgresServer(password=primary.password, superuser_password=primary.superuser_password)
    standby.base_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(standby.base_dir, 0o755)
    standby._chown(standby.base_dir)  # pylint: disable=protected-access
    subprocess.run(standby._as_owner(  # pylint: disable=protected-access
        [str(standby.bin_dir / "pg_basebackup"), "-h", primary.host, "-p", str(primary.port), "-U",
         services.DB_SUPERUSER, "-D", str(standby.data_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync"]),
        env=dict(os.environ, PGPASSWORD=primary.superuser_password, PGCONNECT_TIMEOUT="5"), check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
    standby.socket_dir.mkdir(exist_ok=True)
    standby._chown(standby.socket_dir)  # pylint: disable=protected-access
    return standby.start()


def lone_replica(host="127.0.0.1", port=None, password=None):
    """A Redis that is a replica (ROLE says slave) of a master that does not exist: REPLICAOF a port nobody holds."""
    return services.RedisServer(host=host, port=port, password=password,
                                extra_args=["--replicaof", "127.0.0.1", str(services.free_port())]).start()


@pytest.fixture()
def pg_standby(private_pg):
    standby = clone_standby(private_pg)
    yield standby
    standby.destroy()


@pytest.fixture()
def redis_replica(redis_server):
    replica = lone_replica(password=redis_server.password)
    yield replica
    replica.kill()
    shutil.rmtree(replica.data_dir, ignore_errors=True)


# --- the election itself (the module's core) -----------------------------------------------------------------------


def test_two_postgresql_primaries_are_a_split_brain(platform, private_pg):
    with pytest.raises(CerniqError) as refused:
        find_primaries(platform.params, db_candidates=[candidate("db-1", platform.pg), candidate("db-2", private_pg)])

    assert refused.value.msg == (
        "PostgreSQL: more than one primary answers (db-1 ({0}), db-2 ({1})): a split brain; fix the replication "
        "before any procedure runs. Nothing was changed.".format(where(platform.pg), where(private_pg)))


def test_a_standby_whose_primary_is_gone_is_no_primary(platform, private_pg, pg_standby):
    # While its primary runs, the pair elects the primary whatever the order: the standby really is one.
    pair = [candidate("db-1", pg_standby), candidate("db-2", private_pg)]
    elected = find_primaries(platform.params, db_candidates=pair)["db"]
    assert elected["primary"]["name"] == "db-2"
    assert [(c["name"], c["role"]) for c in elected["candidates"]] == [("db-1", "standby"), ("db-2", "primary")]

    private_pg.stop()

    with pytest.raises(CerniqError) as refused:
        find_primaries(platform.params, db_candidates=pair)
    message = refused.value.msg
    assert message.startswith("PostgreSQL: no primary among db-1, db-2: db-1: standby; db-2: "), message
    assert where(private_pg) in message and message.endswith(". Nothing was changed."), message

    with pytest.raises(CerniqError) as alone:
        find_primaries(platform.params, db_candidates=[candidate("db-1", pg_standby)])
    assert alone.value.msg == "PostgreSQL: no primary among db-1: db-1: standby. Nothing was changed."


def test_two_redis_masters_are_a_split_brain(platform, private_redis):
    with pytest.raises(CerniqError) as refused:
        find_primaries(platform.params,
                       redis_candidates=[candidate("redis-1", platform.redis), candidate("redis-2", private_redis)])

    assert refused.value.msg == (
        "Redis: more than one primary answers (redis-1 ({0}), redis-2 ({1})): a split brain; fix the replication "
        "before any procedure runs. Nothing was changed.".format(where(platform.redis), where(private_redis)))


def test_a_redis_replica_alone_or_beside_a_dead_master_is_no_primary(platform, redis_replica):
    assert redis_replica.client().execute_command("ROLE")[0] == "slave"

    with pytest.raises(CerniqError) as alone:
        find_primaries(platform.params, redis_candidates=[candidate("redis-1", redis_replica)])
    assert alone.value.msg == "Redis: no primary among redis-1: redis-1: replica. Nothing was changed."

    dead = {"name": "redis-2", "host": DOWN, "port": platform.redis.port}
    with pytest.raises(CerniqError) as refused:
        find_primaries(platform.params, redis_candidates=[candidate("redis-1", redis_replica), dead])
    message = refused.value.msg
    assert message.startswith("Redis: no primary among redis-1, redis-2: redis-1: replica; redis-2: "), message
    assert "{0}:{1}".format(DOWN, platform.redis.port) in message, message


# --- through a playbook: the ban, confirmed, stops at the election and changes nothing --------------------------------


@pytest.fixture()
def second_pg(pg_server):
    """An independent PostgreSQL primary on the session server's port at another address, the schema loaded."""
    server = services.PostgresServer(host=SECOND, port=pg_server.port).start()
    server.load_schema()
    yield server
    server.destroy()


@pytest.fixture()
def second_redis_replica(redis_server):
    """A Redis replica (of nobody) on the session server's port at another address."""
    replica = lone_replica(host=SECOND, port=redis_server.port, password=redis_server.password)
    yield replica
    replica.kill()
    shutil.rmtree(replica.data_dir, ignore_errors=True)


def refused_ban(platform, inventory):
    """Run the confirmed ban of an ACTIVE phone; return the run and its election's failure message."""
    assert platform.sql("SELECT status FROM " + TABLE_PHONES + " WHERE id = 'phone_02'") == [("ACTIVE",)]
    run = run_playbook("phone_banned.yml", inventory, extravars={"phone": "phone_02", "confirm": True})
    assert run.rc != 0, run.stdout[-3000:]
    failed = run.result("Find the PostgreSQL primary and the Redis master")
    assert failed["_event"] == "runner_on_failed", failed
    assert not run.changed_tasks, run.changed_tasks
    # Nothing after the election ran: not the plan, not the ban.
    assert not run.results("Work out what the ban would change"), run.stdout[-3000:]
    assert not run.results("Ban the phone"), run.stdout[-3000:]
    return run, failed["msg"]


def test_the_ban_refuses_two_postgresql_primaries_before_any_change(platform, second_pg):
    platform.seed(phones=4, leads=20, old_log_rows=0, reviews=0, jobs_per_phone=4, dlq_entries=0, offline=(),
                  banned=(), drift_phone="", leak_phone="", no_ttl_phone="")
    inventory = three_host_inventory(platform.redis, platform.pg)
    inventory["all"]["children"]["db"]["hosts"] = {"db-1": {"ansible_host": platform.pg.host},
                                                   "db-2": {"ansible_host": SECOND}}
    second_params = dict(platform.params, **second_pg.connection_params())
    before, second_before = platform_state(platform), database_snapshot(second_params)["tables"]

    run, message = refused_ban(platform, inventory)

    assert message == (
        "PostgreSQL: more than one primary answers (db-1 ({0}), db-2 ({1})): a split brain; fix the replication "
        "before any procedure runs. Nothing was changed.".format(where(platform.pg), where(second_pg)))
    assert_unchanged(before, platform_state(platform))
    assert database_snapshot(second_params)["tables"] == second_before
    assert not platform.audit(), run.stdout[-3000:]


def test_the_ban_refuses_a_redis_group_without_a_master_before_any_change(platform, second_redis_replica):
    platform.seed(phones=4, leads=20, old_log_rows=0, reviews=0, jobs_per_phone=4, dlq_entries=0, offline=(),
                  banned=(), drift_phone="", leak_phone="", no_ttl_phone="")
    inventory = three_host_inventory(platform.redis, platform.pg)
    inventory["all"]["children"]["redis"]["hosts"] = {"redis-1": {"ansible_host": SECOND},
                                                      "redis-2": {"ansible_host": DOWN}}
    before = platform_state(platform)

    run, message = refused_ban(platform, inventory)

    assert message.startswith("Redis: no primary among redis-1, redis-2: redis-1: replica; redis-2: "), message
    assert message.endswith(". Nothing was changed."), message
    assert_unchanged(before, platform_state(platform))
    assert not platform.audit(), run.stdout[-3000:]
