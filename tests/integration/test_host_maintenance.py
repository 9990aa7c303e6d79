"""The weekly window on the hosts (runbook 8.1 steps 4-5).

Step 4 against the platform's own shape: a hand-written policy already in /etc/logrotate.d/cerniq (kept byte for byte
unless a replace is asked), checked with `logrotate -d`, then run, with what rotated reported.
Step 5 against a real apt on a private root (APT_CONFIG): a file: archive with a bookworm and a bookworm-security
suite, a dpkg status of our own and APT::Get::Simulate, so `apt update` is real (local, no network) and an upgrade
never installs anything on this machine (the machine's dpkg status is compared before/after).
"""

import hashlib
import re
from datetime import date
from pathlib import Path

import pytest

from tests.support.playbooks import run_playbook

DPKG_STATUS = Path("/var/lib/dpkg/status")

# The platform's own policy: weekly, dated names, a postrotate hook - nothing like the collection's.
PLATFORM_POLICY = """# CERNIQ platform logs - hand-written, do not touch (ops 2025-03)
{logs}/*.log {{
    weekly
    rotate 8
    missingok
    compress
    dateext
    sharedscripts
    create 0640 root root
    postrotate
        touch {logs}/postrotate-ran
    endscript
}}
"""

PACKAGES = {"bookworm": [("cerniq-fake-tool", "1.0", "1.1")],
            "bookworm-security": [("cerniq-fake-libssl", "3.0.11", "3.0.15+deb12u1")]}


def _digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_apt_root(root):
    """A private apt: a file: archive (two suites), a dpkg status with the packages at their old versions, and an
    APT_CONFIG pointing every apt directory there, simulating every install."""
    root = Path(root)
    status = []
    sources = []
    for suite, packages in PACKAGES.items():
        binary = root / "repo" / "dists" / suite / "main" / "binary-amd64"
        binary.mkdir(parents=True)
        stanzas = []
        for name, old, new in packages:
            stanzas.append("Package: {0}\nVersion: {1}\nArchitecture: all\nMaintainer: t <t@example.invalid>\n"
                           "Installed-Size: 1\nFilename: pool/{0}_{1}_all.deb\nSize: 1\nSHA256: {2}\n"
                           "Description: test package\n".format(name, new, "0" * 64))
            status.append("Package: {0}\nStatus: install ok installed\nVersion: {1}\nArchitecture: all\n"
                          "Maintainer: t <t@example.invalid>\nDescription: test package\n".format(name, old))
        (binary / "Packages").write_text("\n".join(stanzas))
        (root / "repo" / "dists" / suite / "Release").write_text(
            "Origin: Debian\nSuite: {0}\nCodename: {0}\nArchitectures: amd64\nComponents: main\n".format(suite))
        sources.append("deb [trusted=yes] file:{0} {1} main\n".format(root / "repo", suite))
    for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d", "etc/apt.conf.d",
                "etc/preferences.d", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "status").write_text("\n".join(status))
    (root / "etc" / "sources.list").write_text("".join(sources))
    (root / "apt.conf").write_text("\n".join([
        'Dir::State "{0}/state";', 'Dir::State::status "{0}/status";', 'Dir::Cache "{0}/cache";',
        'Dir::Etc "{0}/etc";', 'Dir::Etc::SourceList "{0}/etc/sources.list";',
        'Dir::Etc::SourceParts "{0}/etc/sources.list.d";', 'Dir::Etc::Parts "{0}/etc/apt.conf.d";',
        'Dir::Etc::PreferencesParts "{0}/etc/preferences.d";', 'Dir::Log "{0}/log";',
        'APT::Sandbox::User "root";', 'APT::Get::Simulate "true";', 'APT::Architecture "amd64";', ""]).format(root))
    return {"APT_CONFIG": str(root / "apt.conf")}


@pytest.fixture()
def host(tmp_path):
    """The files of one host: its logrotate dir, its logs, logrotate's state, a private apt."""
    (tmp_path / "logrotate.d").mkdir()
    (tmp_path / "logs").mkdir()
    env = make_apt_root(tmp_path / "apt")
    return {"dir": tmp_path / "logrotate.d", "logs": tmp_path / "logs", "state": tmp_path / "logrotate.status",
            "env": env, "apt": tmp_path / "apt"}


