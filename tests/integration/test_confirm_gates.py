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
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    DEFAULT_TIMEZONE,
    TABLE_REVIEWS,
    business_day,
    quota_key,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._snapshot import database_snapshot
from tests.conftest import Platform
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


def _check(run, skip):
    """A run that succeeded ran nothing that changes; with `always` skipped, the gate's assert did not run.

    A run may also fail for want of what a skipped read would have set: that too stops before the change. The
    digest comparison is what proves nothing changed either way.
    """
    if run.rc == 0:
        assert run.changed_tasks == [], (skip, run.changed_tasks)
    if skip == "always":
        assert all(r["_event"] == "runner_on_skipped" for r in run.results("Stop unless confirm=true")), skip


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
    }


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

    _check(run, skip)
    after = gates.state(dpkg=dpkg)
    assert after == before, "--skip-tags {0} changed {1}:\n{2}".format(skip, _differs(before, after),
                                                                       run.stdout[-3000:])
    assert not gates.restart_marker.exists()
    assert all(r["_event"] == "runner_on_skipped" for r in run.results("Upgrade the packages"))


# --- bounce_high, with the Instantly fake's whole state in the digest ------------------------------------------

def _vendor_vars(fake):
    return {"cerniq_instantly_base_url": fake.url, "cerniq_instantly_api_key": INSTANTLY_KEY,
            "cerniq_vendor_allow_http": "true"}


@pytest.mark.parametrize("skip", skip_sets("bounce_high.yml"))
def test_no_tag_skips_the_bounce_high_confirmation(gates, seeded, instantly, skip):
    if gates.state() != seeded["digest"]:
        gates.seed()
        seeded["digest"] = gates.state()
    before = gates.state(instantly)
    # The demo state: the hot campaign bounces 5 % and is active, so the guard has a pause to make.
    assert campaign_status(instantly, campaign_ids(instantly)["hot"]) == 1

    run = gates.play("bounce_high.yml", _vendor_vars(instantly), skip_tags=skip)

    _check(run, skip)
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
    ("followups", "followup_reschedule", {}, "adding follow-up jobs"),
    ("drop", "db_database", {"name": THROWAWAY_DB, "state": "absent"}, "dropping a database"),
    ("guard", "instantly_deliverability_guard", {"reason": "gate"}, "pausing campaigns"),
]


def _module_playbook(path, confirmed=None, extra_tasks=()):
    tasks = []
    for name, module, options, _what in MODULE_CALLS:
        given = dict(options) if confirmed is None else dict(options, confirmed=confirmed)
        tasks.append({"name": name, COLLECTION + module: given, "ignore_errors": True})
    tasks += list(extra_tasks)
    path.write_text(yaml.safe_dump([{
        "name": "Destructive modules", "hosts": "db", "gather_facts": False,
        "module_defaults": {"group/cerniq.outreach.all": "{{ cerniq_module_defaults }}",
                            "group/cerniq.outreach.vendors": "{{ cerniq_vendor_defaults }}"},
        "roles": [{"role": "cerniq.outreach.platform"}], "tasks": tasks}]))
    return str(path)


def _throwaway(gates, create):
    conn = gates.platform.pg.superuser_connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS " + THROWAWAY_DB)
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


def test_each_destructive_module_refuses_without_confirmed(gates, seeded, instantly, tmp_path):
    gates.seed()
    seeded["digest"] = gates.state()
    _throwaway(gates, create=True)
    try:
        before = gates.state(instantly), _databases(gates)
        # Nothing to archive under a cutoff of ten years: a call with nothing to change needs no confirmation.
        noop = {"name": "no old rows", COLLECTION + "comm_log_archive": {"older_than_days": 3650}}
        playbook = _module_playbook(tmp_path / "modules.yml", extra_tasks=[noop])

        checked = gates.play(playbook, _vendor_vars(instantly), check=True)
        assert checked.rc == 0, checked.stdout[-3000:]
        for name, *_rest in MODULE_CALLS:
            # Check mode needs no confirmation, and each call has something to change (the refusal below is real).
            assert checked.result(name)["changed"] is True, (name, checked.result(name))
        after = gates.state(instantly), _databases(gates)
        assert after == before, _differs(dict(enumerate(before)), dict(enumerate(after)))

        for confirmed in (None, False):  # left out, and said false
            run = gates.play(_module_playbook(tmp_path / "modules.yml", confirmed, [noop]), _vendor_vars(instantly))
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
        assert gates.platform.audit() == []
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
