"""Issue 11, secrets and personal data: transport defaults, worker credentials, report/backup file modes, the
TimelinesAI webhook URL, the backup root. Each test tries the leak or the unsafe setting and shows it did not happen.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _backup
from ansible_collections.cerniq.outreach.plugins.module_utils import _timelinesai as tl_mod
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support import services
from tests.support.playbooks import run_playbook
from tests.support.split_platform import SplitPlatform
from tests.support.vendors import TIMELINES_TOKEN, seed_phones

PLAYBOOKS = Path(__file__).parent / "playbooks"

TRANSPORT_PLAY = """
- name: What the platform role hands to the modules
  hosts: db
  gather_facts: false
  module_defaults:
    group/cerniq.outreach.redis: "{{ cerniq_redis_defaults }}"
    group/cerniq.outreach.postgres: "{{ cerniq_postgres_defaults }}"
    group/cerniq.outreach.platform: "{{ cerniq_platform_defaults }}"
    group/cerniq.outreach.audit: "{{ cerniq_audit_defaults }}"
  roles:
    - role: cerniq.outreach.platform
  tasks:
    - name: Transport settings
      ansible.builtin.debug:
        msg:
          redis_tls: "{{ cerniq_redis_defaults.redis_tls }}"
          db_sslmode: "{{ cerniq_postgres_defaults.db_sslmode }}"
          redis_tls_ca_cert: "{{ cerniq_redis_defaults.redis_tls_ca_cert | default('unset') }}"
          db_ssl_rootcert: "{{ cerniq_postgres_defaults.db_ssl_rootcert | default('unset') }}"

    - name: Read the platform
      cerniq.outreach.bullmq_queue_info:
        queues: [q:wa:phone_01]
        redis_timeout: 2
"""


def _transport_play(tmp_path, inventory):
    playbook = tmp_path / "transport.yml"
    playbook.write_text(TRANSPORT_PLAY)
    return run_playbook(playbook, inventory)


def test_role_defaults_are_tls_and_verify_full_and_a_plaintext_redis_fails_with_one_message(platform, tmp_path):
    inventory = platform.inventory()
    variables = inventory["all"]["vars"]
    # A production inventory that forgets the transport settings: the test lab's explicit opt-outs removed.
    del variables["cerniq_redis_tls"], variables["cerniq_db_sslmode"]
    run = _transport_play(tmp_path, inventory)
    shown = run.result("Transport settings")["msg"]
    assert shown["redis_tls"] in (True, "True") and shown["db_sslmode"] == "verify-full", shown
    # No CA file given: the option is omitted (the system's CA store, libpq's ~/.postgresql/root.crt).
    assert "redis_tls_ca_cert" not in shown and "db_ssl_rootcert" not in shown
    failed = run.result("Read the platform")
    assert run.rc != 0 and failed["_event"] == "runner_on_failed"
    message = failed["msg"]
    assert "did not complete a TLS handshake within 2s" in message and "cerniq_redis_tls" in message, message
    # Failing fast is in the message: the 2 s handshake timeout ended the attempt, not a hang on the handshake.
    assert "Traceback" not in message and platform.redis.password not in run.stdout


def test_ca_file_variables_reach_the_modules_and_the_lab_opts_out_explicitly(platform, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not read: the opt-out below skips TLS\n")
    inventory = platform.inventory(cerniq_redis_tls_ca_cert=str(ca_file), cerniq_db_ssl_rootcert=str(ca_file))
    run = _transport_play(tmp_path, inventory)
    assert run.rc == 0, run.stdout[-3000:]
    shown = run.result("Transport settings")["msg"]
    assert shown["redis_tls"] in (False, "False") and shown["db_sslmode"] == "disable"
    assert shown["redis_tls_ca_cert"] == str(ca_file) and shown["db_ssl_rootcert"] == str(ca_file)


# --- worker credentials -------------------------------------------------------------------------------------------

class CmdlineWatch:
    """Reads every process's /proc/<pid>/cmdline every 20 ms (bounded: at most `limit` seconds) for a secret."""

    def __init__(self, secret, limit=180):
        self.secret = secret.encode()
        self.limit = limit
        self.hits = {}
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < deadline:
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open("/proc/{0}/cmdline".format(entry), "rb") as handle:
                        argv = handle.read()
                except OSError:
                    continue
                if self.secret in argv:
                    self.hits[int(entry)] = argv.replace(b"\0", b" ").decode(errors="replace")
            self.scans += 1
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


