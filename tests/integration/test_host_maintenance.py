"""The weekly window on the hosts (runbook 8.1 steps 4-5): logrotate policy, package report, no unasked upgrade."""

import shutil
import subprocess

import pytest

from tests.support.playbooks import run_playbook


def host_play(platform, tmp_path, **extra):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    extravars = {"host_maintenance_logrotate_dir": str(tmp_path), "host_maintenance_log_paths": [str(logs / "*.log")]}
    extravars.update(extra)
    return run_playbook("maintenance_weekly.yml", platform.inventory(), extravars=extravars, tags="hosts",
                        limit="workers")


def test_installs_a_valid_logrotate_policy_and_only_reports_upgrades(platform, tmp_path):
    run = host_play(platform, tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    policy = (tmp_path / "cerniq").read_text()
    assert "{0}/logs/*.log {{".format(tmp_path) in policy and "rotate 14" in policy
    if shutil.which("logrotate"):
        check = subprocess.run(["logrotate", "-d", str(tmp_path / "cerniq")], capture_output=True, text=True,
                               check=False)
        assert "error" not in check.stderr.lower(), check.stderr
    assert "can be upgraded (not upgraded" in run.stdout
    assert not [task for task in run.changed_tasks if "Upgrade" in task]
    again = host_play(platform, tmp_path)
    assert again.changed_tasks == []


def test_check_mode_installs_nothing(platform, tmp_path):
    run = run_playbook("maintenance_weekly.yml", platform.inventory(), check=True, tags="hosts", limit="workers",
                       extravars={"host_maintenance_logrotate_dir": str(tmp_path)})
    assert run.rc == 0, run.stdout[-3000:]
    assert not (tmp_path / "cerniq").exists()


@pytest.mark.parametrize("confirm", ["false", "no"])
def test_upgrades_need_confirm(platform, tmp_path, confirm):
    run = host_play(platform, tmp_path, host_maintenance_upgrade_packages="true", confirm=confirm)
    assert run.rc != 0
    assert "re-run with -e confirm=true" in run.stdout, run.stdout[-2500:]
