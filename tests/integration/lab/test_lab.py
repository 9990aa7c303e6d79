"""The lab itself: hosts over SSH, services on their hosts' addresses only, HA pairs, link faults, clean removal."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
import redis
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from tests.support import lab as lab_module
from tests.support.lab import LAB_USER, Lab
from tests.support.services import REPO_ROOT

pytestmark = pytest.mark.lab

PROBE = [{
    "name": "Probe every lab host",
    "hosts": "all",
    "gather_facts": False,
    "tasks": [
        {"name": "ping", "ansible.builtin.ping": {}},
        {"name": "login user", "ansible.builtin.command": "id -un", "changed_when": False},
        {"name": "become root", "become": True, "ansible.builtin.command": "id -un", "changed_when": False},
        {"name": "hostname", "ansible.builtin.command": "hostname", "changed_when": False},
        {"name": "write /backups without become", "ansible.builtin.copy": {"content": "x\n",
                                                                           "dest": "/backups/lab-probe"},
         "ignore_errors": True},
        {"name": "write /backups with become", "become": True,
         "ansible.builtin.copy": {"content": "x\n", "dest": "/backups/lab-probe-root", "mode": "0600"}},
        {"name": "system python", "changed_when": False, "ansible.builtin.command": {"argv": [
            "/usr/bin/python3", "-c",
            "import importlib.util, json, sys; print(json.dumps({'exe': sys.executable,"
            " 'version': sys.version_info[:2],"
            " 'found': [m for m in ('redis', 'psycopg2', 'bullmq') if importlib.util.find_spec(m)]}))"]}},
        {"name": "route off the lab", "ansible.builtin.command": "ip route get 1.1.1.1", "changed_when": False,
         "failed_when": False},
        {"name": "routes", "ansible.builtin.command": "ip -4 route show table all", "changed_when": False},
        {"name": "become on the controller", "delegate_to": "localhost", "run_once": True, "become": True,
         "ansible.builtin.command": "id -un", "changed_when": False, "ignore_errors": True},
        {"name": "controller without become", "delegate_to": "localhost", "run_once": True,
         "ansible.builtin.command": "id -un", "changed_when": False},
    ],
}]


def _probe(lab, tmp_path, **kwargs):
    playbook = tmp_path / "probe.yml"
    playbook.write_text(yaml.safe_dump(PROBE, sort_keys=False))
    return lab.play(str(playbook), **kwargs)


def _by_host(run, task):
    return {r["_host"]: r for r in _results_with_host(run, task)}


def _results_with_host(run, task):
    out = []
    for event in run.events:
        data = event.get("event_data", {})
        if event.get("event", "").startswith("runner_on_") and data.get("task") == task:
            out.append(dict(data.get("res", {}), _host=data.get("host"), _event=event["event"]))
    return out


@pytest.mark.parametrize("topology", ["lab_single", "lab_ha"])
def test_every_host_over_ssh_as_an_unprivileged_user_with_sudo(topology, request, tmp_path):
    lab = request.getfixturevalue(topology)
    run = _probe(lab, tmp_path)
    assert run.rc == 0, run.stdout[-4000:]
    names = set(lab.hosts)
    assert set(_by_host(run, "ping")) == names
    assert all(r["ping"] == "pong" for r in _by_host(run, "ping").values())
    assert {h: r["stdout"] for h, r in _by_host(run, "login user").items()} == dict.fromkeys(names, LAB_USER)
    assert {h: r["stdout"] for h, r in _by_host(run, "become root").items()} == dict.fromkeys(names, "root")
    assert {h: r["stdout"] for h, r in _by_host(run, "hostname").items()} == {h: h for h in names}
    # Without become, /backups (root's, 0755) is not writable: a missing become fails.
    denied = _by_host(run, "write /backups without become")
    assert all(r["_event"] == "runner_on_failed" for r in denied.values()), denied
    for host in lab.hosts.values():
        assert not host.path("/backups/lab-probe").exists()
        written = host.path("/backups/lab-probe-root")
        assert written.read_text() == "x\n" and written.stat().st_uid == 0
        # Each host has its own /backups: the machine's has no such file.
        assert not Path("/backups/lab-probe-root").exists()
        written.unlink()
    for result in _by_host(run, "system python").values():
        facts = json.loads(result["stdout"])
        assert facts == {"exe": "/usr/bin/python3", "version": [3, 11], "found": []}, facts
    for result in _by_host(run, "route off the lab").values():
        assert result["rc"] != 0 and "unreachable" in result["stderr"].lower(), result
    for result in _by_host(run, "routes").values():
        assert "default" not in result["stdout"], result["stdout"]
    # The controller (the implicit localhost) works without become, and any become there fails loudly: no procedure
    # may need root on the controller, and the every-playbook matrix runs with this inventory.
    refused = run.result("become on the controller")
    assert refused["_event"] == "runner_on_failed", refused
    assert "become on the controller refused" in json.dumps(refused), refused
    assert run.result("controller without become")["_event"] == "runner_on_ok"
    # The lab's user exists only inside the hosts.
    assert LAB_USER not in Path("/etc/passwd").read_text()
    assert not Path("/home", LAB_USER).exists()


def _listeners(lab, host):
    out = lab.run(host, ["ss", "-Hltn"]).stdout
    return sorted(line.split()[3] for line in out.splitlines())


def test_redis_and_postgres_listen_on_their_hosts_addresses_only(lab_single):
    lab = lab_single
    redis_host, db_host, workers = lab.hosts["redis-1"], lab.hosts["db-1"], lab.hosts["workers-1"]
    assert _listeners(lab, "redis-1") == sorted(["{0}:22".format(redis_host.address),
                                                 "{0}:6379".format(redis_host.address)])
    assert _listeners(lab, "db-1") == sorted(["{0}:22".format(db_host.address), "{0}:5432".format(db_host.address)])
    assert _listeners(lab, "workers-1") == ["{0}:22".format(workers.address)]

    assert lab.redis.host == redis_host.address and lab.redis.port == 6379
    assert lab.r().ping() is True
    assert lab.r().config_get("appendonly") == {"appendonly": "yes"}
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host=redis_host.address, port=6379, socket_timeout=3).ping()
    # Its data: the seed's phones.
    assert lab.r().get(contract.phone_status_key("phone_01")) == "ACTIVE"

    assert lab.pg.host == db_host.address and lab.pg.port == 5432
    conn = lab.pg.superuser_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT inet_client_addr()::text, current_setting('password_encryption')")
            assert cur.fetchone() == ("{0}/32".format(lab.controller_address), "scram-sha-256")
            cur.execute("SELECT type, address, netmask, auth_method FROM pg_hba_file_rules WHERE address = %s",
                        (lab.subnet.split("/")[0],))
            assert sorted(cur.fetchall()) == [("host", lab.subnet.split("/")[0], "255.255.255.0", "scram-sha-256")] * 2
    finally:
        conn.close()
    assert lab.sql("SELECT count(*) FROM wa_phone_numbers") == [(6,)]
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(host=db_host.address, port=5432, user="cerniq", password="wrong", dbname="cerniq",
                         connect_timeout=3)

    # Host to host over the bridge: the workers host reaches Redis and PostgreSQL on their addresses.
    reach = ("import socket, sys\n"
             "for addr, port in ((sys.argv[1], 6379), (sys.argv[2], 5432)):\n"
             "    socket.create_connection((addr, port), timeout=3).close()\n"
             "print('ok')\n")
    assert lab.run("workers-1", ["/usr/bin/python3", "-c", reach, redis_host.address, db_host.address],
                   user=LAB_USER).stdout == "ok\n"


def test_ha_pairs_replicate(lab_ha):
    lab = lab_ha
    db1, db2 = lab.hosts["db-1"], lab.hosts["db-2"]
    assert (lab.pg.host, lab.pg_standby.host) == (db1.address, db2.address)
    conn = lab.pg.superuser_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            assert cur.fetchone() == (False,)
            cur.execute("SELECT client_addr::text, state FROM pg_stat_replication")
            assert cur.fetchall() == [("{0}/32".format(db2.address), "streaming")]
    finally:
        conn.close()
    conn = lab.pg_standby.superuser_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_is_in_recovery()")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()
    lab.sql("INSERT INTO ops_audit_log (actor, module, action, target) VALUES ('lab', 'lab', 'replication', 'x')")
    lab.wait_replicated()
    query = "SELECT count(*) FROM ops_audit_log WHERE action = 'replication'"
    assert lab.sql(query, server=lab.pg_standby) == lab.sql(query) == [(1,)]
    with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
        lab.sql("DELETE FROM ops_audit_log", server=lab.pg_standby)
    lab.sql("DELETE FROM ops_audit_log WHERE action = 'replication'")

    r1, r2 = lab.hosts["redis-1"], lab.hosts["redis-2"]
    replica = lab.redis_replica.client()
    info = replica.info("replication")
    assert (info["role"], info["master_host"], info["master_link_status"]) == ("slave", r1.address, "up")
    assert lab.redis_replica.host == r2.address
    assert lab.r().info("replication")["role"] == "master"
    lab.r().set("lab:replicated", "1")
    lab.wait_replicated()
    assert replica.get("lab:replicated") == "1"
    assert replica.dbsize() == lab.r().dbsize()
    with pytest.raises(redis.ReadOnlyError):
        replica.set("lab:replicated", "2")
    lab.r().delete("lab:replicated")


def test_a_node_worker_on_the_workers_host_reaches_redis(lab_single):
    lab = lab_single
    argv = ["env", "CERNIQ_REDIS_PASSWORD=" + lab_module.REDIS_PASSWORD] + lab.worker_command().split() + [
        "--timeout", "20"]
    proc = lab.popen("workers-1", argv, user=LAB_USER, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        line = b""
        while time.monotonic() < deadline and b'"ready"' not in line:
            ready = select.select([proc.stdout], [], [], 0.5)[0]
            if ready:
                line = proc.stdout.readline()
                assert line, "the worker exited: {0}".format(proc.poll())
        assert b'"ready"' in line, line
        clients = lab.r(2).client_list()
        assert any(c["addr"].startswith(lab.hosts["workers-1"].address + ":") for c in clients), clients
        assert lab.session_pids("workers-1")
    finally:
        lab.stop_sessions("workers-1")
        proc.wait(10)
    assert lab.session_pids("workers-1") == []


def _ssh_port_open(host, timeout=2.0):
    try:
        socket.create_connection((host.address, 22), timeout=timeout).close()
        return True
    except OSError:
        return False


def test_link_down_cuts_a_host_off_and_link_up_brings_it_back(lab_single, tmp_path):
    lab = lab_single
    workers = lab.hosts["workers-1"]
    ping = [{"name": "ping", "hosts": "workers", "gather_facts": False, "tasks": [{"ansible.builtin.ping": {}}]}]
    playbook = tmp_path / "ping.yml"
    playbook.write_text(yaml.safe_dump(ping))
    lab.link_down("workers-1")
    try:
        started = time.monotonic()
        assert not _ssh_port_open(workers)
        down = lab.play(str(playbook))
        assert down.rc != 0 and time.monotonic() - started < 30
        assert any(e["event"] == "runner_on_unreachable" for e in down.events), down.stdout[-2000:]
        # The other hosts are not affected.
        assert _ssh_port_open(lab.hosts["db-1"])
        assert lab.r().ping()
    finally:
        lab.link_up("workers-1")
    assert _ssh_port_open(workers)
    up = lab.play(str(playbook))
    assert up.rc == 0, up.stdout[-2000:]
    # A bounded cut: the link comes back by itself.
    lab.link_down("redis-1", restore_after=2.0)
    with pytest.raises(OSError):
        socket.create_connection((lab.redis.host, lab.redis.port), timeout=0.5).close()
    deadline = time.monotonic() + 10
    while not _ssh_port_open(lab.hosts["redis-1"], 0.5):
        assert time.monotonic() < deadline, "the link did not come back"
        time.sleep(0.1)
    assert lab.r().ping()


def _ns_inode(pid):
    return os.stat("/proc/{0}/ns/net".format(pid)).st_ino


def _identity(record):
    """The lab's namespaces and links as the kernel knows them (a later lab may reuse the names)."""
    netns = {n: os.stat("/run/netns/" + n).st_ino for n in record["netns"] if os.path.exists("/run/netns/" + n)}
    links = {}
    for name in record["veths"] + [record["bridge"]]:
        path = Path("/sys/class/net", name, "ifindex")
        if path.exists():
            links[name] = int(path.read_text())
    return netns, links


