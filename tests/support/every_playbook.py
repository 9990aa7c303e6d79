"""The matrix of tests/integration/lab/test_every_playbook*.py: every playbook on real hosts over SSH.

Every playbook on real hosts over SSH (tests/support/lab.py), from a controller with nothing preinstalled on the
hosts: in --check nothing changes on any host nor in the services (every Redis key's DUMP, the tables' checksums, the
listings of the hosts' private dirs: lab.state()); the real run is green; a second run of an idempotent procedure
changes nothing, neither in its task results nor in lab.state().

The vendors (Instantly, TimelinesAI) are the fakes on 127.0.0.1: the controller runs the vendor modules, so it reaches
them on loopback; the hosts never talk to a vendor (docs/hosts.md). Reports land on the controller (tmp_path), not in
lab.state().

Both topologies, every playbook: single hosts, and the HA pairs (db-1 primary + db-2 streaming standby, redis-1
master + redis-2 replica). The HA runs get an inventory that lists the standby and the replica FIRST in their groups:
a procedure that took the first host of a group (instead of asking each server at run time) would write to the
standby or the replica and fail. In both topologies every run (check, first, second) is checked for placement: each
of the collection's modules ran once, on the controller, or, for host-level work, on the hosts Spec.host_level names
(the primary's host for the backup, the evening check's verification and the recovery); in HA the election named the
primary and the master, the standby and the replica refused no write (their logs and error counters), and after the
case they hold what the primary and the master hold.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    business_day,
    phone_status_key,
    quota_key,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import database_snapshot
from tests.fakes import timelinesai as timelinesai_fake
from tests.support import services
from tests.support.lab import SYSTEM_PYTHON, WORKER_PID_FILE
from tests.support.seed import TENANT_ID
from tests.support.snapshots import redis_dump
from tests.support.vendors import (
    INSTANTLY_KEY,
    TIMELINES_TOKEN,
    campaign_ids,
    campaign_status,
    changes,
)

PLAYBOOKS_DIR = Path(__file__).resolve().parents[2] / "playbooks"
TIMEZONE = "Europe/Bucharest"
CONTROLLER = "localhost"  # cerniq_controller_host: where the collection's service-level modules run
ELECTION_TASK = "Find the PostgreSQL primary and the Redis master"
# Action plugins that execute no module: they run inside ansible-playbook on the controller, for each host of the
# play (alert_input checks the alert's variables before anything else).
CONTROLLER_ACTIONS = ("cerniq.outreach.alert_input",)
HOST_PYTHON = "/opt/cerniq/venv/bin/python"
HOST_PYTHON_CHANGES = ("Download the wheels", "Copy the wheelhouse", "Create the virtualenv", "Install the pinned",
                       "Check that the collection's libraries import")


@dataclass
class Ctx:
    lab: object
    tmp_path: Path
    instantly: object
    timelines: object

    @property
    def reports(self):
        return str(self.tmp_path / "reports")

    def play(self, playbook, extravars=None, **kwargs):
        """lab.play with the controller's paths in tmp_path (the backups' copies, default ~/cerniq/backups); on the
        HA pairs with the standby and the replica listed first (standby_first_inventory)."""
        if self.lab.topology == "ha":
            kwargs.setdefault("inventory", standby_first_inventory(self.lab))
        return self.lab.play(playbook, dict(self.controller_vars(), **(extravars or {})), **kwargs)

    def controller_vars(self):
        return {"cerniq_backup_copy_dir": str(self.tmp_path / "backup-copies")}

    def timelines_vars(self):
        return {"cerniq_timelinesai_base_url": self.timelines.base_url,
                "cerniq_timelinesai_api_token": TIMELINES_TOKEN, "cerniq_vendor_allow_http": True}

    def instantly_vars(self):
        return {"cerniq_instantly_base_url": self.instantly.url, "cerniq_instantly_api_key": INSTANTLY_KEY,
                "cerniq_vendor_allow_http": True}


@dataclass
class Spec:
    """How one playbook is run in the lab.

    extravars(ctx): the variables of every run (the check run and the real runs alike, confirm included).
    setup(ctx): after lab.reset(), before the check run (state the procedure acts on).
    verify(ctx, run): after the real run: the procedure did its work.
    host_level(lab): the hosts where the collection's modules run on the host itself (host-level work: the DB
        primary's disk); every other module runs on the controller. Each module task runs once per run.
    reads_only: the real run leaves lab.state() as seeded (asserted); the next case then skips lab.reset().
    idempotent: a second run changes nothing (no changed task but `always_changed`, lab.state() equal).
    verify_again(ctx, run): a procedure that is not idempotent: after its second run (green).
    always_changed: tasks that report changed on every run by design -> the reason.
    audited_each_run: audit rows ((module, action), ...) every run writes by design -> the reason; a second run
        must add exactly these to ops_audit_log and change nothing else.
    """

    extravars: object = field(default=lambda ctx: {})
    setup: object = field(default=lambda ctx: None)
    verify: object = field(default=lambda ctx, run: None)
    host_level: object = field(default=lambda lab: set())
    reads_only: bool = False
    idempotent: bool = True
    verify_again: object = field(default=lambda ctx, run: None)
    always_changed: dict = field(default_factory=dict)
    audited_each_run: dict = field(default_factory=dict)


# --- per-playbook setup and verification ------------------------------------------------------------------------


def _backup_first(ctx):
    """A verified backup on the DB primary's host (backup_database.yml provisions the host's Python too)."""
    run = ctx.play("backup_database.yml")
    assert run.rc == 0, run.stdout[-4000:]


def _bare_hosts(ctx):
    """No collection virtualenv on any host (the lab keeps /opt between tests): the check run meets a bare host."""
    for host in ctx.lab.hosts.values():
        shutil.rmtree(host.path("/opt/cerniq"), ignore_errors=True)


def _backups(host):
    root = host.path("/backups/daily")
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if not p.is_symlink() and (p / "manifest.json").exists())


def _primary_host(lab):
    """The DB primary's host (where the lab started the primary: db-1; the HA inventory lists it second)."""
    return lab.db_host