def host_play(platform, host, check=False, diff=False, limit="workers", inventory=None, **extra):
    extravars = {"host_maintenance_logrotate_dir": str(host["dir"]),
                 "host_maintenance_log_paths": [str(host["logs"] / "*.log")],
                 "host_maintenance_logrotate_state": str(host["state"]),
                 "host_maintenance_apt_cache_valid_time": "0"}
    extravars.update(extra)
    return run_playbook("maintenance_weekly.yml", inventory or platform.inventory(), extravars=extravars, tags="hosts",
                        limit=limit, check=check, diff=diff, env=host["env"])


def platform_logs(host, last_rotated="2020-1-1-0:0:0"):
    """The platform's policy in place, two logs: app.log due (rotated long ago per the state file), worker.log not."""
    policy = host["dir"] / "cerniq"
    policy.write_text(PLATFORM_POLICY.format(logs=host["logs"]))
    policy.chmod(0o644)
    (host["logs"] / "app.log").write_text("app line\n")
    (host["logs"] / "worker.log").write_text("worker line\n")
    now = date.today()
    host["state"].write_text('logrotate state -- version 2\n"{0}" {1}\n"{2}" {3}-{4}-{5}-0:0:0\n'.format(
        host["logs"] / "app.log", last_rotated, host["logs"] / "worker.log", now.year, now.month, now.day))
    host["state"].chmod(0o600)
    return policy


def listing(path):
    return sorted(p.name for p in Path(path).iterdir())


def messages(run, task):
    return [str(r.get("msg")) for r in run.results(task)]


# --- step 4: logrotate -------------------------------------------------------------------------------------------

def test_installs_a_valid_policy_where_there_is_none(platform, host):
    run = host_play(platform, host)
    assert run.rc == 0, run.stdout[-3000:]
    policy = (host["dir"] / "cerniq").read_text()
    assert "{0}/*.log {{".format(host["logs"]) in policy and "rotate 14" in policy
    assert "Installed the collection's policy" in "".join(messages(run, "Say which policy"))
    assert "rotated 0 of 0 log(s)" in "".join(messages(run, "Show what rotated"))
    again = host_play(platform, host)
    assert again.changed_tasks == [], again.changed_tasks


def test_keeps_the_platforms_policy_byte_for_byte_and_runs_it(platform, host):
    policy = platform_logs(host)
    before = policy.read_bytes()

    preview = host_play(platform, host, check=True, diff=True)
    assert preview.rc == 0, preview.stdout[-3000:]
    assert policy.read_bytes() == before
    assert listing(host["logs"]) == ["app.log", "worker.log"]
    assert "would rotate 1 of 2 log(s): ['{0}']".format(host["logs"] / "app.log") in \
        "".join(messages(preview, "Show what rotated"))
    # --diff shows how the platform's policy differs from the collection's, and nothing is written.
    assert "-    weekly" in preview.stdout and "+    daily" in preview.stdout, preview.stdout[-3000:]

    run = host_play(platform, host)
    assert run.rc == 0, run.stdout[-3000:]
    assert policy.read_bytes() == before
    assert "Kept the platform's policy" in "".join(messages(run, "Say which policy"))
    assert "it differs from the collection's" in "".join(messages(run, "Say which policy"))
    assert "rotated 1 of 2 log(s): ['{0}']".format(host["logs"] / "app.log") in \
        "".join(messages(run, "Show what rotated"))
    rotated = [n for n in listing(host["logs"]) if n.startswith("app.log-")]
    assert rotated == ["app.log-{0:%Y%m%d}.gz".format(date.today())], listing(host["logs"])
    # The platform's options were the ones applied: dateext, compress, create 0640, its postrotate hook.
    assert (host["logs"] / "app.log").read_text() == "" and oct((host["logs"] / "app.log").stat().st_mode)[-3:] == "640"
    assert (host["logs"] / "postrotate-ran").exists()
    assert (host["logs"] / "worker.log").read_text() == "worker line\n"
    assert [t.split(" (")[0] for t in run.changed_tasks] == ["Rotate the logs"], run.changed_tasks

    again = host_play(platform, host)
    assert again.rc == 0 and again.changed_tasks == [], again.changed_tasks
    assert "rotated 0 of 2" in "".join(messages(again, "Show what rotated"))


