"""phone_offline.yml (runbook 2.1) for real, against the TimelinesAI fake and a Node BullMQ worker: a disconnected
account (set OFFLINE, the QR code asked for), the account back (ACTIVE, the queue watched until it moves), a queue
nobody works (the bounded wait fails clearly), a banned phone (refused)."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import phone_queue, phone_status_key
from tests.fakes import timelinesai as timelinesai_fake
from tests.support.nodeworker import NodeWorker
from tests.support.producers import add_jobs
from tests.support.snapshots import assert_unchanged, platform_state
from tests.support.vendors import TIMELINES_SERVER, TIMELINES_TOKEN, assert_traffic_matches_openapi

PHONE = "phone_07"
NUMBER = "+40700000007"


@pytest.fixture()
def offline(platform, timelines):
    # phone_07 is OFFLINE in the DB but ACTIVE in Redis (drift); its account is disconnected at TimelinesAI.
    platform.seed(phones=8, leads=0, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0,
                  offline=(PHONE,), banned=("phone_08",), drift_phone=PHONE, leak_phone="", no_ttl_phone="")
    timelines.reset(timelinesai_fake.build_demo_state(phones=8, disconnected=(7, 8)))
    add_jobs(platform.redis, phone_queue(PHONE), [("off-w-{0}".format(i), {}) for i in range(6)]
             + [("off-d-{0}".format(i), {"delay": 3600_000}) for i in range(3)])

    def play(check=False, **extravars):
        base = {"cerniq_timelinesai_base_url": timelines.base_url, "cerniq_timelinesai_api_token": TIMELINES_TOKEN,
                "cerniq_vendor_allow_http": "true", "phone": PHONE}
        base.update(extravars)
        return platform.play("phone_offline.yml", extravars=base, check=check)

    return play


def _start_when_active(platform, worker, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if platform.r(0).get(phone_status_key(PHONE)) == "ACTIVE":
            worker.start()
            return
        time.sleep(0.1)


def _status(platform, phone=PHONE):
    return (platform.sql("SELECT status FROM wa_phone_numbers WHERE id = %s", (phone,))[0][0],
            platform.r(0).get(phone_status_key(phone)))


def test_disconnected_account_sets_offline_everywhere_and_asks_for_the_qr_code(
        platform, offline, timelines, timelines_spec):
    before = platform_state(platform)
    checked = offline(check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert_unchanged(before, platform_state(platform))

    run = offline()
    assert run.rc == 0, run.stdout[-3000:]
    assert _status(platform) == ("OFFLINE", "OFFLINE")
    rows = platform.audit()
    assert len(rows) == 1, rows
    assert (rows[0][1], rows[0][3], rows[0][5]["redis_status"], rows[0][6]["redis_status"]) == (
        "wa_phone", PHONE, "ACTIVE", "OFFLINE")
    shown = run.result("Show the phone")["msg"]
    assert "TimelinesAI: disconnected, account 40700000007@s.whatsapp.net" in shown
    assert "DB OFFLINE, Redis ACTIVE (drift: differs)" in shown
    assert "queue q:wa:phone_07: 9 pending (6 waiting, 3 delayed, 0 prioritized), 0 running" in shown
    summary = run.result("Summary")["msg"]
    assert any("scan the QR code of {0}".format(NUMBER) in line for line in summary["next"]), summary
    assert run.stats["artifact_data"]["phone_offline"]["reconnected"] is False

    before = platform_state(platform)
    again = offline()
    assert again.rc == 0 and again.changed_tasks == []
    assert_unchanged(before, platform_state(platform))
    # What the three runs asked TimelinesAI, and its answers, as its OpenAPI document describes them.
    assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER)


def test_account_back_sets_active_and_watches_the_queue_drain(platform, timelines, offline):
    timelines.set_account_status(NUMBER, "active")
    checked = offline(check=True)
    assert checked.rc == 0, checked.stdout[-3000:]
    assert _status(platform) == ("OFFLINE", "ACTIVE")

    # The platform's worker for the phone sends only while its status key says ACTIVE.
    platform.r(0).set(phone_status_key(PHONE), "OFFLINE")
    worker = NodeWorker(platform.redis, [phone_queue(PHONE)])
    starter = threading.Thread(target=_start_when_active, args=(platform, worker), daemon=True)
    starter.start()
    try:
        run = offline(phone_offline_resume_poll="1")
        assert run.rc == 0, run.stdout[-3000:]
        assert _status(platform) == ("ACTIVE", "ACTIVE")
        moved = run.result("Check the queue moved")["msg"]
        assert "1 worker connection(s)" in moved and "(were 6)" in moved, moved
        worker.wait_completed(6)
        # Not compared byte for byte (the first test of this file is): the connected worker keeps writing its own
        # keys (stalled-jobs check, job events) while the second run watches the queue.
        again = offline(phone_offline_resume_poll="1")
    finally:
        starter.join(30)
        worker.stop()
    assert again.rc == 0, again.stdout[-3000:]
    assert again.changed_tasks == []
    assert [row[2] for row in platform.audit()] == ["phone_status"]
    assert platform.r(2).zcard("bull:{0}:delayed".format(phone_queue(PHONE))) == 3


def test_nobody_works_the_queue_the_wait_ends_and_says_so(platform, offline):
    # The operator says the phone is back before TimelinesAI does; no worker is connected.
    run = offline(reconnected="true", phone_offline_resume_timeout="2", phone_offline_resume_poll="1")
    assert run.rc != 0
    assert _status(platform) == ("ACTIVE", "ACTIVE")
    assert "q:wa:phone_07 did not move within 2 s: 6 job(s) ready, 0 running, 0 worker connection(s)" in run.stdout


def test_a_banned_phone_is_refused(platform, timelines, offline):
    timelines.set_account_status("+40700000008", "active")
    before = (_status(platform, "phone_08"), platform.audit())
    run = offline(phone="phone_08")
    assert run.rc != 0 and "phone_08 is BANNED" in run.stdout
    assert (_status(platform, "phone_08"), platform.audit()) == before
