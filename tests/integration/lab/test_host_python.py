"""cerniq.outreach.host_python on a bare lab host over SSH: --check says what it would install and creates nothing; a
wheelhouse the controller already has (cerniq_host_python_wheelhouse) reaches the host with no download.

The play is backup_database.yml's first play without the backup (host_python on the DB primary's host): the
matrix (tests/support/every_playbook.py) runs the backup itself.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from tests.support.every_playbook import standby_first_inventory
from tests.support.lab import SYSTEM_PYTHON
from tests.support.services import REPO_ROOT

pytestmark = pytest.mark.lab

VENV = "/opt/cerniq/venv"
REQUIREMENTS = REPO_ROOT / "requirements.txt"
GROUPS = ("redis", "postgres", "platform", "audit", "vendors")
PLAY = [{
    "name": "The collection's Python on the DB primary's host",
    "hosts": "db",
    "gather_facts": False,
    "module_defaults": {"group/cerniq.outreach.{0}".format(g): "{{{{ cerniq_{0}_defaults }}}}".format(
        "vendor" if g == "vendors" else g) for g in GROUPS},
    "roles": [{"role": "cerniq.outreach.host_python", "when": "inventory_hostname == cerniq_db_primary_host"}],
}]
# Any download the controller tried would go here and fail: nothing listens on port 9 (discard) of loopback.
NO_INDEX = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple/", "PIP_RETRIES": "0", "PIP_TIMEOUT": "2"}


def _bare(lab, host):
    lab.run(host, ["rm", "-rf", VENV, VENV + "-wheelhouse"])
    assert not lab.hosts[host].path(VENV).exists()


def _controller_wheelhouse(version):
    """A complete wheelhouse the role downloaded earlier on this controller for the hosts' Python and today's
    requirements (the matrix's backup case leaves one), or None."""
    wanted = hashlib.sha256(REQUIREMENTS.read_text().rstrip().encode()).hexdigest()
    root = Path.home() / ".cache" / "cerniq" / "wheelhouse"
    for found in sorted(root.glob("py{0}-x86_64-*".format(version))) if root.exists() else []:
        complete = found / "complete"
        if complete.exists() and complete.read_text().strip() == wanted:
            return found
    return None


def _host_python_version(lab, host):
    return lab.run(host, [SYSTEM_PYTHON, "-c", "import platform; print(platform.python_version())"]).stdout.strip()


def _wheelhouse_on_the_controller(lab, playbook, host, version):
    """_controller_wheelhouse(version), or, when the controller has none yet, the one the role downloads now (once)
    while provisioning `host`, which is left bare again."""
    built = _controller_wheelhouse(version)
    if built is None:
        _bare(lab, host)
        first = lab.play(str(playbook))
        assert first.rc == 0, first.stdout[-4000:]
        built = _controller_wheelhouse(version)
        _bare(lab, host)
    assert built is not None
    return built


def test_check_on_a_bare_host_says_what_it_would_install_then_a_prebuilt_wheelhouse_needs_no_download(
        lab_single, tmp_path):
    lab = lab_single
    started = time.monotonic()
    playbook = tmp_path / "host_python.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    primary = lab.db_host.name
    _bare(lab, primary)
    version = _host_python_version(lab, primary)

    # --check on the bare host: it says what it would install and where, and creates nothing on any host.
    before = lab.files(("/opt",))
    checked = lab.play(str(playbook), check=True)
    assert checked.rc == 0, checked.stdout[-4000:]
    said = checked.results("Say what would be installed")
    assert len(said) == 1, checked.stdout[-4000:]
    message = said[0]["msg"]
    assert message.startswith("{0}: would create {1} (Python {2}, x86_64) with ".format(primary, VENV, version))
    for package in ("redis", "psycopg2-binary", "bullmq", "requests"):
        assert package in message
    assert checked.result("Whether the collection's Python is usable")["ansible_facts"]["host_python_ready"] is False
    assert "does not exist yet" in checked.result("Say that this check run cannot preview")["msg"]
    assert lab.files(("/opt",)) == before
    print("check on a bare host: {0:.1f}s".format(time.monotonic() - started))

    # A wheelhouse the controller already has: the one the role downloaded before (or one it downloads now, once).
    built = _wheelhouse_on_the_controller(lab, playbook, primary, version)
    wheelhouse = tmp_path / "wheelhouse"
    shutil.copytree(built, wheelhouse)
    (wheelhouse / "complete").unlink()
    cache = tmp_path / "cache"
    # Where the role packs the archive it sends (TMPDIR): short, since ansible-playbook puts its RPC socket there too.
    controller_tmp = Path(tempfile.mkdtemp(prefix="cq-tmp-"))
    step = time.monotonic()
    try:
        run = lab.play(str(playbook), extravars={"cerniq_host_python_wheelhouse": str(wheelhouse),
                                                 "host_python_cache_dir": str(cache)},
                       env=dict(NO_INDEX, TMPDIR=str(controller_tmp)))
        left = list(controller_tmp.glob("*.cerniq-wheelhouse.tar"))
    finally:
        shutil.rmtree(controller_tmp)
    assert run.rc == 0, run.stdout[-4000:]
    # One archive carried the wheels and the requirements, and it is gone from the controller.
    assert run.result("Pack the wheelhouse")["_event"] == "runner_on_ok"
    assert left == []
    assert lab.hosts[primary].path(VENV + "-wheelhouse/requirements.txt").read_text() == REQUIREMENTS.read_text()
    assert {r["_event"] for r in run.results("Download the wheels")} == {"runner_on_skipped"}
    assert not cache.exists(), "the controller downloaded"
    assert run.result("Copy the wheelhouse")["changed"] is True
    lab.run(primary, [VENV + "/bin/python", "-c", "import redis, psycopg2, bullmq, requests"])
    assert lab.run(primary, [SYSTEM_PYTHON, "-c", "import redis"], check=False).returncode != 0
    assert sorted(p.name for p in lab.hosts[primary].path(VENV + "-wheelhouse").glob("*.whl")) == \
        sorted(p.name for p in wheelhouse.glob("*.whl"))
    assert [h.name for h in lab.hosts.values() if h.path("/opt/cerniq").exists()] == [primary]
    # Idempotent: the stamp matches, nothing is copied or built again.
    again = lab.play(str(playbook), extravars={"cerniq_host_python_wheelhouse": str(wheelhouse)}, env=NO_INDEX)
    assert again.rc == 0, again.stdout[-4000:]
    assert again.changed_tasks == [], again.changed_tasks
    print("pre-built wheelhouse, first and second run: {0:.1f}s".format(time.monotonic() - step))


def test_the_primary_listed_after_its_standby_gets_the_download_and_the_copy(lab_ha, tmp_path):
    """In HA the inventory may list the standby first. The controller's download and the archive it packs run for
    the primary itself (a run_once task would take the standby, whose `when` is false, and skip them for all): on a
    controller with no wheelhouse yet, the primary still gets its virtualenv. pip downloads from a directory of the
    wheels (PIP_NO_INDEX, PIP_FIND_LINKS), not from an index."""
    lab = lab_ha
    playbook = tmp_path / "host_python.yml"
    playbook.write_text(yaml.safe_dump(PLAY, sort_keys=False))
    primary = lab.db_host.name
    built = _wheelhouse_on_the_controller(lab, playbook, primary, _host_python_version(lab, primary))
    _bare(lab, primary)
    cache = tmp_path / "cache"
    inventory = standby_first_inventory(lab)
    assert next(iter(yaml.safe_load(inventory)["all"]["children"]["db"]["hosts"])) != primary
    run = lab.play(str(playbook), extravars={"host_python_cache_dir": str(cache)}, inventory=inventory,
                   env=dict(NO_INDEX, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(built)))
    assert run.rc == 0, run.stdout[-4000:]
    downloads = [r for r in run.results("Download the wheels") if r["_event"] == "runner_on_ok"]
    assert downloads and all(r["changed"] for r in downloads), run.stdout[-4000:]
    assert [p.name for p in cache.glob("*/complete")] == ["complete"]
    lab.run(primary, [VENV + "/bin/python", "-c", "import redis, psycopg2, bullmq, requests"])
    assert [h.name for h in lab.group("db") if h.path("/opt/cerniq").exists()] == [primary]
