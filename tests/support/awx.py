"""Launch the job templates of controller/ the way AWX launches them (ansible-runner, AWX's private data directory).

AWX runs a job through ansible-runner with a private data directory: the project checkout in project/, the inventory
in inventory/, the survey answers and its own meta variables (awx_job_id, awx_user_name, ...) in env/extravars -
survey answers as strings ("false", "150") - the credentials' injected environment in env/envvars, and the command
line it builds from the template (--check for job_type check, -u for the Machine credential's user, --diff for
diff_mode). The collection comes from the execution environment: the BUILT artifact installed into a collections
path, as execution-environment.yml does (build_ee, once a session).

    ee = build_ee(tmp_dir)                                  # the artifact, installed; the project checkout
    job = launch(ee, pdd, "cerniq check_morning", {"check_morning_overnight": "15h"}, inventory,
                 {"CERNIQ Redis": {"username": "", "password": pw}, ...}, job_type="check")

tests/integration/test_awx_launch.py launches against the local stack, tests/integration/lab/test_awx_lab.py
against the lab's hosts over SSH.
"""

from __future__ import annotations

import copy
import getpass
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ansible_runner
import jinja2
import yaml

from tests.support.services import REPO_ROOT

BIN = Path(sys.executable).parent
USER, JOB_ID = "alice", 4711
# What an AWX inventory does not hold: the secrets come from the credentials' environment, the actor from AWX's meta
# variables (awx_user_name, awx_job_id), the SSH user from the Machine credential (-u).
NOT_IN_AN_AWX_INVENTORY = ("cerniq_redis_password", "cerniq_db_password", "cerniq_audit_actor", "ansible_user")


class _Loader(yaml.SafeLoader):
    pass


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def controller(name, key):
    return yaml.load((REPO_ROOT / "controller" / name).read_text(), Loader=_Loader)[key]


TEMPLATES = {t["name"]: t for t in controller("job_templates.yml", "controller_templates")}
CREDENTIAL_TYPES = {c["name"]: c for c in controller("credential_types.yml", "controller_credential_types")}
CREDENTIALS = {c["name"]: c for c in controller("credentials.yml", "controller_credentials")}


def build_ee(root):
    """The execution environment's collection (the built artifact, installed) and the project checkout, in root."""
    root = Path(root)
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


def injected_env(template, inputs_by_type):
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

    def ok_results(self, task):
        """The `res` of every runner_on_ok event of this task."""
        return [e["event_data"]["res"] for e in self.events if e.get("event") == "runner_on_ok"
                and e["event_data"].get("task") == task]


def survey(template):
    return template.get("survey_spec", {}).get("spec", []) if template.get("survey_enabled") else []


def survey_errors(question, value):
    """What AWX refuses of a survey answer (awx/main/models/mixins.py _survey_element_validation): a text's length
    outside min/max, an integer outside min/max, a choice not offered."""
    kind, low, high = question["type"], question.get("min"), question.get("max")
    if kind in ("text", "textarea", "password"):
        size = len(str(value))
        return [] if (low in ("", None) or size >= int(low)) and (high in ("", None) or size <= int(high)) else [
            "{0}: {1!r} is not {2}..{3} characters long".format(question["variable"], value, low, high)]
    if kind == "integer":
        number = int(value)
        return [] if (low in ("", None) or number >= int(low)) and (high in ("", None) or number <= int(high)) else [
            "{0}: {1} is outside {2}..{3}".format(question["variable"], value, low, high)]
    if kind == "multiplechoice":
        return [] if value in question["choices"] else [
            "{0}: {1!r} is not a choice".format(question["variable"], value)]
    return ["{0}: a {1} question, unknown here".format(question["variable"], kind)]


def survey_defaults(template):
    """What AWX adds to a job's extra vars by itself (_update_unified_job_kwargs): every survey default that passes
    the survey's own validation, as the survey holds it (an integer's default as an integer)."""
    return {q["variable"]: q["default"] for q in survey(template)
            if q.get("default") is not None and not survey_errors(q, q["default"])}


def launch(ee, pdd, template_name, answers, inventory, credential_inputs=None, job_type="run", meta=None,
           user=USER, remote_user=None, env=None):
    """Launch a job template as AWX does, in the private data directory pdd (a new directory); returns an AwxJob.

    answers: the survey answers, strings (checked against the survey's rules); AWX adds the survey's defaults.
    inventory: an inventory dict; NOT_IN_AN_AWX_INVENTORY is taken out of it, and cerniq_report_dir is set to
    pdd/reports (each job's reports its own). credential_inputs: {credential type name: inputs}, rendered through
    the template's credentials' injectors into env/envvars (None: no credential). meta: more awx_* variables;
    user None: a scheduled job (no awx_user_name). remote_user: the Machine credential's user (-u; default the
    user running the tests). env: more environment variables (not AWX's, the test's own machinery).
    """
    template = TEMPLATES[template_name]
    questions = {q["variable"]: q for q in survey(template)}
    for variable, answer in answers.items():
        assert variable in questions, "{0} is not a survey question of {1}".format(variable, template_name)
        assert isinstance(answer, str), "AWX hands survey answers over as strings"
        assert not survey_errors(questions[variable], answer), survey_errors(questions[variable], answer)
    pdd = Path(pdd)
    shutil.copytree(Path(ee) / "project", pdd / "project")
    (pdd / "inventory").mkdir(parents=True)
    (pdd / "env").mkdir()
    inventory = copy.deepcopy(inventory)
    variables = inventory["all"]["vars"]
    for name in NOT_IN_AN_AWX_INVENTORY:
        variables.pop(name, None)
    variables["cerniq_report_dir"] = str(pdd / "reports")
    (pdd / "inventory" / "hosts").write_text(json.dumps(inventory))
    extravars = dict(survey_defaults(template), **answers)
    for prefix in ("awx", "tower"):
        extravars.update({prefix + "_job_id": JOB_ID, prefix + "_job_launch_type": "manual",
                          prefix + "_job_template_name": template_name,
                          prefix + "_inventory_name": template["inventory"]})
        if user:  # a scheduled job has no user (AWX sends <prefix>_schedule_name instead)
            extravars[prefix + "_user_name"] = user
    extravars.update(meta or {})
    (pdd / "env" / "extravars").write_text(yaml.safe_dump(extravars))
    collections = "{0}:~/.ansible/collections:/usr/share/ansible/collections".format(Path(ee) / "collections")
    envvars = {"ANSIBLE_COLLECTIONS_PATHS": collections, "ANSIBLE_COLLECTIONS_PATH": collections,
               "ANSIBLE_CONFIG": str(pdd / "project" / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
               "ANSIBLE_DEPRECATION_WARNINGS": "0", "PATH": str(BIN) + os.pathsep + os.environ.get("PATH", "")}
    envvars.update(env or {})
    if credential_inputs is not None:
        envvars.update(injected_env(template, credential_inputs))
    (pdd / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    # AWX's command line (awx/main/tasks/jobs.py build_args): --check for job_type check, -u, --diff for diff_mode.
    args = (["--check"] if job_type == "check" else []) + ["-u", remote_user or getpass.getuser()]
    args += ["--diff"] if template["diff_mode"] else []
    (pdd / "env" / "cmdline").write_text(" ".join(args))
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CERNIQ_")}
    try:
        runner = ansible_runner.run(private_data_dir=str(pdd), playbook=template["playbook"], quiet=True,
                                    json_mode=False)
    finally:
        os.environ.update(saved)
    return AwxJob(pdd, runner)