def _host_python_changes(run):
    return [r["_task"] for r in run.results() if r.get("changed") and r["_task"].startswith(HOST_PYTHON_CHANGES)]


def _phone_status(lab, phone):
    return (lab.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (phone,))[0][0],
            lab.r(0).get(phone_status_key(phone)))


def _verify_alert_ban(ctx, run):
    assert _phone_status(ctx.lab, "phone_03") == ("BANNED", "BANNED")
    assert run.result("Alert response summary")["msg"][0].startswith("Alert phone:banned (CRITICAL")


def _verify_backup(ctx, run):
    """One verified backup, on the primary's disk only, taken with the Python host_python provisioned there (the
    check run before met a bare host); the host's own Python untouched; its copy imported on the controller."""
    lab, primary = ctx.lab, _primary_host(ctx.lab)
    assert {h.name: len(_backups(h)) for h in lab.group("db")} == {
        h.name: int(h is primary) for h in lab.group("db")}
    manifest = json.loads((_backups(primary)[0] / "manifest.json").read_text())
    assert manifest["tables"]
    assert _host_python_changes(run)
    lab.run(primary.name, [HOST_PYTHON, "-c", "import redis, psycopg2, bullmq"])
    assert lab.run(primary.name, [SYSTEM_PYTHON, "-c", "import redis"], check=False).returncode != 0
    assert [h.name for h in lab.hosts.values() if h.path("/opt/cerniq").exists()] == [primary.name]
    audited = dict(lab.sql("SELECT action, count(*) FROM ops_audit_log WHERE module = 'db_backup' GROUP BY action"))
    assert sorted(audited.values()) == [1, 1] and "db_backup_import" in audited, audited


def _verify_backup_again(ctx, run):
    """A second backup (a new one each run, by design), with the virtualenv left alone."""
    assert len(_backups(_primary_host(ctx.lab))) == 2
    assert _host_python_changes(run) == []


def _setup_bounce(ctx):
    ctx.instantly.clear_requests()


def _verify_bounce(ctx, run):
    ids = campaign_ids(ctx.instantly)
    assert campaign_status(ctx.instantly, ids["hot"]) == 2  # paused


