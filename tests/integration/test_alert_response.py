"""alert_response.yml (runbook 7.1) for real: the alert matrix, its refusals, and the procedures it dispatches to,
against the session's Redis and PostgreSQL (and the TimelinesAI fake)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import DLQ_LIST_KEY, phone_status_key
from tests.fakes import timelinesai as timelinesai_fake
from tests.support.playbooks import COLLECTIONS_PATH, VENV_BIN, run_playbook
from tests.support.services import REPO_ROOT
from tests.support.snapshots import assert_unchanged, platform_state
from tests.support.vendors import (
    INSTANTLY_KEY,
    INSTANTLY_SERVER,
    TIMELINES_SERVER,
    TIMELINES_TOKEN,
    assert_traffic_matches_openapi,
    campaign_ids,
    campaign_status,
    changes,
)

ROLE_DIR = REPO_ROOT / "roles" / "alert_response"
RULEBOOK = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "cerniq_alerts.yml"
MATRIX = yaml.safe_load((ROLE_DIR / "vars" / "main.yml").read_text())["alert_response_matrix"]
RUNBOOK_ALERTS = ["phone:offline", "phone:banned", "bounce:high", "sla:breach", "quota:exhausted", "dlq:overflow",
                  "timelinesai:down"]
PHONE = "phone_03"


def _role_options(role):
    specs = yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
    return set(specs["argument_specs"]["main"].get("options", {}))


# ---- the matrix itself (no playbook run) -------------------------------------------------------------------------

def test_the_matrix_is_the_runbooks_table():
    assert list(MATRIX) == RUNBOOK_ALERTS
    assert {name: (e["severity"], e["response_time"]) for name, e in MATRIX.items()} == {
        "phone:offline": ("HIGH", "15 min"), "phone:banned": ("CRITICAL", "immediate"),
        "bounce:high": ("HIGH", "30 min"), "sla:breach": ("MEDIUM", "1 hour"),
        "quota:exhausted": ("MEDIUM", "1 hour"), "dlq:overflow": ("HIGH", "15 min"),
        "timelinesai:down": ("CRITICAL", "immediate")}
    assert MATRIX["phone:banned"]["required_labels"] == ["phone"]
    assert MATRIX["phone:offline"]["required_labels"] == ["phone"]


def _missing_procedures():
    missing = []
    for name, entry in MATRIX.items():
        tasks = REPO_ROOT / "roles" / entry["role"] / "tasks" / "{0}.yml".format(entry["tasks_from"])
        if not tasks.is_file():
            missing.append("{0} -> roles/{1}/tasks/{2}.yml".format(name, entry["role"], entry["tasks_from"]))
    return missing


def test_every_procedure_of_the_matrix_exists_and_takes_the_variables_it_is_given():
    assert _missing_procedures() == []
    for name, entry in MATRIX.items():
        unknown = set(entry["role_vars"]) - _role_options(entry["role"])
        assert not unknown, "{0}: roles/{1} does not document {2}".format(name, entry["role"], sorted(unknown))
        # A label is only handed over when the procedure can use it: required labels must map to a variable.
        assert set(entry["required_labels"]) <= set(entry["role_vars"].values()) or entry["role"] == "alert_response"


def _rulebook_rules():
    return {rule["name"]: rule for rule in yaml.safe_load(RULEBOOK.read_text())[0]["rules"]}


def _names_in(condition):
    return set(re.findall(r'"([^"]+)"', condition.split(" in ", 1)[1]))


def test_the_rulebook_and_the_matrix_name_the_same_alerts():
    rules = _rulebook_rules()
    every_name = set(MATRIX) | {alias for entry in MATRIX.values() for alias in entry["alertnames"]}
    dispatched = set()
    # Only the validated fields the procedures use; never event.labels (or the event) as a whole.
    expected_vars = {
        "Phone alert, once per phone and alert within 15 minutes": {
            "alert": "{{ event.labels.alertname }}", "phone": "{{ event.labels.phone }}"},
        "Campaign alert, once per campaign within 15 minutes": {
            "alert": "{{ event.labels.alertname }}", "campaign": "{{ event.labels.campaign }}"},
        "Platform alert, once per alert within 15 minutes": {
            "alert": "{{ event.labels.alertname }}", "phone": "{{ event.labels.phone | default('') }}",
            "campaign": "{{ event.labels.campaign | default('') }}"},
    }
    for rule in rules.values():
        if "run_playbook" in rule["action"]:
            assert rule["action"]["run_playbook"]["name"] == "cerniq.outreach.alert_response"
            assert rule["action"]["run_playbook"]["extra_vars"] == expected_vars[rule["name"]]
            # Never confirms a destructive step by itself.
            assert "confirm" not in json.dumps(rule["action"])
            dispatched |= _names_in(rule["condition"])
        assert rule["condition"].startswith('event.status == "firing"')
        assert rule["throttle"]["once_within"] == "15 minutes"
        assert rule["throttle"]["group_by_attributes"][0] == "event.labels.alertname"
    assert dispatched == every_name
    phone_rule = rules["Phone alert, once per phone and alert within 15 minutes"]
    assert phone_rule["throttle"]["group_by_attributes"] == ["event.labels.alertname", "event.labels.phone"]
    # Alerts that need a phone run only from the per-phone rule; without the label they are reported, not run.
    needs_phone = {n for name, e in MATRIX.items() if "phone" in e["required_labels"] for n in [name] + e["alertnames"]}
    assert needs_phone <= _names_in(phone_rule["condition"])
    platform_rule = rules["Platform alert, once per alert within 15 minutes"]
    assert not needs_phone & _names_in(platform_rule["condition"])
    reported = rules["Phone alert without a phone label, reported once per alert within 15 minutes"]
    assert _names_in(reported["condition"]) == needs_phone and "debug" in reported["action"]


def test_every_variable_of_the_role_is_documented():
    defaults = yaml.safe_load((ROLE_DIR / "defaults" / "main.yml").read_text())
    assert set(defaults) == _role_options("alert_response")


# ---- runs ---------------------------------------------------------------------------------------------------------

@pytest.fixture()
def seeded(platform):
    return platform.seed(phones=4, leads=60, old_log_rows=0, reviews=40, jobs_per_phone=3, dlq_entries=25,
                         offline=("phone_02",), banned=(), drift_phone="", leak_phone="", no_ttl_phone="")


def _state(platform):
    """Every key's DUMP and absolute expiry, every table's checksum (the audit log's too)."""
    return platform_state(platform)


def test_tag_matrix_prints_the_matrix_and_runs_nothing_else(platform):
    run = platform.play("alert_response.yml", tags="matrix")
    assert run.rc == 0, run.stdout[-3000:]
    lines = run.result("Show the alert response matrix")["msg"]
    assert len(lines) == 1 + len(RUNBOOK_ALERTS)
    assert any(line.startswith("phone:banned") and "CRITICAL" in line and "phone_banned (needs phone)" in line
               for line in lines), lines
    assert any(line.startswith("dlq:overflow") and "alert_response/check_dlq" in line for line in lines), lines
    assert not run.results("Refuse an unknown alert")
    assert not run.results("Run the procedure of the alert")


@pytest.mark.parametrize("extravars,expected", [
    ({"alert": "disk:full", "phone": PHONE}, "Unknown alert 'disk:full'. Nothing was run. Known alerts: "
                                             "phone:offline (PhoneOffline), phone:banned (PhoneBanned), "),
    ({"alert": "phone:banned", "phone": " ", "confirm": "true"},
     "Alert phone:banned needs the label(s) phone (e.g. -e phone=...). Nothing was run."),
])
def test_unknown_alerts_and_missing_labels_are_refused_before_anything_runs(platform, seeded, extravars, expected):
    before = _state(platform)
    run = platform.play("alert_response.yml", extravars=extravars)
    assert run.rc != 0
    refusal = [r["msg"] for r in run.results("Refuse an") if r["_event"] == "runner_on_failed"]
    assert len(refusal) == 1 and refusal[0].startswith(expected), refusal
    if "Unknown" in expected:
        for name, entry in MATRIX.items():
            assert "{0} ({1})".format(name, entry["alertnames"][0]) in refusal[0]
    assert not run.results("Run the procedure of the alert")
    assert_unchanged(before, _state(platform))


def test_a_banned_phone_alert_never_confirms_by_itself(platform, seeded):
    """Alias + labels as the rulebook sends them (here as JSON text, as a survey would), `confirm: true` in the
    inventory and the survey's string "false": the procedure shows its plan and stops; nothing changes."""
    before = _state(platform)
    inventory = platform.inventory(confirm=True)
    labels = json.dumps({"alertname": "PhoneBanned", "phone": PHONE, "severity": "critical"})
    run = run_playbook("alert_response.yml", inventory, extravars={"alert": "PhoneBanned", "alert_labels": labels,
                                                                   "alert_response_confirm": "false"})
    assert run.rc != 0
    # Only the labels a procedure uses are handed on (alertname and severity are checked, then dropped).
    assert run.result("Say what the alert means")["msg"] == (
        "phone:banned: severity CRITICAL, response time immediate; runbook 2.2 runs as cerniq.outreach.phone_banned "
        "with phone={0}.".format(PHONE))
    plan = run.result("What this run will change")["msg"]
    assert any(PHONE in line and "BANNED" in line for line in plan), plan
    assert "Nothing was changed" in run.result("Stop unless confirm=true")["msg"]
    assert_unchanged(before, _state(platform))


def test_check_mode_shows_the_ban_without_doing_it(platform, seeded):
    before = _state(platform)
    run = platform.play("alert_response.yml", extravars={"alert": "phone:banned", "phone": PHONE}, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.result("Ban the phone")["changed"] is True
    assert "in check mode; nothing was changed" in run.result("Alert response summary")["msg"][0]
    assert_unchanged(before, _state(platform))


def test_an_operator_confirms_the_ban_explicitly(platform, seeded):
    run = platform.play("alert_response.yml", extravars={"alert": "phone:banned", "phone": PHONE, "confirm": "true"})
    assert run.rc == 0, run.stdout[-3000:]
    assert platform.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (PHONE,)) == [("BANNED",)]
    assert platform.r(0).get(phone_status_key(PHONE)) == "BANNED"
    assert [(row[1], row[3]) for row in platform.audit()] == [("wa_phone", PHONE)]
    summary = run.result("Alert response summary")["msg"]
    assert summary[0].startswith("Alert phone:banned (CRITICAL, response time immediate): ran runbook 2.2")
    assert "TimelinesAI support" in summary[1]
    stats = run.stats.get("artifact_data", {})
    assert stats["alert_response"]["alert"] == "phone:banned"
    assert stats["alert_response"]["labels"] == {"phone": PHONE}


def test_sla_breach_runs_the_review_procedure(platform, seeded):
    pending = platform.sql("SELECT count(*) FROM human_review_queue WHERE status = 'PENDING'")[0][0]
    before = _state(platform)
    run = platform.play("alert_response.yml", extravars={"alert": "SLABREACH"})
    assert run.rc == 0, run.stdout[-3000:]
    queue = run.result("Read the review queue")
    assert queue["pending"] == pending
    assert "included: cerniq.outreach.review_sla" in run.stdout
    assert run.result("Alert response summary")["msg"][0].startswith(
        "Alert sla:breach (MEDIUM, response time 1 hour): ran runbook 5.1 (cerniq.outreach.review_sla)")
    assert run.changed_tasks == []
    assert_unchanged(before, _state(platform))


def test_dlq_overflow_shows_the_dead_letter_depth_and_failing_queues(platform, seeded):
    platform.r(2).lpush(DLQ_LIST_KEY, *['{{"jobId":"extra-{0}"}}'.format(i) for i in range(5)])
    before = _state(platform)
    run = platform.play("alert_response.yml", extravars={"alert": "dlq:overflow"})
    assert run.rc == 0, run.stdout[-3000:]
    lines = run.result("Show the dead-letter depth")["msg"]
    assert lines[0] == "{0}: 30 dead letters".format(DLQ_LIST_KEY)
    assert lines[1].startswith("failed jobs: ")
    assert run.changed_tasks == []
    assert_unchanged(before, _state(platform))


def _vendor_inventory(platform, fake):
    return platform.inventory(cerniq_timelinesai_base_url=fake.base_url,
                              cerniq_timelinesai_api_token=TIMELINES_TOKEN, cerniq_vendor_allow_http=True)


def test_timelinesai_down_reports_the_accounts_when_the_api_answers(platform, seeded, timelines, timelines_spec):
    run = run_playbook("alert_response.yml", _vendor_inventory(platform, timelines),
                       extravars={"alert": "TimelinesaiDown", "phone": "phone_02"})
    assert run.rc == 0, run.stdout[-3000:]
    assert run.result("Show what TimelinesAI answered")["msg"] == [
        "TimelinesAI answers: 1 of 1 phone(s) connected", "disconnected: none", "no TimelinesAI account: none"]
    assert [r["method"] + " " + r["path"] for r in timelines.requests()] == ["GET /integrations/api/whatsapp_accounts"]
    assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER)


