"""Job templates of controller/ launched the way AWX launches them, against real Redis and PostgreSQL.

AWX runs a job through ansible-runner with a private data directory: the project checkout in project/, the inventory
in inventory/, the survey answers and its own meta variables (awx_job_id, awx_user_name, ...) in env/extravars -
survey answers as strings ("false", "150") - the credentials' injected environment in env/envvars, and the command
line it builds from the template (--check for job_type check, --diff for diff_mode). The collection comes from the
execution environment: here the BUILT artifact installed into a collections path, as execution-environment.yml does
(once a session). Every job template of controller/ runs as a check job with its survey's required answers; a few
run for real, with what they changed and who the audit log names. The launch itself is tests/support/awx.py's
(tests/integration/lab/test_awx_lab.py launches the same way against the lab's hosts).
"""

import itertools
import json

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import phone_status_key
from tests.conftest import REDIS_PASSWORD
from tests.support.awx import JOB_ID, TEMPLATES, USER, build_ee, injected_env, launch, survey, survey_errors
from tests.support.nodeworker import WORKER_JS
from tests.support.playbooks import inventory_for
from tests.support.seed import TENANT_ID
from tests.support.snapshots import assert_unchanged, platform_state
from tests.support.vendors import INSTANTLY_KEY, TIMELINES_TOKEN, changes

_SEQUENCE = itertools.count(1)


@pytest.fixture(scope="session")
def awx_ee(tmp_path_factory):
    """The execution environment's collection (the built artifact, installed) and the project checkout: built and
    installed once a session, every launch runs from it."""
    return build_ee(tmp_path_factory.mktemp("awx"))


def site_inventory(root, timelines=None, instantly=None):
    """What the "CERNIQ production" inventory holds on this machine, beyond the servers' addresses: the backup and
    report directories, the workers' manager, the hosts' logrotate and apt settings, the vendors' addresses (the
    fakes'; their secrets come from the credentials). The same for every template, as one AWX inventory is."""
    site = {"cerniq_backup_dir": str(root / "backups"), "cerniq_backup_copy_dir": str(root / "backup-copies"),
            "cerniq_workers_manager": "process",
            "cerniq_workers_process_start": "node {0} --queue q:wa:phone_01".format(WORKER_JS),
            "cerniq_workers_process_pid_file": str(root / "workers.pid"),
            "cerniq_workers_process_log": str(root / "workers.log"),
            "cerniq_workers_env_file": str(root / "workers.env"), "cerniq_workers_queue_pattern": "",
            "cerniq_workers_queues": ["q:wa:phone_01"],
            "host_maintenance_logrotate_dir": str(root / "logrotate.d"),
            "host_maintenance_logrotate_state": str(root / "logrotate.status"),
            "host_maintenance_log_paths": [str(root / "logs" / "*.log")],
            # No package archive is reached from here: a cache younger than this skips apt's refresh.
            "host_maintenance_apt_cache_valid_time": 10 ** 9}
    if timelines is not None:
        site["cerniq_timelinesai_base_url"] = timelines.base_url
    if instantly is not None:
        site["cerniq_instantly_base_url"] = instantly.url
    if timelines is not None or instantly is not None:
        site["cerniq_vendor_allow_http"] = True
    return site


def awx_launch(awx_ee, tmp_path, platform, template_name, answers, job_type="run", credentials=True,
               meta=None, extra_inventory=None, user=USER):
    """A launch against the local stack (tests/support/awx.py launch): the test's inventory without its secrets,
    the credentials' inputs the session's Redis and PostgreSQL passwords and the vendor fakes' keys."""
    pdd = tmp_path / "job-{0}-{1}".format(next(_SEQUENCE), template_name.split()[-1])
    inventory = inventory_for(platform.redis, platform.pg, extra_inventory)
    inputs = {"CERNIQ Redis": {"username": "", "password": platform.redis.password},
              "CERNIQ PostgreSQL": {"password": platform.pg.password},
              "CERNIQ Instantly": {"api_key": INSTANTLY_KEY},
              "CERNIQ TimelinesAI": {"api_token": TIMELINES_TOKEN}}
    return launch(awx_ee, pdd, template_name, answers, inventory, inputs if credentials else None,
                  job_type=job_type, meta=meta, user=user)


def _secrets(platform):
    return [platform.redis.password, platform.pg.password, INSTANTLY_KEY, TIMELINES_TOKEN]


def test_credential_injectors_render_the_platform_environment(platform):
    env = injected_env(TEMPLATES["cerniq alert_response"], {
        "CERNIQ Redis": {"username": "ops", "password": "r-pw"}, "CERNIQ PostgreSQL": {"password": "p-pw"},
        "CERNIQ Instantly": {"api_key": "i-key"}, "CERNIQ TimelinesAI": {"api_token": "t-token"}})
    assert env == {"CERNIQ_REDIS_USERNAME": "ops", "CERNIQ_REDIS_PASSWORD": "r-pw", "CERNIQ_DB_PASSWORD": "p-pw",
                   "CERNIQ_INSTANTLY_API_KEY": "i-key", "CERNIQ_TIMELINESAI_API_TOKEN": "t-token"}
    assert platform.redis.password == REDIS_PASSWORD  # the session's Redis asks for a password


