"""The vendor fakes' own machinery: the admin API (/__fake__) that drives a fake from another process, a fake
seeded from a state file, and the command line that serves a fake in the foreground."""

from __future__ import annotations

import json
import re
import select
import signal
import subprocess
import sys

import pytest
import requests

from tests.fakes import InstantlyFake
from tests.fakes import instantly as instantly_mod
from tests.support.services import REPO_ROOT
from tests.support.vendor_contract import Contract, admin
from tests.support.vendors import INSTANTLY_KEY, INSTANTLY_SERVER, campaign_ids


def test_instantly_admin_api_drives_another_process_view(inst, tmp_path):
    fake = inst.fake
    ids = campaign_ids(fake)
    assert admin(fake, "GET", "/health") == {"ok": True, "vendor": "instantly"}
    admin(fake, "POST", "/faults", [{"kind": "500", "path": "/campaigns$"}, {"kind": 429, "retry_after": 7}])
    assert len(admin(fake, "GET", "/faults")) == 2
    assert inst.call("GET", "/api/v2/campaigns", response_documented=False).status_code == 500
    assert inst.call("GET", f"/api/v2/campaigns/{ids['hot']}").headers["Retry-After"] == "7"
    assert admin(fake, "GET", "/faults") == []
    bad = requests.post(f"{fake.url}/__fake__/faults", json={"kind": "teleport"}, timeout=5)
    assert bad.status_code == 400

    records = admin(fake, "GET", "/requests")
    assert len(records) == 2 and all(r["authorization"] and r["authorized"] for r in records)
    assert INSTANTLY_KEY not in json.dumps(records) and all("authorization" not in r["headers"] for r in records)
    assert admin(fake, "GET", "/requests?method=GET&path=/campaigns$")[0]["status"] == 500
    admin(fake, "DELETE", "/requests")
    assert admin(fake, "GET", "/requests") == []

    state = admin(fake, "GET", "/state")
    state["campaigns"] = [c for c in state["campaigns"] if c["id"] == ids["paused"]]
    admin(fake, "POST", "/state", state)
    assert [c["id"] for c in inst.call("GET", "/api/v2/campaigns").json()["items"]] == [ids["paused"]]
    admin(fake, "POST", "/reset", {"seed": "empty"})
    assert inst.call("GET", "/api/v2/campaigns").json() == {"items": []}
    admin(fake, "POST", "/reset", {"seed": "demo"})
    assert len(inst.call("GET", "/api/v2/campaigns", params={"limit": 10}).json()["items"]) == 4

    seed_file = tmp_path / "instantly.json"
    seeded = instantly_mod.build_demo_state(bounced_leads=5)
    seed_file.write_text(json.dumps(seeded), encoding="utf-8")
    with InstantlyFake(api_key=None, state_file=seed_file) as other:
        other_contract = Contract(other, inst.spec, INSTANTLY_SERVER, "any-token-works")
        hot = other_contract.call("GET", "/api/v2/campaigns/analytics").json()
        assert min(r["bounced_count"] for r in hot) == 5


# ---- CLI ----------------------------------------------------------------------------------------------------------


def _run_cli(args: list[str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    ready = select.select([proc.stdout], [], [], 15)[0]
    if not ready:
        proc.kill()
        pytest.fail(f"{args[0]} printed no URL within 15 s")
    return proc, proc.stdout.readline().strip()


@pytest.mark.parametrize(
    ("module", "auth_flag", "path", "count"),
    [
        ("tests.fakes.instantly", "--api-key", "/api/v2/campaigns?limit=100", lambda body: len(body["items"])),
        (
            "tests.fakes.timelinesai",
            "--api-token",
            "/whatsapp_accounts",
            lambda body: len(body["data"]["whatsapp_accounts"]),
        ),
    ],
)
def test_cli_serves_in_foreground_until_sigterm(module, auth_flag, path, count):
    proc, url = _run_cli([module, "--port", "0", auth_flag, "cli-secret", "--seed", "demo", "--phones", "3"])
    try:
        assert re.match(r"^http://127\.0\.0\.1:\d+(/integrations/api)?$", url), url
        resp = requests.get(url + path, headers={"Authorization": "Bearer cli-secret"}, timeout=5)
        assert resp.status_code == 200
        assert count(resp.json()) == (4 if "instantly" in module else 3)
        assert requests.get(url + path, timeout=5).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        proc.stdout.close()
        proc.stderr.close()