def test_timelinesai_down_fails_with_the_vendor_error_when_the_api_does_not_answer(
        platform, seeded, timelines, timelines_spec):
    timelines.add_fault(503, times=50)  # outlasts the client's retries
    run = run_playbook("alert_response.yml", _vendor_inventory(platform, timelines),
                       extravars={"alert": "timelinesai:down"})
    assert run.rc != 0
    shown = run.result("Show what TimelinesAI answered")["msg"]
    assert len(shown) == 1 and shown[0].startswith("TimelinesAI API call failed: ") and "503" in shown[0], shown
    assert run.result("Fail when TimelinesAI is down")["msg"].startswith(
        "TimelinesAI is down (its API call failed).")
    assert TIMELINES_TOKEN not in run.stdout
    # The retried requests are still what the document describes (the injected 503s are not in it).
    assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER)


def test_phone_offline_hands_the_phone_label_to_the_procedure(platform, seeded, timelines, timelines_spec):
    timelines.reset(timelinesai_fake.build_demo_state(phones=4, disconnected=(3,)))
    labels = {"alertname": "PhoneOffline", "phone": PHONE, "instance": "wa-worker-1"}
    run = run_playbook("alert_response.yml", _vendor_inventory(platform, timelines),
                       extravars={"alert": "PhoneOffline", "alert_labels": labels})
    assert run.rc == 0, run.stdout[-3000:]
    assert run.result("Hand the alert's labels to the procedure")["results"][0]["ansible_facts"] == {
        "phone_offline_phone": PHONE}
    # The procedure found the account disconnected at TimelinesAI and marked the phone OFFLINE (audited).
    assert platform.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (PHONE,)) == [("OFFLINE",)]
    assert platform.r(0).get(phone_status_key(PHONE)) == "OFFLINE"
    assert [(row[1], row[3]) for row in platform.audit()] == [("wa_phone", PHONE)]
    assert run.result("Alert response summary")["msg"][0].startswith(
        "Alert phone:offline (HIGH, response time 15 min): ran runbook 2.1 (cerniq.outreach.phone_offline)")
    assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER)