def _report(ctx, prefix):
    found = sorted(Path(ctx.reports).glob(prefix + "-*.json"))
    assert found, "no {0} report in {1}".format(prefix, ctx.reports)
    return json.loads(found[-1].read_text())


def _verify_evening(ctx, run):
    report = _report(ctx, "check_evening")
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["backup"]["status"] == "pass", checks["backup"]


def _verify_morning(ctx, run):
    report = _report(ctx, "check_morning")
    checks = {c["name"]: c for c in report["checks"]}
    # The seeded lab: phone_04 OFFLINE in the DB, ACTIVE in Redis and connected at TimelinesAI.
    assert checks["phones"]["status"] == "fail" and "phone_04" in checks["phones"]["figure"], checks["phones"]
    # The report is on the controller, where the operator reads it; none on a host.
    for host in ctx.lab.hosts.values():
        assert not any(host.path("/var/lib/cerniq").rglob("check_morning-*")), host.name


def _workers_running(lab):
    pid_file = lab.workers_host.path(WORKER_PID_FILE)
    if not pid_file.exists():
        return False
    pid = pid_file.read_text().strip()
    return lab.run("workers-1", ["kill", "-0", pid], check=False).returncode == 0


def _verify_dr_database(ctx, run):
    # The live database is the restored one: its own audit log records the swap (db_database), with the reason.
    rows = ctx.lab.sql("SELECT action, reason FROM ops_audit_log WHERE module = 'db_database' ORDER BY id")
    assert rows and any("INC-LAB-DR" in (reason or "") for _action, reason in rows), rows
    assert _workers_running(ctx.lab), "the workers are not running after the recovery"


def _setup_dr_redis(ctx):
    # Redis lost everything: the phone status keys and counters (db 0) and the queues (db 2).
    ctx.lab.r(0).flushdb()
    ctx.lab.r(2).flushdb()
    if ctx.lab.topology == "ha":
        ctx.lab.wait_replicated()


def _verify_dr_redis(ctx, run):
    assert ctx.lab.r(0).get(phone_status_key("phone_01")) == "ACTIVE"
    assert ctx.lab.r(0).get(phone_status_key("phone_04")) == "OFFLINE"
    assert ctx.lab.r(2).dbsize() > 0  # the queues rebuilt from the database


HOST_PLAY = "Weekly maintenance of the hosts"


def _verify_maintenance(ctx, run):
    lab = ctx.lab
    old = lab.sql("SELECT count(*) FROM gold_communication_log WHERE created_at < now() - interval '90 days'")
    assert old == [(0,)]
    for host in lab.hosts.values():
        assert host.path("/etc/logrotate.d/cerniq").is_file(), host.name
    # The host play ran on every host, one host at a time (serial: 1): each host's tasks in one unbroken stretch.
    order = [e["event_data"]["host"] for e in run.events if e.get("event") in ("runner_on_ok", "runner_on_skipped")
             and e["event_data"].get("play", "").startswith(HOST_PLAY)]
    stretches = [h for i, h in enumerate(order) if i == 0 or order[i - 1] != h]
    assert sorted(stretches) == sorted(lab.hosts), stretches


def _verify_metrics(ctx, run):
    text = (ctx.tmp_path / "textfile" / "cerniq.prom").read_text()
    assert 'cerniq_dlq_entries{key="bull:dlq:outreach"} 30' in text, text[:2000]


def _verify_ban(ctx, run):
    assert _phone_status(ctx.lab, "phone_02") == ("BANNED", "BANNED")
    # Once, not once per host of the group: one ban in the audit log.
    audited = ctx.lab.sql("SELECT count(*) FROM ops_audit_log WHERE module = 'wa_phone' AND target LIKE %s",
                          ("%phone_02%",))
    assert audited == [(1,)], audited


def _setup_offline(ctx):
    ctx.timelines.reset(timelinesai_fake.build_demo_state(phones=6, disconnected=(4,)))


def _verify_offline(ctx, run):
    assert _phone_status(ctx.lab, "phone_04") == ("OFFLINE", "OFFLINE")