@pytest.fixture(scope="module")
def secret_workers(pg_server):
    """A Redis whose password exists nowhere else on the machine, and the Node worker the workers role manages."""
    redis_server = services.RedisServer(host="127.0.0.11", password="worker-pw-" + secrets.token_hex(12)).start()
    work_dir = tempfile.mkdtemp(prefix="cerniq-secrets-")
    platform = SplitPlatform(redis_server, pg_server, work_dir)
    yield platform
    platform.stop_worker()
    redis_server.kill()
    shutil.rmtree(redis_server.data_dir, ignore_errors=True)
    shutil.rmtree(work_dir, ignore_errors=True)


def test_worker_password_is_in_no_process_command_line(secret_workers):
    platform = secret_workers
    password = platform.redis.password
    inventory = platform.inventory()
    with CmdlineWatch(password) as watch:
        run = platform.play("workers.yml", {"workers_action": "start"}, inventory=inventory)
        assert run.rc == 0, run.stdout[-3000:]
        pid = platform.worker_pid()
        assert pid, "no live worker after the start"
        time.sleep(0.5)  # the worker's whole start-up under watch
        stopped = platform.play("workers.yml", {"workers_action": "stop"}, inventory=inventory, verbosity=3)
    assert stopped.rc == 0, stopped.stdout[-3000:]
    assert watch.scans > 10, "the watch did not run"
    assert watch.hits == {}, "a command line carried the password: {0}".format(watch.hits)
    # It authenticated all the same: the worker connected, with the password from its environment.
    assert run.result("Count the connections")["ansible_facts"]["workers_connections_after"] == 1
    assert password not in run.stdout and password not in stopped.stdout
    # The environment file: the worker's secret in shell syntax, readable by its owner only.
    mode = stat.S_IMODE(platform.env_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    assert platform.env_file.stat().st_uid == os.getuid()
    assert "CERNIQ_REDIS_PASSWORD={0}\n".format(password) in platform.env_file.read_text()


def test_worker_environment_reaches_the_worker_and_a_secret_in_the_start_command_is_refused(secret_workers):
    platform = secret_workers
    password = platform.redis.password
    marker = platform.work_dir / "expanded"
    odd = "it's $HOME `touch {0}` $(touch {0})".format(marker)  # data: never expanded by the env file's shell
    environment = dict(platform.worker_environment(), CERNIQ_NOTE=odd)
    run = platform.play("workers.yml", {"workers_action": "start"},
                        inventory=platform.inventory(cerniq_workers_environment=environment))
    assert run.rc == 0, run.stdout[-3000:]
    pid = platform.worker_pid()
    environ = Path("/proc/{0}/environ".format(pid)).read_bytes().split(b"\0")
    assert "CERNIQ_REDIS_PASSWORD={0}".format(password).encode() in environ
    assert "CERNIQ_NOTE={0}".format(odd).encode() in environ and not marker.exists()
    assert password.encode() not in Path("/proc/{0}/cmdline".format(pid)).read_bytes()

    # A stop command carrying the password is refused the same way: the worker keeps running, nothing ran.
    leaky_stop = platform.inventory(cerniq_workers_process_stop="redis-cli -a {0} shutdown nosave; kill -TERM "
                                    "$(cat {1})".format(password, platform.pid_file))
    with CmdlineWatch(password) as watch:
        refused = platform.play("workers.yml", {"workers_action": "stop"}, inventory=leaky_stop, verbosity=3)
    assert refused.rc != 0
    message = refused.result("Check that no secret is on a command line")["msg"]
    assert "contains a secret" in message and "Nothing was changed" in message, message
    assert password not in refused.stdout and watch.hits == {}
    assert platform.worker_pid() == pid and platform.redis.client(0).ping()
    platform.stop_worker()
    platform.pid_file.unlink()

    # The old way - the password as an argument - is refused before anything starts, without printing it.
    leaky = platform.inventory(
        cerniq_workers_process_start=platform.worker_command() + " --password " + password)
    with CmdlineWatch(password) as watch:
        refused = platform.play("workers.yml", {"workers_action": "start"}, inventory=leaky, verbosity=3)
    assert refused.rc != 0
    message = refused.result("Check that no secret is on a command line")["msg"]
    assert "contains a secret" in message and "/proc/<pid>/cmdline" in message and "Nothing was changed" in message
    assert password not in refused.stdout
    assert watch.hits == {} and platform.worker_pid() is None and not platform.pid_file.exists()


# --- reports: modes and retention -----------------------------------------------------------------------------------

def _aged(path, days, text="{}\n"):
    path.write_text(text)
    path.chmod(0o644)
    then = time.time() - days * 86400
    os.utime(path, (then, then))
    return path


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def _owner(path):
    info = path.stat()
    return info.st_uid, info.st_gid


# An existing system user and group other than the one running the tests (root), and their ids.
NOBODY_USER, NOBODY_GROUP = "nobody", "nogroup"
NOBODY = 65534


def test_morning_report_is_0640_in_a_0750_directory_and_old_reports_expire(platform, timelines, tmp_path):
    platform.seed(phones=3, leads=50, old_log_rows=0, reviews=5, jobs_per_phone=1, dlq_entries=0, offline=(),
                  banned=(), drift_phone="", leak_phone="", no_ttl_phone="", stale_yesterday_keys=False)
    reports = tmp_path / "reports"
    reports.mkdir(mode=0o755)
    reports.chmod(0o755)
    expired = _aged(reports / "check_morning-2026-01-01.json", 31)
    kept = _aged(reports / "check_morning-2026-02-01.json", 29)
    foreign = _aged(reports / "notes.txt", 400, "not a report\n")
    extravars = {"cerniq_timelinesai_base_url": timelines.base_url, "cerniq_timelinesai_api_token": TIMELINES_TOKEN,
                 "cerniq_vendor_allow_http": True, "cerniq_report_dir": str(reports), "cerniq_report_keep_days": 30,
                 "check_morning_fail_on_failed_checks": False,
                 "cerniq_report_owner": NOBODY_USER, "cerniq_report_group": NOBODY_GROUP}
    check = platform.play("check_morning.yml", extravars=extravars, check=True)
    assert check.rc == 0, check.stdout[-3000:]
    assert expired.exists() and _mode(reports) == 0o755, "check mode removed or changed a file"
    assert _owner(reports) == (os.getuid(), os.getgid()), "check mode changed the directory's owner"

    run = platform.play("check_morning.yml", extravars=extravars)
    assert run.rc == 0, run.stdout[-3000:]
    written = sorted(reports.glob("check_morning-*.json"))
    assert not expired.exists() and kept.exists() and foreign.exists()
    assert _mode(reports) == 0o750
    today = [path for path in written if path != kept]
    assert len(today) == 1 and _mode(today[0]) == 0o640, [(p.name, oct(_mode(p))) for p in written]
    assert json.loads(today[0].read_text())["checks"]
    # cerniq_report_owner / cerniq_report_group: the directory and the report written; the kept old report is not
    # this run's file and keeps its owner.
    assert _owner(reports) == _owner(today[0]) == (NOBODY, NOBODY), (_owner(reports), _owner(today[0]))
    assert _owner(kept) == (os.getuid(), os.getgid())


def test_evening_reports_are_owned_as_configured(platform, tmp_path):
    """cerniq_report_owner / cerniq_report_group (issue 11): a report directory the run makes, two levels of it,
    and both reports get that owner and group, with modes 0750 and 0640."""
    made = tmp_path / "shared" / "reports"
    run = platform.play("check_evening.yml", extravars={
        "cerniq_report_dir": str(made), "check_evening_backup": False, "check_evening_expect_contacts": False,
        "check_evening_fail_on_failed_checks": False, "cerniq_report_owner": NOBODY_USER,
        "cerniq_report_group": NOBODY_GROUP})
    fresh = sorted(made.iterdir())
    assert sorted(path.suffix for path in fresh) == [".html", ".json"], run.stdout[-3000:]
    for directory in (made.parent, made):
        assert (_owner(directory), _mode(directory)) == ((NOBODY, NOBODY), 0o750), directory
    for path in fresh:
        assert (_owner(path), _mode(path)) == ((NOBODY, NOBODY), 0o640), path
    assert _owner(tmp_path) == (os.getuid(), os.getgid())  # the directory above the ones made is left alone


def test_evening_reports_are_0640_and_expire(platform, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    expired = [_aged(reports / "check_evening-2026-01-01.json", 45),
               _aged(reports / "daily_report-2026-01-01.html", 45)]
    kept = _aged(reports / "daily_report-2026-02-01.html", 3)
    run = platform.play("check_evening.yml", extravars={
        "cerniq_report_dir": str(reports), "check_evening_backup": False, "check_evening_expect_contacts": False,
        "check_evening_fail_on_failed_checks": False})
    written = sorted(path.name for path in reports.iterdir())
    assert all(not path.exists() for path in expired) and kept.exists(), written
    assert _mode(reports) == 0o750
    fresh = [path for path in reports.iterdir() if path != kept]
    assert sorted(path.suffix for path in fresh) == [".html", ".json"], (written, run.stdout[-2000:])
    assert all(_mode(path) == 0o640 for path in fresh), [(p.name, oct(_mode(p))) for p in fresh]
    # No cerniq_report_owner / cerniq_report_group: the user running the play.
    assert {_owner(path) for path in fresh + [reports]} == {(os.getuid(), os.getgid())}


# --- backups: file modes, the root's trust, an unpredictable staging name -------------------------------------------

def _tree(root):
    return sorted((str(path.relative_to(root)), _mode(path) if not path.is_symlink() else "link")
                  for path in root.rglob("*"))


def test_backup_files_are_0640_in_0750_directories(platform, tmp_path):
    root = tmp_path / "backups"
    taken = _backup.create_backup(platform.params, str(root), 7, False)
    directory = Path(taken["backup"]["path"])
    assert _mode(root) == 0o750 and _mode(directory) == 0o750
    files = sorted(directory.iterdir())
    assert [path.name for path in files] == sorted([taken["backup"]["manifest"]["dump"]["file"], "manifest.json"])
    assert all(_mode(path) == 0o640 for path in files), [(p.name, oct(_mode(p))) for p in files]
    assert not [path for path in root.iterdir() if path.name.startswith(".")], "a staging name was left behind"


def test_a_planted_staging_name_is_not_followed(platform, tmp_path):
    # The old name was .partial-<id> (the second's timestamp): predictable, so it could be planted in advance.
    root = tmp_path / "backups"
    root.mkdir(mode=0o750)
    victim = tmp_path / "victim"
    victim.mkdir()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    backup_id = _backup.backup_id_at(now)
    (root / (".partial-" + backup_id)).symlink_to(victim)
    (root / ".latest.{0}".format(os.getpid())).symlink_to(victim)
    taken = _backup.create_backup(platform.params, str(root), 7, False, now=now)
    assert list(victim.iterdir()) == [], "the backup wrote through a planted name"
    assert taken["backup"]["id"] == backup_id and (root / backup_id / "manifest.json").is_file()
    assert os.readlink(root / "latest") == backup_id


@pytest.mark.parametrize("unsafe", ["group-writable", "world-writable", "foreign-owner"])
def test_an_untrusted_backup_root_is_refused_for_backup_listing_and_restore(platform, tmp_path, unsafe):
    root = tmp_path / "backups"
    _backup.create_backup(platform.params, str(root), 7, False)
    if unsafe == "group-writable":
        root.chmod(0o770)
    elif unsafe == "world-writable":
        root.chmod(0o757)
    else:
        os.chown(root, NOBODY, NOBODY)
    before = _tree(root)
    audit_before = platform.audit()
    for attempt in (lambda: _backup.create_backup(platform.params, str(root), 7, False),
                    lambda: _backup.backup_listing(platform.params, path=str(root)),
                    lambda: _backup.select_backup(str(root), "latest")):
        with pytest.raises(CerniqError) as refused:
            attempt()
        message = refused.value.msg
        assert "whoever can write there can plant a dump" in message and "Nothing was read or written" in message
        assert ("uid 65534" in message) == (unsafe == "foreign-owner"), message
    assert _tree(root) == before and platform.audit() == audit_before


def test_db_backup_module_refuses_a_world_writable_root(platform, tmp_path):
    root = tmp_path / "backups"
    root.mkdir()
    root.chmod(0o777)
    run = platform.play(PLAYBOOKS / "backup_root.yml", {"root": str(root)})
    failed = run.result("Take a backup")
    assert failed["_event"] == "runner_on_failed" and "mode 0777" in failed["msg"], failed
    assert list(root.iterdir()) == []


# --- the TimelinesAI webhook URL ------------------------------------------------------------------------------------

HOOK_SECRET = "rcv-path-" + secrets.token_hex(8)
HOOK_QUERY = "qs-" + secrets.token_hex(8)
HOOK_PASSWORD = "pw-" + secrets.token_hex(8)
SECRET_RECEIVER = "https://ops:{0}@alerts.cerniq.example:8443/hooks/{1}?token={2}".format(
    HOOK_PASSWORD, HOOK_SECRET, HOOK_QUERY)


@pytest.mark.parametrize(("url", "shown"), [
    (SECRET_RECEIVER, "https://alerts.cerniq.example:8443/…"),
    ("https://alerts.cerniq.example/", "https://alerts.cerniq.example/"),
    ("https://alerts.cerniq.example?k=v", "https://alerts.cerniq.example/…"),
    ("http://[::1]:9/x#frag", "http://[::1]:9/…"),
    ("not a url", "<url not shown>"),
    ("https://h:99999/x", "<url not shown>"),
])
def test_redact_url_keeps_only_scheme_host_and_port(url, shown):
    assert tl_mod.redact_url(url) == shown


def test_webhook_url_secret_is_in_no_result_audit_row_or_verbose_output(platform, timelines):
    seed_phones(platform)
    playbook = PLAYBOOKS / "vendors_timelinesai.yml"
    run = platform.play(playbook, verbosity=3, extravars=dict(
        cerniq_timelinesai_base_url=timelines.base_url, cerniq_timelinesai_api_token=TIMELINES_TOKEN,
        cerniq_vendor_allow_http=True, fake_root=timelines.url, receiver_url=SECRET_RECEIVER,
        recipient="+40712345678", wrong_token="wrong-token-" + secrets.token_hex(4), closed_port=services.free_port()))
    assert run.rc == 0, run.stdout[-3000:]
    # TimelinesAI got the real URL ...
    hooks = [w for w in timelines.snapshot()["webhooks"] if not w["deleted"]]
    assert [w["url"] for w in hooks] == [SECRET_RECEIVER]
    # ... while the output (-vvv), every task result and the audit rows show scheme://host:port/… only.
    created = next(r for r in run.results() if r["_task"] == "Register the disconnect webhook")
    assert created["webhook"]["url"] == "https://alerts.cerniq.example:8443/…"
    shown = run.stdout + json.dumps(list(run.results())) + json.dumps(platform.audit(), default=str)
    for secret in (HOOK_SECRET, HOOK_QUERY, HOOK_PASSWORD, SECRET_RECEIVER):
        assert secret not in shown, secret
    rows = platform.audit("webhook_create")
    assert rows and rows[0][6]["url"] == "https://alerts.cerniq.example:8443/…"


# --- tools/ansible-test-sanity: the user's ansible-test cache is left alone -----------------------------------------

def test_ansible_test_sanity_writes_its_get_pip_stand_in_under_a_private_home(tmp_path):
    user_home = tmp_path / "user"
    user_cache = user_home / ".ansible" / "test" / "cache"
    user_cache.mkdir(parents=True)
    theirs = {name: "# the user's own get-pip {0}\n".format(name) for name in ("get_pip_25_2.py", "get_pip_24_0.py")}
    for name, text in theirs.items():
        (user_cache / name).write_text(text)
    venv_bin = tmp_path / "venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").write_text("#!/bin/sh\nexec {0} \"$@\"\n".format(sys.executable))
    # A stand-in for ansible-test: reports the HOME and cache it was given instead of running the sanity tests.
    (venv_bin / "ansible-test").write_text(
        "#!/bin/sh\necho \"HOME=$HOME\"\nls \"$HOME/.ansible/test/cache\"\n")
    for tool in venv_bin.iterdir():
        tool.chmod(0o755)
    build = tmp_path / "build"
    env = dict(os.environ, HOME=str(user_home), SANITY_BUILD_DIR=str(build),
               VENV=os.path.relpath(venv_bin.parent, services.REPO_ROOT))
    env.pop("XDG_CONFIG_HOME", None)
    done = subprocess.run([str(services.REPO_ROOT / "tools" / "ansible-test-sanity")], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    private_home = build / "home"
    assert "HOME={0}\n".format(private_home) in done.stdout
    written = list((private_home / ".ansible" / "test" / "cache").glob("get_pip_*.py"))
    assert len(written) == 1 and "ensurepip" in written[0].read_text()
    # The user's cache: the same files, byte for byte, and nothing added.
    assert {path.name: path.read_text() for path in user_cache.iterdir()} == theirs