# ---- alerts are data, never code (issue 11, docs/security.md) ------------------------------------------------------

PIPE = "{{{{ lookup('ansible.builtin.pipe', 'touch {marker}') }}}}"
OVERRIDE = ("#jinja2:variable_start_string:'[[', variable_end_string:']]'\n"
            "[[ lookup('ansible.builtin.pipe', 'touch {marker}') ]]")
CAMPAIGN = "019cad8f-ac00-7000-8000-019cad8fac00"


def _playbook_with_file(platform, tmp_path, extravars, playbook=REPO_ROOT / "playbooks" / "alert_response.yml",
                        args=()):
    """ansible-playbook <playbook> -e @file, as ansible-rulebook, ansible-runner and AWX run it (trusted extra vars)."""
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(platform.inventory() if platform else {
        "all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    (tmp_path / "extravars.yml").write_text(yaml.safe_dump(extravars))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
               ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_DEPRECATION_WARNINGS="0",
               PATH=VENV_BIN + os.pathsep + os.environ["PATH"])
    return subprocess.run([os.path.join(VENV_BIN, "ansible-playbook"), "-i", str(tmp_path / "inventory.yml"),
                           str(playbook), "-e", "@" + str(tmp_path / "extravars.yml"), *args],
                          check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_the_attack_is_live_on_this_ansible_core(tmp_path):
    """Control: the payloads below DO run a command when a playbook reads them, so their absence later means
    the refusal stopped them, not that the payload was inert."""
    playbook = tmp_path / "reads.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [
        {"ansible.builtin.debug": {"msg": "{{ alert_labels.instance }} {{ alert_labels.summary }}"}}]}]))
    markers = tmp_path / "pipe-marker", tmp_path / "override-marker"
    run = _playbook_with_file(None, tmp_path, {"alert_labels": {
        "instance": PIPE.format(marker=markers[0]), "summary": OVERRIDE.format(marker=markers[1])}}, playbook)
    assert run.returncode == 0, run.stdout[-2000:]
    assert markers[0].exists() and markers[1].exists()


