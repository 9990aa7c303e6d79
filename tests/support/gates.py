"""A gate a test holds shut so a run stops at a chosen point (batch N, row N) and a fault lands there on any machine.

The test holds an exclusive PostgreSQL advisory lock; the run reaches a spot where the server asks for the same lock
(a trigger or a row-level security policy the test installs, calling `GATE_SQL`) and waits there. The test sees the
wait in pg_locks, does its damage (kills a server, a backend), then opens the gate. No sleep, no timing guess: a slow
machine only waits longer, a fast one cannot run past the gate.

CreateDatabaseGate is the same idea for a run that creates a database (a recovery's restore): a lock on template0
that CREATE DATABASE waits for.
"""

from __future__ import annotations

import contextlib
import time

import psycopg2

from tests.support.services import DB_NAME

GATE_KEY = 727001
# What a trigger or policy function runs to stop at the gate (a shared lock: it only waits while the test holds it).
GATE_SQL = "PERFORM pg_advisory_xact_lock_shared({0})".format(GATE_KEY)


class GateMissed(AssertionError):
    pass


class Gate:
    """Shut on creation; `wait_for_arrival()` returns the pid of the backend waiting at it; `open()` lets it through."""

    def __init__(self, pg_server, dbname=DB_NAME):
        # Advisory locks belong to one database: the gate is held in the database the run works in.
        self.conn = pg_server.superuser_connect(dbname)
        self.dbname = dbname
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (GATE_KEY,))

    def waiting(self):
        """Pids of the backends waiting at the gate."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                        "WHERE l.locktype = 'advisory' AND l.classid = 0 AND l.objid = %s AND l.objsubid = 1 "
                        "AND NOT l.granted AND d.datname = %s", (GATE_KEY, self.dbname))
            return [row[0] for row in cur.fetchall()]

    def wait_for_arrival(self, runner, timeout=120, explain=lambda: ""):
        """The pid waiting at the gate; fails at once when `runner` (the run's thread) ended without arriving, with
        `explain()` (e.g. the run's output) in the message."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            waiting = self.waiting()
            if waiting:
                return waiting[0]
            if not runner.is_alive():
                raise GateMissed("the run ended before it reached the gate: {0}".format(explain()))
            time.sleep(0.05)
        raise GateMissed("no backend reached the gate within {0}s: {1}".format(timeout, explain()))

    def open(self):
        if self.conn is None:
            return
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (GATE_KEY,))
        finally:
            self.conn.close()
            self.conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.open()


class CreateDatabaseGate:
    """Holds CREATE DATABASE ... TEMPLATE template0 (the restore's first statement, after the workers were stopped):
    COMMENT ON DATABASE template0 in an open transaction takes the lock CREATE DATABASE waits on. Rolled back, it
    leaves nothing behind."""

    def __init__(self, pg_server):
        self.conn = pg_server.superuser_connect()
        self.conn.autocommit = False
        with self.conn.cursor() as cur:
            cur.execute("COMMENT ON DATABASE template0 IS 'cerniq test gate'")
            cur.execute("SELECT 1 FROM pg_locks WHERE locktype = 'object' AND granted AND pid = pg_backend_pid() "
                        "AND classid = 'pg_database'::regclass")
            assert cur.fetchone(), "the gate holds no lock on template0"

    def waiting(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT l.pid FROM pg_locks l WHERE l.locktype = 'object' AND NOT l.granted "
                        "AND l.classid = 'pg_database'::regclass "
                        "AND l.objid = (SELECT oid FROM pg_database WHERE datname = 'template0')")
            return [row[0] for row in cur.fetchall()]

    def close(self):
        # Terminated with every other client backend, the gate's transaction is rolled back by the server.
        if not self.conn.closed:
            with contextlib.suppress(psycopg2.Error):
                self.conn.rollback()
            self.conn.close()


def terminate_every_client_backend(pg_server):
    """Every client backend of the server but this one (the gate's included): what a crashing pooler or an operator's
    pg_terminate_backend loop does."""
    conn = pg_server.superuser_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
            return cur.fetchone()[0]
    finally:
        conn.close()
