"""The Instantly modules through ansible-playbook with -vvv: module_defaults from cerniq_module_defaults and
cerniq_vendor_defaults, check mode and diff, idempotence, every fault a failed task with one clear message and
nothing changed, and the API key in no line of the output."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.services import free_port
from tests.support.vendors import (
    INSTANTLY_KEY,
    INSTANTLY_SERVER,
    assert_traffic_matches_openapi,
    campaign_ids,
    campaign_status,
    changes,
)

pytestmark = pytest.mark.slow
PLAYBOOK = Path(__file__).parent / "playbooks" / "vendors_instantly.yml"
WRONG_KEY = "wrong-SECRET-instantly-0d1e"


def task(run, name):
    """The result of the task named exactly `name` (run.result matches any task whose name contains it)."""
    (result,) = [r for r in run.results() if r["_task"] == name]
    return result


def test_instantly_modules_end_to_end(platform, instantly, instantly_spec):
    ids = campaign_ids(instantly)
    unknown = str(uuid.uuid4())
    run = platform.play(PLAYBOOK, verbosity=3, extravars=dict(
        cerniq_instantly_base_url=instantly.url, cerniq_instantly_api_key=INSTANTLY_KEY,
        cerniq_vendor_allow_http=True, hot_id=ids["hot"], unknown_id=unknown, wrong_key=WRONG_KEY,
        closed_port=free_port()))
    assert run.rc == 0, run.stdout[-3000:]
    assert INSTANTLY_KEY not in run.stdout and WRONG_KEY not in run.stdout
    assert platform.pg.password not in run.stdout

    info = task(run, "Read every campaign")
    assert {c["id"]: c["bounce_rate_percent"] for c in info["campaigns"]}[ids["hot"]] == 5.0

    predicted = task(run, "Pause the hot campaign (check mode)")
    assert predicted["changed"] is True and predicted["diff"]["after"]["status_name"] == "paused"
    paused = task(run, "Pause the hot campaign")
    assert paused["changed"] is True and paused["diff"]["before"]["status_name"] == "active"
    assert task(run, "Pause the hot campaign again")["changed"] is False
    assert len(platform.audit("campaign_pause")) == 1

    guard_check = task(run, "Guard (check mode)")
    guard = task(run, "Guard")
    assert guard_check["paused"] == guard["paused"] == [ids["healthy"]]  # the hot one was already paused
    assert sorted(guard["over_threshold"]) == sorted([ids["hot"], ids["healthy"], ids["paused"]])
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy", "paused", "draft")] == [2, 2, 2, 0]

    failures = {
        "Fault unknown campaign": "Campaign not found. No campaign {0} in this Instantly workspace".format(unknown),
        "Fault bad API key": "answered 401 Unauthorized: Invalid API key. The token was refused: check "
                             "cerniq_instantly_api_key",
        "Fault plain http refused": "is plain http://: the token would travel unencrypted",
        "Fault 429 storm": "answered 429 Too Many Requests: Rate limit exceeded. Still rate limited after 2 "
                           "attempts",
        "Fault malformed JSON": "answered 200 but the body is not valid JSON",
        "Fault vendor timing out": "got no answer within 0.3 s (1 attempt)",
        "Fault vendor down": "Connection refused (1 attempt). Check cerniq_instantly_base_url",
    }
    for name, message in failures.items():
        result = task(run, name)
        assert result["_event"] == "runner_on_failed", name
        assert message in result["msg"], (name, result["msg"])
    # every fault came after the guard: nothing changed past it
    assert [r["path"].rsplit("/", 1)[1] for r in changes(instantly)] == ["pause", "pause"]
    assert [campaign_status(instantly, ids[k]) for k in ("hot", "healthy")] == [2, 2]
    assert sorted(row[2] for row in platform.audit()) == ["campaign_pause", "pause_campaigns"]
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)