def _poison(case, marker):
    pipe = PIPE.format(marker=marker)
    labels = {"alertname": "PhoneOffline", "phone": PHONE, "severity": "high"}
    extravars = {"alert": "PhoneOffline", "alert_labels": labels}
    if case == "label value":
        labels["instance"] = pipe
    elif case == "label name":
        labels[pipe] = "x"
    elif case == "annotation":
        extravars["ansible_eda"] = {"event": {"labels": dict(labels), "annotations": {"summary": pipe}}}
    elif case == "alert name":
        extravars["alert"] = pipe
    elif case == "alertname label":
        labels["alertname"] = pipe
    elif case == "phone":
        extravars["phone"] = "{{% if lookup('ansible.builtin.pipe', 'touch {0}') %}}{1}{{% endif %}}".format(
            marker, PHONE)
    elif case == "campaign":
        extravars.update(alert="BounceHigh", campaign=pipe)
    elif case == "labels as JSON text":
        extravars["alert_labels"] = json.dumps(dict(labels, instance=pipe))
    elif case == "override header":
        labels["instance"] = OVERRIDE.format(marker=marker)
    elif case == "role variable":
        extravars["alert_response_labels"] = dict(labels, instance=pipe)
    elif case == "survey confirm":
        extravars.update(alert="PhoneBanned", confirm=pipe)
    return extravars


