"""The EDA rulebook (extensions/eda/rulebooks/cerniq_alerts.yml) under a real ansible-rulebook (PyPI; Java 17),
fed real Alertmanager webhook payloads through the collection's own event source.

- The rules: the rulebook's own conditions and throttles, with each action swapped for a `debug` line, so one
  ansible-rulebook run shows which alerts dispatch, which are throttled, which are ignored.
- End to end: the rulebook as shipped runs playbooks/alert_response.yml against the session's Redis and PostgreSQL.

Each test starts ansible-rulebook in its own process group and kills the group afterwards, whatever happened.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest
import requests
import yaml

from tests.support.playbooks import COLLECTIONS_PATH, VENV_BIN
from tests.support.services import REPO_ROOT, free_port
from tests.support.snapshots import platform_state

RULEBOOK = REPO_ROOT / "extensions" / "eda" / "rulebooks" / "cerniq_alerts.yml"
TOKEN = "9f86d081884c7d659a2feaa0c55ad015"
CAMPAIGN_1 = "019cad8f-ac00-7000-8000-019cad8fac01"
CAMPAIGN_2 = "019cad8f-ac00-7000-8000-019cad8fac02"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# ansible-rulebook logs a failed run's whole output a second time, as an ERROR line; that echo is not another run.
FAILED_RUN_ECHO = re.compile(
    r"^[^\n]* - ansible_rulebook\.action\.run_playbook - ERROR - \n.*?^PLAY RECAP[^\n]*\n[^\n]*\n", re.S | re.M)
ANSIBLE_RULEBOOK = shutil.which("ansible-rulebook", path=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(ANSIBLE_RULEBOOK is None, reason="ansible-rulebook is not installed (requirements-test.txt)"),
    pytest.mark.skipif(shutil.which("java") is None, reason="ansible-rulebook needs Java 17 (openjdk-17-jre-headless)"),
]


def alert(alertname, status="firing", **labels):
    fingerprint = hashlib.sha256(json.dumps([alertname, status, labels], sort_keys=True).encode()).hexdigest()[:16]
    return {"status": status, "labels": dict(labels, alertname=alertname),
            "annotations": {"summary": "{0} {1}".format(alertname, labels)},
            "startsAt": "2026-01-15T03:12:45.828Z",
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-15T03:40:00Z",
            "generatorURL": "http://prometheus.cerniq.internal:9090/graph?g0.expr=cerniq_alert",
            "fingerprint": fingerprint}


def webhook(*alerts):
    """An Alertmanager webhook_config body (version 4), as in Alertmanager's documentation."""
    return {"receiver": "cerniq-eda", "status": "firing", "alerts": list(alerts),
            "groupLabels": {}, "commonLabels": {"env": "test"}, "commonAnnotations": {},
            "externalURL": "http://alertmanager.cerniq.internal:9093", "version": "4",
            "groupKey": "{}:{env=\"test\"}", "truncatedAlerts": 0}