def test_replace_is_asked_for_and_shows_the_diff(platform, host):
    policy = platform_logs(host)
    run = host_play(platform, host, diff=True, host_maintenance_logrotate_replace="true",
                    host_maintenance_logrotate_run="false")
    assert run.rc == 0, run.stdout[-3000:]
    text = policy.read_text()
    assert "daily" in text and "rotate 14" in text and "postrotate" not in text
    assert "-    weekly" in run.stdout and "+    daily" in run.stdout
    assert "Replaced the policy" in "".join(messages(run, "Say which policy"))
    assert listing(host["logs"]) == ["app.log", "worker.log"]


def test_an_invalid_policy_stops_before_any_rotation(platform, host):
    policy = platform_logs(host)
    policy.write_text(policy.read_text().replace("rotate 8", "rotate 8\n    rotatee 3"))
    before = policy.read_bytes()
    state = host["state"].read_bytes()
    run = host_play(platform, host)
    assert run.rc != 0
    failed = [r for r in run.results("Check the policy in force") if r["_event"] == "runner_on_failed"]
    assert failed and "unknown option 'rotatee'" in failed[0]["stderr"], run.stdout[-3000:]
    assert policy.read_bytes() == before and host["state"].read_bytes() == state
    assert listing(host["logs"]) == ["app.log", "worker.log"]