def _setup_onboard(ctx):
    ctx.timelines.reset(timelinesai_fake.build_demo_state(phones=7, disconnected=()))
    ctx.timelines.clear_requests()


def _verify_onboard(ctx, run):
    assert ctx.lab.sql("SELECT id, status FROM wa_phone_numbers WHERE phone_number = '+40700000007'") == [
        ("phone_07", "ACTIVE")]
    assert len(ctx.timelines.requests("POST", "/messages$")) == 1


def _verify_quota_set(ctx, run):
    assert ctx.lab.r(0).get(quota_key("phone_02", business_day(TIMEZONE))) == "150"


def _verify_quota_reset(ctx, run):
    assert ctx.lab.r(0).ttl(quota_key("phone_03", business_day(TIMEZONE))) > 0


def _urgent_reviews_pending(ctx):
    """The seed's random draws shift with the time of day, so some hours it leaves no URGENT item pending: the
    assignment would have nothing to take. Two are added, so the run always has work to do."""
    ctx.lab.sql("INSERT INTO human_review_queue (tenant_id, reason, priority, status, sla_due_at, created_at) "
                "SELECT seeded.tenant_id, 'negative_sentiment', 'URGENT', 'PENDING', now() - interval '5 minutes', "
                "now() - interval '65 minutes' FROM (SELECT tenant_id FROM human_review_queue LIMIT 1) AS seeded "
                "CROSS JOIN generate_series(1, 2)")


def _verify_review(ctx, run):
    held = ctx.lab.sql("SELECT count(*) FROM human_review_queue WHERE assigned_to = 'bob'")[0][0]
    assert held > 0


def _verify_health(ctx, run):
    assert run.results("Read the health of Redis, PostgreSQL and the BullMQ workers")


def _verify_workers(ctx, run):
    assert _workers_running(ctx.lab)


