"""Confirmation gates that no tag can skip (issue 11): every destructive playbook, run WITHOUT confirm=true, with
`--skip-tags always` and with `--skip-tags <each of its tags>`, changes nothing.

The tags are read from the roles' task files (and the roles they include), so a tag added later is covered too.
"Nothing" is byte-level: every Redis key's DUMP and absolute expiry (both dbs), every contract table's checksum, the
Instantly fake's whole state, a marker file the Redis restart command would create, dpkg's status file and the
logrotate directory. The servers are seeded once per scenario and shared by its runs (none of them may change
anything, so each compares against the same digest).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils import _backup
from ansible_collections.cerniq.outreach.plugins.module_utils._audit import AuditTrail
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    DEFAULT_TIMEZONE,
    QUEUE_QUOTA_RESET,
    QUOTA_RESET_CRON,
    QUOTA_RESET_SCHEDULER_ID,
    TABLE_REVIEWS,
    business_day,
    phone_queue,
    quota_key,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._instantly import GUARD_MODULE, GUARD_PAUSE
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import database_snapshot
from tests.conftest import Platform
from tests.support.producers import fail_jobs, node_legacy_repeat
from tests.support.seed import TENANT_ID
from tests.support.services import REPO_ROOT
from tests.support.snapshots import platform_state, redis_dump
from tests.support.vendors import INSTANTLY_KEY, campaign_ids, campaign_status, changes

ROLES = REPO_ROOT / "roles"
PLAYBOOKS = REPO_ROOT / "playbooks"
COLLECTION = "cerniq.outreach."
REFUSAL = "re-run with -e confirm=true"
SEED = dict(phones=6, leads=300, old_log_rows=200, reviews=0, jobs_per_phone=5, followups=20, dlq_entries=40,
            offline=("phone_04",), banned=(), drift_phone="phone_04", leak_phone="phone_02", no_ttl_phone="",
            stale_yesterday_keys=True)
# Jobs a worker failed (what dlq:overflow's retry and bullmq_queue state=retried would move back to wait), in a queue
# of their own.
FAILED_QUEUE = phone_queue("phone_09")
FAILED_JOBS = 3


# --- the tags, from the task files -----------------------------------------------------------------------------

def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _task_tags(tasks, seen):
    tags = set()
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        tags.update(_as_list(task.get("tags")))
        for section in ("block", "rescue", "always"):
            tags |= _task_tags(task.get(section), seen)
        for action in ("ansible.builtin.include_role", "ansible.builtin.import_role", "include_role", "import_role"):
            if isinstance(task.get(action), dict):
                tags.update(_as_list((task[action].get("apply") or {}).get("tags")))
                tags |= role_tags(task[action]["name"], seen)
    return tags


def role_tags(role, seen=None):
    """Every tag of a role's task files and of the roles those include (templated role names are left out)."""
    seen = set() if seen is None else seen
    name = role[len(COLLECTION):] if role.startswith(COLLECTION) else role
    if name in seen or "{" in name or not (ROLES / name / "tasks").is_dir():
        return set()
    seen.add(name)
    tags = set()
    for path in sorted((ROLES / name / "tasks").glob("*.yml")):
        tags |= _task_tags(yaml.safe_load(path.read_text()), seen)
    return tags


def playbook_tags(playbook):
    tags, seen = set(), set()
    for play in yaml.safe_load((PLAYBOOKS / playbook).read_text()):
        for entry in play.get("roles", []):
            tags |= role_tags(entry if isinstance(entry, str) else entry.get("role", entry.get("name")), seen)
        for section in ("pre_tasks", "tasks", "post_tasks"):
            tags |= _task_tags(play.get(section), seen)
    return tags


def skip_sets(playbook):
    """`always`, then each tag of the playbook's roles on its own."""
    return ["always"] + sorted(playbook_tags(playbook) - {"always", "never"})