def test_check_morning_check_then_run_as_awx(awx_ee, tmp_path, platform):
    platform.seed(phones=6, leads=100, old_log_rows=0, reviews=5, jobs_per_phone=2, dlq_entries=3)
    answers = {"check_morning_fail_on_failed_checks": "false", "check_morning_overnight": "15h",
               "check_morning_timelinesai": "false"}
    checked = awx_launch(awx_ee, tmp_path, platform, "cerniq check_morning", answers, job_type="check")
    assert checked.rc == 0 and checked.status == "successful", checked.stdout[-3000:]
    assert "--check" in checked.command and "--diff" in checked.command
    # The roles ran from the installed artifact (the execution environment's collection), not from the checkout.
    paths = {e["event_data"].get("task_path", "") for e in checked.events if "event_data" in e}
    role_paths = [p for p in paths if "/roles/check_morning/" in p]
    assert role_paths and all(p.startswith(str(awx_ee / "collections")) for p in role_paths), sorted(paths)[:5]
    assert not (checked.pdd / "reports").exists(), "check mode wrote the report"
    ran = awx_launch(awx_ee, tmp_path, platform, "cerniq check_morning", answers)
    assert ran.rc == 0 and ran.status == "successful", ran.stdout[-3000:]
    assert "--check" not in ran.command
    (report,) = (ran.pdd / "reports").glob("check_morning-*.json")
    checks = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    assert {"phones", "drift", "queues", "reviews", "sla"} <= set(checks)
    assert checks["timelinesai"]["status"] == "skip"  # the survey's "false" switched it off (a string, not truthy)
    for job in (checked, ran):
        for secret in _secrets(platform):
            assert secret not in job.everything_written()


def test_phone_banned_plan_refusal_and_ban_audited_with_the_awx_user_and_job(awx_ee, tmp_path, platform):
    platform.seed(phones=4, leads=40, old_log_rows=0, reviews=0, jobs_per_phone=3, dlq_entries=0, offline=(),
                  banned=(), drift_phone="", leak_phone="", no_ttl_phone="")

    def state():
        return (platform.sql("SELECT id, status FROM wa_phone_numbers ORDER BY id"),
                platform.r(0).get(phone_status_key("phone_03")), platform.audit())

    before = state()
    answers = {"phone_banned_phone": "phone_03", "phone_banned_reason": "INC-77 banned by WhatsApp",
               "phone_banned_release_leads": "true", "phone_banned_cancel_jobs": "true", "confirm": "false"}
    plan = awx_launch(awx_ee, tmp_path, platform, "cerniq phone_banned", answers, job_type="check")
    assert plan.rc == 0, plan.stdout[-3000:]
    shown = [e["event_data"]["res"]["msg"] for e in plan.events if e.get("event") == "runner_on_ok"
             and e["event_data"].get("task") == "What this run will change"]
    assert shown and shown[0][0].startswith("phone_03 (") and shown[0][0].endswith("-> BANNED in both")
    assert state() == before
    # confirm "false" - a non-empty string - must not pass the gate.
    refused = awx_launch(awx_ee, tmp_path, platform, "cerniq phone_banned", answers)
    assert refused.rc != 0 and "Nothing was changed" in refused.stdout
    assert state() == before

    banned = awx_launch(awx_ee, tmp_path, platform, "cerniq phone_banned", dict(answers, confirm="true"))
    assert banned.rc == 0, banned.stdout[-3000:]
    assert platform.sql("SELECT status FROM wa_phone_numbers WHERE id = 'phone_03'") == [("BANNED",)]
    assert platform.r(0).get(phone_status_key("phone_03")) == "BANNED"
    rows = platform.audit()
    assert rows, "the ban wrote no audit row"
    assert {row[0] for row in rows} == {"{0} (awx job {1})".format(USER, JOB_ID)}
    assert "INC-77 banned by WhatsApp" in {row[4] for row in rows}
    for job in (plan, refused, banned):
        for secret in _secrets(platform):
            assert secret not in job.everything_written()


def test_stack_health_needs_exactly_the_injected_credentials(awx_ee, tmp_path, platform):
    platform.seed(phones=2, leads=10, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0)
    healthy = awx_launch(awx_ee, tmp_path, platform, "cerniq stack_health", {})
    assert healthy.rc == 0 and healthy.status == "successful", healthy.stdout[-3000:]
    # The same job without its credentials: the secrets are nowhere else (not in the inventory, not in extra vars).
    bare = awx_launch(awx_ee, tmp_path / "bare", platform, "cerniq stack_health", {}, credentials=False)
    assert bare.rc != 0 and bare.status == "failed"
    assert "password" in bare.stdout.lower() or "auth" in bare.stdout.lower()
    for job in (healthy, bare):
        for secret in _secrets(platform):
            assert secret not in job.everything_written()


