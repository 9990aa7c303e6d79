"""dr_redis.yml (runbook 6.2) against real Redis, PostgreSQL and a Node BullMQ worker: nothing lost, nothing doubled."""

import shutil
import threading
import time

from ansible_collections.cerniq.outreach.plugins.module_utils import _contract as contract
from tests.support.nodeworker import NodeWorker
from tests.support.playbooks import inventory_for, run_playbook
from tests.support.proxy import TcpProxy, redis_commands, redis_script_calls
from tests.support.services import RedisServer
from tests.support.snapshots import assert_unchanged, platform_state

FOLLOWUP_DELAYED = "bull:{0}:delayed".format(contract.QUEUE_FOLLOWUP)
# Of the 40,000+ follow-ups, how many reach Redis before it is killed (five of the reschedule's 1,000-job chunks).
ADDED_BEFORE_THE_CRASH = 5000
SEED = dict(phones=6, leads=400, old_log_rows=0, reviews=0, jobs_per_phone=3, dlq_entries=5, offline=("phone_04",),
            banned=("phone_06",), drift_phone="phone_04", leak_phone="phone_02", no_ttl_phone="phone_03")


def lose_redis(platform):
    for db in (0, 2):
        platform.r(db).flushdb()


def pending_followups(platform):
    return platform.sql("SELECT count(*) FROM gold_lead_journey WHERE next_action_at > now() "
                        "AND NOT sequence_paused")[0][0]


def test_without_confirm_it_shows_the_plan_and_changes_nothing(platform):
    platform.seed(**SEED)
    lose_redis(platform)
    before = platform_state(platform)
    run = platform.play("dr_redis.yml")
    assert run.rc != 0
    assert "re-run with -e confirm=true" in run.stdout
    assert "each of the {0} pending follow-ups has its delayed job".format(pending_followups(platform)) in run.stdout
    # Only looking: the exact split (Redis was emptied, so every counter and status key differs).
    assert "set 6 of 6 quota counters" in run.stdout and "write 6 of 6 phone status keys" in run.stdout
    assert platform_state(platform) == before


def test_check_mode_changes_nothing(platform):
    platform.seed(**SEED)
    lose_redis(platform)
    before = platform_state(platform)
    run = platform.play("dr_redis.yml", check=True, diff=True)
    assert run.rc == 0, run.stdout[-3000:]
    assert platform_state(platform) == before
    # The reschedule ran (in the background, in check mode) and said what it would add.
    assert "Follow-ups: {0} added".format(pending_followups(platform)) in run.stdout


def test_recovery_regenerates_everything_and_a_second_run_changes_nothing(platform):
    facts = platform.seed(**SEED)
    lose_redis(platform)
    run = platform.play("dr_redis.yml", extravars={"confirm": "true"})
    assert run.rc == 0, run.stdout[-3000:]
    # Confirmed: the plan is read from the database alone (no check-mode runs before the change).
    assert "recount the quota counters of 6 phones" in run.stdout
    assert_recovered(platform, facts)

    before = platform_state(platform)
    again = platform.play("dr_redis.yml", extravars={"confirm": "true"})
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed_tasks == []
    # Byte for byte: no key rewritten (not even to the same value), no expiry moved, no audit row added.
    assert_unchanged(before, platform_state(platform))


def assert_recovered(platform, facts):
    """Redis holds what the database says: counters (with their end-of-day expiry), status keys, one delayed job
    per pending follow-up, the quota-reset scheduler, and the audit rows of the steps that wrote."""
    redis0, redis2 = platform.r(0), platform.r(2)
    today = facts["today"]
    for phone_id, count in facts["wa_counts"].items():
        key = contract.quota_key(phone_id, today)
        assert int(redis0.get(key)) == count
        assert redis0.expiretime(key) == contract.quota_key_expire_at(today, "Europe/Bucharest")
    assert redis0.get(contract.phone_status_key("phone_04")) == "OFFLINE"
    assert redis0.get(contract.phone_status_key("phone_06")) == "BANNED"
    assert redis2.zcard(FOLLOWUP_DELAYED) == pending_followups(platform)
    assert redis2.zcard("bull:{0}:repeat".format(contract.QUEUE_QUOTA_RESET)) == 1
    actions = {row[2] for row in platform.audit()}
    assert {"followup_reschedule", "phone_status_sync"} <= actions


