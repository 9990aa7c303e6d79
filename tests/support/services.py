"""Throwaway Redis and PostgreSQL servers on private ports and data dirs.

Used by the pytest fixtures, the local demo stack (tests/support/stack.py) and the Molecule scenarios, so all three
run the same servers with the same schema. A test may stop, kill or restart them.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg2
import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = REPO_ROOT / "schema" / "platform.sql"
DB_NAME = "cerniq"
DB_USER = "cerniq"
DB_SUPERUSER = "postgres"


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def wait_until(check, timeout, what):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:
            last_error = exc
        time.sleep(0.05)
    raise RuntimeError("{0} did not come up within {1}s: {2}".format(what, timeout, last_error))


class RedisServer:
    """A redis-server child process. `persistent=True` turns AOF on, as production should run it.

    `prefix` runs it through another command (the lab: `ip netns exec <namespace>`, so it listens on a lab host's
    address); `extra_args` are more redis-server options (the lab's replica: `--replicaof`, `--masterauth`).
    """

    def __init__(self, host="127.0.0.1", port=None, data_dir=None, password=None, persistent=False, prefix=(),
                 extra_args=()):
        self.host = host
        self.port = port or free_port(host)
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="cerniq-redis-"))
        self.password = password
        self.persistent = persistent
        self.prefix = list(prefix)
        self.extra_args = list(extra_args)
        self.process = None

    def command(self):
        cmd = [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port), "--bind", self.host,
               "--dir", str(self.data_dir), "--save", "", "--databases", "16", "--maxmemory-policy", "noeviction",
               "--appendonly", "yes" if self.persistent else "no", "--daemonize", "no",
               "--logfile", str(self.data_dir / "redis.log")]
        if self.password:
            cmd += ["--requirepass", self.password]
        return self.prefix + cmd + self.extra_args

    def start(self, detach=False):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=detach)
        wait_until(lambda: self.client().ping(), 10, "redis-server on {0}:{1}".format(self.host, self.port))
        return self

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def client(self, db=0, **kwargs):
        return redis.Redis(host=self.host, port=self.port, db=db, password=self.password, decode_responses=True,
                           **kwargs)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def restart(self):
        self.stop()
        return self.start()


def _postgres_bin_dir():
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql: install postgresql")
    return Path(candidates[-1])


class PostgresServer:
    """A private PostgreSQL cluster. PostgreSQL refuses to run as root, so as root it runs as user postgres.

    Password authentication over TCP (scram), so a test can see a refused password. `prefix` runs the postmaster
    through another command (the lab: `ip netns exec <namespace>`); `hba` are more pg_hba.conf lines, written after
    initdb (the lab: its subnet, replication).
    """

    def __init__(self, host="127.0.0.1", port=None, base_dir=None, password="cerniq-test-pw",
                 superuser_password="cerniq-super-pw", fast=True, prefix=(), hba=()):
        self.host = host
        self.port = port or free_port(host)
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="cerniq-pg-"))
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir / "run"
        self.password = password
        self.superuser_password = superuser_password
        self.fast = fast
        self.prefix = list(prefix)
        self.hba = list(hba)
        self.bin_dir = _postgres_bin_dir()

    def _as_owner(self, cmd):
        if os.geteuid() == 0:
            return ["runuser", "-u", DB_SUPERUSER, "--"] + cmd
        return cmd

    def _chown(self, path):
        if os.geteuid() == 0:
            entry = pwd.getpwnam(DB_SUPERUSER)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def initdb(self):
        self.base_dir.mkdir(parents=True, exist_ok=True)
        # mkdtemp makes 0700 dirs; the postgres user must be able to enter this one.
        os.chmod(self.base_dir, 0o755)
        self._chown(self.base_dir)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        self._chown(pwfile)
        subprocess.run(self._as_owner([str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", DB_SUPERUSER,
                                       "--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile", str(pwfile),
                                       "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        pwfile.unlink()
        if self.hba:
            with open(self.data_dir / "pg_hba.conf", "a") as handle:
                handle.write("".join(line + "\n" for line in self.hba))
        self.socket_dir.mkdir(exist_ok=True)
        self._chown(self.socket_dir)

    def start(self):
        if not (self.data_dir / "PG_VERSION").exists():
            self.initdb()
        options = ["-c", "port={0}".format(self.port), "-c", "listen_addresses={0}".format(self.host),
                   "-c", "unix_socket_directories={0}".format(self.socket_dir)]
        if self.fast:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        subprocess.run(self.prefix + self._as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l",
                                                     str(self.base_dir / "postgres.log"), "-w", "-t", "30", "-o",
                                                     " ".join(options), "start"]),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until(lambda: self.superuser_connect().close() is None, 15,
                   "PostgreSQL on {0}:{1}".format(self.host, self.port))
        self._ensure_database()
        return self

    @property
    def pid(self):
        pid_file = self.data_dir / "postmaster.pid"
        return int(pid_file.read_text().split()[0]) if pid_file.exists() else None

    def superuser_connect(self, dbname="postgres"):
        conn = psycopg2.connect(host=self.host, port=self.port, user=DB_SUPERUSER, password=self.superuser_password,
                                dbname=dbname, connect_timeout=3)
        conn.autocommit = True
        return conn

    def connect(self, dbname=DB_NAME):
        return psycopg2.connect(host=self.host, port=self.port, user=DB_USER, password=self.password,
                                dbname=dbname, connect_timeout=5)

    def _ensure_database(self):
        conn = self.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_USER,))
                if not cur.fetchone():
                    cur.execute("CREATE ROLE {0} LOGIN CREATEDB PASSWORD %s".format(DB_USER), (self.password,))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,))
                if not cur.fetchone():
                    cur.execute("CREATE DATABASE {0} OWNER {1}".format(DB_NAME, DB_USER))
        finally:
            conn.close()

    def load_schema(self, dbname=DB_NAME):
        conn = self.connect(dbname)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(SCHEMA_FILE.read_text())
        finally:
            conn.close()

    def drop_databases(self, like):
        """Drop every database whose name matches the LIKE pattern (copies a restore or a swap left behind)."""
        conn = self.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (like,))
                for (name,) in cur.fetchall():
                    cur.execute("DROP DATABASE {0} WITH (FORCE)".format(name))
        finally:
            conn.close()

    def reset_data(self, dbname=DB_NAME):
        """Empty every contract table (between tests), keeping the schema."""
        conn = self.connect(dbname)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("TRUNCATE wa_phone_numbers, gold_lead_journey, gold_communication_log, "
                            "gold_communication_log_archive, human_review_queue, wa_quota_usage, ops_audit_log "
                            "RESTART IDENTITY CASCADE")
        finally:
            conn.close()

    def stop(self, mode="fast"):
        if self.pid:
            subprocess.run(self._as_owner([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode,
                                           "-w", "stop"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)

    def kill(self):
        pid = self.pid
        if pid:
            os.kill(pid, signal.SIGKILL)
            wait_until(lambda: not _alive(pid), 10, "postmaster exit")
            # A SIGKILLed postmaster leaves its pid file behind; pg_ctl start copes with a stale one.

    def restart(self):
        self.stop()
        return self.start()

    def connection_params(self):
        """Module parameters (cerniq.outreach option names) for this server."""
        return dict(db_host=self.host, db_port=self.port, db_name=DB_NAME, db_user=DB_USER,
                    db_password=self.password, db_sslmode="disable")

    def destroy(self):
        self.stop("immediate")
        shutil.rmtree(self.base_dir, ignore_errors=True)


def module_params(redis_server, pg_server, **overrides):
    """Every connection option of the collection's modules, pointed at these servers."""
    params = dict(redis_host=redis_server.host, redis_port=redis_server.port, redis_username=None,
                  redis_password=redis_server.password, redis_tls=False, redis_tls_ca_cert=None,
                  redis_tls_verify=True, redis_db=0, bullmq_db=2, redis_timeout=5.0,
                  timezone="Europe/Bucharest", audit_actor="pytest", db_ssl_rootcert=None, db_connect_timeout=5)
    params.update(pg_server.connection_params())
    params.update(overrides)
    return params


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
