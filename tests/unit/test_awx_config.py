"""The controller configuration as code (controller/) against what it points at, without a controller.

Templates name playbooks that exist and inventory groups those playbooks target; every survey variable is one the
roles' meta/argument_specs.yml accept, with the same type and choices; credential types inject exactly the environment
variables the platform role and the modules read; schedules fire at Bucharest wall-clock times across the 2027 DST
changes; workflows put an approval between a check-mode plan and every destructive change.
"""

import re
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest
import yaml
from dateutil import tz
from dateutil.rrule import rrulestr

from tests.support.services import REPO_ROOT

CONTROLLER = REPO_ROOT / "controller"
BUCHAREST = tz.gettz("Europe/Bucharest")


class _Loader(yaml.SafeLoader):
    """YAML with Ansible's !unsafe (the credential types' injector templates are AWX's, not the configuring play's)."""


_Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _load(name):
    return yaml.load((CONTROLLER / name).read_text(), Loader=_Loader)


TEMPLATES = _load("job_templates.yml")["controller_templates"]
WORKFLOWS = _load("workflows.yml")["controller_workflows"]
SCHEDULES = _load("schedules.yml")["controller_schedules"]
CREDENTIAL_TYPES = _load("credential_types.yml")["controller_credential_types"]
CREDENTIALS = _load("credentials.yml")["controller_credentials"]
INVENTORIES = _load("inventories.yml")
NOTIFICATIONS = _load("notifications.yml")["controller_notifications"]
PROJECTS = _load("projects.yml")["controller_projects"]
EES = _load("execution_environments.yml")["controller_execution_environments"]
BY_NAME = {t["name"]: t for t in TEMPLATES}
PLAYBOOKS = sorted(p.stem for p in (REPO_ROOT / "playbooks").glob("*.yml"))
DESTRUCTIVE = ("dr_database", "dr_redis", "phone_banned", "maintenance_weekly")


def _playbook_plays(stem):
    return yaml.safe_load((REPO_ROOT / "playbooks" / (stem + ".yml")).read_text())


def _roles_of(stem):
    roles = []
    for play in _playbook_plays(stem):
        for role in play.get("roles", []):
            name = role["role"] if isinstance(role, dict) else role
            roles.append(name.split(".")[-1])
    return roles


def _options_of(stem):
    """Every variable the playbook's roles document in meta/argument_specs.yml (entry point main)."""
    options = {}
    for role in _roles_of(stem):
        spec = REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml"
        if spec.exists():
            for name, option in yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"].items():
                options.setdefault(name, option)
    return options


def _stem(template):
    match = re.fullmatch(r"playbooks/(\w+)\.yml", template["playbook"])
    assert match, template["playbook"]
    return match.group(1)


def test_a_job_template_per_playbook_with_check_mode_from_the_launch_dialog():
    assert sorted(_stem(t) for t in TEMPLATES) == PLAYBOOKS
    for template in TEMPLATES:
        assert (REPO_ROOT / template["playbook"]).is_file()
        assert template["name"] == "cerniq " + _stem(template)
        assert template["ask_job_type_on_launch"] is True and template["job_type"] == "run"
        assert template["diff_mode"] is True
        assert template["project"] in [p["name"] for p in PROJECTS]
        assert template["execution_environment"] in [e["name"] for e in EES]
        assert set(template["credentials"]) <= {c["name"] for c in CREDENTIALS}
        assert set(template["notification_templates_error"]) <= {n["name"] for n in NOTIFICATIONS}


def test_templates_inventory_has_the_groups_each_playbook_targets():
    inventories = {i["name"] for i in INVENTORIES["controller_inventories"]}
    groups = {}
    for group in INVENTORIES["controller_groups"]:
        assert group["hosts"], group["name"]
        groups.setdefault(group["inventory"], set()).add(group["name"])
    hosts = {h["name"] for h in INVENTORIES["controller_hosts"]}
    for group in INVENTORIES["controller_groups"]:
        assert set(group["hosts"]) <= hosts
    for template in TEMPLATES:
        assert template["inventory"] in inventories
        targets = {play["hosts"] for play in _playbook_plays(_stem(template))}
        # The platform role resolves the primaries from groups['redis'] and groups['db'] for every playbook.
        needed = (targets - {"all", "localhost"}) | {"redis", "db"}
        assert needed <= groups[template["inventory"]], (template["name"], needed)


SURVEY_TYPES = {"int": {"integer"}, "float": {"float"}, "bool": {"multiplechoice"}, "raw": {"multiplechoice"},
                "str": {"text", "textarea", "password", "multiplechoice"}, "path": {"text"}}


