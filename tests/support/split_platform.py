"""The platform on three hosts: Redis on 127.0.0.11, PostgreSQL on 127.0.0.12, the workers host on 127.0.0.13.

The inventory (three_host_inventory) names only the hosts' addresses, so a play that reaches a service anywhere but
through the inventory groups (localhost, the wrong group) fails. The workers host runs a real Node BullMQ worker
managed by the `process` manager of the workers role (a pid file), so tests can see it stopped and started.

A pytest plugin (registered in tests/conftest.py): its servers live for the test module that asks for
`split_platform`, which empties them for each test.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import redis.asyncio

from tests.support import services
from tests.support.nodeworker import WORKER_JS
from tests.support.playbooks import run_playbook, three_host_inventory
from tests.support.seed import seed_small
from tests.support.services import REPO_ROOT, module_params

REDIS_ADDRESS = "127.0.0.11"
DB_ADDRESS = "127.0.0.12"
REDIS_PASSWORD = "split-redis-pw"
WORKER_QUEUE = "q:wa:phone_01"


class SplitPlatform:
    def __init__(self, redis_server, pg_server, work_dir):
        self.redis = redis_server
        self.pg = pg_server
        self.work_dir = Path(work_dir)
        self.backup_dir = self.work_dir / "backups"
        # The controller's copies of the backups (backup_database.yml), never the test user's ~/cerniq/backups.
        self.copy_dir = self.work_dir / "controller-copies"
        self.pid_file = self.work_dir / "workers.pid"
        self.worker_log = self.work_dir / "workers.log"
        self.env_file = self.work_dir / "workers.env"
        self.params = module_params(redis_server, pg_server)

    # --- state ----------------------------------------------------------------------------------------------

    def reset(self):
        self.stop_worker()
        for db in (0, 2):
            self.redis.client(db).flushdb()
        self.pg.drop_databases("cerniq\\_%")
        if services.DB_NAME not in self.databases():
            # A test dropped the live database and failed before a recovery brought it back.
            self.pg._ensure_database()  # pylint: disable=protected-access
            self.pg.load_schema()
        self.pg.reset_data()
        conn = self.pg.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("COMMENT ON DATABASE cerniq IS NULL")
                # A swap test may have changed the database's GRANTs and settings: back to the defaults.
                cur.execute("ALTER DATABASE cerniq RESET ALL")
                cur.execute("GRANT CONNECT, TEMPORARY ON DATABASE cerniq TO PUBLIC")
        finally:
            conn.close()
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        shutil.rmtree(self.copy_dir, ignore_errors=True)
        for path in (self.pid_file, self.worker_log, self.env_file):
            if path.exists():
                path.unlink()

    def seed(self, **overrides):
        return seed_small(self.pg, self.redis, **overrides)

    def sql(self, query, args=None, dbname=services.DB_NAME):
        conn = self.pg.connect(dbname)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else cur.rowcount
        finally:
            conn.close()

    def databases(self):
        conn = self.pg.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT datname::text, shobj_description(oid, 'pg_database') FROM pg_database "
                            "WHERE datname LIKE 'cerniq%' ORDER BY 1")
                return {name: json.loads(comment) if comment else None for name, comment in cur.fetchall()}
        finally:
            conn.close()

    def r(self, db=0):
        return self.redis.client(db)

    # --- playbooks ------------------------------------------------------------------------------------------

    def worker_command(self):
        """The workers' start command: no password in it (the worker reads CERNIQ_REDIS_PASSWORD)."""
        return "node {0} --host {1} --port {2} --db 2 --queue {3}".format(
            WORKER_JS, self.redis.host, self.redis.port, WORKER_QUEUE)

    def worker_environment(self):
        return {"CERNIQ_REDIS_PASSWORD": self.redis.password}

    def inventory(self, **extra):
        variables = dict(cerniq_workers_manager="process", cerniq_workers_process_start=self.worker_command(),
                         cerniq_workers_process_pid_file=str(self.pid_file),
                         cerniq_workers_process_log=str(self.worker_log),
                         cerniq_workers_process_chdir=str(REPO_ROOT), cerniq_workers_queues=[WORKER_QUEUE],
                         cerniq_workers_environment=self.worker_environment(),
                         cerniq_workers_env_file=str(self.env_file),
                         cerniq_workers_queue_pattern="", cerniq_backup_dir=str(self.backup_dir),
                         cerniq_backup_copy_dir=str(self.copy_dir),
                         cerniq_audit_actor="pytest")
        addresses = {key: extra.pop(key) for key in ("redis_address", "db_address") if key in extra}
        variables.update(extra)
        return three_host_inventory(self.redis, self.pg, variables, **addresses)

    def play(self, playbook, extravars=None, inventory=None, **kwargs):
        return run_playbook(playbook, inventory or self.inventory(), extravars=extravars, **kwargs)

    # --- the Node worker the workers role manages -----------------------------------------------------------

    def start_worker(self):
        """Start the Node worker as the workers role's process manager would, and wait until it is connected."""
        log = open(self.worker_log, "ab")
        proc = subprocess.Popen(self.worker_command().split(), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=REPO_ROOT, start_new_session=True,
                                env=dict(os.environ, **self.worker_environment()))
        self.pid_file.write_text("{0}\n".format(proc.pid))
        self.wait_for_log(lambda e: e.get("event") == "ready" and e.get("pid") == proc.pid, 20, "worker ready")
        return proc.pid

    def worker_pid(self):
        """The pid in the pid file if that process lives (not a zombie), else None."""
        if not self.pid_file.exists():
            return None
        pid = int(self.pid_file.read_text().strip() or 0)
        try:
            with open("/proc/{0}/stat".format(pid)) as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return None
        return None if state == "Z" else pid

    def stop_worker(self):
        pid = self.worker_pid()
        if pid:
            os.kill(pid, signal.SIGTERM)
            services.wait_until(lambda: self.worker_pid() is None, 15, "worker exit")

    def log_events(self):
        if not self.worker_log.exists():
            return []
        events = []
        for line in self.worker_log.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        return events

    def wait_for_log(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(predicate(e) for e in self.log_events()):
                return
            time.sleep(0.1)
        raise AssertionError("timed out after {0}s waiting for {1}; log: {2}".format(
            timeout, what, self.log_events()[-5:]))

    def completed_ids(self):
        return {e.get("id") for e in self.log_events() if e.get("event") == "completed"}

    def add_jobs(self, job_ids, queue=WORKER_QUEUE):
        """Add jobs (deterministic ids) through the Python bullmq package, as the platform's producers do."""
        from bullmq import Queue

        async def add():
            connection = redis.asyncio.Redis(host=self.redis.host, port=self.redis.port, db=2,
                                             password=self.redis.password)
            target = Queue(queue, {"connection": connection, "prefix": "bull"})
            try:
                for job_id in job_ids:
                    await target.add("send", {"test": job_id}, {"jobId": job_id})
            finally:
                await target.close()

        asyncio.run(add())


@pytest.fixture(scope="module")
def split_servers():
    redis_server = services.RedisServer(host=REDIS_ADDRESS, password=REDIS_PASSWORD).start()
    pg = services.PostgresServer(host=DB_ADDRESS).start()
    pg.load_schema()
    work_dir = tempfile.mkdtemp(prefix="cerniq-split-")
    platform = SplitPlatform(redis_server, pg, work_dir)
    yield platform
    platform.stop_worker()
    redis_server.kill()
    shutil.rmtree(redis_server.data_dir, ignore_errors=True)
    pg.destroy()
    shutil.rmtree(work_dir, ignore_errors=True)


@pytest.fixture()
def split_platform(split_servers):
    split_servers.reset()
    yield split_servers
    split_servers.stop_worker()