def test_the_tag_reader_sees_the_gates_tags():
    assert {"always", "assign", "auto_approve", "review_sla", "depth"} <= playbook_tags("review_sla.yml")
    # maintenance_weekly.yml's second play (host_maintenance) is covered too.
    assert {"archive", "dlq", "vacuum", "packages", "logrotate", "hosts"} <= playbook_tags("maintenance_weekly.yml")
    # dr_database.yml: its role, the workers role of the plays in between, and drop_kept.yml's tags.
    assert {"drop_kept", "restore", "swap", "resync", "workers"} <= playbook_tags("dr_database.yml")


# --- the state -------------------------------------------------------------------------------------------------

def _file_digest(path):
    path = Path(path)
    if path.is_dir():
        return {str(p.relative_to(path)): _file_digest(p) for p in sorted(path.rglob("*")) if p.is_file()}
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


DPKG_STATUS = Path("/var/lib/dpkg/status")


class Gates:
    """The shared servers, seeded once, with the files a run could touch."""

    def __init__(self, platform, work):
        self.platform = platform
        self.work = Path(work)
        self.restart_marker = self.work / "redis-restarted"
        self.logrotate_dir = self.work / "logrotate.d"
        self.logs = self.work / "logs"
        self.apt_config = self.work / "apt.conf"

    def seed(self):
        for db in (0, 2):
            self.platform.redis.client(db).flushdb()
        self.platform.pg.reset_data()
        self.platform.seed(**SEED)
        fail_jobs(self.platform.redis, FAILED_QUEUE, FAILED_JOBS)
        # The reset also registered the runbook's way (a legacy repeatable job, by Node BullMQ 5) beside our job
        # scheduler: what quota_reset's legacy migration (and bullmq_queue other_schedules=migrate) would remove.
        node_legacy_repeat(self.platform.redis)
        now = datetime.now(timezone.utc)
        # review_sla's work: URGENT items pending (to assign) and LOW ones pending for three days (to approve).
        for priority, age_h, count in (("URGENT", 5, 6), ("LOW", 72, 5)):
            self.platform.sql(
                "INSERT INTO " + TABLE_REVIEWS + " (tenant_id, reason, priority, status, sla_due_at, created_at) "
                "SELECT %s, 'negative_sentiment', %s, 'PENDING', %s, %s FROM generate_series(1, %s)",
                (str(TENANT_ID), priority, now - timedelta(hours=1), now - timedelta(hours=age_h), count))
        self.logs.mkdir(parents=True, exist_ok=True)
        self.logrotate_dir.mkdir(parents=True, exist_ok=True)
        # A private apt root, as test_host_maintenance uses (APT_CONFIG): its own state, cache and (empty) dpkg
        # status, no sources (no network), every install simulated - a regressed upgrade task could not touch this
        # machine. The machine's dpkg status is still compared (maintenance_weekly), and the task must be skipped.
        apt = self.work / "apt"
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/apt.conf.d",
                    "etc/preferences.d", "log"):
            (apt / sub).mkdir(parents=True, exist_ok=True)
        (apt / "status").write_text("")
        self.apt_config.write_text("\n".join([
            'Dir::State "{0}/state";', 'Dir::State::status "{0}/status";', 'Dir::Cache "{0}/cache";',
            'Dir::Etc "{0}/etc";', 'Dir::Etc::SourceList "/dev/null";',
            'Dir::Etc::SourceParts "{0}/etc/sources.list.d";',
            'Dir::Etc::Parts "{0}/etc/apt.conf.d";', 'Dir::Etc::PreferencesParts "{0}/etc/preferences.d";',
            'Dir::Log "{0}/log";', 'APT::Sandbox::User "root";', 'APT::Get::Simulate "true";', ""]).format(apt))

    def state(self, vendor=None, dpkg=False):
        """The digest; `dpkg`: also this machine's dpkg status (only where a run could reach apt: other work on the
        machine may install packages meanwhile)."""
        return dict(platform=platform_state(self.platform), restart_marker=self.restart_marker.exists(),
                    logrotate=_file_digest(self.logrotate_dir), dpkg=_file_digest(DPKG_STATUS) if dpkg else None,
                    vendor=vendor.snapshot() if vendor is not None else None)

    def play(self, playbook, extravars, skip_tags=None, **kwargs):
        return self.platform.play(playbook, dict(extravars), skip_tags=skip_tags,
                                  env={"APT_CONFIG": str(self.apt_config)}, **kwargs)