def _check_survey(spec, options, where):
    seen = set()
    for question in spec["spec"]:
        name = question["variable"]
        assert name not in seen, (where, name)
        seen.add(name)
        assert name in options, "{0}: survey variable {1} is not in the roles' argument_specs".format(where, name)
        option = options[name]
        kind = option.get("type", "str")
        assert question["type"] in SURVEY_TYPES[kind], (where, name, kind, question["type"])
        if option.get("required"):
            assert question["required"] is True, (where, name)
        if kind in ("bool", "raw"):
            assert sorted(question["choices"]) == ["false", "true"], (where, name)
            assert question["default"] == str(bool(option.get("default", False))).lower(), (where, name)
        elif option.get("choices"):
            assert question["type"] == "multiplechoice"
            assert question["choices"] == [str(c) for c in option["choices"]], (where, name)
            assert question["default"] in question["choices"]
        else:
            assert "choices" not in question, (where, name)
        if question["type"] in ("integer", "float"):
            assert question["min"] <= question["default"] <= question["max"], (where, name)
            assert question["default"] == option["default"], (where, name)
        if question["type"] in ("text", "textarea") and question.get("default"):
            assert question["default"] == option.get("default"), (where, name)
            assert question["min"] <= len(question["default"]) <= question["max"]
        for text in (question["question_name"], question.get("question_description", "")):
            assert "{{" not in text and "{%" not in text, (where, name)
    return seen


def test_every_survey_variable_is_accepted_by_the_roles_argument_specs():
    typed = 0
    for template in TEMPLATES:
        options = _options_of(_stem(template))
        if not template.get("survey_enabled"):
            continue
        names = _check_survey(template["survey_spec"], options, template["name"])
        typed += len(names)
        # A procedure with a confirmation gate asks for it; one with a phone asks for it.
        if "confirm" in options:
            assert "confirm" in names, template["name"]
        required = {n for n, o in options.items() if o.get("required")}
        assert required <= names, (template["name"], required - names)
    assert typed >= 50
    # The surveys of the issue: phone, confirm, quota value, reason, assign_to, alert, campaign.
    asked = {q["variable"] for t in TEMPLATES if t.get("survey_enabled") for q in t["survey_spec"]["spec"]}
    for name in ("phone_banned_phone", "confirm", "quota_exhausted_value", "phone_banned_reason",
                 "review_sla_assign_to", "alert_response_alert", "bounce_high_campaign",
                 "review_sla_assign_priority", "workers_action", "dr_database_backup_source",
                 "phone_onboard_test_wait_for", "host_maintenance_upgrade"):
        assert name in asked, name


def test_no_survey_asks_for_a_secret_except_masked():
    for template in TEMPLATES + WORKFLOWS:
        for question in (template.get("survey_spec") or {}).get("spec", []):
            if re.search(r"password|token|api_key|secret|webhook_url", question["variable"]):
                assert question["type"] == "password", (template["name"], question["variable"])


def _platform_env_reads():
    text = (REPO_ROOT / "roles" / "platform" / "defaults" / "main.yml").read_text()
    return set(re.findall(r"lookup\('ansible\.builtin\.env', '(CERNIQ_[A-Z_]+)'\)", text))


def _module_secret_env():
    """The environment variables of every no_log module option (the secrets a module can be handed)."""
    names = set()
    for path in (REPO_ROOT / "plugins").rglob("*.py"):
        for match in re.finditer(r"no_log=True,\s*fallback=\(env_fallback, \[\"([A-Z_]+)\"\]\)", path.read_text()):
            names.add(match.group(1))
    return names


def test_credential_types_inject_exactly_what_the_platform_role_reads():
    injected = {}
    for ctype in CREDENTIAL_TYPES:
        fields = {f["id"]: f for f in ctype["inputs"]["fields"]}
        assert set(ctype["injectors"]) == {"env"}, ctype["name"]
        for env, template in ctype["injectors"]["env"].items():
            used = re.findall(r"\{\{\s*(\w+)", template)
            assert used and set(used) <= set(fields), (ctype["name"], env)
            injected[env] = (ctype["name"], used[0])
        for field in fields.values():
            if re.search(r"password|token|key", field["id"]):
                assert field.get("secret") is True, (ctype["name"], field["id"])
        assert set(ctype["inputs"]["required"]) <= set(fields)
    reads = _platform_env_reads()
    assert reads == {"CERNIQ_REDIS_USERNAME", "CERNIQ_REDIS_PASSWORD", "CERNIQ_DB_PASSWORD",
                     "CERNIQ_INSTANTLY_API_KEY", "CERNIQ_TIMELINESAI_API_TOKEN"}
    # Every injected variable is read, and every secret the platform role or a module reads is injected.
    assert set(injected) == reads
    assert _module_secret_env() <= set(injected)
    # Each credential of those types fills every required input, from the vault (never in clear here).
    by_type = {c["credential_type"]: c for c in CREDENTIALS}
    for ctype in CREDENTIAL_TYPES:
        credential = by_type[ctype["name"]]
        for field in ctype["inputs"]["required"]:
            assert credential["inputs"][field].startswith("{{ cerniq_awx_secrets."), (ctype["name"], field)