class Rulebook:
    """ansible-rulebook in its own process group, its output in a file."""

    def __init__(self, workdir, rulebook, inventory):
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / "ansible-rulebook.log"
        (workdir / "eda-vars.yml").write_text(yaml.safe_dump({"alertmanager_port": self.port}))
        self.cmd = [ANSIBLE_RULEBOOK, "--rulebook", str(rulebook), "--inventory", str(inventory),
                    "--vars", str(workdir / "eda-vars.yml")]
        self.env = dict(os.environ, CERNIQ_ALERTMANAGER_TOKEN=TOKEN, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
                        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                        ANSIBLE_DEPRECATION_WARNINGS="0", PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
        self.process = None

    def __enter__(self):
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.cmd, cwd=self.workdir, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("ansible-rulebook exited with {0}:\n{1}".format(
                    self.process.returncode, self.output[-3000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the event source did not listen within 90 s:\n" + self.output[-3000:])

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        # Playbook runs started by the rulebook share its process group; none may outlive the test.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def group_gone(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.process.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.1)
        return False

    @property
    def output(self):
        return FAILED_RUN_ECHO.sub("", ANSI.sub("", self.log_path.read_text(errors="replace")))

    def post(self, body, token=TOKEN):
        return requests.post("http://127.0.0.1:{0}/alerts".format(self.port), json=body,
                             headers={"Authorization": "Bearer " + token}, timeout=10)

    def wait_for(self, count_of, expected, timeout, settle=2.0):
        """Wait until `count_of(output)` reaches `expected`, then `settle` seconds more to see it does not grow."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and count_of(self.output) < expected:
            assert self.process.poll() is None, "ansible-rulebook exited:\n" + self.output[-3000:]
            time.sleep(0.25)
        time.sleep(settle)
        return self.output


def test_rules_dispatch_firing_alerts_once_per_phone_campaign_or_alert(tmp_path):
    """The shipped conditions and throttles, each action replaced by a debug line naming the rule and labels."""
    rulesets = yaml.safe_load(RULEBOOK.read_text())
    for rule in rulesets[0]["rules"]:
        if "run_playbook" in rule["action"]:
            rule["action"] = {"debug": {"msg": "DISPATCH {0}|{{{{ event.labels.alertname }}}}|{{{{ event.labels.phone "
                                               "| default('-') }}}}|{{{{ event.labels.campaign | default('-') }}}}"
                                               .format(rule["name"].split(",")[0])}}
    rulebook = tmp_path / "rules.yml"
    rulebook.write_text(yaml.safe_dump(rulesets, sort_keys=False))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    with Rulebook(tmp_path, rulebook, inventory) as eda:
        refused = eda.post(webhook(alert("PhoneOffline", phone="phone_01")), token="0" * len(TOKEN))
        assert refused.status_code == 401
        response = eda.post(webhook(
            alert("PhoneOffline", phone="phone_01"), alert("PhoneOffline", phone="phone_01", instance="b"),
            alert("PhoneOffline", phone="phone_02"), alert("phone:banned", phone="phone_01"),
            alert("SlaBreach"), alert("sla:breach", instance="b"), alert("SlaBreach", instance="c"),
            alert("BounceHigh", campaign=CAMPAIGN_1), alert("BounceHigh", campaign=CAMPAIGN_1, instance="b"),
            alert("BounceHigh", campaign=CAMPAIGN_2), alert("BounceHigh"),
            alert("PhoneOffline"), alert("PhoneOffline", instance="b"),
            alert("DlqOverflow", status="resolved"), alert("DiskFull", phone="phone_01"),
        ))
        assert response.json() == {"accepted": 15}
        output = eda.wait_for(lambda out: out.count("DISPATCH ") + out.count("no procedure was run"), 8, 60)
    dispatched = sorted(re.findall(r"DISPATCH (.+)", output))
    assert eda.group_gone(), "ansible-rulebook or one of its children outlived the test"
    assert dispatched == sorted([
        "Phone alert|PhoneOffline|phone_01|-", "Phone alert|PhoneOffline|phone_02|-",
        "Phone alert|phone:banned|phone_01|-",
        "Platform alert|SlaBreach|-|-", "Platform alert|sla:breach|-|-",  # two names, two throttle groups
        "Campaign alert|BounceHigh|-|" + CAMPAIGN_1, "Campaign alert|BounceHigh|-|" + CAMPAIGN_2,
        "Platform alert|BounceHigh|-|-",
    ]), output[-4000:]
    assert output.count("PhoneOffline arrived without a `phone` label; no procedure was run") == 1


@pytest.fixture()
def seeded(platform):
    platform.seed(phones=4, leads=60, old_log_rows=0, reviews=40, jobs_per_phone=3, dlq_entries=10,
                  offline=(), banned=(), drift_phone="", leak_phone="", no_ttl_phone="")
    return platform


def test_an_alertmanager_webhook_runs_the_alert_response_playbook(seeded, tmp_path):
    platform = seeded
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    (inventory_dir / "hosts.yml").write_text(yaml.safe_dump(platform.inventory()))
    pending = platform.sql("SELECT count(*) FROM human_review_queue WHERE status = 'PENDING'")[0][0]
    phones_before = platform.sql("SELECT id, status, status_changed_at FROM wa_phone_numbers ORDER BY id")

    started = time.monotonic()
    with Rulebook(tmp_path, "cerniq.outreach.cerniq_alerts", inventory_dir) as eda:
        listening = time.monotonic() - started
        response = eda.post(webhook(
            alert("SlaBreach"), alert("SlaBreach", instance="b"),              # one run (throttled)
            alert("PhoneBanned", phone="phone_03", severity="critical"),        # shows the plan, stops unconfirmed
            alert("DlqOverflow", status="resolved"),                            # resolved: no run
        ))
        assert response.json() == {"accepted": 4}
        output = eda.wait_for(lambda out: out.count("PLAY RECAP"), 2, 150, settle=3.0)
    elapsed = time.monotonic() - started
    assert eda.group_gone(), "ansible-rulebook or one of its playbook runs outlived the test"
    print("ansible-rulebook listening after {0:.1f} s; both runs done after {1:.1f} s".format(listening, elapsed))

    runs = output.split("PLAY [Alert response (runbook 7.1)]")[1:]
    assert len(runs) == 2, output[-5000:]
    sla = next(run for run in runs if "sla:breach: severity MEDIUM" in run)
    banned = next(run for run in runs if "phone:banned: severity CRITICAL" in run)
    assert "included: cerniq.outreach.review_sla" in sla
    assert "- {0} pending, ".format(pending) in sla, sla[-3000:]
    assert "Alert sla:breach (MEDIUM, response time 1 hour): ran runbook 5.1" in sla
    assert re.search(r"failed=0", sla.split("PLAY RECAP", 1)[1])
    # The alert did not confirm the ban: plan shown, play stopped, nothing changed.
    assert "included: cerniq.outreach.phone_banned" in banned
    assert "phone=phone_03" in banned and "Nothing was changed" in banned
    assert re.search(r"failed=1", banned.split("PLAY RECAP", 1)[1])
    assert platform.sql("SELECT id, status, status_changed_at FROM wa_phone_numbers ORDER BY id") == phones_before
    assert platform.audit() == []
    assert "DlqOverflow" not in output.split("PLAY [", 1)[-1]


def test_template_markers_never_reach_a_playbook(seeded, tmp_path):
    """Alerts carrying a template (in a label, its name, an annotation, the alert name), or a phone / campaign label
    off the contract, posted to the rulebook as shipped: each refused with 400 by the event source, no playbook run
    for any of them, the command in the template never runs, Redis and PostgreSQL unchanged. A clean alert sent
    afterwards runs (the refusals did not just break the pipeline)."""
    platform = seeded
    marker = tmp_path / "pwned"
    pipe = "{{{{ lookup('ansible.builtin.pipe', 'touch {0}') }}}}".format(marker)
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    (inventory_dir / "hosts.yml").write_text(yaml.safe_dump(platform.inventory()))
    before = platform_state(platform)
    poisoned = {
        "label value": (alert("SlaBreach", instance=pipe), "labels.instance carries '{{'"),
        "label name": (alert("DlqOverflow", **{pipe: "x"}), "labels (a key) carries '{{'"),
        "annotation": (dict(alert("DlqOverflow"), annotations={"summary": pipe}), "annotations.summary carries '{{'"),
        "alert name": (alert("PhoneOffline{% raw %}", phone="phone_01"), "labels.alertname carries '{%'"),
        "override header": (alert("SlaBreach", instance="#jinja2:variable_start_string:'[['\n[[ 7 ]]"),
                            "labels.instance carries '#jinja2:'"),
        "phone": (alert("PhoneBanned", phone="phone_01 && id"), "the phone label must be a phone id"),
        "campaign": (alert("BounceHigh", campaign="c-1"), "the campaign label must be an Instantly campaign id"),
    }
    with Rulebook(tmp_path, "cerniq.outreach.cerniq_alerts", inventory_dir) as eda:
        for case, (poison, reason) in poisoned.items():
            response = eda.post(webhook(poison))
            assert response.status_code == 400, (case, response.status_code, response.text)
            assert reason in response.text, (case, response.text)
        assert eda.post(webhook(alert("SlaBreach"))).json() == {"accepted": 1}
        output = eda.wait_for(lambda out: out.count("PLAY RECAP"), 1, 150, settle=3.0)
    assert eda.group_gone(), "ansible-rulebook or one of its playbook runs outlived the test"
    runs = output.split("PLAY [Alert response (runbook 7.1)]")[1:]
    assert len(runs) == 1 and "sla:breach: severity MEDIUM" in runs[0], output[-5000:]
    assert re.search(r"failed=0", runs[0].split("PLAY RECAP", 1)[1])
    assert not marker.exists()
    assert "lookup('ansible.builtin.pipe'" not in output
    assert platform_state(platform) == before


def test_the_shipped_rulebook_refuses_a_non_loopback_bind_without_tls(tmp_path):
    """alertmanager_host set to a routable address and no certificate: the source refuses to start (nothing
    listens), and ansible-rulebook stops with the reason."""
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {"ansible_connection": "local"}}}}))
    eda = Rulebook(tmp_path, "cerniq.outreach.cerniq_alerts", inventory)
    (tmp_path / "eda-vars.yml").write_text(yaml.safe_dump({"alertmanager_port": eda.port,
                                                           "alertmanager_host": "0.0.0.0"}))
    log = open(eda.log_path, "wb")
    eda.process = subprocess.Popen(eda.cmd, cwd=tmp_path, env=eda.env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "not a loopback address" not in eda.output:
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", eda.port), 0.2).close()
            if eda.process.poll() is not None:
                break
            time.sleep(0.25)
        assert "host '0.0.0.0' is not a loopback address; serving there needs TLS" in eda.output, eda.output[-3000:]
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", eda.port), 0.2).close()
    finally:
        eda.__exit__(None, None, None)
    assert eda.group_gone()