@pytest.fixture(scope="module")
def gates(redis_server, pg_server, tmp_path_factory):
    return Gates(Platform(redis_server, pg_server), tmp_path_factory.mktemp("gates"))


def _refused(run):
    """Failed tasks that say nothing was changed and how to confirm."""
    failed = [r.get("msg", "") for r in run.results() if r["_event"] == "runner_on_failed"]
    return [m for m in failed if "Nothing was changed" in str(m) and REFUSAL in str(m)]


def _check(run, skip, bypass=None):
    """A run that succeeded ran nothing that changes; with `always` skipped, the gate's assert did not run.

    A run may also fail for want of what a skipped read would have set: that too stops before the change. The
    digest comparison is what proves nothing changed either way.

    `bypass` (the scenarios that name it): the skips that leave the change's whole path out; with any other skip the
    run must still reach the change and be refused (so the unchanged digest is a refusal, not a path never taken).
    """
    if run.rc == 0:
        assert run.changed_tasks == [], (skip, run.changed_tasks)
    if skip == "always":
        assert all(r["_event"] == "runner_on_skipped" for r in run.results("Stop unless confirm=true")), skip
    if bypass is not None and skip not in bypass:
        assert run.rc != 0 and _refused(run), (skip, run.stdout[-3000:])


# --- scenarios on the shared servers ---------------------------------------------------------------------------

def _scenarios(gates_work=None):
    return {
        "review_sla": ("review_sla.yml", {"assign_to": "ana", "auto_approve": "true"}),
        "dr_redis": ("dr_redis.yml", {"dr_redis_restart": "true"}),
        "maintenance_weekly": ("maintenance_weekly.yml", {"maintenance_weekly_dlq_keep": "5",
                                                          "host_maintenance_upgrade_packages": "true",
                                                          "host_maintenance_upgrade": "all"}),
        "quota_exhausted_adjust": ("quota_exhausted.yml", {"phone": "phone_01", "quota_value": "150",
                                                           "reason": "gate test"}),
        "quota_exhausted_resync": ("quota_exhausted.yml", {"quota_exhausted_resync": "true"}),
        # The TTL repair and the scheduler re-creation are repairs, not destructive (they run unconfirmed by
        # design): off here, so the digest speaks about the deletion only.
        "quota_reset": ("quota_reset.yml", {"quota_reset_force": "true", "quota_reset_repair_ttl": "false",
                                            "quota_reset_scheduler": "false"}),
        "phone_banned": ("phone_banned.yml", {"phone": "phone_02"}),
        # -e migrate_legacy_reset=true without confirm: the legacy registration stays (the stale deletion and the
        # TTL repair are out of this run's scope: one day back, yesterday kept, no repair).
        "quota_reset_migrate": ("quota_reset.yml", {"migrate_legacy_reset": "true", "quota_reset_repair_ttl": "false",
                                                    "quota_reset_days_back": "1",
                                                    "quota_reset_include_yesterday": "false"}),
        # alert_response.yml with the extra vars an alert's file holds (ansible-runner hands them over as
        # -e @env/extravars, as ansible-rulebook does): the ban, and dlq:overflow's retry of failed jobs.
        "alert_response_ban": ("alert_response.yml", {"alert": "PhoneBanned", "alert_labels": {
            "alertname": "PhoneBanned", "phone": "phone_02", "severity": "critical"}}),
        "alert_response_dlq_retry": ("alert_response.yml", {"alert": "DlqOverflow", "alert_labels": {
            "alertname": "DlqOverflow", "severity": "high"}, "alert_response_dlq_retry": "true"}),
    }


