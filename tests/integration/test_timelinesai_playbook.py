"""The TimelinesAI modules through ansible-playbook with -vvv: module_defaults from both action groups, check
mode (the test send reports skipped, the webhook predicts), idempotence, every fault a failed task with one clear
message and nothing changed, and the API token in no line of the output."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.services import free_port
from tests.support.vendors import (
    TIMELINES_SERVER,
    TIMELINES_TOKEN,
    assert_traffic_matches_openapi,
    changes,
    seed_phones,
)

pytestmark = pytest.mark.slow
PLAYBOOK = Path(__file__).parent / "playbooks" / "vendors_timelinesai.yml"
WRONG_TOKEN = "wrong-SECRET-timelines-9a8b"
RECEIVER = "https://alerts.cerniq.example/hooks/timelinesai"
RECIPIENT = "+40712345678"


def task(run, name):
    (result,) = [r for r in run.results() if r["_task"] == name]
    return result


def test_timelinesai_modules_end_to_end(platform, timelines, timelines_spec):
    seed_phones(platform)
    run = platform.play(PLAYBOOK, verbosity=3, extravars=dict(
        cerniq_timelinesai_base_url=timelines.base_url, cerniq_timelinesai_api_token=TIMELINES_TOKEN,
        cerniq_vendor_allow_http=True, fake_root=timelines.url, receiver_url=RECEIVER, recipient=RECIPIENT,
        wrong_token=WRONG_TOKEN, closed_port=free_port()))
    assert run.rc == 0, run.stdout[-3000:]
    assert TIMELINES_TOKEN not in run.stdout and WRONG_TOKEN not in run.stdout
    assert platform.pg.password not in run.stdout

    accounts = task(run, "Read the accounts")
    assert accounts["disconnected"] == ["phone_07", "phone_19"] and accounts["missing"] == ["phone_21"]

    predicted = task(run, "Register the disconnect webhook (check mode)")
    assert predicted["changed"] is True and predicted["diff"]["before"] == {}
    created = task(run, "Register the disconnect webhook")
    assert created["changed"] is True and created["webhook"]["url"] == "https://alerts.cerniq.example/…"
    assert task(run, "Register the disconnect webhook again")["changed"] is False

    skipped = task(run, "Test send (check mode)")
    assert skipped["_event"] == "runner_on_skipped"  # ansible-runner keeps no result for a skip; -vvv prints it
    assert "check mode: no test message sent (would send from phone_01 +40700000001 to {0})".format(RECIPIENT) \
        in run.stdout
    sent = task(run, "Test send")
    assert sent["changed"] is True and sent["status"] == "Sent" and sent["statuses"] == ["Sending", "Sent"]
    assert [r["json"]["phone"] for r in timelines.requests(method="POST", path="/messages$")] == [RECIPIENT]

    waited = task(run, "Rate limited with Retry-After, then answered")
    assert waited["api"]["retries"] == 2 and waited["api"]["waited_seconds"] >= 2.0
    failures = {
        "Fault phone not known to TimelinesAI": "phone_21 (+40700000021) is not a WhatsApp account of this "
                                                "TimelinesAI workspace",
        "Fault bad API token": "answered 401 Unauthorized: Invalid or expired token; error_code invalid_token. The "
                               "token was refused: check cerniq_timelinesai_api_token",
        "Fault plain http refused": "is plain http://: the token would travel unencrypted",
        "Fault 429 storm": "answered 429 Too Many Requests: Rate limit exceeded. Please retry after a short "
                           "delay. Still rate limited after 2 attempts",
        "Fault malformed JSON": "answered 200 but the body is not valid JSON",
        "Fault vendor timing out": "got no answer within 0.3 s (1 attempt)",
        "Fault vendor down": "Connection refused (1 attempt). Check cerniq_timelinesai_base_url",
    }
    for name, message in failures.items():
        result = task(run, name)
        assert result["_event"] == "runner_on_failed", name
        assert message in result["msg"], (name, result["msg"])
    # the only changes: one webhook, one message
    assert [(r["method"], r["path"].rsplit("/", 1)[1]) for r in changes(timelines)] == [
        ("POST", "webhooks"), ("POST", "messages")]
    assert sorted(row[2] for row in platform.audit()) == ["test_send", "webhook_create"]
    assert_traffic_matches_openapi(timelines, timelines_spec, TIMELINES_SERVER)
