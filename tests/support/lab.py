"""A lab of real hosts on this machine: network namespaces on a private bridge, each with sshd, a hostname and its own
/opt, /backups, /srv, /var/lib/cerniq, /var/log, /etc/logrotate.d, /home, /root, /run, /tmp (a mount namespace).

    lab = Lab("single").start()        # or "ha"; as a pytest fixture: lab_single / lab_ha (tests/integration/lab)
    run = lab.play("check_morning.yml")  # ansible-playbook over SSH, as an unprivileged user with sudo
    lab.run("db-1", ["ls", "/backups"])  # a command inside a host's namespaces, as root, for assertions
    lab.close()

Layout of lab N (10.231.N.0/24, N free on this machine, so pytest-xdist workers build labs side by side):
- in the root namespace the bridge `cqNbr` holds the controller's address 10.231.N.1 (the pytest process is the
  controller); each host is a network namespace `cqN-<host>` whose `eth0` is the peer of `cqNv<i>` on the bridge, with
  no default route (nothing off the lab is reachable) and IPv6 off;
- each host's sshd runs under `ip netns exec cqN-<host> unshare --mount --uts --propagation private`, after its
  private directories are bind-mounted from the lab dir (<lab dir>/hosts/<host>/fs/...), so SSH sessions see them;
  /etc/passwd, /etc/group, /etc/shadow, /etc/hosts and /etc/sudoers.d are private copies that add the lab's user
  (LAB_USER, passwordless sudo): it exists only inside the hosts;
- Redis (password, AOF) and PostgreSQL (scram, pg_hba for the lab subnet) run in their host's network namespace
  (`ip netns exec`) on that host's address only, on their usual ports; "ha" adds a streaming-replication standby
  (pg_basebackup -R) and a Redis replica (replicaof + masterauth);
- the machine's Debian Python /usr/bin/python3 is the hosts' Python (no redis, psycopg2 or bullmq).

A lab removes itself (processes, namespaces, links, dirs) on close(), at interpreter exit, and, when its run was
killed, at the next lab's start: /run/cerniq-lab/<N>.json records what it made and which process owns it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support import services
from tests.support.seed import SMALL_SEED, seed_small
from tests.support.services import REPO_ROOT

STATE_DIR = Path("/run/cerniq-lab")
SUBNET = "10.231.{0}.0/24"
LAB_USER = "cerniq-sre"
SYSTEM_PYTHON = "/usr/bin/python3"
NODE = "/usr/bin/node"
WORKER_JS = REPO_ROOT / "tests" / "node" / "worker.js"
WORKER_QUEUE = "q:wa:phone_01"
WORKER_PID_FILE = "/run/cerniq-workers.pid"
WORKER_LOG = "/var/log/cerniq/workers.log"
SSH_PORT = 22
REDIS_PORT = 6379
PG_PORT = 5432
REDIS_PASSWORD = "lab-redis-pw"
DB_PASSWORD = "lab-db-pw"
DB_SUPERUSER_PASSWORD = "lab-super-pw"

# name -> groups, in address order (.11, .12, ...).
TOPOLOGIES = {
    "single": (("redis-1", ("redis",)), ("db-1", ("db",)), ("workers-1", ("workers",))),
    "ha": (("redis-1", ("redis",)), ("redis-2", ("redis",)), ("db-1", ("db",)), ("db-2", ("db",)),
           ("workers-1", ("workers",))),
}
# Each host's own directories, bind-mounted in its mount namespace (parents before children; /run and /tmp last:
# the lab dir may live under /tmp). /var/log/cerniq lives in the private /var/log.
# /etc/cerniq: the workers role's environment file (the Redis password), never the machine's own /etc.
# /var/lib/apt/lists and /var/cache/apt: a host's apt (the weekly package report) writes its own lists and caches,
# never the machine's (see APT_LISTS).
PRIVATE_DIRS = ("/opt", "/backups", "/srv", "/var/lib/cerniq", "/var/log", "/etc/logrotate.d", "/etc/sudoers.d",
                "/etc/cerniq", "/var/lib/apt/lists", "/var/cache/apt", "/home", "/root", "/var/tmp", "/run", "/tmp")
# The package lists each host starts with: the machine's lists of the suites an upgrade report is about (security,
# updates), as an offline host keeps them from its last `apt update`. Not the release's main list (19 MB compressed):
# every `apt list --upgradable` and every apt module run would parse it again, on every host, in every run.
APT_LISTS = ("*-security_*", "*-updates_*")
PRIVATE_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow", "/etc/hosts")
# What state() lists (the directories the procedures write on hosts).
STATE_DIRS = ("/opt", "/backups", "/srv", "/var/lib/cerniq", "/var/log/cerniq", "/etc/logrotate.d", "/etc/cerniq")
# What reset() empties by default (/opt keeps a host Python virtualenv between tests).
RESET_DIRS = ("/backups", "/srv", "/var/lib/cerniq", "/var/log/cerniq")


class LabError(RuntimeError):
    pass


# --- small helpers ---------------------------------------------------------------------------------------------


def _sh(argv, check=True, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise LabError("{0} failed ({1}): {2}".format(" ".join(map(str, argv)), result.returncode,
                                                      (result.stderr or result.stdout).strip()[-2000:]))
    return result


def _ip_batch(lines, check=True):
    """Many `ip` commands in one process; with check=False every line is tried (-force)."""
    if not lines:
        return None
    argv = ["ip", "-batch", "-"] if check else ["ip", "-force", "-batch", "-"]
    return _sh(argv, check=check, input="\n".join(lines) + "\n")


def _process_start_time(pid):
    try:
        with open("/proc/{0}/stat".format(pid)) as handle:
            return int(handle.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _ns_inode(path):
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _pids_in(kind, inodes):
    """Pids whose namespace `kind` (net, mnt) is one of these inodes."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        ino = _ns_inode("/proc/{0}/ns/{1}".format(entry, kind))
        if ino is not None and ino in inodes:
            found.append(int(entry))
    return found