# The skips that leave a scenario's change out altogether (see _check): every other skip must end in the refusal.
# The alert's procedure is included by a task tagged always and applies `dispatch` to its tasks; alert_response.yml's
# sweep covers its own tags (the procedures' tags are swept through their own playbooks, with the same roles).
BYPASS = {"quota_reset_migrate": {"always", "scheduler"},
          "alert_response_ban": {"always", "dispatch"},
          "alert_response_dlq_retry": {"always", "dispatch", "dlq", "retry"}}

CASES = [(name, skip) for name, (playbook, _extra) in _scenarios().items() for skip in skip_sets(playbook)]


@pytest.fixture(scope="module")
def seeded(gates):
    gates.seed()
    return {"digest": gates.state()}


@pytest.mark.parametrize("name,skip", CASES, ids=["{0}--skip-tags={1}".format(n, s) for n, s in CASES])
def test_no_tag_skips_the_confirmation(gates, seeded, name, skip):
    playbook, extravars = _scenarios()[name]
    extravars = dict(extravars, dr_redis_restart_command="touch " + str(gates.restart_marker),
                     host_maintenance_logrotate_dir=str(gates.logrotate_dir),
                     host_maintenance_log_paths=[str(gates.logs / "*.log")],
                     host_maintenance_logrotate_state=str(gates.work / "logrotate.status"))
    if gates.state() != seeded["digest"]:
        # Another module's test emptied the session's servers meanwhile: seed again (same seed, same digest).
        gates.seed()
        seeded["digest"] = gates.state()
    if name == "maintenance_weekly" and not any(gates.logrotate_dir.iterdir()):
        # The logrotate policy is configuration, installed unconfirmed by design: in place before, so the run
        # finds nothing to write.
        gates.play("maintenance_weekly.yml", extravars, tags="logrotate", limit="workers")
        seeded["digest"] = gates.state()
    dpkg = name == "maintenance_weekly"
    before = dict(seeded["digest"], dpkg=gates.state(dpkg=dpkg)["dpkg"])

    run = gates.play(playbook, extravars, skip_tags=skip)

    _check(run, skip, BYPASS.get(name))
    after = gates.state(dpkg=dpkg)
    assert after == before, "--skip-tags {0} changed {1}:\n{2}".format(skip, _differs(before, after),
                                                                       run.stdout[-3000:])
    assert not gates.restart_marker.exists()
    assert all(r["_event"] == "runner_on_skipped" for r in run.results("Upgrade the packages"))


# --- --start-at-task past the gate ------------------------------------------------------------------------------

def task_after_gate(role):
    """The name of the task that follows a role's confirmation gate (its include of platform's confirm.yml)."""
    tasks = yaml.safe_load((ROLES / role / "tasks" / "main.yml").read_text())
    for index, task in enumerate(tasks):
        include = task.get("ansible.builtin.include_role") or {}
        if include.get("tasks_from") == "confirm":
            return tasks[index + 1]["name"]
    raise AssertionError("{0} has no confirmation gate in tasks/main.yml".format(role))


START_CASES = [("phone_banned", "phone_banned"), ("quota_exhausted_adjust", "quota_exhausted"),
               ("review_sla", "review_sla")]


