"""The local embedded stack: private Redis 7, PostgreSQL, the vendor fakes and a real Node BullMQ worker.

    python -m tests.support.stack start|stop|status

Ports, credentials and addresses are those of inventories/local (read from it, so the two cannot disagree).
State (pids, data dirs) lives in .stack/ (git-ignored); PostgreSQL's data dir lives under /tmp when running as root,
because the postgres user may not be able to enter a private checkout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.support import services
from tests.support.seed import SeedPlan, seed_all

REPO_ROOT = services.REPO_ROOT
STATE_DIR = REPO_ROOT / ".stack"
STATE_FILE = STATE_DIR / "state.json"
INVENTORY_VARS = REPO_ROOT / "inventories" / "local" / "group_vars" / "all.yml"
WORKER_JS = REPO_ROOT / "tests" / "node" / "worker.js"


def local_settings():
    data = yaml.safe_load(INVENTORY_VARS.read_text())
    return data


def _pg_base_dir():
    if os.geteuid() == 0:
        digest = hashlib.sha1(str(REPO_ROOT).encode()).hexdigest()[:10]
        return Path("/tmp") / "cerniq-stack-{0}".format(digest) / "pg"
    return STATE_DIR / "pg"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, TypeError):
        return False
    return True


def _spawn(cmd, log_name, env=None):
    log = open(STATE_DIR / log_name, "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO_ROOT,
                            env=env)
    return proc.pid


def _wait_for_line(log_name, needle, timeout):
    path = STATE_DIR / log_name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return True
        time.sleep(0.1)
    return False


def start(args):
    settings = local_settings()
    state = _read_state()
    if state and _alive(state.get("redis_pid")):
        print("the local stack is already running (make demo-stop stops it)")
        return 0
    if state:
        stop(args)
    STATE_DIR.mkdir(exist_ok=True)
    host = settings["cerniq_redis_host"]
    redis_server = services.RedisServer(host=host, port=int(settings["cerniq_redis_port"]),
                                        data_dir=STATE_DIR / "redis", password=settings.get("cerniq_redis_password"),
                                        persistent=True)
    pg = services.PostgresServer(host=settings["cerniq_db_host"], port=int(settings["cerniq_db_port"]),
                                 base_dir=_pg_base_dir(), password=settings["cerniq_db_password"], fast=True)
    # State is written before each start, so 'stop' can clean up after a start that failed half-way.
    state = dict(redis_pid=None, redis_dir=str(redis_server.data_dir), pg_base_dir=str(pg.base_dir),
                 pg_port=pg.port, pg_host=pg.host, pids={})
    _write_state(state)
    redis_server.start(detach=True)
    state["redis_pid"] = redis_server.pid
    _write_state(state)
    pg.start()
    pg.load_schema()
    conn = pg.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM wa_phone_numbers")
        seeded = cur.fetchone()[0] > 0
    if not seeded:
        print("seeding demo data (20 phones, 5,000 leads, logs, reviews, quota counters, BullMQ jobs)")
        seed_all(conn, redis_server, SeedPlan(phones=args.phones, leads=args.leads,
                                              timezone=settings.get("cerniq_timezone", "Europe/Bucharest")),
                 bullmq_db=int(settings.get("cerniq_bullmq_db", 2)))
    conn.close()
    _start_fakes(settings, state)
    _start_worker(settings, state)
    _write_state(state)
    print("local stack up: Redis {0}:{1}, PostgreSQL {2}:{3}, fakes {4}, Node worker pid {5}".format(
        host, redis_server.port, pg.host, pg.port, ", ".join(sorted(state["pids"])) or "none",
        state["pids"].get("worker")))
    return 0


def _start_fakes(settings, state):
    python = sys.executable
    fakes = (("instantly", "tests.fakes.instantly", settings["cerniq_instantly_base_url"],
              ["--api-key", settings["cerniq_instantly_api_key"]]),
             ("timelinesai", "tests.fakes.timelinesai", settings["cerniq_timelinesai_base_url"],
              ["--api-token", settings["cerniq_timelinesai_api_token"]]))
    for name, module, url, extra in fakes:
        if not (REPO_ROOT / (module.replace(".", "/") + ".py")).exists():
            continue
        port = url.split(":")[-1].split("/")[0]
        log = "{0}.log".format(name)
        state["pids"][name] = _spawn([python, "-m", module, "--port", port, "--seed", "demo"] + extra, log)
        if not _wait_for_line(log, "http://", 15):
            raise RuntimeError("the {0} fake did not start: see .stack/{1}".format(name, log))


def _start_worker(settings, state):
    if not (REPO_ROOT / "tests" / "node" / "node_modules" / "bullmq").exists():
        print("tests/node/node_modules is missing: run 'make node' for the Node BullMQ worker")
        return
    cmd = ["node", str(WORKER_JS), "--host", settings["cerniq_redis_host"],
           "--port", str(settings["cerniq_redis_port"]), "--db", str(settings.get("cerniq_bullmq_db", 2)),
           "--queue", "outreach:followup", "--queue", "quota:guardian:reset"]
    # The password through the environment, never argv (readable by every user in /proc/<pid>/cmdline).
    env = dict(os.environ, CERNIQ_REDIS_PASSWORD=settings.get("cerniq_redis_password") or "")
    state["pids"]["worker"] = _spawn(cmd, "worker.log", env=env)
    if not _wait_for_line("worker.log", '"event":"ready"', 20):
        raise RuntimeError("the Node BullMQ worker did not start: see .stack/worker.log")


def stop(_args):
    state = _read_state()
    if not state:
        print("the local stack is not running")
        return 0
    for _name, pid in state.get("pids", {}).items():
        if _alive(pid):
            os.killpg(pid, signal.SIGTERM)
    if _alive(state.get("redis_pid")):
        os.kill(state["redis_pid"], signal.SIGTERM)
    pg = services.PostgresServer(host=state["pg_host"], port=state["pg_port"], base_dir=state["pg_base_dir"])
    pg.stop()
    STATE_FILE.unlink()
    print("local stack stopped (data kept in .stack/ and {0})".format(state["pg_base_dir"]))
    return 0


def status(_args):
    state = _read_state()
    if not state:
        print("the local stack is not running")
        return 1
    rows = [("redis", state.get("redis_pid"))] + sorted(state.get("pids", {}).items())
    pg = services.PostgresServer(host=state["pg_host"], port=state["pg_port"], base_dir=state["pg_base_dir"])
    rows.append(("postgresql", pg.pid))
    healthy = True
    for name, pid in rows:
        alive = _alive(pid)
        healthy &= alive
        print("{0:12} pid {1:>8} {2}".format(name, str(pid), "running" if alive else "NOT RUNNING"))
    return 0 if healthy else 1


def _read_state():
    return json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else None


def _write_state(state):
    STATE_FILE.write_text(json.dumps(state, indent=2))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.support.stack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start_parser = sub.add_parser("start")
    start_parser.add_argument("--phones", type=int, default=20)
    start_parser.add_argument("--leads", type=int, default=5000)
    start_parser.set_defaults(func=start)
    sub.add_parser("stop").set_defaults(func=stop)
    sub.add_parser("status").set_defaults(func=status)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