def _leftovers(record, pids, identity=None):
    """What of a lab is still on the machine (with identity: only what is the same namespace or link)."""
    netns, links = _identity(record)
    if identity is not None:
        # A namespace of the same name now is the new lab's if that lab's sshd lives in it; links get new indexes.
        netns = {n: ino for n, ino in netns.items() if ino not in identity[0]}
        links = {n: idx for n, idx in links.items() if identity[1].get(n) == idx}
    state_file = lab_module.STATE_DIR / "{0}.json".format(record["n"])
    return dict(
        netns=sorted(netns),
        links=sorted(links),
        processes=[p for p in pids if os.path.exists("/proc/{0}".format(p))
                   and "Z" not in Path("/proc/{0}/stat".format(p)).read_text().rsplit(")", 1)[1].split()[0]],
        dir=os.path.exists(record["lab_dir"]),
        record=state_file.exists() and json.loads(state_file.read_text())["owner_pid"] == record["owner_pid"],
    )


NOTHING = dict(netns=[], links=[], processes=[], dir=False, record=False)


def test_close_leaves_nothing_and_a_killed_runs_lab_is_removed_at_the_next_start():
    # A run killed with its lab up (no finalizer, no atexit).
    script = ("import os, json\n"
              "from tests.support.lab import Lab\n"
              "lab = Lab('single', seed=False).start()\n"
              "pids = [h.pid for h in lab.hosts.values()] + [lab.redis.pid, lab.pg.pid]\n"
              "print(json.dumps(dict(record=lab._record, pids=pids)), flush=True)\n"
              "os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                            check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    stale = json.loads(killed.stdout)
    before = _leftovers(stale["record"], stale["pids"])
    assert before["netns"] and before["processes"] and before["dir"] and before["record"], before
    identity = _identity(stale["record"])

    started = time.monotonic()
    lab = Lab("single", seed=False)
    try:
        lab.start()
        build = time.monotonic() - started
        new_netns = {_ns_inode(h.pid) for h in lab.hosts.values()}
        assert _leftovers(stale["record"], stale["pids"], (new_netns, identity[1])) == NOTHING
        mine = dict(lab._record)  # pylint: disable=protected-access
        pids = [h.pid for h in lab.hosts.values()] + [lab.redis.pid, lab.pg.pid]
        # Sessions started over SSH are removed too.
        lab.run("workers-1", ["sh", "-c", "setsid sleep 600 > /dev/null 2>&1 < /dev/null &"], user=LAB_USER)
        pids += lab.session_pids("workers-1")
        assert len(pids) == 6 and _leftovers(mine, pids)["processes"] == pids
    finally:
        lab.close()
    assert _leftovers(mine, pids) == NOTHING
    assert build < 60
    others = [r for r in lab_module._records() if r["n"] != mine["n"]]  # pylint: disable=protected-access
    if not others:  # the last lab removes the mount points it had to create on the machine
        assert not (lab_module.STATE_DIR / "mountpoints.json").exists()
        assert not os.path.exists("/var/lib/cerniq") or os.listdir("/var/lib/cerniq")


def test_build_times(lab_single, lab_ha, request):
    """Figures, not a gate: the session labs' builds (printed, and in the junit properties)."""
    figures = {lab.topology: dict(lab.timings, total=round(lab.build_seconds, 2)) for lab in (lab_single, lab_ha)}
    for topology, figure in figures.items():
        request.node.user_properties.append(("lab_build_{0}_s".format(topology), figure["total"]))
    print("lab build seconds:", json.dumps(figures))
    assert all(f["total"] < 60 for f in figures.values()), figures


def test_state_sees_a_host_file_and_reset_brings_the_seeded_lab_back(lab_single):
    lab = lab_single
    lab.reset()
    before = lab.state()
    assert lab.state() == before and lab.digest() == lab.digest()
    assert set(before["files"]) == set(lab.hosts) and before["postgres"] and before["redis0"]

    lab.run("db-1", ["sh", "-c", "mkdir -p /var/lib/cerniq/x && echo 1 > /var/lib/cerniq/x/marker"])
    after = lab.state(services_too=False)["files"]
    assert {p for p in after["db-1"] if p not in before["files"]["db-1"]} == {"/var/lib/cerniq/x",
                                                                              "/var/lib/cerniq/x/marker"}
    assert after["redis-1"] == before["files"]["redis-1"] and after["workers-1"] == before["files"]["workers-1"]
    assert not Path("/var/lib/cerniq/x").exists()  # the machine's own is untouched
    lab.r().set("lab:extra", "1")
    lab.sql("INSERT INTO ops_audit_log (actor, module, action, target) VALUES ('lab', 'lab', 'extra', 'x')")
    lab.run("workers-1", ["sh", "-c", "setsid sleep 600 > /dev/null 2>&1 < /dev/null &"], user=LAB_USER)
    assert lab.state() != before

    lab.reset()
    assert lab.session_pids("workers-1") == []
    again = lab.state()
    assert again["files"] == before["files"]
    assert again["redis0"].keys() == before["redis0"].keys()
    assert again["postgres"].keys() == before["postgres"].keys()
    assert lab.sql("SELECT count(*) FROM ops_audit_log WHERE action = 'extra'") == [(0,)]
    assert lab.sql("SELECT count(*) FROM wa_phone_numbers") == [(6,)]