@pytest.mark.parametrize("name,role", START_CASES, ids=[name for name, _role in START_CASES])
def test_start_at_task_past_the_gate_changes_nothing(gates, seeded, name, role):
    """`--start-at-task "<the first task after the gate>"` without confirm: the gate never runs, the change is
    reached with `confirmed` false and the module refuses it; the digest is unchanged."""
    playbook, extravars = _scenarios()[name]
    if gates.state() != seeded["digest"]:
        gates.seed()
        seeded["digest"] = gates.state()
    start = task_after_gate(role)

    run = gates.platform.play(playbook, dict(extravars), start_at_task=start)

    assert run.rc != 0, run.stdout[-3000:]
    assert run.results("Stop unless confirm=true") == [], "the gate ran: --start-at-task was not honoured"
    # The run started at that task: it is the first task with a result, and it did not change anything.
    first = run.results()[0]
    assert first["_task"] == start, (first["_task"], start)
    # ... and was refused by the module itself (`confirmed` is false): the change was reached, not left out.
    assert first["_event"] == "runner_on_failed" and first["msg"].startswith("Nothing was changed: "), first
    assert REFUSAL in first["msg"] and _refused(run), first["msg"]
    assert gates.state() == seeded["digest"], _differs(seeded["digest"], gates.state())


# --- bounce_high, with the Instantly fake's whole state in the digest ------------------------------------------

def _vendor_vars(fake):
    return {"cerniq_instantly_base_url": fake.url, "cerniq_instantly_api_key": INSTANTLY_KEY,
            "cerniq_vendor_allow_http": "true"}


# bounce_high.yml, and alert_response.yml with a BounceHigh alert's file naming the hot campaign (its skips that
# leave the procedure out, as above).
BOUNCE_CASES = ([("bounce_high.yml", skip) for skip in skip_sets("bounce_high.yml")]
                + [("alert_response.yml", skip) for skip in skip_sets("alert_response.yml")])


@pytest.mark.parametrize("playbook,skip", BOUNCE_CASES,
                         ids=["{0}--skip-tags={1}".format(p[:-4], s) for p, s in BOUNCE_CASES])
def test_no_tag_skips_the_bounce_high_confirmation(gates, seeded, instantly, playbook, skip):
    if gates.state() != seeded["digest"]:
        gates.seed()
        seeded["digest"] = gates.state()
    before = gates.state(instantly)
    hot = campaign_ids(instantly)["hot"]
    # The demo state: the hot campaign bounces 5 % and is active, so the guard has a pause to make.
    assert campaign_status(instantly, hot) == 1
    extravars, bypass = _vendor_vars(instantly), None
    if playbook == "alert_response.yml":
        extravars["alert"] = "BounceHigh"
        extravars["alert_labels"] = {"alertname": "BounceHigh", "campaign": hot, "severity": "high"}
        bypass = {"always", "dispatch"}

    run = gates.play(playbook, extravars, skip_tags=skip)

    _check(run, skip, bypass)
    assert changes(instantly) == [], "--skip-tags {0} sent a change to Instantly".format(skip)
    assert gates.state(instantly) == before


# --- dr_database, on three hosts with a real worker the workers role would stop ---------------------------------

KEPT_DB = "cerniq_pre_dr_20260101t000000z"


def _drop_kept_skip_sets():
    """A drop is prepare's include of drop_kept.yml: `always`, the include's tags and drop_kept.yml's own."""
    prepare = yaml.safe_load((ROLES / "dr_database" / "tasks" / "prepare.yml").read_text())
    include = [t for t in prepare if "drop_kept.yml" in str(t.get("ansible.builtin.include_tasks", ""))]
    assert include, "prepare.yml no longer includes drop_kept.yml"
    tags = set(_as_list(include[0].get("tags")))
    tags |= _task_tags(yaml.safe_load((ROLES / "dr_database" / "tasks" / "drop_kept.yml").read_text()), set())
    return ["always"] + sorted(tags - {"always"})


DR_CASES = ([("restore", skip) for skip in skip_sets("dr_database.yml")]
            + [("drop_kept", skip) for skip in _drop_kept_skip_sets()])


