"""Session fixtures: throwaway redis-server and PostgreSQL on free ports, the schema loaded, playbooks run for real.

Tests that need a clean slate ask for `platform` (empties Redis and the tables first); tests that kill a server
ask for their own private one (`private_redis`, `private_pg`) so the session's servers stay up for the others.
"""

from __future__ import annotations

import shutil

import pytest

from tests.support import services
from tests.support.playbooks import inventory_for, run_playbook
from tests.support.seed import SeedPlan, seed_all
from tests.support.services import module_params

# Fixtures shared by many test modules, registered once for the whole suite: the vendor fakes (instantly,
# timelines, their documents) and split_platform (the platform on three hosts).
pytest_plugins = ["tests.support.vendor_fixtures", "tests.support.split_platform"]

REDIS_PASSWORD = "test-redis-pw"


@pytest.fixture(scope="session")
def redis_server():
    server = services.RedisServer(password=REDIS_PASSWORD).start()
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server():
    server = services.PostgresServer().start()
    server.load_schema()
    yield server
    server.destroy()


@pytest.fixture()
def private_redis():
    server = services.RedisServer(password=REDIS_PASSWORD).start()
    yield server
    server.kill()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture()
def private_pg():
    server = services.PostgresServer().start()
    server.load_schema()
    yield server
    server.destroy()


class Platform:
    """The session's servers, emptied, with helpers to seed and to run playbooks against them."""

    def __init__(self, redis_server, pg_server):
        self.redis = redis_server
        self.pg = pg_server
        self.params = module_params(redis_server, pg_server)

    def r(self, db=0):
        return self.redis.client(db)

    def sql(self, query, args=None):
        conn = self.pg.connect()
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else cur.rowcount
        finally:
            conn.close()

    def seed(self, **plan):
        conn = self.pg.connect()
        try:
            return seed_all(conn, self.redis, SeedPlan(**plan))
        finally:
            conn.close()

    def inventory(self, **extra_vars):
        return inventory_for(self.redis, self.pg, extra_vars)

    def play(self, playbook, extravars=None, **kwargs):
        return run_playbook(playbook, self.inventory(), extravars=extravars, **kwargs)

    def audit(self, action=None):
        if action:
            return self.sql("SELECT actor, module, action, target, reason, before, after FROM ops_audit_log "
                            "WHERE action = %s ORDER BY id", (action,))
        return self.sql("SELECT actor, module, action, target, reason, before, after FROM ops_audit_log ORDER BY id")


@pytest.fixture()
def platform(redis_server, pg_server):
    for db in (0, 2):
        redis_server.client(db).flushdb()
    pg_server.reset_data()
    return Platform(redis_server, pg_server)