def test_the_play_reaches_services_through_inventory_variables_only(platform):
    """The redis and db hosts are names that resolve nowhere: only cerniq_* variables lead to the servers."""
    facts = platform.seed(**SEED)
    lose_redis(platform)
    inventory = inventory_for(platform.redis, platform.pg, hosts={"redis": ("redis-dr.invalid", None),
                                                                  "db": ("db-dr.invalid", None)})
    run = run_playbook("dr_redis.yml", inventory, extravars={"confirm": "true"})
    assert run.rc == 0, run.stdout[-3000:]
    # It did reach them: the emptied Redis is rebuilt from the database these variables name.
    assert_recovered(platform, facts)


def test_a_node_worker_processes_rescheduled_followups_after_the_run(platform):
    platform.seed(**SEED)
    platform.sql("UPDATE gold_lead_journey SET next_action_at = now() + interval '30 seconds' "
                 "WHERE lead_id IN (SELECT lead_id FROM gold_lead_journey WHERE next_action_at > now() "
                 "AND NOT sequence_paused ORDER BY lead_id LIMIT 2)")
    lose_redis(platform)
    run = platform.play("dr_redis.yml", extravars={"confirm": "true"})
    assert run.rc == 0, run.stdout[-3000:]
    with NodeWorker(platform.redis, [contract.QUEUE_FOLLOWUP], db=2, timeout=70) as worker:
        done = worker.wait_completed(2, timeout=60)
    assert len({job["id"] for job in done}) == 2


def test_redis_killed_midway_through_the_reschedule_fails_clearly_and_a_rerun_leaves_one_job_per_followup(platform):
    platform.seed(**SEED)
    platform.sql("INSERT INTO gold_lead_journey (lead_id, tenant_id, engagement_stage, next_action_at) "
                 "SELECT gen_random_uuid(), tenant_id, 'COLD', now() + interval '1 hour' + (i || ' seconds')::interval "
                 "FROM (SELECT tenant_id FROM gold_lead_journey LIMIT 1) AS t, generate_series(1, 40000) AS i")
    pending = pending_followups(platform)
    # Production Redis keeps an append-only file: a crash keeps what was written before it (fsynced before each
    # reply here, so the file holds exactly what Redis had answered when it dies).
    redis_server = RedisServer(password=platform.redis.password, persistent=True,
                               extra_args=["--appendfsync", "always"]).start()
    # Between the run and Redis: exactly ADDED_BEFORE_THE_CRASH of the reschedule's addJob calls reach Redis, the
    # connection that brings the next one waits at the gate (the rest of the play goes on).
    proxy = TcpProxy(redis_server.port, counter=redis_commands(redis_script_calls(touching=FOLLOWUP_DELAYED)),
                     hold_after=ADDED_BEFORE_THE_CRASH)
    try:
        proxy.start()
        # The play's Redis options point at the proxy; a generous redis_timeout (socket_timeout) so waiting at the
        # gate cannot end in a client timeout before the kill, however slow the machine.
        inventory = inventory_for(redis_server, platform.pg, extra_vars={
            "cerniq_redis_port": proxy.port,
            "cerniq_redis_defaults": {"redis_host": redis_server.host, "redis_port": proxy.port,
                                      "redis_password": redis_server.password, "redis_tls": False, "redis_db": 0,
                                      "bullmq_db": 2, "redis_timeout": 900}})
        outcome = {}
        waiting_for_the_reschedule = threading.Event()

        def watch(event):
            if event.get("event") == "playbook_on_task_start" and "Wait for the follow-up reschedule" in \
                    event.get("event_data", {}).get("task", ""):
                waiting_for_the_reschedule.set()
            return True

        play = threading.Thread(target=lambda: outcome.update(run=run_playbook(
            "dr_redis.yml", inventory, extravars={"confirm": "true"}, event_handler=watch)))
        play.start()

        def explain():
            run = outcome.get("run")
            return run.stdout[-3000:] if run else "(the play is still running)"
        proxy.wait_for_hold(timeout=600, runner=play, explain=explain)
        # Everything else of the play is done: only the held reschedule is left when Redis dies.
        wait_for(waiting_for_the_reschedule.is_set, 600, "the play to wait for the reschedule", play, explain)
        delayed = redis_server.client(2)
        wait_for(lambda: delayed.zcard(FOLLOWUP_DELAYED) == ADDED_BEFORE_THE_CRASH, 120,
                 "Redis to run the {0} adds it was given".format(ADDED_BEFORE_THE_CRASH), play, explain)
        assert proxy.forwarded == ADDED_BEFORE_THE_CRASH and proxy.expired_holds == 0
        redis_server.kill()
        proxy.cut()
        play.join(600)
        assert not play.is_alive(), "the play did not end within 600 s of the kill"
        run = outcome["run"]
        assert run.rc != 0
        assert proxy.expired_holds == 0
        # The one failure is the reschedule's, one line naming Redis.
        failed = [result for result in run.results() if result["_event"] == "runner_on_failed"]
        assert [result["_task"] for result in failed] == ["The follow-up reschedule's result"], run.stdout[-3000:]
        message = failed[0]["msg"]
        assert message.startswith("cannot reach Redis at 127.0.0.1:{0} (db 2): ".format(proxy.port)), message
        assert "\n" not in message and "Traceback" not in run.stdout

        redis_server.start()
        # What the append-only file kept: every add Redis had run, nothing of what waited at the gate.
        assert delayed.zcard(FOLLOWUP_DELAYED) == ADDED_BEFORE_THE_CRASH < pending
        delayed.config_set("appendfsync", "everysec")  # no crash to come: the re-run need not wait for the disk
        rerun = run_playbook("dr_redis.yml", inventory_for(redis_server, platform.pg), extravars={"confirm": "true"})
        assert rerun.rc == 0, rerun.stdout[-3000:]
        followups = rerun.result("The follow-up reschedule's result")["followups"]
        assert followups["existing"] == ADDED_BEFORE_THE_CRASH and followups["added"] == pending - followups["existing"]
        expected = {contract.followup_job_id(lead_id, due_ms) for lead_id, due_ms in platform.sql(
            "SELECT lead_id::text, floor(extract(epoch FROM next_action_at) * 1000)::bigint FROM gold_lead_journey "
            "WHERE next_action_at > now() AND NOT sequence_paused")}
        assert set(delayed.zrange(FOLLOWUP_DELAYED, 0, -1)) == expected and len(expected) == pending
        job_hashes = delayed.scan_iter(match="bull:{0}:fu-*".format(contract.QUEUE_FOLLOWUP), count=10000)
        assert len(list(job_hashes)) == pending
    finally:
        proxy.close()
        redis_server.kill()
        shutil.rmtree(redis_server.data_dir, ignore_errors=True)