def _dr_state(split):
    # The idle worker re-arms its queue's stalled-check key (a new expiry every stalledInterval): its own, not ours.
    redis2 = {k: v for k, v in redis_dump(split.r(2)).items()
              if not (k.decode() if isinstance(k, bytes) else k).endswith(":stalled-check")}
    return dict(redis0=redis_dump(split.r(0)), redis2=redis2, databases=split.databases(),
                tables=database_snapshot(split.params)["tables"], backups=_file_digest(split.backup_dir))


def _differs(before, after, depth=3):
    """Where two digests differ (the keys, a few levels down), for the assertion message."""
    if not isinstance(before, dict) or not isinstance(after, dict) or depth == 0:
        return "{0!r:.200} != {1!r:.200}".format(before, after)
    return {key: _differs(before.get(key), after.get(key), depth - 1)
            for key in sorted(set(before) | set(after), key=str) if before.get(key) != after.get(key)}


@pytest.mark.slow
@pytest.mark.parametrize("mode,skip", DR_CASES, ids=["{0}--skip-tags={1}".format(m, s) for m, s in DR_CASES])
def test_no_tag_skips_the_dr_database_confirmation(split_platform, mode, skip):
    split_platform.seed(jobs_per_phone=0)  # the worker finds nothing to process: Redis stays still while we look
    _backup.create_backup(split_platform.params, str(split_platform.backup_dir), 7, False)
    extravars = {}
    if mode == "drop_kept":
        conn = split_platform.pg.superuser_connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE DATABASE " + KEPT_DB)
                cur.execute("COMMENT ON DATABASE " + KEPT_DB + " IS %s", (json.dumps(
                    {"cerniq_outreach": "kept", "kept_at": "2026-01-01T00:00:00Z", "was": "cerniq"}),))
        finally:
            conn.close()
        extravars["dr_database_drop_kept"] = KEPT_DB
    pid = split_platform.start_worker()
    before = _dr_state(split_platform)

    run = split_platform.play("dr_database.yml", extravars, skip_tags=skip)

    _check(run, skip)
    assert split_platform.worker_pid() == pid, "--skip-tags {0}: the worker was stopped".format(skip)
    assert all(r["_event"] == "runner_on_skipped" for r in run.results("Stop the process"))
    after = _dr_state(split_platform)
    assert after == before, "--skip-tags {0} changed {1}:\n{2}".format(skip, _differs(before, after),
                                                                       run.stdout[-3000:])


# --- each destructive module on its own: refused without confirmed, the digest unchanged -----------------------