def test_check_mode_writes_nothing(platform, host):
    run = host_play(platform, host, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert listing(host["dir"]) == [] and not host["state"].exists()
    platform_logs(host)
    state = host["state"].read_bytes()
    run = host_play(platform, host, check=True, host_maintenance_logrotate_force="true")
    assert run.rc == 0, run.stdout[-3000:]
    assert "would rotate 2 of 2" in "".join(messages(run, "Show what rotated"))
    assert host["state"].read_bytes() == state and listing(host["logs"]) == ["app.log", "worker.log"]


# --- step 5: packages --------------------------------------------------------------------------------------------

def test_refreshes_the_cache_and_reports_security_updates_apart(platform, host):
    dpkg = _digest(DPKG_STATUS)
    assert not list((host["apt"] / "state" / "lists").glob("*_Packages"))
    run = host_play(platform, host)
    assert run.rc == 0, run.stdout[-3000:]
    # The refresh ran `apt update` on the configured archive before the listing (its indexes are there now).
    lists = sorted(p.name for p in (host["apt"] / "state" / "lists").glob("*_Packages"))
    assert len(lists) == 2 and any("bookworm-security" in n for n in lists), lists
    shown = messages(run, "Show the package upgrades available")[0]
    assert "1 security update(s): ['cerniq-fake-libssl']" in shown
    assert "1 other update(s): ['cerniq-fake-tool']" in shown
    assert "decision host_maintenance_upgrade=never: not upgraded (report only" in shown
    assert all(r["_event"] == "runner_on_skipped" for r in run.results("Upgrade the packages"))
    assert _digest(DPKG_STATUS) == dpkg


def test_a_cache_younger_than_the_validity_time_is_not_refreshed(platform, host):
    # ansible's apt judges the age by /var/lib/apt/lists (or apt's success stamp), always younger than 30 years.
    run = host_play(platform, host, host_maintenance_apt_cache_valid_time=str(10 ** 9))
    assert run.rc == 0, run.stdout[-3000:]
    assert not list((host["apt"] / "state" / "lists").glob("*_Packages"))
    assert "0 package(s) can be upgraded" in messages(run, "Show the package upgrades available")[0]


@pytest.mark.parametrize("decision,expected", [("security", {"cerniq-fake-libssl"}),
                                               ("all", {"cerniq-fake-libssl", "cerniq-fake-tool"})])
def test_upgrades_what_the_decision_says_with_confirm(platform, host, decision, expected):
    dpkg = _digest(DPKG_STATUS)
    run = host_play(platform, host, host_maintenance_upgrade=decision, confirm="true")
    assert run.rc == 0, run.stdout[-3000:]
    done = [r for r in run.results("Upgrade the packages") if r["_event"] == "runner_on_ok"]
    assert len(done) == 1, run.stdout[-3000:]
    # apt's own plan (APT::Get::Simulate: apt-get ran, nothing was installed).
    installed = set(re.findall(r"^Inst (\S+)", done[0]["stdout"], re.M))
    assert installed == expected, done[0]["stdout"]
    assert _digest(DPKG_STATUS) == dpkg
    assert "cerniq-fake-tool" in (host["apt"] / "status").read_text()


@pytest.mark.parametrize("extra", [{"host_maintenance_upgrade_packages": "true", "confirm": "false"},
                                   {"host_maintenance_upgrade": "security", "confirm": "no"},
                                   {"host_maintenance_upgrade": "all"}])
def test_upgrades_need_confirm(platform, host, extra):
    run = host_play(platform, host, **extra)
    assert run.rc != 0
    assert "re-run with -e confirm=true" in run.stdout, run.stdout[-2500:]
    assert not [r for r in run.results("Upgrade the packages") if r["_event"] == "runner_on_ok"]


def test_a_bad_decision_is_refused(platform, host):
    run = host_play(platform, host, host_maintenance_upgrade="critical", confirm="true")
    assert run.rc != 0 and "critical" in run.stdout and "never, security, all" in run.stdout, run.stdout[-2000:]
    assert listing(host["dir"]) == []


def test_hosts_one_at_a_time_and_a_failing_host_stops_the_rest(platform, host):
    inventory = platform.inventory()
    # Not the db host: the first play (runbook steps 1-3) would ask for its own confirmation.
    order = ["redis-test", "workers-test"]
    run = host_play(platform, host, limit="redis,workers", inventory=inventory)
    assert run.rc == 0, run.stdout[-3000:]
    per_task = [(e["event_data"]["host"], e["event_data"]["task"]) for e in run.events
                if e.get("event") == "runner_on_ok" and e["event_data"].get("task", "").startswith("Refresh")]
    assert [host for host, _result in per_task] == order
    # Every host's tasks end before the next host's begin (serial: 1).
    hosts_seq = [e["event_data"]["host"] for e in run.events
                 if e.get("event") in ("runner_on_ok", "runner_on_skipped") and e["event_data"].get("host") in order]
    firsts = [hosts_seq.index(h) for h in order]
    lasts = [len(hosts_seq) - 1 - hosts_seq[::-1].index(h) for h in order]
    assert lasts[0] < firsts[1], hosts_seq

    # The first host's upgrade fails (its decision asks for confirm it lacks): the others are never reached.
    inventory["all"]["children"]["redis"]["hosts"]["redis-test"] = {"host_maintenance_upgrade": "all"}
    run = host_play(platform, host, limit="redis,workers", inventory=inventory)
    assert run.rc != 0
    # It failed where it should and nowhere earlier: redis-test got as far as its package decision, and the one
    # failure is the confirmation that decision asks for.
    failed = [e["event_data"] for e in run.events if e.get("event") == "runner_on_failed"]
    assert [(f["host"], f["task"]) for f in failed] == [("redis-test", "Stop unless confirm=true (or --check)")], failed
    assert "re-run with -e confirm=true" in run.stdout, run.stdout[-3000:]
    decision = [r for r in run.results("Show the package upgrades available and the decision")
                if r["_event"] == "runner_on_ok"]
    assert len(decision) == 1 and "(not upgraded: needs confirm=true)" in str(decision[0]["msg"]), decision
    reached = {e["event_data"]["host"] for e in run.events if e.get("event", "").startswith("runner_on_")
               and "host_maintenance" in str(e["event_data"].get("role", ""))}
    assert reached == {"redis-test"}, reached
