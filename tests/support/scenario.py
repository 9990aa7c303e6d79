"""Services for one Molecule scenario: private Redis and PostgreSQL (and optionally the Node worker), seeded.

    python -m tests.support.scenario start --dir EPHEMERAL_DIR [--seed small|none] [--worker QUEUE ...]
                                           [--fake timelinesai|instantly ...]
    python -m tests.support.scenario stop --dir EPHEMERAL_DIR

`start` writes DIR/cerniq_services.yml with the cerniq_* variables pointing at the servers (and at the vendor fakes
asked for, in their demo state, with cerniq_vendor_allow_http); the scenario's converge
and verify plays load it with vars_files (Molecule rewrites its inventory directory on every command, so group_vars
cannot live there). `stop` ends them all.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from tests.support import services
from tests.support.nodeworker import WORKER_JS
from tests.support.seed import SeedPlan, seed_all

# Vendor fakes a scenario can ask for: module, base path, the inventory variables for their URL and token.
FAKES = {
    "timelinesai": ("tests.fakes.timelinesai", "/integrations/api", "cerniq_timelinesai_base_url",
                    "cerniq_timelinesai_api_token"),
    "instantly": ("tests.fakes.instantly", "", "cerniq_instantly_base_url", "cerniq_instantly_api_key"),
}


def start(args):
    root = Path(args.dir)
    stop(args)
    root.mkdir(parents=True, exist_ok=True)
    redis_server = services.RedisServer(data_dir=root / "redis", password="molecule-redis-pw")
    redis_server.start(detach=True)
    state = {"redis_pid": redis_server.pid, "redis_dir": str(redis_server.data_dir)}
    pg = services.PostgresServer(password="molecule-db-pw")
    state["pg_base_dir"] = str(pg.base_dir)
    _write(root, state)
    pg.start()
    pg.load_schema()
    if args.seed == "small":
        conn = pg.connect()
        try:
            seed_all(conn, redis_server, SeedPlan(phones=6, leads=300, old_log_rows=200, reviews=40,
                                                  jobs_per_phone=5, dlq_entries=30,
                                                  offline=("phone_04",), banned=(), drift_phone="phone_04",
                                                  leak_phone="phone_02", no_ttl_phone="phone_03"))
        finally:
            conn.close()
    if args.worker:
        cmd = ["node", str(WORKER_JS), "--host", redis_server.host, "--port", str(redis_server.port), "--db", "2"]
        for queue in args.worker:
            cmd += ["--queue", queue]
        log = open(root / "worker.log", "ab")
        state["worker_pid"] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                               env=dict(os.environ, CERNIQ_REDIS_PASSWORD=redis_server.password)).pid
    settings = {
        "cerniq_redis_host": redis_server.host, "cerniq_redis_port": redis_server.port,
        "cerniq_redis_password": redis_server.password, "cerniq_db_host": pg.host, "cerniq_db_port": pg.port,
        "cerniq_db_name": services.DB_NAME, "cerniq_db_user": services.DB_USER, "cerniq_db_password": pg.password,
        "cerniq_db_sslmode": "disable", "cerniq_redis_tls": False, "cerniq_audit_actor": "molecule",
        # One machine: the collection's Python on the "hosts" is the controller's.
        "cerniq_host_python": "{{ ansible_playbook_python }}",
    }
    for name in args.fake:
        settings.update(_start_fake(root, state, name))
        settings["cerniq_vendor_allow_http"] = True
    _write(root, state)
    (root / "cerniq_services.yml").write_text(yaml.safe_dump(settings))
    print(json.dumps({"redis": redis_server.port, "postgresql": pg.port}))
    return 0


def _start_fake(root, state, name):
    module, base_path, url_var, token_var = FAKES[name]
    port = services.free_port()
    token = "molecule-{0}-token".format(name)
    log = open(root / "{0}.log".format(name), "ab")
    state.setdefault("fake_pids", {})[name] = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), "--api-key", token, "--seed", "demo"],
        cwd=str(services.REPO_ROOT), stdout=log, stderr=subprocess.STDOUT, start_new_session=True).pid
    _write(root, state)
    services.wait_until(lambda: socket.create_connection(("127.0.0.1", port), timeout=1).close() is None, 15,
                        "the {0} fake".format(name))
    return {url_var: "http://127.0.0.1:{0}{1}".format(port, base_path), token_var: token}


def stop(args):
    root = Path(args.dir)
    state_file = root / "services.json"
    if not state_file.exists():
        return 0
    state = json.loads(state_file.read_text())
    for pid in [state.get("worker_pid"), state.get("redis_pid")] + list(state.get("fake_pids", {}).values()):
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    if state.get("pg_base_dir"):
        pg = services.PostgresServer(base_dir=state["pg_base_dir"])
        pg.destroy()
    shutil.rmtree(state.get("redis_dir", ""), ignore_errors=True)
    state_file.unlink()
    return 0


def _write(root, state):
    (root / "services.json").write_text(json.dumps(state))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.support.scenario")
    sub = parser.add_subparsers(dest="command", required=True)
    start_parser = sub.add_parser("start")
    start_parser.add_argument("--dir", required=True)
    start_parser.add_argument("--seed", choices=("small", "none"), default="small")
    start_parser.add_argument("--worker", action="append", default=[])
    start_parser.add_argument("--fake", action="append", default=[], choices=sorted(FAKES))
    start_parser.set_defaults(func=start)
    stop_parser = sub.add_parser("stop")
    stop_parser.add_argument("--dir", required=True)
    stop_parser.set_defaults(func=stop)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