SPECS = {
    "alert_response.yml": Spec(
        extravars=lambda ctx: dict(ctx.timelines_vars(), alert="phone:banned", phone="phone_03", confirm=True,
                                   reason="INC-LAB-ALERT"),
        verify=_verify_alert_ban),
    "backup_database.yml": Spec(
        setup=_bare_hosts, verify=_verify_backup, host_level=lambda lab: {_primary_host(lab).name},
        # A backup takes a new backup every run (a new id, a new dump): not idempotent by design. Its second run
        # leaves the virtualenv alone, and a --check on the provisioned host changes nothing.
        idempotent=False, verify_again=_verify_backup_again),
    "bounce_high.yml": Spec(
        extravars=lambda ctx: dict(ctx.instantly_vars(), confirm=True, reason="INC-LAB-BOUNCE"),
        setup=_setup_bounce, verify=_verify_bounce),
    "check_evening.yml": Spec(
        extravars=lambda ctx: {"cerniq_report_dir": ctx.reports, "check_evening_fail_on_failed_checks": False},
        # Today's backup is what the evening check verifies, on the DB primary's host.
        setup=_backup_first, verify=_verify_evening, host_level=lambda lab: {_primary_host(lab).name}),
    "check_morning.yml": Spec(
        extravars=lambda ctx: dict(ctx.timelines_vars(), cerniq_report_dir=ctx.reports,
                                   check_morning_fail_on_failed_checks=False),
        verify=_verify_morning, reads_only=True),
    "dr_database.yml": Spec(
        extravars=lambda ctx: {"confirm": True, "dr_database_reason": "INC-LAB-DR"},
        setup=_backup_first, verify=_verify_dr_database, host_level=lambda lab: {_primary_host(lab).name}),
    "dr_redis.yml": Spec(
        extravars=lambda ctx: {"confirm": True},
        setup=_setup_dr_redis, verify=_verify_dr_redis),
    "maintenance_weekly.yml": Spec(
        # The lab's hosts have no route to a package archive (as in the issue): `apt update` there fails after its
        # retries (host_maintenance's package report). A cache younger than this skips the refresh; reported to the
        # lead - an offline host's package report must not need the archive.
        extravars=lambda ctx: {"confirm": True, "host_maintenance_apt_cache_valid_time": 10 ** 9},
        verify=_verify_maintenance,
        audited_each_run={
            ("comm_log_archive", "comm_log_archive"):
                "the archive's run summary, written by every run (0 rows moved included): the evening check and "
                "outreach_stats_info read when the archive last ran from it (plugins/module_utils/_archive.py)"}),
    "metrics.yml": Spec(
        extravars=lambda ctx: {"metrics_dir": str(ctx.tmp_path / "textfile")},
        verify=_verify_metrics, reads_only=True,
        always_changed={
            "Rename it over the collector's file (atomic within the directory)":
                "the file carries its own generation time (cerniq_metrics_generated_timestamp_seconds) and the "
                "queues' ages: every run publishes new figures, on the controller (not in lab.state())"}),
    "phone_banned.yml": Spec(
        extravars=lambda ctx: {"phone": "phone_02", "confirm": True, "reason": "INC-LAB-BAN"},
        verify=_verify_ban),
    "phone_offline.yml": Spec(
        extravars=lambda ctx: dict(ctx.timelines_vars(), phone="phone_04", reason="INC-LAB-OFFLINE"),
        setup=_setup_offline, verify=_verify_offline),
    "phone_onboard.yml": Spec(
        extravars=lambda ctx: dict(ctx.timelines_vars(), phone_onboard_phone_number="+40700000007",
                                   phone_onboard_label="Sales 07", phone_onboard_tenant_id=str(TENANT_ID),
                                   test_number="+40712345678"),
        setup=_setup_onboard, verify=_verify_onboard),
    "quota_exhausted.yml": Spec(
        extravars=lambda ctx: {"phone": "phone_02", "quota_value": "150", "reason": "INC-LAB-QUOTA",
                               "confirm": True},
        verify=_verify_quota_set),
    "quota_reset.yml": Spec(
        extravars=lambda ctx: {"quota_reset_days_back": "3", "confirm": True},
        verify=_verify_quota_reset),
    "review_sla.yml": Spec(
        extravars=lambda ctx: {"assign_to": "bob", "review_sla_assign_count": "5", "auto_approve": "true",
                               "confirm": True, "reason": "INC-LAB-SLA"},
        setup=_urgent_reviews_pending, verify=_verify_review),
    "stack_health.yml": Spec(verify=_verify_health, reads_only=True),
    "workers.yml": Spec(
        extravars=lambda ctx: {"workers_action": "start"},
        verify=_verify_workers),
}

# The matrix in two halves of about the same time, a test file each per topology (test_every_playbook.py and _2,
# test_every_playbook_ha.py and _ha_2): pytest-xdist's --dist loadfile runs a file whole on one worker, so four files
# spread the lab over both workers (a lab builds in seconds; each worker builds the ones its files ask for).
HALVES = (
    ("alert_response.yml", "backup_database.yml", "bounce_high.yml", "check_morning.yml", "maintenance_weekly.yml",
     "metrics.yml", "phone_offline.yml", "workers.yml"),
    ("check_evening.yml", "dr_database.yml", "dr_redis.yml", "phone_banned.yml", "phone_onboard.yml",
     "quota_exhausted.yml", "quota_reset.yml", "review_sla.yml", "stack_health.yml"),
)

# --- comparing states -------------------------------------------------------------------------------------------


def _differences(before, after, limit=20):
    """What differs between two lab.state() values: [(section, key, before, after)], for the failure message."""
    found = []
    for section in sorted(set(before) | set(after)):
        old, new = before.get(section, {}), after.get(section, {})
        if section == "files":
            for host in sorted(set(old) | set(new)):
                a, b = old.get(host, {}), new.get(host, {})
                found += [("files", host + ":" + path, a.get(path), b.get(path))
                          for path in sorted(set(a) | set(b)) if a.get(path) != b.get(path)]
        elif isinstance(old, dict) and isinstance(new, dict):
            found += [(section, key, _short(old.get(key)), _short(new.get(key)))
                      for key in sorted(set(old) | set(new), key=repr) if old.get(key) != new.get(key)]
        elif old != new:
            found.append((section, "", _short(old), _short(new)))
    return found[:limit]