def test_every_secret_a_template_needs_comes_from_its_credentials():
    types = {c["name"]: c["credential_type"] for c in CREDENTIALS}
    vendor_modules = {"instantly": "CERNIQ Instantly", "timelinesai": "CERNIQ TimelinesAI"}
    for template in TEMPLATES:
        ctypes = {types[c] for c in template["credentials"]}
        assert {"Machine", "CERNIQ Redis", "CERNIQ PostgreSQL"} <= ctypes, template["name"]
        for role in _roles_with_includes(_stem(template)):
            text = "\n".join(p.read_text() for p in (REPO_ROOT / "roles" / role / "tasks").glob("*.yml"))
            for vendor, ctype in vendor_modules.items():
                if re.search(r"cerniq\.outreach\.{0}_\w+:".format(vendor), text):
                    assert ctype in ctypes, (template["name"], role, vendor)


def _roles_with_includes(stem):
    roles, todo = set(), list(_roles_of(stem))
    while todo:
        role = todo.pop()
        if role in roles or not (REPO_ROOT / "roles" / role).is_dir():
            continue
        roles.add(role)
        for path in (REPO_ROOT / "roles" / role / "tasks").glob("*.yml"):
            todo += re.findall(r"name: cerniq\.outreach\.(\w+)\s*$", path.read_text(), re.M)
    return roles


# Schedule -> (template, Bucharest wall-clock time, weekday or None)
INTENDED = {
    "cerniq check_morning": (time(9, 0), None),
    "cerniq check_evening": (time(18, 0), None),
    "cerniq backup_database": (time(1, 30), None),
    "cerniq maintenance_weekly": (time(2, 0), 6),
    "cerniq quota_reset": (time(0, 15), None),
}
DST_DAYS = (date(2027, 3, 28), date(2027, 10, 31))  # clocks forward at 03:00, back at 04:00 (Sundays both)
SUMMER_2027 = (datetime(2027, 3, 28, 1, 0, tzinfo=tz.UTC), datetime(2027, 10, 31, 1, 0, tzinfo=tz.UTC))


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[s["name"] for s in SCHEDULES])
def test_schedule_fires_at_bucharest_wall_clock_across_2027_dst(schedule):
    assert schedule["rrule"].startswith("DTSTART;TZID=Europe/Bucharest:")
    assert schedule["unified_job_template"] in BY_NAME
    rule = rrulestr(schedule["rrule"])
    wall, weekday = INTENDED[schedule["unified_job_template"]]
    for day in DST_DAYS:
        start = datetime.combine(day - timedelta(days=8), time(0, 0), BUCHAREST)
        end = datetime.combine(day + timedelta(days=8), time(0, 0), BUCHAREST)
        fired = rule.between(start, end)
        expected_days = [day + timedelta(days=n) for n in range(-8, 8)
                         if weekday is None or (day + timedelta(days=n)).weekday() == weekday]
        assert [f.date() for f in fired] == expected_days, schedule["name"]
        for when in fired:
            local = when.astimezone(BUCHAREST)
            assert (local.hour, local.minute) == (wall.hour, wall.minute), (schedule["name"], when)
            # EU rule: summer time (UTC+3) from 01:00 UTC on 28 March to 01:00 UTC on 31 October 2027; the same
            # wall clock is another UTC instant on each side.
            summer = SUMMER_2027[0] <= when.astimezone(tz.UTC) < SUMMER_2027[1]
            assert local.utcoffset() == timedelta(hours=3 if summer else 2), (schedule["name"], local)
            assert when.astimezone(tz.UTC).hour == (wall.hour - (3 if summer else 2)) % 24
    # The order of a day: the quota check after midnight, the backup before the evening check.
    assert time(0, 0) < INTENDED["cerniq quota_reset"][0] < INTENDED["cerniq backup_database"][0] \
        < INTENDED["cerniq check_evening"][0]