THROWAWAY_DB = "cerniq_gate_throwaway"
RESTORED_DB = "cerniq_gate_restored"
RESET_SCHEDULER = dict(id=QUOTA_RESET_SCHEDULER_ID, pattern=QUOTA_RESET_CRON, tz=DEFAULT_TIMEZONE, job_name="reset")
# (task name, module, options, what the refusal names)
MODULE_CALLS = [
    ("assign", "review_queue", {"assign_to": "ana", "ensure_assigned": 3}, "assigning review items"),
    ("auto-approve", "review_queue", {"auto_approve": True, "older_than": "48h"}, "auto-approving review items"),
    ("set a counter", "quota_counter", {"phone_ids": ["phone_01"], "value": 150, "reason": "gate"},
     "setting a quota counter by hand"),
    ("recount", "quota_counter", {"sync_from": "db"}, "rewriting quota counters from the database"),
    ("delete counters", "quota_counter", {"state": "absent", "date": "yesterday"}, "deleting quota counters"),
    ("ban", "wa_phone", {"phone_id": "phone_02", "status": "BANNED"}, "banning a phone"),
    ("status keys", "wa_phone_status", {}, "rewriting phone status keys from the database"),
    ("archive", "comm_log_archive", {"older_than_days": 90}, "archiving communication log rows"),
    ("trim dlq", "bullmq_queue", {"dlq_type": "list", "dlq_keep": 5}, "trimming a dead-letter queue"),
    ("drain", "bullmq_queue", {"queue": "q:wa:phone_01", "state": "drained"}, "draining a queue"),
    ("clean", "bullmq_queue", {"queue": "q:wa:phone_02", "state": "cleaned", "clean_states": ["delayed"]},
     "cleaning jobs out of a queue"),
    ("obliterate", "bullmq_queue", {"queue": "q:wa:phone_03", "state": "absent"}, "obliterating a queue"),
    ("retry", "bullmq_queue", {"queue": FAILED_QUEUE, "state": "retried"}, "retrying jobs (they run again)"),
    ("promote", "bullmq_queue", {"queue": "q:wa:phone_05", "state": "promoted"},
     "promoting delayed jobs (they run now)"),
    ("remove a job", "bullmq_queue", {"queue": "q:wa:phone_06", "job_id": "wa-phone_06-0", "state": "removed"},
     "removing a job"),
    ("migrate", "bullmq_queue", {"queue": QUEUE_QUOTA_RESET, "scheduler": dict(RESET_SCHEDULER,
                                                                               other_schedules="migrate")},
     "removing the legacy repeatable job(s) a scheduler replaces"),
    ("followups", "followup_reschedule", {}, "adding follow-up jobs"),
    ("drop", "db_database", {"name": THROWAWAY_DB, "state": "absent"}, "dropping a database"),
    ("restore", "db_database", {"name": RESTORED_DB, "state": "restored", "backup": "{{ gate_backup }}"},
     "restoring a backup into a database"),
    ("rename", "db_database", {"name": THROWAWAY_DB, "state": "renamed", "new_name": THROWAWAY_DB + "_renamed"},
     "renaming or swapping databases"),
    ("guard", "instantly_deliverability_guard", {"reason": "gate"}, "pausing campaigns"),
    # The campaign an earlier (confirmed, audited) run of the guard paused, and one Instantly's bounce protect paused.
    ("resume", "instantly_deliverability_guard", {"resume": True, "reason": "gate"}, "resuming campaigns"),
    ("resume bounce-protected", "instantly_deliverability_guard",
     {"resume": True, "resume_vendor_paused": True, "campaigns": ["{{ gate_protected }}"], "reason": "gate"},
     "resuming campaigns (some paused by Instantly's bounce protect)"),
]


def _module_playbook(path, confirmed=None, extra_tasks=()):
    tasks = []
    for name, module, options, _what in MODULE_CALLS:
        given = dict(options) if confirmed is None else dict(options, confirmed=confirmed)
        tasks.append({"name": name, COLLECTION + module: given, "ignore_errors": True})
    tasks += list(extra_tasks)
    path.write_text(yaml.safe_dump([{
        "name": "Destructive modules", "hosts": "db", "gather_facts": False,
        "module_defaults": {"group/cerniq.outreach.redis": "{{ cerniq_redis_defaults }}",
                            "group/cerniq.outreach.postgres": "{{ cerniq_postgres_defaults }}",
                            "group/cerniq.outreach.platform": "{{ cerniq_platform_defaults }}",
                            "group/cerniq.outreach.audit": "{{ cerniq_audit_defaults }}",
                            "group/cerniq.outreach.vendors": "{{ cerniq_vendor_defaults }}"},
        "roles": [{"role": "cerniq.outreach.platform"}], "tasks": tasks}]))
    return str(path)


def _throwaway(gates, create):
    conn = gates.platform.pg.superuser_connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for name in (THROWAWAY_DB, THROWAWAY_DB + "_renamed", RESTORED_DB):
                cur.execute("DROP DATABASE IF EXISTS " + name)
            if create:
                cur.execute("CREATE DATABASE " + THROWAWAY_DB)
    finally:
        conn.close()


