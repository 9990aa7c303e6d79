"""Bad input and vendor faults, against the Instantly fake over real HTTP: each one a clear message, nothing
changed, no secret in the message. The HTTP client (_http.py) is the same for TimelinesAI."""

from __future__ import annotations

import uuid

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _instantly as instantly_mod
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._http import BACKOFF_FACTOR
from tests.support.services import free_port
from tests.support.vendors import (
    INSTANTLY_KEY,
    INSTANTLY_SERVER,
    assert_traffic_matches_openapi,
    campaign_ids,
    campaign_status,
    changes,
    vendor_params,
)


@pytest.fixture()
def params(platform, instantly):
    return vendor_params(platform.params, instantly=instantly)


def pause_hot(params, fake, **overrides):
    return instantly_mod.set_campaign_state(dict(params, **overrides), state="paused",
                                            id=campaign_ids(fake)["hot"])


def assert_nothing_changed(platform, fake):
    assert changes(fake) == [] or all(r["status"] != 200 for r in changes(fake))
    assert campaign_status(fake, campaign_ids(fake)["hot"]) == 1
    assert platform.audit() == []


def test_bad_api_key(params, platform, instantly, instantly_spec):
    with pytest.raises(CerniqError) as err:
        pause_hot(params, instantly, instantly_api_key="wrong-SECRET-key-123")
    assert err.value.msg == ("Instantly API: GET /api/v2/campaigns/{0} answered 401 Unauthorized: Invalid API key. "
                             "The token was refused: check cerniq_instantly_api_key (or CERNIQ_INSTANTLY_API_KEY); "
                             "it may have been regenerated".format(campaign_ids(instantly)["hot"]))
    assert "wrong-SECRET-key-123" not in err.value.msg
    assert len(instantly.requests()) == 1  # a 401 is not retried
    assert_nothing_changed(platform, instantly)
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_missing_or_mangled_token_is_refused_before_any_request(params, instantly):
    with pytest.raises(CerniqError, match="token is not set: set cerniq_instantly_api_key .*CERNIQ_INSTANTLY_API_KEY"):
        instantly_mod.campaign_info(dict(params, instantly_api_key=None))
    with pytest.raises(CerniqError) as err:
        instantly_mod.campaign_info(dict(params, instantly_api_key="abc-SECRET\nInjected: 1"))
    assert "line break" in err.value.msg and "SECRET" not in err.value.msg
    assert instantly.requests() == []


def test_plain_http_is_refused_unless_allowed(params, instantly):
    with pytest.raises(CerniqError) as err:
        instantly_mod.campaign_info(dict(params, allow_http=False))
    assert err.value.msg == ("Instantly API base URL {0} is plain http://: the token would travel unencrypted. Use "
                             "https://, or set allow_http=true (cerniq_vendor_allow_http) for a local fake only"
                             .format(instantly.url))
    with pytest.raises(CerniqError, match="must not carry credentials") as err:
        instantly_mod.campaign_info(dict(params, instantly_base_url=instantly.url.replace("//", "//u:SECRETpw@")))
    assert "SECRETpw" not in err.value.msg
    with pytest.raises(CerniqError, match="is not an http"):
        instantly_mod.campaign_info(dict(params, instantly_base_url="ftp://api.instantly.ai"))
    assert instantly.requests() == []


def test_unknown_route_names_the_base_url_setting(params, instantly):
    with pytest.raises(CerniqError) as err:
        instantly_mod.campaign_info(dict(params, instantly_base_url=instantly.url + "/api"))
    assert ("answered 404 Not Found: Route GET:/api/api/v2/campaigns not found. Check cerniq_instantly_base_url: it "
            "must be the API root, e.g. https://api.instantly.ai") in err.value.msg


def test_429_with_retry_after_is_waited_out(params, platform, instantly):
    instantly.add_fault(429, retry_after=1, times=2, path="/pause$")
    result = pause_hot(params, instantly)
    assert result["changed"] is True and campaign_status(instantly, campaign_ids(instantly)["hot"]) == 2
    assert result["api"]["retries"] == 2 and result["api"]["waited_seconds"] >= 2.0
    posts = instantly.requests(method="POST")
    assert [r["status"] for r in posts] == [429, 429, 200]
    assert posts[1]["time"] - posts[0]["time"] >= 1.0 and posts[2]["time"] - posts[1]["time"] >= 1.0  # Retry-After
    assert len(platform.audit("campaign_pause")) == 1


def test_429_storm_without_retry_after_gives_up_after_bounded_retries(params, platform, instantly):
    instantly.add_fault(429, times=50, path="/pause$")
    with pytest.raises(CerniqError) as err:
        pause_hot(params, instantly, vendor_retries=2)
    assert err.value.msg.endswith("answered 429 Too Many Requests: Rate limit exceeded. Still rate limited after 3 "
                                  "attempts: something else is using the workspace's quota; run it again later")
    posts = [r["time"] for r in instantly.requests(method="POST")]
    # urllib3's backoff: the first retry at once, the second after BACKOFF_FACTOR * 2 s (plus jitter).
    assert len(posts) == 3 and posts[2] - posts[1] >= 2 * BACKOFF_FACTOR
    assert_nothing_changed(platform, instantly)