def _kill_all(kind, inodes, exclude=(), timeout=10.0, sig=signal.SIGKILL):
    """Signal every process in these namespaces until none is left (bounded); returns the pids still alive."""
    deadline = time.monotonic() + timeout
    pids = []
    while time.monotonic() < deadline:
        pids = [p for p in _pids_in(kind, inodes) if p not in exclude]
        if not pids:
            return []
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(0.05)
    return pids


@contextlib.contextmanager
def _global_lock():
    STATE_DIR.mkdir(mode=0o755, exist_ok=True)
    with open(STATE_DIR / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _machine_networks():
    """Every IPv4 network this machine has an address or a route in (a lab subnet must overlap none)."""
    nets = []
    for argv in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show", "table", "all"]):
        for line in _sh(argv, check=False).stdout.splitlines():
            for word in line.split():
                if word[0].isdigit() and ("/" in word or word.count(".") == 3):
                    with contextlib.suppress(ValueError):
                        nets.append(ipaddress.ip_network(word, strict=False))
    return nets


def _owner_alive(record):
    pid = record.get("owner_pid")
    if record.get("detached"):
        return True
    return bool(pid) and _process_start_time(pid) == record.get("owner_start")


def _destroy(record):
    """Remove everything a lab record names: processes in its namespaces, links, namespaces, its dir."""
    inodes = {_ns_inode("/run/netns/" + name) for name in record.get("netns", [])} - {None}
    left = _kill_all("net", inodes) if inodes else []
    lines = ["link del " + name for name in record.get("veths", [])]
    lines += ["link del " + record["bridge"]] if record.get("bridge") else []
    lines += ["netns del " + name for name in record.get("netns", []) if os.path.exists("/run/netns/" + name)]
    existing = set(os.listdir("/sys/class/net"))
    lines = [line for line in lines if not line.startswith("link del ") or line.split()[-1] in existing]
    _ip_batch(lines, check=False)
    lab_dir = record.get("lab_dir")
    if lab_dir and (Path(lab_dir) / ".cerniq-lab").exists():
        shutil.rmtree(lab_dir, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        (STATE_DIR / "{0}.json".format(record["n"])).unlink()
    if left:
        raise LabError("lab {0}: processes {1} did not exit".format(record["n"], left))


def _records():
    found = []
    for path in sorted(STATE_DIR.glob("*.json")):
        if not path.stem.isdigit():
            continue
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


def clean_stale(include_detached=False):
    """Remove the labs whose owning process is gone (a killed run); with include_detached, CLI labs too.

    Call with the global lock held. Returns the lab numbers removed.
    """
    removed = []
    for record in _records():
        if not _owner_alive(record) or (include_detached and record.get("detached")):
            _destroy(record)
            removed.append(record["n"])
    _remove_mountpoints_if_idle()
    return removed


def _created_mountpoints_file():
    return STATE_DIR / "mountpoints.json"


def _ensure_mountpoints(paths):
    """Create the machine's missing mount points (empty dirs) and remember them, to remove with the last lab."""
    record = _created_mountpoints_file()
    created = set(json.loads(record.read_text())) if record.exists() else set()
    for path in paths:
        if not os.path.isdir(path):
            os.makedirs(path, mode=0o755)
            created.add(path)
    record.write_text(json.dumps(sorted(created)))


def _remove_mountpoints_if_idle():
    record = _created_mountpoints_file()
    if _records() or not record.exists():
        return
    for path in sorted(json.loads(record.read_text()), key=len, reverse=True):
        with contextlib.suppress(OSError):
            os.rmdir(path)  # only when empty
    record.unlink()


# --- the lab ---------------------------------------------------------------------------------------------------


@dataclass
class Host:
    name: str
    groups: tuple
    address: str
    netns: str
    veth: str
    dir: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def pid(self):
        """The sshd's pid: every SSH session runs in its namespaces."""
        return self.process.pid if self.process else None

    def path(self, inside):
        """The machine path of a path inside one of this host's private dirs (or its private files)."""
        inside = "/" + str(inside).lstrip("/")
        if inside in PRIVATE_FILES or any(inside == d or inside.startswith(d + "/") for d in PRIVATE_DIRS):
            return self.dir / "fs" / inside.lstrip("/")
        raise ValueError("{0} is not private to {1}: it is the machine's own".format(inside, self.name))


class Lab:
    """Real hosts for the collection's playbooks. See the module docstring and docs/developing.md "The lab"."""

    def __init__(self, topology="single", base_dir=None, seed=True, detached=False):
        if topology not in TOPOLOGIES:
            raise ValueError("topology: one of {0}".format(sorted(TOPOLOGIES)))
        self.topology = topology
        self.base_dir = Path(base_dir) if base_dir else None
        self.seed_plan = (dict(SMALL_SEED) if seed is True else dict(seed)) if seed else None
        self.detached = detached
        self.n = None
        self.dir = None
        self.hosts = {}
        self.controller_address = None
        self.bridge = None
        self.redis = self.redis_replica = self.pg = self.pg_standby = None
        self.build_seconds = None
        self.timings = {}
        self._timers = []
        self._sha256_seen = {}  # machine path -> (identity, sha256): files() re-reads only what changed
        self._closed = False
        self._record = None

    # --- names --------------------------------------------------------------------------------------------------

    @property
    def subnet(self):
        return SUBNET.format(self.n)

    def groups(self):
        """group -> [host names], in address order."""
        out = {}
        for host in self.hosts.values():
            for group in host.groups:
                out.setdefault(group, []).append(host.name)
        return out

    def group(self, name):
        return [self.hosts[h] for h in self.groups().get(name, [])]

    @property
    def redis_host(self):
        return self.group("redis")[0]

    @property
    def db_host(self):
        return self.group("db")[0]

    @property
    def workers_host(self):
        return self.group("workers")[0]

    @property
    def known_hosts(self):
        return self.dir / "ssh" / "known_hosts"

    @property
    def ssh_key(self):
        return self.dir / "ssh" / "id_ed25519"

    # --- start --------------------------------------------------------------------------------------------------

    def start(self):
        started = time.monotonic()
        try:
            self._allocate()
            self._mark("allocate", started)
            pg_thread = _Thread(self._start_postgres_primary)  # initdb needs no network: alongside the hosts
            pg_thread.start()
            self._prepare_hosts()
            self._build_network()
            self._boot_hosts()
            self._mark("hosts", started)
            self._start_redis()
            self._mark("redis", started)
            pg_thread.join_or_raise(120)
            self._mark("postgres", started)
            if self.seed_plan is not None:
                self.seed(**self.seed_plan)
                self._mark("seed", started)
            if self.topology == "ha":
                replica = _Thread(self._start_redis_replica)
                replica.start()
                self._start_postgres_standby()
                replica.join_or_raise(60)
                self.wait_replicated()
                self._mark("replicas", started)
        except BaseException:
            self.close()
            raise
        self.build_seconds = time.monotonic() - started
        return self

    def _mark(self, step, started):
        self.timings[step] = round(time.monotonic() - started, 2)

    def _allocate(self):
        with _global_lock():
            clean_stale()
            used = {r["n"] for r in _records()}
            machine = _machine_networks()
            links = set(os.listdir("/sys/class/net"))
            for n in range(1, 255):
                net = ipaddress.ip_network(SUBNET.format(n))
                if n in used or "cq{0}br".format(n) in links or any(net.overlaps(m) for m in machine):
                    continue
                self.n = n
                break
            else:
                raise LabError("no free lab subnet in 10.231.1-254.0/24")
            self.bridge = "cq{0}br".format(self.n)
            self.controller_address = str(ipaddress.ip_network(self.subnet)[1])
            parent = str(self.base_dir) if self.base_dir else None
            if self.base_dir:
                self.base_dir.mkdir(parents=True, exist_ok=True)
                closed = [str(p) for p in [self.base_dir.resolve(), *self.base_dir.resolve().parents]
                          if not os.stat(p).st_mode & stat.S_IXOTH]
                if closed:
                    raise LabError("base_dir {0}: {1} is not searchable by other users (the postgres user must enter "
                                   "the lab dir); use a dir like /tmp or /var/tmp".format(self.base_dir, closed[0]))
            self.dir = Path(tempfile.mkdtemp(prefix="cerniq-lab{0}-".format(self.n), dir=parent))
            os.chmod(self.dir, 0o755)  # the postgres user enters it
            (self.dir / ".cerniq-lab").write_text("{0}\n".format(self.n))
            for i, (name, groups) in enumerate(TOPOLOGIES[self.topology]):
                self.hosts[name] = Host(name=name, groups=groups,
                                        address=str(ipaddress.ip_network(self.subnet)[11 + i]),
                                        netns="cq{0}-{1}".format(self.n, name), veth="cq{0}v{1}".format(self.n, i),
                                        dir=self.dir / "hosts" / name)
            self._record = dict(n=self.n, owner_pid=os.getpid(), owner_start=_process_start_time(os.getpid()),
                                detached=self.detached, lab_dir=str(self.dir), bridge=self.bridge,
                                netns=[h.netns for h in self.hosts.values()],
                                veths=[h.veth for h in self.hosts.values()], topology=self.topology)
            (STATE_DIR / "{0}.json".format(self.n)).write_text(json.dumps(self._record))
            _ensure_mountpoints(list(PRIVATE_DIRS))
        atexit.register(self.close)

    def _prepare_hosts(self):
        ssh_dir = self.dir / "ssh"
        ssh_dir.mkdir(mode=0o700)
        _sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cerniq-lab-controller", "-f", str(self.ssh_key)])
        public_key = (ssh_dir / "id_ed25519.pub").read_text()
        passwd = Path("/etc/passwd").read_text()
        taken = {int(line.split(":")[2]) for line in passwd.splitlines() if line.count(":") >= 6}
        group_text = Path("/etc/group").read_text()
        taken |= {int(line.split(":")[2]) for line in group_text.splitlines() if line.count(":") >= 3}
        uid = next(u for u in range(2931, 60000) if u not in taken)
        self.lab_uid = uid
        etc_hosts = "127.0.0.1\tlocalhost\n{0}\tcontroller\n".format(self.controller_address) + "".join(
            "{0}\t{1}\n".format(h.address, h.name) for h in self.hosts.values())
        known = []
        for host in self.hosts.values():
            fs = host.dir / "fs"
            for inside in PRIVATE_DIRS:
                (fs / inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
            os.chmod(fs / "tmp", 0o1777)
            os.chmod(fs / "var/tmp", 0o1777)
            os.chmod(fs / "root", 0o700)
            (fs / "var/log/cerniq").mkdir()
            _seed_apt_state(fs)
            for name in os.listdir("/etc/logrotate.d"):
                src = Path("/etc/logrotate.d") / name
                if src.is_file():
                    shutil.copy2(src, fs / "etc/logrotate.d" / name)
            for name in os.listdir("/etc/sudoers.d"):
                shutil.copy2(Path("/etc/sudoers.d") / name, fs / "etc/sudoers.d" / name)
            sudoers = fs / "etc/sudoers.d" / LAB_USER
            sudoers.write_text("{0} ALL=(ALL:ALL) NOPASSWD: ALL\n".format(LAB_USER))
            os.chmod(sudoers, 0o440)
            (fs / "etc/passwd").write_text(passwd.rstrip("\n") + "\n{0}:x:{1}:{1}:cerniq lab SRE:/home/{0}:/bin/bash\n"
                                           .format(LAB_USER, uid))
            (fs / "etc/group").write_text(group_text.rstrip("\n") + "\n{0}:x:{1}:\n".format(LAB_USER, uid))
            shadow = fs / "etc/shadow"
            shadow.write_text(Path("/etc/shadow").read_text().rstrip("\n") + "\n{0}:*:20000:0:99999:7:::\n"
                              .format(LAB_USER))
            os.chmod(shadow, 0o640)
            with contextlib.suppress(KeyError):
                os.chown(shadow, 0, _group_id("shadow"))
            (fs / "etc/hosts").write_text(etc_hosts)
            home = fs / "home" / LAB_USER
            (home / ".ssh").mkdir(parents=True)
            (home / ".ssh/authorized_keys").write_text(public_key)
            os.chmod(home / ".ssh", 0o700)
            os.chmod(home / ".ssh/authorized_keys", 0o600)
            for path in (home, home / ".ssh", home / ".ssh/authorized_keys"):
                os.chown(path, uid, uid)
            os.chmod(home, 0o755)
            sshd_dir = fs / "run/lab-sshd"
            sshd_dir.mkdir()
            (fs / "run/sshd").mkdir(mode=0o755)
            key = sshd_dir / "ssh_host_ed25519_key"
            _sh(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", host.name, "-f", str(key)])
            known.append("{0} {1}".format(host.address, " ".join(Path(str(key) + ".pub").read_text().split()[:2])))
            (sshd_dir / "sshd_config").write_text(_SSHD_CONFIG.format(address=host.address, port=SSH_PORT,
                                                                      user=LAB_USER))
            (host.dir / "boot.sh").write_text(self._boot_script(host))
        self.known_hosts.write_text("\n".join(known) + "\n")
        (self.dir / "cp").mkdir(mode=0o700)

    def _boot_script(self, host):
        fs = host.dir / "fs"
        lines = ["set -eu",
                 # The other labs' namespace mounts, copied into this mount namespace, would keep them alive.
                 "umount -l /run/netns 2>/dev/null || true",
                 "ip link set lo up",
                 "ip addr add {0}/24 dev eth0".format(host.address),
                 "ip link set eth0 up",
                 "if [ -w /proc/sys/net/ipv6/conf/all/disable_ipv6 ]; then "
                 "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; fi",
                 "echo {0} > /proc/sys/kernel/hostname".format(host.name)]
        # The checkout (the Node worker, its node_modules) stays visible when it lives under a private dir (a clone
        # in /tmp, /root or /home): bound into that dir's private copy first, carried over by --rbind.
        for inside in PRIVATE_DIRS:
            if str(REPO_ROOT).startswith(inside.rstrip("/") + "/"):
                copy = fs / str(REPO_ROOT).lstrip("/")
                lines += ["mkdir -p {0}".format(_q(copy)), "mount --bind {0} {1}".format(_q(REPO_ROOT), _q(copy))]
        for inside in PRIVATE_FILES + PRIVATE_DIRS:
            lines.append("mount --rbind {0} {1}".format(_q(fs / inside.lstrip("/")), inside))
        lines.append("exec /usr/sbin/sshd -D -f /run/lab-sshd/sshd_config -E /run/lab-sshd/sshd.log")
        return "\n".join(lines) + "\n"

    def _build_network(self):
        lines = ["link add {0} type bridge".format(self.bridge)]
        for host in self.hosts.values():
            lines += ["netns add {0}".format(host.netns),
                      "link add {0} type veth peer name eth0 netns {1}".format(host.veth, host.netns),
                      "link set {0} master {1}".format(host.veth, self.bridge)]
        _ip_batch(lines)
        for name in [self.bridge] + [h.veth for h in self.hosts.values()]:
            with contextlib.suppress(OSError):
                Path("/proc/sys/net/ipv6/conf/{0}/disable_ipv6".format(name)).write_text("1\n")
        lines = ["addr add {0}/24 dev {1}".format(self.controller_address, self.bridge),
                 "link set {0} up".format(self.bridge)]
        lines += ["link set {0} up".format(h.veth) for h in self.hosts.values()]
        _ip_batch(lines)

    def _boot_hosts(self):
        for host in self.hosts.values():
            log = open(host.dir / "boot.log", "wb")
            host.process = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, "unshare", "--mount", "--uts", "--propagation", "private",
                 "/bin/sh", str(host.dir / "boot.sh")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
        for host in self.hosts.values():
            self._wait_port(host, SSH_PORT, 15, "sshd")

    def _wait_port(self, host, port, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if host.process is not None and host.process.poll() is not None:
                raise LabError("{0}: {1} exited ({2}): {3}".format(host.name, what, host.process.returncode,
                                                                   self._boot_log(host)))
            with contextlib.suppress(OSError), socket.create_connection((host.address, port), timeout=0.5):
                return
            time.sleep(0.02)
        raise LabError("{0}: {1} not listening on {2}:{3} within {4}s: {5}".format(
            host.name, what, host.address, port, timeout, self._boot_log(host)))

    @staticmethod
    def _boot_log(host):
        parts = []
        for path in (host.dir / "boot.log", host.dir / "fs/run/lab-sshd/sshd.log"):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace")[-1500:])
        return " | ".join(p.strip() for p in parts if p.strip())

    def _netns_prefix(self, host):
        return ["ip", "netns", "exec", host.netns]

    def _start_redis(self):
        host = self.redis_host
        self.redis = services.RedisServer(host=host.address, port=REDIS_PORT,
                                          data_dir=self.dir / "services" / host.name,
                                          password=REDIS_PASSWORD, persistent=True, prefix=self._netns_prefix(host),
                                          # A replica's full sync starts at once, not 5 s later.
                                          extra_args=["--repl-diskless-sync-delay", "0"]).start(detach=True)

    def _start_redis_replica(self):
        host = self.group("redis")[1]
        master = self.redis
        self.redis_replica = services.RedisServer(
            host=host.address, port=REDIS_PORT, data_dir=self.dir / "services" / host.name, password=REDIS_PASSWORD,
            persistent=True, prefix=self._netns_prefix(host),
            extra_args=["--replicaof", master.host, str(master.port), "--masterauth", master.password,
                        "--replica-read-only", "yes"]).start(detach=True)
        services.wait_until(lambda: self.redis_replica.client().info("replication").get("master_link_status") == "up",
                            20, "Redis replica on {0}".format(host.name))

    def _pg_hba(self):
        return ["host all all {0} scram-sha-256".format(self.subnet),
                "host replication all {0} scram-sha-256".format(self.subnet)]

    def _start_postgres_primary(self):
        host = self.db_host
        self.pg = services.PostgresServer(host=host.address, port=PG_PORT, base_dir=self.dir / "services" / host.name,
                                          password=DB_PASSWORD, superuser_password=DB_SUPERUSER_PASSWORD,
                                          prefix=self._netns_prefix(host), hba=self._pg_hba())
        self.pg.initdb()
        self._hosts_ready(host)
        self.pg.start()
        self.pg.load_schema()

    def _hosts_ready(self, host, timeout=30):
        deadline = time.monotonic() + timeout
        while host.process is None or not os.path.exists("/run/netns/" + host.netns):
            if time.monotonic() > deadline:
                raise LabError("{0}: its namespace never came up".format(host.name))
            time.sleep(0.02)
        self._wait_port(host, SSH_PORT, timeout, "sshd")

    def _start_postgres_standby(self):
        host = self.group("db")[1]
        standby = services.PostgresServer(host=host.address, port=PG_PORT, base_dir=self.dir / "services" / host.name,
                                          password=DB_PASSWORD, superuser_password=DB_SUPERUSER_PASSWORD,
                                          prefix=self._netns_prefix(host), hba=self._pg_hba())
        standby.base_dir.mkdir(parents=True)
        os.chmod(standby.base_dir, 0o755)
        standby._chown(standby.base_dir)  # pylint: disable=protected-access
        # From the standby's own address, as a real standby is cloned.
        _sh(self._netns_prefix(host) + standby._as_owner(  # pylint: disable=protected-access
            [str(standby.bin_dir / "pg_basebackup"), "-h", self.pg.host, "-p", str(self.pg.port), "-U",
             services.DB_SUPERUSER, "-D", str(standby.data_dir), "-R", "-X", "stream", "-c", "fast", "--no-sync"]),
            env=dict(os.environ, PGPASSWORD=DB_SUPERUSER_PASSWORD, PGCONNECT_TIMEOUT="5"), timeout=120)
        standby.socket_dir.mkdir(exist_ok=True)
        standby._chown(standby.socket_dir)  # pylint: disable=protected-access
        self.pg_standby = standby.start()

    # --- data -------------------------------------------------------------------------------------------------

    def seed(self, **plan):
        """Load tests/support/seed.py's data (SMALL_SEED, then these SeedPlan fields) into the primary and master."""
        return seed_small(self.pg, self.redis, **plan)

    def wait_replicated(self, timeout=20):
        """In "ha": until the standby replayed the primary's WAL and the replica acknowledged the master's writes."""
        if self.redis_replica is not None:
            acked = self.redis.client().execute_command("WAIT", 1, int(timeout * 1000))
            if acked < 1:
                raise LabError("the Redis replica did not acknowledge the master's writes within {0}s".format(timeout))
        if self.pg_standby is not None:
            # The end of a WAL record written now (every earlier commit is before it); the insert position itself
            # may be a page header no replay ever reaches.
            conn = self.pg.superuser_connect()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT pg_logical_emit_message(false, 'cerniq-lab', 'replicated?')::text")
                    target = cur.fetchone()[0]
            finally:
                conn.close()

            def replayed():
                conn = self.pg_standby.superuser_connect()
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,))
                        return cur.fetchone()[0]
                finally:
                    conn.close()

            services.wait_until(replayed, timeout, "the standby's replay of {0}".format(target))

    def sql(self, query, args=None, dbname=services.DB_NAME, server=None):
        conn = (server or self.pg).connect(dbname)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(query, args)
                return cur.fetchall() if cur.description else cur.rowcount
        finally:
            conn.close()

    def r(self, db=0):
        return self.redis.client(db)

    def reset(self, seed=True, wipe=RESET_DIRS):
        """Back to a freshly seeded lab between tests: session processes on the hosts (a worker, a stuck command)
        stopped, `wipe` dirs emptied on every host, Redis flushed, the tables and extra databases emptied, reseeded."""
        for host in self.hosts.values():
            self.stop_sessions(host.name)
            for inside in wipe:
                root = host.path(inside)
                for entry in list(root.iterdir()) if root.exists() else []:
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
        self.redis.client().flushall()
        self.pg.drop_databases("cerniq\\_%")
        conn = self.pg.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (services.DB_NAME,))
                missing = not cur.fetchone()
        finally:
            conn.close()
        if missing:
            self.pg._ensure_database()  # pylint: disable=protected-access
            self.pg.load_schema()
        self.pg.reset_data()
        conn = self.pg.superuser_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("COMMENT ON DATABASE cerniq IS NULL")
                cur.execute("ALTER DATABASE cerniq RESET ALL")
                cur.execute("GRANT CONNECT, TEMPORARY ON DATABASE cerniq TO PUBLIC")
        finally:
            conn.close()
        if seed:
            self.seed(**(seed if isinstance(seed, dict) else {}))
        if self.topology == "ha":
            self.wait_replicated()

    # --- hosts ------------------------------------------------------------------------------------------------

    def _host(self, host):
        if isinstance(host, Host):
            return host
        if host not in self.hosts:
            raise KeyError("no host {0!r} in this lab (hosts: {1})".format(host, ", ".join(self.hosts)))
        return self.hosts[host]

    def run(self, host, argv, user=None, check=True, timeout=60, **kwargs):
        """Run argv inside a host's namespaces (network, mount, hostname: nsenter on its sshd), as root or `user`.

        Returns a CompletedProcess (text); check=True raises LabError on a non-zero exit.
        """
        host = self._host(host)
        prefix = ["nsenter", "-t", str(host.pid), "-n", "-m", "-u", "--"]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        result = subprocess.run(prefix + list(argv), capture_output=True, text=True, timeout=timeout, check=False,
                                cwd="/", **kwargs)
        if check and result.returncode != 0:
            raise LabError("{0}: {1} failed ({2}): {3}".format(host.name, " ".join(map(str, argv)), result.returncode,
                                                               (result.stderr or result.stdout).strip()[-2000:]))
        return result

    def popen(self, host, argv, user=None, **kwargs):
        """Like run(), in the background (a Popen): a process that lives in the host, e.g. a Node worker."""
        host = self._host(host)
        prefix = ["nsenter", "-t", str(host.pid), "-n", "-m", "-u", "--"]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        return subprocess.Popen(prefix + list(argv), cwd="/", start_new_session=True, **kwargs)

    def ssh_argv(self, host, argv=()):
        """The ssh command that logs in to a host as LAB_USER, as Ansible does (for a test or by hand)."""
        host = self._host(host)
        return ["ssh", "-F", "/dev/null", "-i", str(self.ssh_key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                "-o", "UserKnownHostsFile={0}".format(self.known_hosts), "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=5", "-l", LAB_USER, host.address,
                "--"] + list(argv)

    def session_pids(self, host):
        """Processes in a host's mount namespace other than its sshd: SSH sessions and what they left running."""
        host = self._host(host)
        inode = _ns_inode("/proc/{0}/ns/mnt".format(host.pid))
        return [p for p in _pids_in("mnt", {inode}) if p != host.pid] if inode else []

    def stop_sessions(self, host, timeout=10):
        host = self._host(host)
        inode = _ns_inode("/proc/{0}/ns/mnt".format(host.pid))
        if inode is None:
            return
        left = _kill_all("mnt", {inode}, exclude=(host.pid,), timeout=timeout / 2, sig=signal.SIGTERM)
        if left:
            left = _kill_all("mnt", {inode}, exclude=(host.pid,), timeout=timeout / 2)
        if left:
            raise LabError("{0}: processes {1} did not exit".format(host.name, left))

    # --- faults -----------------------------------------------------------------------------------------------

    def link_down(self, host, restore_after=None):
        """Cut a host off the bridge (its veth down): nothing reaches it, it reaches nothing. With restore_after
        (seconds) the link comes back by itself; close() always brings links back before removing them."""
        host = self._host(host)
        _sh(["ip", "link", "set", host.veth, "down"])
        if restore_after is not None:
            timer = threading.Timer(restore_after, self.link_up, args=(host.name,), kwargs=dict(wait=False))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()

    def link_up(self, host, wait=True, timeout=10):
        host = self._host(host)
        if self._closed:
            return
        _sh(["ip", "link", "set", host.veth, "up"])
        if wait:
            self._wait_port(host, SSH_PORT, timeout, "sshd after link_up")

    @contextlib.contextmanager
    def link_cut(self, host):
        """with lab.link_cut("db-1"): ... -- the link is down inside the block, up again after it."""
        self.link_down(host)
        try:
            yield
        finally:
            self.link_up(host)

    # --- Ansible ----------------------------------------------------------------------------------------------

    def worker_command(self, queues=(WORKER_QUEUE,)):
        """The Node BullMQ worker's command line on the workers host (the workers role's process manager)."""
        # The password reaches the worker through the workers role's 0600 environment file, never argv.
        cmd = "{0} {1} --host {2} --port {3} --db 2".format(NODE, WORKER_JS, self.redis.host, self.redis.port)
        return cmd + "".join(" --queue {0}".format(q) for q in queues)

    def inventory(self, extra_vars=None, host_vars=None):
        """An Ansible inventory (dict) of the lab: groups redis/db/workers, SSH as LAB_USER with the lab's key and
        known_hosts, the system Python, the lab's service credentials and the workers' process manager.

        cerniq_redis_host / cerniq_db_host are left out: the plays derive them from the groups (pass them in
        extra_vars to name a service address). host_vars: {host: {var: value}}.
        """
        ssh_args = " ".join([
            "-F /dev/null", "-o IdentitiesOnly=yes", "-o UserKnownHostsFile={0}".format(self.known_hosts),
            "-o GlobalKnownHostsFile=/dev/null", "-o StrictHostKeyChecking=yes", "-o ConnectTimeout=5",
            "-o ServerAliveInterval=2", "-o ServerAliveCountMax=3"])
        variables = {
            "ansible_connection": "ssh",
            "ansible_user": LAB_USER,
            "ansible_ssh_private_key_file": str(self.ssh_key),
            "ansible_ssh_common_args": ssh_args,
            "ansible_control_path_dir": str(self.dir / "cp"),
            "cerniq_redis_port": REDIS_PORT,
            "cerniq_redis_password": REDIS_PASSWORD,
            "cerniq_redis_tls": False,
            "cerniq_db_port": PG_PORT,
            "cerniq_db_name": services.DB_NAME,
            "cerniq_db_user": services.DB_USER,
            "cerniq_db_password": DB_PASSWORD,
            "cerniq_db_sslmode": "disable",
            "cerniq_audit_actor": "pytest-lab",
            # The controller's own directories (this test process's machine), inside the lab's dir.
            "cerniq_report_dir": str(self.dir / "controller" / "reports"),
            "cerniq_backup_copy_dir": str(self.dir / "controller" / "backups"),
            "cerniq_workers_manager": "process",
            "cerniq_workers_process_start": self.worker_command(),
            "cerniq_workers_environment": {"CERNIQ_REDIS_PASSWORD": REDIS_PASSWORD},
            "cerniq_workers_process_pid_file": WORKER_PID_FILE,
            "cerniq_workers_process_log": WORKER_LOG,
            "cerniq_workers_process_chdir": str(REPO_ROOT / "tests" / "node"),
            "cerniq_workers_queues": [WORKER_QUEUE],
            "cerniq_workers_queue_pattern": "",
            # No procedure may need root on the controller (the test process, root here): any `become` on the
            # implicit localhost, which takes `all`'s variables, runs this refusal instead of sudo and fails loudly
            # (play() also sets ANSIBLE_BECOME_ALLOW_SAME_USER: root becoming root is otherwise skipped, not run).
            # The hosts' groups set sudo back.
            "ansible_become_exe": str(self._controller_become_refusal()),
        }
        variables.update(extra_vars or {})
        children = {}
        for group, names in self.groups().items():
            # The hosts' bare system Python, set per group: in `all` the controller (implicit localhost) would inherit
            # it and lose its own (docs/hosts.md).
            children[group] = {"vars": {"ansible_python_interpreter": SYSTEM_PYTHON, "ansible_become_exe": "sudo"},
                               "hosts": {name: dict({"ansible_host": self.hosts[name].address},
                                                    **(host_vars or {}).get(name, {})) for name in names}}
        return {"all": {"vars": variables, "children": children}}

    def _controller_become_refusal(self):
        """An executable in the lab dir that refuses `become` on the controller, naming the rule it enforces."""
        path = self.dir / "controller" / "become-refused"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("#!/bin/sh\necho 'cerniq lab: become on the controller refused - no procedure may need "
                            "root on the controller (docs/hosts.md)' >&2\nexit 1\n")
            path.chmod(0o755)
        return path

    def play(self, playbook, extravars=None, inventory=None, **kwargs):
        """Run a playbook (playbooks/<name> or a path) over SSH against the lab; returns a PlaybookRun.

        With ANSIBLE_BECOME_ALLOW_SAME_USER: a `become` on the controller (root here) runs the inventory's refusal
        instead of being skipped as root-to-root; on the hosts (cerniq-sre to root) it changes nothing.
        """
        from tests.support.playbooks import run_playbook

        kwargs["env"] = dict({"ANSIBLE_BECOME_ALLOW_SAME_USER": "1"}, **(kwargs.get("env") or {}))
        return run_playbook(playbook, inventory or self.inventory(), extravars=extravars, **kwargs)

    # --- state ------------------------------------------------------------------------------------------------

    def files(self, dirs=STATE_DIRS):
        """{host: {path: (type, mode, uid, gid, size, mtime_ns, sha256 | link target)}} of the hosts' private dirs."""
        return {host.name: self._listing(host, dirs) for host in self.hosts.values()}

    def _listing(self, host, dirs):
        # Called several times per test over thousands of files (a host's virtualenv): plain strings and scandir's
        # entries, no Path per file, and each file's sha256 read again only when it moved (_file_sha256).
        listing = {}
        pending = [(str(host.path(inside)), inside) for inside in dirs]
        while pending:
            directory, rel_dir = pending.pop()
            try:
                entries = os.scandir(directory)
            except (FileNotFoundError, NotADirectoryError):
                continue
            with entries:
                for entry in entries:
                    info = entry.stat(follow_symlinks=False)
                    rel = rel_dir + "/" + entry.name
                    if stat.S_ISLNK(info.st_mode):
                        listing[rel] = ("link", os.readlink(entry.path))
                    elif stat.S_ISDIR(info.st_mode):
                        listing[rel] = ("dir", stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)
                        pending.append((entry.path, rel))
                    else:
                        listing[rel] = ("file", stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid,
                                        info.st_size, info.st_mtime_ns, self._file_sha256(entry.path, info))
        return listing

    def _file_sha256(self, path, info):
        """The file's sha256, read again only when its inode, size, mtime or ctime moved since the last read (any
        write moves the ctime, which no one can set back): the hosts' virtualenvs are thousands of files. A file
        changed in the last 2 s is always read (as git does: a second write within the clock's tick would keep
        the same ctime)."""
        identity = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
        if time.time_ns() - info.st_ctime_ns < 2_000_000_000:
            return _sha256(path)
        seen = self._sha256_seen.get(path)
        if seen is None or seen[0] != identity:
            seen = self._sha256_seen[path] = (identity, _sha256(path))
        return seen[1]

    def state(self, services_too=True):
        """One comparable value: the hosts' private dirs' listings (files()), and with services_too every Redis key's
        DUMP (dbs 0 and 2 of the master) and PostgreSQL's row counts and checksums (tests/support/snapshots.py)."""
        value = {"files": self.files()}
        if services_too:
            from tests.support.snapshots import services_state

            value.update(services_state(services.module_params(self.redis, self.pg), redis_dbs=(0, 2)))
        return value

    def digest(self, services_too=True):
        """A sha256 of state(): equal digests, equal states."""
        return hashlib.sha256(repr(_sorted(self.state(services_too))).encode()).hexdigest()

    # --- close ------------------------------------------------------------------------------------------------

    def close(self):
        """Remove everything the lab made (processes, namespaces, links, its dir); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)
        for timer in self._timers:
            timer.cancel()
        if self._record is None:
            return
        with _global_lock():
            try:
                _destroy(self._record)
            finally:
                for host in self.hosts.values():
                    if host.process is not None:
                        with contextlib.suppress(Exception):
                            host.process.wait(5)
                for server in (self.redis, self.redis_replica):
                    if server is not None and server.process is not None:
                        with contextlib.suppress(Exception):
                            server.process.wait(5)
                _remove_mountpoints_if_idle()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


_SSHD_CONFIG = """\
# The lab's sshd: keys only, for the lab's user only, on this host's address only.
ListenAddress {address}
Port {port}
HostKey /run/lab-sshd/ssh_host_ed25519_key
PidFile /run/lab-sshd/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
PermitRootLogin no
AllowUsers {user}
StrictModes yes
UseDNS no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
"""


class _Thread(threading.Thread):
    """A thread whose exception join_or_raise re-raises in the caller."""

    def __init__(self, target):
        super().__init__(daemon=True)
        self._work = target
        self.error = None

    def run(self):
        try:
            self._work()
        except BaseException as exc:  # re-raised in join_or_raise
            self.error = exc

    def join_or_raise(self, timeout):
        self.join(timeout)
        if self.is_alive():
            raise LabError("{0} still running after {1}s".format(self._work.__name__, timeout))
        if self.error is not None:
            raise self.error


def _seed_apt_state(fs):
    """A host's private apt state: APT_LISTS copied from the machine's (their mtimes kept), and the partial dirs apt
    downloads into, owned by its sandbox user as apt makes them."""
    lists = fs / "var/lib/apt/lists"
    for pattern in APT_LISTS:
        for src in Path("/var/lib/apt/lists").glob(pattern):
            shutil.copy2(src, lists / src.name)
    for partial in (lists / "partial", fs / "var/cache/apt/archives/partial"):
        partial.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(KeyError):
            os.chown(partial, _user_id("_apt"), 0)
        os.chmod(partial, 0o700)


def _user_id(name):
    import pwd

    return pwd.getpwnam(name).pw_uid


def _q(path):
    text = str(path)
    return "'" + text.replace("'", "'\\''") + "'"


def _group_id(name):
    import grp

    return grp.getgrnam(name).gr_gid


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _sorted(value):
    if isinstance(value, dict):
        return sorted((repr(k), _sorted(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_sorted(v) for v in value]
    return value


# --- command line: a lab that outlives the command (Molecule, by hand) ------------------------------------------


def main(argv=None):
    import argparse

    import yaml

    parser = argparse.ArgumentParser(prog="python -m tests.support.lab", description=__doc__.split("\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="build a lab; write <dir>/inventory.yml and <dir>/lab.json")
    start.add_argument("--dir", required=True, help="where the inventory and the lab's record go")
    start.add_argument("--topology", choices=sorted(TOPOLOGIES), default="single")
    start.add_argument("--no-seed", action="store_true")
    start.add_argument("--inventory", help="also write the inventory here (e.g. a file in Molecule's inventory dir)")
    stop = sub.add_parser("stop", help="remove the lab started with this --dir")
    stop.add_argument("--dir", required=True)
    sub.add_parser("clean", help="remove every lab whose owner is gone, and every lab started from the command line")
    args = parser.parse_args(argv)
    if args.command == "start":
        out = Path(args.dir)
        out.mkdir(parents=True, exist_ok=True)
        lab = Lab(args.topology, seed=not args.no_seed, detached=True).start()
        atexit.unregister(lab.close)  # it outlives this command: `stop` removes it
        (out / "inventory.yml").write_text(yaml.safe_dump(lab.inventory(), sort_keys=False))
        if args.inventory:
            Path(args.inventory).parent.mkdir(parents=True, exist_ok=True)
            Path(args.inventory).write_text(yaml.safe_dump(lab.inventory(), sort_keys=False))
        (out / "lab.json").write_text(json.dumps(dict(lab._record, hosts={  # pylint: disable=protected-access
            h.name: h.address for h in lab.hosts.values()}, build_seconds=round(lab.build_seconds, 2))))
        print("lab {0} ({1}) up in {2:.1f}s: inventory {3}".format(lab.n, lab.topology, lab.build_seconds,
                                                                   out / "inventory.yml"))
        return 0
    if args.command == "stop":
        path = Path(args.dir) / "lab.json"
        if not path.exists():
            print("no lab record at {0}: nothing to stop".format(path))
            return 0
        record = json.loads(path.read_text())
        with _global_lock():
            _destroy(record)
            _remove_mountpoints_if_idle()
        path.unlink()
        print("lab {0} removed".format(record["n"]))
        return 0
    with _global_lock():
        removed = clean_stale(include_detached=True)
    print("labs removed: {0}".format(removed or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