@pytest.mark.parametrize("case,where", [
    ("label value", "alert_labels.instance carries '{{'"),
    ("label name", "alert_labels (a key) carries '{{'"),
    ("annotation", "ansible_eda.event.annotations.summary carries '{{'"),
    ("alert name", "alert carries '{{'"),
    ("alertname label", "alert_labels.alertname carries '{{'"),
    ("phone", "phone carries '{%'"),
    ("campaign", "campaign carries '{{'"),
    ("labels as JSON text", "alert_labels carries '{{'"),
    ("override header", "alert_labels.instance carries '#jinja2:'"),
    ("role variable", "alert_response_labels.instance carries '{{'"),
    ("survey confirm", "confirm carries '{{'"),
])
def test_template_markers_in_extra_vars_are_refused_and_run_nothing(platform, seeded, tmp_path, case, where):
    """alert_response.yml -e @file with a template marker in a label, annotation, the alert name, phone or campaign:
    one refusal, the command the template holds never runs (no marker file), Redis and PostgreSQL byte for byte
    as before."""
    marker = tmp_path / "pwned"
    before = platform_state(platform)
    run = _playbook_with_file(platform, tmp_path, _poison(case, marker))
    assert run.returncode != 0
    assert not marker.exists(), "the template in the alert ran a command"
    output = " ".join(run.stdout.split())  # the refusal is wrapped over lines
    assert "Refused: values that come with an alert are data, never templates, and " + where in output, output[-3000:]
    assert "Nothing was run." in output
    assert output.count("FAILED!") == 1
    assert "Refuse an alert whose values are not plain data" in output
    for later in ("Validating arguments", "Refuse an unknown alert", "Say what the alert means", "Run the procedure"):
        assert later not in output
    assert "lookup('ansible.builtin.pipe'" not in output.split("Refused:", 1)[1]  # the value is not echoed
    assert platform_state(platform) == before


@pytest.mark.parametrize("extravars,message", [
    ({"alert": "PhoneBanned", "phone": "phone_03\n"}, None),  # trimmed like any survey answer: accepted
    ({"alert": "PhoneOffline", "phone": "+40712345678"}, "the phone label must be a phone id of the form phone_NN"),
    ({"alert": "PhoneOffline", "alert_labels": {"phone": "phone_3; id"}}, "the phone label must be a phone id"),
    ({"alert": "BounceHigh", "campaign": "c-1"}, "the campaign label must be an Instantly campaign id"),
    ({"alert": "BounceHigh", "alert_labels": "{not json"}, "alert_labels is neither a mapping nor its JSON text"),
    ({"alert": "PhoneOffline", "alert_labels": {"phone": ["phone_03"]}}, "alert_labels.phone must be a string"),
])
def test_phone_and_campaign_must_match_the_contract(platform, seeded, extravars, message):
    before = _state(platform)
    run = platform.play("alert_response.yml", extravars=extravars, check=True)
    if message is None:
        assert run.rc == 0, run.stdout[-3000:]
        assert run.result("Hand the alert's labels")["results"][0]["ansible_facts"] == {"phone_banned_phone": PHONE}
    else:
        assert run.rc != 0
        refusal = [r["msg"] for r in run.results("Refuse an") if r["_event"] == "runner_on_failed"]
        assert refusal == ["Refused: {0}. Nothing was run.".format(message)] or (
            len(refusal) == 1 and refusal[0].startswith("Refused: " + message)), refusal
        assert not run.results("Run the procedure of the alert")
    assert_unchanged(before, _state(platform))