def test_429_storm_on_a_client_with_fast_backoff(params, instantly):
    instantly.add_fault(429, times=50)
    client = instantly_mod.instantly_client(dict(params, vendor_retries=4), backoff_factor=0.01)
    with pytest.raises(CerniqError, match="after 5 attempts"):
        client.request("GET", "/api/v2/campaigns", params={"limit": 100})
    assert len(instantly.requests()) == 5 and client.figures()["retries"] == 4


def test_a_long_retry_after_fails_at_once(params, platform, instantly):
    instantly.add_fault(429, retry_after=600, times=5)
    sleeps = []
    client = instantly_mod.instantly_client(params, sleep=sleeps.append)
    with pytest.raises(CerniqError, match=r"asks to retry after 600 s \(Retry-After\), longer than the 120 s"):
        client.request("GET", "/api/v2/campaigns")
    assert sleeps == [] and len(instantly.requests()) == 1
    assert_nothing_changed(platform, instantly)


def test_the_waits_of_one_call_are_capped_in_all(params, platform, instantly):
    instantly.add_fault(429, retry_after=70, times=5)
    sleeps = []
    client = instantly_mod.instantly_client(params, sleep=sleeps.append)  # waits recorded, not slept
    with pytest.raises(CerniqError) as err:
        client.request("GET", "/api/v2/campaigns")
    assert err.value.msg == ("Instantly API: GET /api/v2/campaigns answered 429 and asks to retry after 70 s "
                             "(Retry-After), longer than the 50 s left of the 120 s this module waits: run it again "
                             "later")
    assert sleeps == [70] and client.figures()["retries"] == 1 and len(instantly.requests()) == 2


def test_5xx_is_retried_then_reported(params, platform, instantly):
    instantly.add_fault(500, times=1, path="/pause$")
    assert pause_hot(params, instantly)["changed"] is True
    assert [r["status"] for r in instantly.requests(method="POST")] == [500, 200]
    instantly.reset()
    platform.sql("DELETE FROM ops_audit_log")
    instantly.add_fault(503, times=50)
    client = instantly_mod.instantly_client(params, backoff_factor=0.01)
    with pytest.raises(CerniqError) as err:
        client.request("GET", "/api/v2/campaigns")
    assert err.value.msg == ("Instantly API: GET /api/v2/campaigns answered 503 Service Unavailable: Service "
                             "Unavailable. The vendor is failing (3 attempts): check its status page and run it "
                             "again later")


def test_malformed_json_is_one_clear_line_and_nothing_is_changed(params, platform, instantly):
    instantly.add_fault("malformed", path="/campaigns/")
    with pytest.raises(CerniqError) as err:
        pause_hot(params, instantly)
    assert "answered 200 but the body is not valid JSON (20 bytes, starting '{\"items\": [{\"id\": \"0')" in \
        err.value.msg
    assert_nothing_changed(platform, instantly)


def test_slow_vendor_times_out_and_is_retried(params, platform, instantly):
    instantly.add_fault("delay", seconds=1.5, times=3)
    with pytest.raises(CerniqError) as err:
        pause_hot(params, instantly, vendor_timeout=0.3, vendor_retries=0)
    assert err.value.msg == ("Instantly API at {0}: GET /api/v2/campaigns/{1} got no answer within 0.3 s (1 "
                             "attempt). The vendor may be down or slow: check its status page, or raise "
                             "vendor_timeout".format(instantly.url, campaign_ids(instantly)["hot"]))
    assert_nothing_changed(platform, instantly)
    instantly.reset()
    instantly.add_fault("delay", seconds=1.0, times=1)
    result = instantly_mod.campaign_info(dict(params, vendor_timeout=0.3, vendor_retries=1))
    assert result["api"]["retries"] == 1 and len(result["campaigns"]) == 4


def test_vendor_down(params, platform):
    port = free_port()
    with pytest.raises(CerniqError) as err:
        instantly_mod.set_campaign_state(dict(params, instantly_base_url="http://127.0.0.1:{0}".format(port),
                                              vendor_retries=0), state="paused", id=str(uuid.uuid4()))
    assert err.value.msg == ("cannot reach Instantly API at http://127.0.0.1:{0}: [Errno 111] Connection refused (1 "
                             "attempt). Check cerniq_instantly_base_url and that the host is reachable from the "
                             "managed host".format(port))
    assert platform.audit() == []


def test_no_secret_in_any_failure_message(params, instantly):
    messages = []
    for kind in (401, 404, 429, 500, "malformed"):
        instantly.reset()
        instantly.add_fault(kind, times=10)
        with pytest.raises(CerniqError) as err:
            instantly_mod.campaign_info(dict(params, vendor_retries=0))
        messages.append(err.value.msg)
    assert len(set(messages)) == 5 and not any(INSTANTLY_KEY in m for m in messages)