def _short(value):
    text = repr(value)
    return text if len(text) <= 160 else text[:160] + "..."


def _assert_same_state(lab, before, what, ignore_audit=False):
    """lab.state() now equals `before` (see _same_order, the worker's heartbeat, ignore_audit); returns it."""
    if lab.topology == "ha":
        lab.wait_replicated()
    now = after = _same_order(lab, before, lab.state())
    if _workers_running(lab):
        before, after = _without_worker_heartbeat(before), _without_worker_heartbeat(after)
    if ignore_audit:  # compared row by row instead (_audit_rows)
        before, after = _without_audit(before), _without_audit(after)
    assert after == before, "{0} changed the lab: {1}; audit log now ends with {2}".format(
        what, _differences(before, after), _audit_rows(lab)[-5:])
    return now


SCRATCH_DB = 15  # not in lab.state() (dbs 0 and 2)
SCRATCH_KEY = "cerniq-lab-compare"
READERS = {"string": lambda c, k: c.get(k), "hash": lambda c, k: c.hgetall(k), "list": lambda c, k: c.lrange(k, 0, -1),
           "set": lambda c, k: sorted(c.smembers(k)), "zset": lambda c, k: c.zrange(k, 0, -1, withscores=True),
           "stream": lambda c, k: (c.xrange(k), c.xinfo_groups(k))}


def _same_order(lab, before, after):
    """`after`, where a key's DUMP differs from `before` only in the order of its elements, given before's bytes.

    A hash (or set) stored as a hash table is DUMPed in the table's iteration order, which a mere read can change
    (a read performs a step of an incremental rehash): equal content, different bytes. Both DUMPs are RESTOREd into
    a scratch db and read; the same type, content and expiry are the same value. Anything else stays a difference.
    """
    client = redis.Redis(host=lab.redis.host, port=lab.redis.port, password=lab.redis.password, db=SCRATCH_DB)
    try:
        out = dict(after)
        for section in ("redis0", "redis2"):
            old, new = before.get(section, {}), dict(after.get(section, {}))
            for key in set(old) & set(new):
                if old[key] != new[key] and old[key][1] == new[key][1] and \
                        _content(client, old[key][0]) == _content(client, new[key][0]):
                    new[key] = old[key]
            out[section] = new
        return out
    finally:
        client.close()


def _content(client, dump):
    if not isinstance(dump, bytes):  # a hash, already as its sorted fields (tests/support/snapshots.py)
        return dump
    client.restore(SCRATCH_KEY, 0, dump, replace=True)
    try:
        kind = client.type(SCRATCH_KEY).decode()
        return kind, READERS[kind](client, SCRATCH_KEY)
    finally:
        client.delete(SCRATCH_KEY)


def _at_rest(lab, timeout=45):
    """lab.state() once it holds still: a worker the procedure started (workers.yml, dr_database.yml) finishes the
    jobs that were due, and only then is the second run's "nothing changed" measured. Bounded: fails after timeout.
    Without a running worker nothing writes between the runs: the state as it is."""
    previous = lab.state()
    if not _workers_running(lab):
        return previous
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(1)
        if lab.topology == "ha":
            lab.wait_replicated()
        current = _same_order(lab, previous, lab.state())
        if _without_worker_heartbeat(current) == _without_worker_heartbeat(previous):
            return current
        previous = current
    raise AssertionError("the lab did not come to rest within {0}s after the first run".format(timeout))


def _without_worker_heartbeat(state):
    """Without what a running BullMQ worker writes by itself, whatever the procedures do: its stalled-jobs check
    re-sets bull:<queue>:stalled-check with a fresh expiry every stalledInterval (30 s)."""
    return dict(state, redis2={k: v for k, v in state.get("redis2", {}).items() if not k.endswith(b":stalled-check")})


def _without_audit(state):
    return dict(state, postgres={k: v for k, v in state["postgres"].items() if k != "ops_audit_log"})


def _audit_rows(lab):
    return lab.sql("SELECT id, module, action, target FROM ops_audit_log ORDER BY id")


