"""Job templates of controller/ launched the way AWX launches them, against real Redis and PostgreSQL.

AWX runs a job through ansible-runner with a private data directory: the project checkout in project/, the inventory
in inventory/, the survey answers and its own meta variables (awx_job_id, awx_user_name, ...) in env/extravars -
survey answers as strings ("false", "150") - the credentials' injected environment in env/envvars, and the command
line it builds from the template (--check for job_type check, --diff for diff_mode). The collection comes from the
execution environment: here the BUILT artifact installed into a collections path, as execution-environment.yml does.
"""

import getpass
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_runner
import jinja2
import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import phone_status_key
from tests.conftest import REDIS_PASSWORD
from tests.support.playbooks import inventory_for
from tests.support.services import REPO_ROOT

BIN = Path(sys.executable).parent
USER, JOB_ID = "alice", 4711
_SEQUENCE = itertools.count(1)


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _controller(name, key):
    return yaml.load((REPO_ROOT / "controller" / name).read_text(), Loader=_Loader)[key]


TEMPLATES = {t["name"]: t for t in _controller("job_templates.yml", "controller_templates")}
CREDENTIAL_TYPES = {c["name"]: c for c in _controller("credential_types.yml", "controller_credential_types")}
CREDENTIALS = {c["name"]: c for c in _controller("credentials.yml", "controller_credentials")}


@pytest.fixture(scope="module")
def awx_ee(tmp_path_factory):
    """The execution environment's collection (the built artifact, installed) and the project checkout."""
    root = tmp_path_factory.mktemp("awx")
    env = dict(os.environ, PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""))
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(root / "artifact"),
                    str(REPO_ROOT)], check=True, capture_output=True, env=env, timeout=300)
    (artifact,) = (root / "artifact").glob("cerniq-outreach-*.tar.gz")
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--force",
                    "-p", str(root / "collections"), str(artifact)], check=True, capture_output=True, env=env,
                   timeout=300)
    assert (root / "collections" / "ansible_collections" / "cerniq" / "outreach" / "MANIFEST.json").is_file()
    project = root / "project"
    shutil.copytree(REPO_ROOT / "playbooks", project / "playbooks")
    shutil.copy2(REPO_ROOT / "ansible.cfg", project / "ansible.cfg")
    return root


def _injected_env(template, inputs_by_type):
    """What AWX injects: each credential type's env injectors rendered over the credential's inputs."""
    env = {}
    for name in template["credentials"]:
        ctype = CREDENTIAL_TYPES.get(CREDENTIALS[name]["credential_type"])
        if ctype is None or ctype["name"] not in inputs_by_type:
            continue  # Machine / Source Control: AWX's own kinds, not environment variables
        for variable, source in ctype["injectors"]["env"].items():
            env[variable] = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(source).render(
                **inputs_by_type[ctype["name"]])
    return env


class AwxJob:
    def __init__(self, pdd, runner):
        self.pdd = pdd
        self.rc = runner.rc
        self.status = runner.status
        self.stdout = runner.stdout.read()
        self.events = list(runner.events)
        self.command = runner.config.command

    def everything_written(self):
        """The job's output as AWX stores it: stdout and every event."""
        return self.stdout + "".join(json.dumps(e) for e in self.events)


def awx_launch(awx_ee, tmp_path, platform, template_name, answers, job_type="run", credentials=True,
               meta=None, extra_inventory=None, user=USER):
    template = TEMPLATES[template_name]
    survey = {q["variable"]: q for q in template.get("survey_spec", {}).get("spec", [])}
    for variable, answer in answers.items():
        assert variable in survey, "{0} is not a survey question of {1}".format(variable, template_name)
        assert isinstance(answer, str), "AWX hands survey answers over as strings"
        if survey[variable]["type"] == "multiplechoice":
            assert answer in survey[variable]["choices"]
    pdd = tmp_path / "job-{0}-{1}".format(next(_SEQUENCE), template_name.split()[-1])
    shutil.copytree(awx_ee / "project", pdd / "project")
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "env").mkdir()
    inventory = inventory_for(platform.redis, platform.pg, dict(cerniq_report_dir=str(pdd / "reports"),
                                                                **(extra_inventory or {})))
    for secret_or_actor in ("cerniq_redis_password", "cerniq_db_password", "cerniq_audit_actor"):
        del inventory["all"]["vars"][secret_or_actor]  # from the credentials' environment and AWX's meta vars
    (pdd / "inventory" / "hosts").write_text(json.dumps(inventory))
    extravars = dict(answers)
    for prefix in ("awx", "tower"):
        extravars.update({prefix + "_job_id": JOB_ID, prefix + "_job_launch_type": "manual",
                          prefix + "_job_template_name": template_name,
                          prefix + "_inventory_name": template["inventory"]})
        if user:  # a scheduled job has no user (AWX sends <prefix>_schedule_name instead)
            extravars[prefix + "_user_name"] = user
    extravars.update(meta or {})
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    collections = "{0}:~/.ansible/collections:/usr/share/ansible/collections".format(awx_ee / "collections")
    env = {"ANSIBLE_COLLECTIONS_PATHS": collections, "ANSIBLE_COLLECTIONS_PATH": collections,
           "ANSIBLE_CONFIG": str(pdd / "project" / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_DEPRECATION_WARNINGS": "0", "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", "")}
    if credentials:
        env.update(_injected_env(template, {
            "CERNIQ Redis": {"username": "", "password": platform.redis.password},
            "CERNIQ PostgreSQL": {"password": platform.pg.password},
            "CERNIQ Instantly": {"api_key": "not-used-here"},
            "CERNIQ TimelinesAI": {"api_token": "not-used-here"}}))
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(env))
    # AWX's command line (awx/main/tasks/jobs.py build_args): --check for job_type check, -u, --diff for diff_mode.
    args = (["--check"] if job_type == "check" else []) + ["-u", getpass.getuser()]
    args += ["--diff"] if template["diff_mode"] else []
    (pdd / "env" / "cmdline").write_text(" ".join(args))
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CERNIQ_")}
    try:
        runner = ansible_runner.run(private_data_dir=str(pdd), playbook=template["playbook"], quiet=True,
                                    json_mode=False)
    finally:
        os.environ.update(saved)
    return AwxJob(pdd, runner)


def _secrets(platform):
    return [platform.redis.password, platform.pg.password]


def test_credential_injectors_render_the_platform_environment(platform):
    env = _injected_env(TEMPLATES["cerniq alert_response"], {
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