def test_only_validated_labels_reach_the_procedure(platform, seeded):
    """Labels no procedure uses are checked and dropped; what the role works with is the validated copy."""
    run = platform.play("alert_response.yml", check=True, extravars={
        "alert": "BounceHigh", "alert_labels": {"alertname": "BounceHigh", "campaign": CAMPAIGN,
                                                "instance": "mx-1", "job": "instantly"}})
    checked = run.result("Refuse an alert whose values are not plain data")
    assert checked["labels"] == {"campaign": CAMPAIGN} and checked["alert"] == "BounceHigh"
    assert run.result("Say what the alert means")["msg"].endswith("with campaign={0}.".format(CAMPAIGN))


@pytest.mark.parametrize("args", [("--skip-tags", "always"), ("--skip-tags", "always", "--tags", "dispatch"),
                                  ("--tags", "dispatch"), ("--skip-tags", "always", "--tags", "matrix"),
                                  ("--tags", "plan"), ("--skip-tags", "untagged")])
def test_no_tag_selection_lets_an_alert_template_run(platform, seeded, tmp_path, args):
    """Whatever tags are given or skipped (the check itself is tagged `always`), nothing renders the alert's values:
    either the check refuses them, or no task that reads them runs at all."""
    markers = [tmp_path / name for name in ("phone", "label", "role-variable")]
    before = platform_state(platform)
    run = _playbook_with_file(platform, tmp_path, {
        "alert": "PhoneBanned", "phone": PIPE.format(marker=markers[0]),
        "alert_labels": {"alertname": "PhoneBanned", "instance": PIPE.format(marker=markers[1])},
        "alert_response_labels": {"instance": PIPE.format(marker=markers[2])}}, args=args)
    assert [marker.name for marker in markers if marker.exists()] == [], run.stdout[-3000:]
    assert "Run the procedure" not in run.stdout and "included: cerniq.outreach.phone_banned" not in run.stdout
    assert platform_state(platform) == before


# ---- the alert as the rulebook hands it over: a file of extra vars (-e @file) ------------------------------------

def test_bounce_high_from_an_alert_file_plans_the_pause_and_pauses_only_once_an_operator_confirms(
        platform, seeded, instantly, instantly_spec, tmp_path):
    ids = campaign_ids(instantly)
    vendor = {"cerniq_instantly_base_url": instantly.url, "cerniq_instantly_api_key": INSTANTLY_KEY,
              "cerniq_vendor_allow_http": True}
    alert = dict(vendor, alert="BounceHigh", alert_labels={"alertname": "BounceHigh", "campaign": ids["hot"],
                                                           "severity": "high", "instance": "mx-1"})
    before = _state(platform)
    asked = _playbook_with_file(platform, tmp_path, alert)
    assert asked.returncode != 0
    assert "with campaign={0}".format(ids["hot"]) in asked.stdout and "Nothing was changed" in asked.stdout, \
        asked.stdout[-3000:]
    assert changes(instantly) == []
    assert_unchanged(before, _state(platform))

    done = _playbook_with_file(platform, tmp_path, dict(alert, confirm=True, reason="ALERT-BounceHigh"))
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Alert bounce:high (HIGH, response time 30 min): ran runbook 4.1" in done.stdout
    # The alert's campaign is paused; the healthy one is not.
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy")] == [2, 1]
    assert [(row[1], row[4]) for row in platform.audit("pause_campaigns")] == [
        ("instantly_deliverability_guard", "ALERT-BounceHigh")]
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_quota_exhausted_from_an_alert_file_diagnoses_and_changes_nothing(platform, tmp_path):
    platform.seed(phones=6, leads=100, wa_messages_today=190, old_log_rows=0, reviews=0, jobs_per_phone=0,
                  dlq_entries=0, offline=("phone_04",), banned=(), drift_phone="", leak_phone="phone_02",
                  leak_extra=10, no_ttl_phone="phone_03")
    before = _state(platform)
    run = _playbook_with_file(platform, tmp_path, {
        "alert": "QuotaExhausted", "alert_labels": {"alertname": "QuotaExhausted", "severity": "warning",
                                                    "instance": "wa-worker-1"}})
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Alert quota:exhausted (MEDIUM, response time 1 hour): ran runbook 3.1" in run.stdout
    usage = [line.split() for line in run.stdout.splitlines() if "200/200" in line]
    assert usage and usage[0][-5:] == ["100.0%", "190", "EXHAUSTED", "LEAK", "+10"], run.stdout[-3000:]
    assert "re-run with -e quota_exhausted_resync=true" in run.stdout
    # A diagnosis: no counter set, no resync, not even an audit row.
    assert_unchanged(before, _state(platform))