def _vendor_writes(ctx):
    return changes(ctx.instantly) + [r for r in ctx.timelines.requests() if r["method"] != "GET"]


# --- where the work ran (both topologies) and the HA pairs ----------------------------------------------------


def standby_first_inventory(lab):
    """The lab's inventory (YAML, in this order) with each HA group reversed: the standby and the replica first."""
    inventory = lab.inventory()
    for group in ("db", "redis"):
        hosts = inventory["all"]["children"][group]["hosts"]
        inventory["all"]["children"][group]["hosts"] = dict(reversed(list(hosts.items())))
    return yaml.safe_dump(inventory, sort_keys=False)


def _module_runs(run):
    """[(task_uuid, module, where it executed)] for each of the collection's modules that ran (not skipped)."""
    found = []
    for event in run.events:
        if event.get("event") not in ("runner_on_ok", "runner_on_failed"):
            continue
        data = event["event_data"]
        module = data.get("resolved_action") or ""
        if module.startswith("cerniq.outreach.") and module not in CONTROLLER_ACTIONS:
            res = data.get("res") or {}
            # A loop's result names the delegation in each item's result.
            delegations = [r.get("_ansible_delegated_vars", {}) for r in [res] + list(res.get("results") or [])
                           if isinstance(r, dict)]
            delegated = next((d["ansible_delegated_host"] for d in delegations if d.get("ansible_delegated_host")),
                             None)
            found.append((data["task_uuid"], module, delegated or data["host"]))
    return found


def _assert_placement(lab, spec, run, what, provisioned=True):
    """Each of the collection's modules ran once (the election once per play batch), on the controller or on the
    spec's host-level hosts (all of them when the host had the collection's Python); in HA the election, asked of
    each server at run time, named the primary and the master."""
    runs = _module_runs(run)
    on_hosts = {where for _uuid, _module, where in runs if where != CONTROLLER}
    expected = spec.host_level(lab)
    assert on_hosts == expected if provisioned else on_hosts <= expected, \
        "{0}: the collection's modules ran on {1}, expected {2}".format(what, sorted(on_hosts), sorted(expected))
    task_runs = Counter(uuid for uuid, module, _where in runs if not module.endswith(".platform_primary_info"))
    twice = {uuid: n for uuid, n in task_runs.items() if n > 1}
    assert not twice, "{0}: tasks ran more than once: {1}".format(
        what, sorted({(m, w) for u, m, w in runs if u in twice}))
    if lab.topology == "ha":
        elections = [r for r in run.results(ELECTION_TASK) if r["_event"] == "runner_on_ok"]
        assert elections, "{0}: no election of the primary".format(what)
        for election in elections:
            assert (election["db"]["primary"]["name"], election["redis"]["primary"]["name"]) == (
                lab.db_host.name, lab.redis_host.name), (what, election["db"], election["redis"])


def _refused_writes(lab):
    """Writes the standby and the replica refused so far (a client that took them for the primary or the master):
    PostgreSQL's "cannot execute ... in a read-only transaction" in the standby's log, Redis's READONLY errors."""
    log = lab.pg_standby.base_dir / "postgres.log"
    in_log = log.read_text(errors="replace").count("in a read-only transaction") if log.exists() else 0
    errors = lab.redis_replica.client().info("errorstats")
    return {"standby": in_log, "replica": errors.get("errorstat_READONLY", {}).get("count", 0)}


def _assert_pair_in_sync(lab, what):
    """The standby and the replica hold what the primary and the master hold (the pairs still replicate)."""
    lab.wait_replicated()
    tables = {server.host: database_snapshot(services.module_params(lab.redis, server))["tables"]
              for server in (lab.pg, lab.pg_standby)}
    assert tables[lab.pg_standby.host] == tables[lab.pg.host], "{0}: the standby differs from the primary".format(
        what)
    master, replica = ({"redis{0}".format(db): _dump(server, db) for db in (0, 2)}
                       for server in (lab.redis, lab.redis_replica))
    replica = _same_order(lab, master, replica)
    assert replica == master, "{0}: the replica differs from the master: {1}".format(
        what, _differences(master, replica))


