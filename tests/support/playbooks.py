"""Run the collection's playbooks for real (ansible-runner driving ansible-playbook) against test servers."""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ansible_runner
import yaml

from tests.support.services import REPO_ROOT

COLLECTIONS_PATH = REPO_ROOT / ".collections"
# What the collection's playbooks set for a play: one module_defaults line per action group of meta/runtime.yml,
# from the platform role's variables (add group/cerniq.outreach.vendors: cerniq_vendor_defaults for vendor modules).
MODULE_DEFAULTS = {
    "group/cerniq.outreach.redis": "{{ cerniq_redis_defaults }}",
    "group/cerniq.outreach.postgres": "{{ cerniq_postgres_defaults }}",
    "group/cerniq.outreach.platform": "{{ cerniq_platform_defaults }}",
    "group/cerniq.outreach.audit": "{{ cerniq_audit_defaults }}",
}
# The ansible-playbook of the venv running the tests, whatever PATH said.
VENV_BIN = str(Path(sys.executable).parent)
if not os.environ.get("PATH", "").startswith(VENV_BIN + os.pathsep):
    os.environ["PATH"] = VENV_BIN + os.pathsep + os.environ.get("PATH", "")


def inventory_for(redis_server, pg_server, extra_vars=None, hosts=None):
    """An inventory with the three groups, all on a local connection, pointed at the given servers.

    `hosts` maps group -> (host name, address) so plays that reach the wrong host fail.
    """
    hosts = hosts or {}
    groups = {}
    for group in ("redis", "db", "workers"):
        name, address = hosts.get(group, ("{0}-test".format(group), None))
        host_vars = {"ansible_host": address} if address else {}
        groups[group] = {"hosts": {name: host_vars}}
    variables = {
        "ansible_connection": "local",
        "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "cerniq_redis_host": redis_server.host,
        "cerniq_redis_port": redis_server.port,
        "cerniq_redis_password": redis_server.password or "",
        "cerniq_db_host": pg_server.host,
        "cerniq_db_port": pg_server.port,
        "cerniq_db_name": "cerniq",
        "cerniq_db_user": "cerniq",
        "cerniq_db_password": pg_server.password,
        "cerniq_db_sslmode": "disable",
        "cerniq_redis_tls": False,
        "cerniq_audit_actor": "pytest",
        # One machine: the collection's Python is the test's, its directories the test's own (the lab tests become).
        "cerniq_host_python": "{{ ansible_playbook_python }}",
        "ansible_become": False,
    }
    variables.update(extra_vars or {})
    return {"all": {"vars": variables, "children": groups}}


WORKERS_ADDRESS = "127.0.0.13"


def three_host_inventory(redis_server, pg_server, extra_vars=None, workers_address=WORKERS_ADDRESS,
                         redis_address=None, db_address=None):
    """An inventory of three hosts (redis, db, workers) whose `ansible_host` are the servers' own loopback addresses.

    Unlike inventory_for, it sets no cerniq_redis_host / cerniq_db_host: the plays must derive them from the groups,
    so a play that reaches the wrong host (or localhost) fails. Start the servers on distinct addresses
    (RedisServer(host="127.0.0.11"), PostgresServer(host="127.0.0.12")); `redis_address` / `db_address` override
    the group's address (to point a group at the wrong host).
    """
    inventory = inventory_for(redis_server, pg_server, extra_vars, hosts={
        "redis": ("redis-1", redis_address or redis_server.host),
        "db": ("db-1", db_address or pg_server.host),
        "workers": ("workers-1", workers_address),
    })
    variables = inventory["all"]["vars"]
    for name in ("cerniq_redis_host", "cerniq_db_host"):
        if name not in (extra_vars or {}):
            variables.pop(name)
    return inventory


@dataclass
class PlaybookRun:
    rc: int
    status: str
    events: list = field(default_factory=list)
    stdout: str = ""

    def results(self, task_name=None):
        """Module results (`res`) of finished tasks, optionally only those whose name contains `task_name`."""
        found = []
        for event in self.events:
            if event.get("event") not in ("runner_on_ok", "runner_on_failed", "runner_on_skipped"):
                continue
            data = event.get("event_data", {})
            if task_name is None or task_name in data.get("task", ""):
                res = dict(data.get("res", {}))
                res["_event"] = event["event"]
                res["_task"] = data.get("task")
                found.append(res)
        return found

    def result(self, task_name):
        found = self.results(task_name)
        assert found, "no task named like {0!r} ran; stdout:\n{1}".format(task_name, self.stdout[-3000:])
        return found[-1]

    @property
    def changed_tasks(self):
        return [r["_task"] for r in self.results() if r.get("changed")]

    @property
    def stats(self):
        for event in reversed(self.events):
            if event.get("event") == "playbook_on_stats":
                return event["event_data"]
        return {}


def run_playbook(playbook, inventory, extravars=None, check=False, diff=False, tags=None, skip_tags=None,
                 limit=None, env=None, verbosity=0, start_at_task=None, event_handler=None):
    """Run a playbook to its end; `event_handler(event)` sees each ansible-runner event as it happens (from the
    runner's thread; return True to keep it)."""
    playbook_path = Path(playbook)
    if not playbook_path.is_absolute():
        playbook_path = REPO_ROOT / "playbooks" / playbook
    private = tempfile.mkdtemp(prefix="cerniq-runner-")
    inventory_path = Path(private) / "inventory.yml"
    inventory_path.write_text(yaml.safe_dump(inventory) if isinstance(inventory, dict) else inventory)
    cmdline = []
    if check:
        cmdline.append("--check")
    if diff:
        cmdline.append("--diff")
    if tags:
        cmdline += ["--tags", tags]
    if skip_tags:
        cmdline += ["--skip-tags", skip_tags]
    if start_at_task:
        # ansible-runner splits cmdline with shlex: a task name with spaces stays one argument.
        cmdline += ["--start-at-task", shlex.quote(start_at_task)]
    envvars = {"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg"),
               "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    envvars.update(env or {})
    runner = ansible_runner.run(private_data_dir=private, playbook=str(playbook_path), inventory=str(inventory_path),
                                extravars=extravars or {}, cmdline=" ".join(cmdline) or None, envvars=envvars,
                                limit=limit, quiet=True, verbosity=verbosity, json_mode=False,
                                event_handler=event_handler)
    stdout = runner.stdout.read() if runner.stdout else ""
    return PlaybookRun(rc=runner.rc, status=runner.status, events=list(runner.events), stdout=stdout)


def artifact(path):
    return json.loads(Path(path).read_text())


def env_without_ansible():
    return {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
