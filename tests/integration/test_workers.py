"""workers.yml: a real Node BullMQ worker stopped and started by the process manager; compose/systemd commands."""

from __future__ import annotations

import time

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_depths

WORKER_QUEUE = "q:wa:phone_01"  # what tests.support.split_platform's worker consumes


def test_process_manager_stops_after_the_running_job_and_starts_idempotently(split_platform):
    # A job takes 3 s, so the stop arrives while it runs.
    inventory = split_platform.inventory(
        cerniq_workers_process_start=split_platform.worker_command() + " --work-ms 3000")
    run = split_platform.play("workers.yml", {"workers_action": "start"}, inventory=inventory)
    assert run.rc == 0, run.stdout[-3000:]
    assert run.result("Report this host")["ansible_facts"]["workers_host_report"]["changed"] is True
    assert split_platform.pid_file.exists()
    pid = split_platform.worker_pid()
    assert pid, "no live worker after the start"
    assert run.result("Count the connections")["ansible_facts"]["workers_connections_after"] == 1
    assert "worker --password" not in run.stdout and split_platform.redis.password not in run.stdout

    again = split_platform.play("workers.yml", {"workers_action": "start"}, inventory=inventory)
    assert again.rc == 0 and again.stats["changed"] == {}
    assert split_platform.worker_pid() == pid

    split_platform.add_jobs(["slow-1"])
    bullmq = split_platform.r(2)
    deadline = time.monotonic() + 10
    while queue_depths(bullmq, [WORKER_QUEUE])[WORKER_QUEUE]["active"] != 1:
        assert time.monotonic() < deadline, "the job never became active"
        time.sleep(0.05)
    stop = split_platform.play("workers.yml", {"workers_action": "stop"}, inventory=inventory)
    assert stop.rc == 0, stop.stdout[-3000:]
    assert split_platform.worker_pid() is None and not split_platform.pid_file.exists()
    # The running job finished before the process went: nothing left active, the job completed.
    assert "slow-1" in split_platform.completed_ids()
    depths = queue_depths(bullmq, [WORKER_QUEUE])[WORKER_QUEUE]
    assert depths["active"] == 0 and depths["completed"] == 1
    assert stop.result("Wait until no job is active in the workers' queues")["totals"]["active"] == 0
    assert any("Next: start them again" in line for line in stop.result("Summary")["msg"])

    stopped_again = split_platform.play("workers.yml", {"workers_action": "stop"}, inventory=inventory)
    assert stopped_again.rc == 0 and stopped_again.stats["changed"] == {}


def test_compose_and_systemd_show_their_commands_in_check_mode_and_refuse_without_engine(split_platform):
    # No Docker engine and no systemd here: their paths are proven up to the command they would run.
    inventory = split_platform.inventory()
    workers = inventory["all"]["children"]["workers"]["hosts"]
    workers.clear()
    workers["workers-compose"] = dict(ansible_host="127.0.0.13", cerniq_workers_manager="compose",
                                      cerniq_workers_compose_project_dir="/srv/cerniq/infra/docker",
                                      cerniq_workers_compose_files=["docker-compose.yml"])
    workers["workers-systemd"] = dict(ansible_host="127.0.0.14", cerniq_workers_manager="systemd",
                                      cerniq_workers_systemd_unit="cerniq-workers.service")
    run = split_platform.play("workers.yml", {"workers_action": "stop"}, inventory=inventory, check=True)
    assert run.rc == 0, run.stdout[-3000:]
    shown = {r["_task"]: r for r in run.results("Show the command")}
    messages = sorted(r["msg"] for r in run.results("Show the command"))
    assert shown and messages == [
        "workers-compose: would run: docker compose --project-directory /srv/cerniq/infra/docker "
        "--file=docker-compose.yml stop --timeout 120 workers",
        "workers-systemd: would run: systemctl stop cerniq-workers.service",
    ]
    assert not [r for r in run.results() if r["_event"] == "runner_on_failed"]

    real = split_platform.play("workers.yml", {"workers_action": "stop"}, inventory=inventory)
    assert real.rc != 0
    failures = {r["_task"]: r["msg"] for r in real.results() if r["_event"] == "runner_on_failed"}
    assert any("docker compose" in m and "Nothing was changed" in m for m in failures.values()), failures
    assert any("systemctl is-active cerniq-workers.service" in m for m in failures.values()), failures


def test_incomplete_settings_fail_before_anything(split_platform):
    split_platform.start_worker()
    pid = split_platform.worker_pid()
    inventory = split_platform.inventory(cerniq_workers_manager="compose")  # without its project directory
    run = split_platform.play("workers.yml", {"workers_action": "stop"}, inventory=inventory)
    assert run.rc != 0
    message = run.result("Check the workers settings")["msg"]
    assert "cerniq_workers_compose_project_dir" in message and "Nothing was changed" in message
    assert split_platform.worker_pid() == pid