def _dump(server, db):
    client = redis.Redis(host=server.host, port=server.port, password=server.password, db=db)
    try:
        return redis_dump(client)
    finally:
        client.close()


# The freshly seeded lab.state() a read-only procedure left as it was, by id(lab): the next case skips lab.reset()
# when the lab still holds exactly that (another test may have used the lab in between).
_SEEDED = {}


def _fresh(lab):
    """A freshly seeded lab: lab.reset(), unless the lab still is the seeded state a read-only case left."""
    seeded = _SEEDED.pop(id(lab), None)
    if seeded is not None and not _workers_running(lab) and _same_order(lab, seeded, lab.state()) == seeded:
        return
    lab.reset()


def run_case(lab, playbook, tmp_path, instantly, timelines):
    """One playbook on one lab: --check changes nothing, the real run is green, a second run changes nothing; every
    run's work in the right place (and in HA, on the primary and the master only)."""
    topology = lab.topology
    spec = SPECS[playbook]
    ctx = Ctx(lab=lab, tmp_path=tmp_path, instantly=instantly, timelines=timelines)
    started = time.monotonic()
    _fresh(lab)
    refused = _refused_writes(lab) if topology == "ha" else None
    spec.setup(ctx)
    extravars = spec.extravars(ctx)

    # (1) --check, confirm included: rc 0, nothing changed on any host, in Redis, in PostgreSQL, at the vendors.
    seeded = before = lab.state()
    instantly.clear_requests()
    timelines.clear_requests()
    checked = ctx.play(playbook, extravars, check=True)
    assert checked.rc == 0, checked.stdout[-4000:]
    _assert_same_state(lab, before, "--check")
    assert _vendor_writes(ctx) == []
    # A bare host (no collection Python yet) skips the host-level work in --check (host_python says so).
    _assert_placement(lab, spec, checked, "--check", provisioned=all(
        lab.hosts[name].path(HOST_PYTHON).exists() for name in spec.host_level(lab)))

    # (2) the real run: green, and it did the procedure's work, in the right place.
    first = ctx.play(playbook, extravars)
    assert first.rc == 0, first.stdout[-4000:]
    _assert_placement(lab, spec, first, "the first run")
    spec.verify(ctx, first)

    # (3) a second run of an idempotent procedure: no changed task (but those that change by design), no change.
    if spec.idempotent:
        if topology == "ha":
            lab.wait_replicated()
        settled, audited = _at_rest(lab), _audit_rows(lab)
        second = ctx.play(playbook, extravars)
        assert second.rc == 0, second.stdout[-4000:]
        _assert_placement(lab, spec, second, "a second run")
        unexpected = [t for t in second.changed_tasks if t not in spec.always_changed]
        assert unexpected == [], "{0}: a second run changed {1}".format(playbook, unexpected)
        after = _assert_same_state(lab, settled, "a second run", ignore_audit=bool(spec.audited_each_run))
        now = _audit_rows(lab)
        assert now[:len(audited)] == audited
        assert [(row[1], row[2]) for row in now[len(audited):]] == list(spec.audited_each_run), now[len(audited):]
    else:
        # Not idempotent by design: a second run is green, and --check on the host it provisioned changes nothing.
        second = ctx.play(playbook, extravars)
        assert second.rc == 0, second.stdout[-4000:]
        _assert_placement(lab, spec, second, "a second run")
        spec.verify_again(ctx, second)
        before = lab.state()
        checked = ctx.play(playbook, extravars, check=True)
        assert checked.rc == 0, checked.stdout[-4000:]
        _assert_placement(lab, spec, checked, "--check on a provisioned host")
        after = _assert_same_state(lab, before, "--check on a provisioned host")

    if topology == "ha":
        assert _refused_writes(lab) == refused, "a write reached the standby or the replica"
        _assert_pair_in_sync(lab, playbook)
    if spec.reads_only:
        after = _same_order(lab, seeded, after)
        assert after == seeded, "{0} reads only, yet wrote: {1}".format(playbook, _differences(seeded, after))
        _SEEDED[id(lab)] = seeded
    print("{0} {1}: {2:.1f}s".format(topology, playbook, time.monotonic() - started))