def test_a_scheduled_launch_is_audited_with_its_schedule(awx_ee, tmp_path, platform):
    """A scheduled job has no user: the audit log names the schedule and the job."""
    platform.seed(phones=3, leads=0, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0, offline=(),
                  banned=(), drift_phone="", leak_phone="", no_ttl_phone="", wa_messages_today=20)
    meta = {"awx_schedule_name": "cerniq quota value fix", "awx_job_id": 9001, "awx_job_launch_type": "scheduled"}
    answers = {"quota_exhausted_phone": "phone_02", "quota_exhausted_value": "150",
               "quota_exhausted_reason": "INC-9 counter fix", "confirm": "true"}
    job = awx_launch(awx_ee, tmp_path, platform, "cerniq quota_exhausted", answers, meta=meta, user=None)
    assert job.rc == 0, job.stdout[-3000:]
    (row,) = platform.audit("quota_set")
    assert row[0] == "schedule cerniq quota value fix (awx job 9001)"
    assert row[4] == "INC-9 counter fix" and row[6]["value"] == 150


# --- every job template of controller/, launched as AWX launches it with job type "check" ---------------------------

# Free-text answers a survey cannot default (a required text question whose default AWX would refuse), by what the
# variable names (its name's ending): values the seeded platform and the vendor fakes hold. A new required free-text
# question fails in required_answers() until it has one here; choices, integers and valid defaults need nothing.
EXAMPLES = {
    "_phone": "phone_02",  # a seeded phone, ACTIVE
    "_phone_number": "+40700000020",  # connected at the TimelinesAI fake, not yet in the database
    "_tenant_id": str(TENANT_ID),
    "_test_number": "+40712345678",
    "_label": "Sales 20",
    "_alert": "dlq:overflow",  # an alert of the matrix that needs no label
}
# A healthy platform: the morning and evening checks pass on it (their surveys fail the job on a failed check).
HEALTHY = dict(phones=6, leads=60, old_log_rows=0, reviews=0, jobs_per_phone=2, dlq_entries=0, offline=(), banned=(),
               drift_phone="", leak_phone="", no_ttl_phone="")


def required_answers(template):
    """The survey's required answers, as strings: the survey's default where AWX accepts it, else the first choice,
    the lowest integer allowed, or the EXAMPLES value for what the variable names; each passes the survey's own
    validation."""
    answers = {}
    for question in survey(template):
        if not question.get("required"):
            continue
        variable, default = question["variable"], question.get("default")
        if default not in (None, "") and not survey_errors(question, default):
            answer = str(default)
        elif question["type"] == "multiplechoice":
            answer = question["choices"][0]
        elif question["type"] == "integer":
            answer = str(question.get("min") or 0)
        else:
            endings = sorted((e for e in EXAMPLES if variable.endswith(e)), key=len)
            assert endings, "{0} asks {1} (required, no usable default): give EXAMPLES a valid value".format(
                template["name"], variable)
            answer = EXAMPLES[endings[-1]]  # the most specific: _phone_number before _phone
        assert not survey_errors(question, answer), survey_errors(question, answer)
        answers[variable] = answer
    return answers


def _vendor_writes(instantly, timelines):
    return changes(instantly) + [r for r in timelines.requests() if r["method"] != "GET"]


@pytest.fixture(scope="session")
def awx_site(awx_ee):
    """The site's directories (backups, workers, logs), shared by every launch of the session."""
    root = awx_ee / "site"
    (root / "logrotate.d").mkdir(parents=True, exist_ok=True)
    (root / "logs").mkdir(exist_ok=True)
    return root


@pytest.mark.parametrize("template_name", sorted(TEMPLATES))
def test_every_template_launched_as_a_check_job_succeeds_and_changes_nothing(
        awx_ee, awx_site, tmp_path, platform, instantly, timelines, template_name):
    """Job type check, the survey's required answers (as strings; AWX adds the defaults), the template's
    credentials: the job succeeds and leaves Redis, PostgreSQL (the audit log included), the vendors and the
    report directory as they were."""
    platform.seed(**HEALTHY)
    site = site_inventory(awx_site, timelines=timelines, instantly=instantly)
    if not any((awx_site / "backups").glob("*/manifest.json")):
        # The site has a verified backup, as the nightly job leaves one (the evening check and the recovery read it).
        backup = awx_launch(awx_ee, tmp_path, platform, "cerniq backup_database", {}, extra_inventory=site)
        assert backup.rc == 0, backup.stdout[-3000:]
    before = platform_state(platform)
    instantly.clear_requests()
    timelines.clear_requests()
    answers = required_answers(TEMPLATES[template_name])
    job = awx_launch(awx_ee, tmp_path, platform, template_name, answers, job_type="check", extra_inventory=site)
    assert job.rc == 0 and job.status == "successful", job.stdout[-4000:]
    assert "--check" in job.command
    assert_unchanged(before, platform_state(platform))
    assert _vendor_writes(instantly, timelines) == []
    assert not (job.pdd / "reports").exists() and not (job.pdd / "metrics").exists(), "check mode wrote a file"
    for secret in _secrets(platform):
        assert secret not in job.everything_written()