def test_schedules_answers_are_survey_answers():
    for schedule in SCHEDULES:
        template = BY_NAME[schedule["unified_job_template"]]
        asked = {q["variable"] for q in template.get("survey_spec", {}).get("spec", [])}
        assert set(schedule.get("extra_data", {})) <= asked, schedule["name"]
        for value in schedule.get("extra_data", {}).values():
            assert isinstance(value, str)  # as AWX stores a survey answer
        if schedule.get("job_type"):
            assert template["ask_job_type_on_launch"] is True
    weekly = [s for s in SCHEDULES if s["unified_job_template"] == "cerniq maintenance_weekly"]
    assert weekly and weekly[0]["extra_data"]["confirm"] == "true"
    quota = [s for s in SCHEDULES if s["unified_job_template"] == "cerniq quota_reset"]
    assert quota[0]["job_type"] == "check"


def test_workflows_put_an_approval_between_the_plan_and_every_destructive_change():
    notifications = {n["name"] for n in NOTIFICATIONS}
    by_procedure = {}
    for workflow in WORKFLOWS:
        nodes = {n["identifier"]: n for n in workflow["workflow_nodes"]}
        assert len(nodes) == len(workflow["workflow_nodes"])
        jobs = [n for n in nodes.values() if n["unified_job_template"]["type"] == "job_template"]
        templates = {n["unified_job_template"]["name"] for n in jobs}
        assert len(templates) == 1, workflow["name"]
        template = BY_NAME[templates.pop()]
        by_procedure[_stem(template)] = workflow
        changes = [n for n in jobs if n.get("job_type", "run") == "run"]
        plans = [n for n in jobs if n.get("job_type") == "check"]
        assert plans and changes
        parents = {}
        for node in nodes.values():
            for kind in ("success_nodes", "failure_nodes", "always_nodes"):
                for child in node.get("related", {}).get(kind, []):
                    assert child["identifier"] in nodes
                    parents.setdefault(child["identifier"], []).append((node["identifier"], kind))
        roots = [n for n in nodes if n not in parents]
        assert [nodes[r] for r in roots] == plans, workflow["name"]
        for change in changes:
            assert change["extra_data"]["confirm"] == "true"
            # Its only way in: the success of an approval node with a timeout, itself reached only by a plan's success.
            (approval_id, kind), = parents[change["identifier"]]
            approval = nodes[approval_id]
            assert kind == "success_nodes" and approval["unified_job_template"]["type"] == "workflow_approval"
            assert 0 < approval["unified_job_template"]["timeout"] <= 4 * 3600
            (plan_id, kind), = parents[approval_id]
            assert kind == "success_nodes" and nodes[plan_id] in plans
        for plan in plans:
            assert plan["extra_data"].get("confirm", "false") == "false"
        # Asked once: the template's survey without `confirm` (the nodes set it).
        survey = [q for q in template["survey_spec"]["spec"] if q["variable"] != "confirm"]
        assert workflow["survey_spec"]["spec"] == survey
        _check_survey(workflow["survey_spec"], _options_of(_stem(template)), workflow["name"])
        assert workflow["notification_templates_error"] and workflow["notification_templates_approvals"]
        assert set(workflow["notification_templates_error"] + workflow["notification_templates_approvals"]) \
            <= notifications
    assert sorted(by_procedure) == sorted(DESTRUCTIVE)


def test_rulebook_actions_name_configured_templates():
    """A rulebook action naming a job template or workflow names one of controller/; run_playbook names a playbook
    that has a job template (the EDA controller runs it as that template)."""
    workflows = {w["name"] for w in WORKFLOWS}
    checked = 0
    for path in (REPO_ROOT / "extensions" / "eda" / "rulebooks").glob("*.yml"):
        for ruleset in yaml.safe_load(path.read_text()):
            for rule in ruleset["rules"]:
                actions = rule.get("actions") or [rule["action"]]
                for action in actions:
                    for kind, args in action.items():
                        if kind == "run_job_template":
                            assert args["name"] in BY_NAME, (path.name, rule["name"])
                        elif kind == "run_workflow_template":
                            assert args["name"] in workflows, (path.name, rule["name"])
                        elif kind == "run_playbook":
                            stem = args["name"].split(".")[-1]
                            assert "cerniq " + stem in BY_NAME, (path.name, rule["name"])
                        else:
                            continue
                        checked += 1
    assert checked >= 1


def test_every_loaded_file_is_in_the_loader_playbook():
    play = yaml.safe_load((CONTROLLER / "configure.yml").read_text())[0]
    loaded = set(play["vars_files"])
    on_disk = {p.name for p in CONTROLLER.glob("*.yml")} - {"configure.yml", "requirements.yml"}
    assert loaded == on_disk
    assert [t["ansible.builtin.include_role"]["name"] for t in play["tasks"]] == ["infra.aap_configuration.dispatch"]
    assert not list(Path(CONTROLLER).glob("*secret*"))
