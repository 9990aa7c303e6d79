"""Faults and rate limits of the vendor fakes: injected statuses, malformed bodies and delays, and the 429s each
vendor answers past its limit, in the shape the vendor documents."""

from __future__ import annotations

import time

import jsonschema
import pytest

from tests.fakes import Fault
from tests.fakes import timelinesai as timelinesai_mod
from tests.support.vendor_contract import admin, component_schema
from tests.support.vendors import campaign_ids

# ---- Instantly ----------------------------------------------------------------------------------------------------


def test_instantly_injected_faults(inst):
    ids = campaign_ids(inst.fake)
    fake = inst.fake
    fake.add_fault(429, retry_after=3)
    limited = inst.call("GET", "/api/v2/campaigns")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json() == {"statusCode": 429, "error": "Too Many Requests", "message": "Rate limit exceeded"}
    fake.add_fault(429)
    assert "Retry-After" not in inst.call("GET", "/api/v2/campaigns").headers
    fake.add_fault(401)
    assert inst.call("GET", "/api/v2/campaigns").status_code == 401
    fake.add_fault(404)
    assert inst.call("GET", f"/api/v2/campaigns/{ids['hot']}").status_code == 404
    fake.add_fault(402)
    assert inst.call("GET", "/api/v2/campaigns").json()["error"] == "Payment Required"
    fake.add_fault(500, times=2, method="GET", path=r"/sending-status$")
    assert inst.call("GET", "/api/v2/campaigns").status_code == 200  # not matched: untouched
    for _attempt in range(2):
        crashed = inst.call("GET", f"/api/v2/campaigns/{ids['hot']}/sending-status", response_documented=False)
        assert crashed.status_code == 500
        assert crashed.json() == {
            "statusCode": 500,
            "error": "Internal Server Error",
            "message": "Internal Server Error",
        }
    assert inst.call("GET", f"/api/v2/campaigns/{ids['hot']}/sending-status").status_code == 200
    fake.add_fault("malformed")
    broken = inst.call("GET", "/api/v2/campaigns", response_documented=False)
    assert broken.status_code == 200
    with pytest.raises(ValueError):
        broken.json()
    fake.add_fault("delay", seconds=0.3)
    started = time.monotonic()
    assert inst.call("GET", "/api/v2/campaigns").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert fake.faults == []
    statuses = [r["status"] for r in fake.requests()]
    assert statuses.count(429) == 2 and statuses.count(500) == 2
    with pytest.raises(ValueError):
        Fault.from_dict({"kind": "explode"})


def test_instantly_rate_limit(inst):
    inst.fake.set_rate_limit(3, window=60)
    codes = [inst.call("GET", "/api/v2/campaigns").status_code for _attempt in range(4)]
    assert codes == [200, 200, 200, 429]
    admin(inst.fake, "POST", "/rate_limit", {"limit": 2, "window": 0.3, "retry_after": 1})
    assert [inst.call("GET", "/api/v2/campaigns").status_code for _attempt in range(2)] == [200, 200]
    limited = inst.call("GET", "/api/v2/campaigns")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert limited.json()["message"] == "Rate limit exceeded"
    time.sleep(0.35)
    assert inst.call("GET", "/api/v2/campaigns").status_code == 200
    assert admin(inst.fake, "POST", "/rate_limit", {"limit": None}) == {"limit": None}


# ---- TimelinesAI --------------------------------------------------------------------------------------------------


def test_timelines_faults_and_rate_limit(tl, timelines_doc):
    error_schema = component_schema(timelines_doc, "ErrorResponse")
    tl.fake.add_fault(500, path="/whatsapp_accounts$")
    crashed = tl.call("GET", "/whatsapp_accounts", response_documented=False)
    assert crashed.status_code == 500 and crashed.json()["error_code"] == "internal_error"
    jsonschema.validate(crashed.json(), error_schema)
    tl.fake.add_fault(404, method="POST")
    assert tl.call("GET", "/workspace").status_code == 200
    assert tl.call("POST", "/messages", json={"phone": "+40751234567", "text": "x"}).status_code == 404
    tl.fake.add_fault(429, retry_after=2)
    limited = tl.call("GET", "/workspace", response_documented=False)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert limited.json() == timelinesai_mod.DOCS_429_BODY
    tl.fake.add_fault("malformed")
    with pytest.raises(ValueError):
        tl.call("GET", "/webhooks", response_documented=False).json()
    tl.fake.add_fault("delay", seconds=0.2, path="/workspace")
    started = time.monotonic()
    assert tl.call("GET", "/workspace").status_code == 200 and time.monotonic() - started >= 0.2

    admin(tl.fake, "POST", "/rate_limit", {"limit": 2, "window": 60})
    assert [tl.call("GET", "/workspace").status_code for _attempt in range(2)] == [200, 200]
    assert tl.call("GET", "/workspace", response_documented=False).json() == timelinesai_mod.DOCS_429_BODY
    admin(tl.fake, "POST", "/config", {"rate_limit_body": "envelope"})
    envelope = tl.call("GET", "/workspace", response_documented=False).json()
    assert envelope["error_code"] == "rate_limit_exceeded"
    jsonschema.validate(envelope, error_schema)