def _databases(gates):
    conn = gates.platform.pg.superuser_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname::text FROM pg_database WHERE datname LIKE 'cerniq%' ORDER BY 1")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def _guard_paused_earlier(gates, campaign_id):
    """The audit row a confirmed run of the guard leaves when it pauses a campaign: what its resume reads."""
    conn = gates.platform.pg.connect()
    try:
        trail = AuditTrail(conn, GUARD_MODULE, "gate-test")
        trail.record(GUARD_PAUSE, "instantly:campaigns", "an earlier pause", {campaign_id: "active"},
                     {"campaign_ids": [campaign_id]})
        conn.commit()
    finally:
        conn.close()


def test_each_destructive_module_refuses_without_confirmed(gates, seeded, instantly, tmp_path):
    gates.seed()
    backup = _backup.create_backup(gates.platform.params, str(tmp_path / "backups"), 7, False)["backup"]["path"]
    ids = campaign_ids(instantly)
    # The demo's paused campaign, as the guard left it; the healthy one paused by Instantly itself.
    assert campaign_status(instantly, ids["paused"]) == 2
    _guard_paused_earlier(gates, ids["paused"])
    instantly.bounce_protect(ids["healthy"])
    extravars = dict(_vendor_vars(instantly), gate_backup=backup, gate_protected=ids["healthy"])
    seeded["digest"] = None  # the audit row above is this test's own: the next test seeds again
    audit_before = gates.platform.audit()
    _throwaway(gates, create=True)
    try:
        before = gates.state(instantly), _databases(gates)
        # Nothing to archive under a cutoff of ten years: a call with nothing to change needs no confirmation.
        noop = {"name": "no old rows", COLLECTION + "comm_log_archive": {"older_than_days": 3650}}
        playbook = _module_playbook(tmp_path / "modules.yml", extra_tasks=[noop])

        checked = gates.play(playbook, extravars, check=True)
        assert checked.rc == 0, checked.stdout[-3000:]
        for name, *_rest in MODULE_CALLS:
            # Check mode needs no confirmation, and each call has something to change (the refusal below is real).
            assert checked.result(name)["changed"] is True, (name, checked.result(name))
        after = gates.state(instantly), _databases(gates)
        assert after == before, _differs(dict(enumerate(before)), dict(enumerate(after)))

        for confirmed in (None, False):  # left out, and said false
            run = gates.play(_module_playbook(tmp_path / "modules.yml", confirmed, [noop]), extravars)
            for name, _module, _options, what in MODULE_CALLS:
                result = run.result(name)
                assert result["_event"] == "runner_on_failed", (name, result)
                assert result["msg"].startswith("Nothing was changed: " + what), (name, result["msg"])
                assert "is destructive; re-run with -e confirm=true" in result["msg"], result["msg"]
                assert result["confirmation_required"] is True and "would" in result
            assert run.result("no old rows")["changed"] is False
            assert run.result("no old rows")["_event"] == "runner_on_ok"
            assert changes(instantly) == []
            after = gates.state(instantly), _databases(gates)
            assert after == before, _differs(dict(enumerate(before)), dict(enumerate(after)))
        assert gates.platform.audit() == audit_before
    finally:
        _throwaway(gates, create=False)


# --- confirm=true still works ----------------------------------------------------------------------------------

def test_confirm_true_still_changes(gates, seeded):
    gates.seed()
    key = quota_key("phone_01", business_day(DEFAULT_TIMEZONE))
    assert gates.platform.r(0).get(key) not in (None, "150")
    expiry = gates.platform.r(0).execute_command("PEXPIRETIME", key)

    run = gates.play("quota_exhausted.yml", {"phone": "phone_01", "quota_value": "150", "reason": "gate test",
                                             "confirm": "true"})

    assert run.rc == 0, run.stdout[-3000:]
    assert gates.platform.r(0).get(key) == "150"
    assert gates.platform.r(0).execute_command("PEXPIRETIME", key) == expiry  # the counter keeps its expiry
    audit = gates.platform.audit()
    assert len(audit) == 1 and audit[0][1] == "quota_counter" and audit[0][4] == "gate test", audit
    seeded["digest"] = None  # the state changed: the next test seeds again