def wait_for(check, timeout, what, runner, explain):
    """Wait until check() holds; fail with a message after `timeout` seconds or once the run ended without it."""
    deadline = time.monotonic() + timeout
    while not check():
        assert runner.is_alive() or check(), "the run ended before {0}: {1}".format(what, explain())
        assert time.monotonic() < deadline, "no sign of {0} within {1}s: {2}".format(what, timeout, explain())
        time.sleep(0.05)


def test_restart_without_a_restart_command_is_refused_before_anything(platform):
    platform.seed(**SEED)
    lose_redis(platform)
    before = platform_state(platform)
    for command in ("", "   "):
        run = platform.play("dr_redis.yml", extravars={"confirm": "true", "dr_redis_restart": "true",
                                                       "dr_redis_restart_command": command})
        assert run.rc != 0
        assert "dr_redis_restart=true needs dr_redis_restart_command" in " ".join(run.stdout.split())
        # Refused by the first task: not even the plan's reads ran.
        assert "Plan - phones" not in run.stdout
        assert platform_state(platform) == before and platform.audit() == []


def test_the_final_verification_checks_the_phone_status_keys_too(platform):
    """A run whose status step did not happen (here: left out by tags) is caught: the keys that differ are named."""
    platform.seed(**SEED)
    platform.r(0).set(contract.phone_status_key("phone_04"), "ACTIVE")  # the database says OFFLINE
    run = platform.play("dr_redis.yml", tags="quota,followups,verify", extravars={"confirm": "true"})
    assert run.rc != 0
    assert "phone status keys that differ=['{0}']".format(contract.phone_status_key("phone_04")) in " ".join(
        run.stdout.split())
    assert platform.r(0).get(contract.phone_status_key("phone_04")) == "ACTIVE", "verification writes nothing"

    fixed = platform.play("dr_redis.yml", extravars={"confirm": "true"})
    assert fixed.rc == 0, fixed.stdout[-3000:]
    assert platform.r(0).get(contract.phone_status_key("phone_04")) == "OFFLINE"
    assert fixed.result("Verify - phone status keys now match the database")["corrected_count"] == 0
