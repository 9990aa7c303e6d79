"""Pure parts of the vendor HTTP client: which failures its retry policy repeats, the rate limiter (on a virtual
clock), URL and token checks, and how a vendor's error body becomes one line. The client itself is exercised over
real HTTP in tests/integration/test_instantly_faults.py."""

from __future__ import annotations

import pytest
import requests
from urllib3.exceptions import MaxRetryError, ReadTimeoutError, SSLError

from ansible_collections.cerniq.outreach.plugins.module_utils import _http as http
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

SETTINGS = http.VendorSettings("Instantly API", "cerniq_instantly_base_url", "cerniq_instantly_api_key",
                               "CERNIQ_INSTANTLY_API_KEY")


class VirtualClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture()
def client():
    return http.VendorClient(SETTINGS, "https://api.instantly.ai", "token")


def test_statuses_retried_on_a_call_that_may_be_repeated(client):
    policy = client.retry_policy(idempotent=True)
    assert [s for s in range(400, 600) if policy.is_retry("POST", s, has_retry_after=True)] == list(http.RETRY_STATUSES)
    assert policy.total == http.DEFAULT_RETRIES and policy.respect_retry_after_header and not policy.raise_on_status


def test_a_send_is_repeated_only_when_the_vendor_did_not_act_on_it(client):
    policy = client.retry_policy(idempotent=False)
    # A 503 (even with Retry-After) may come after the vendor acted; a 429 says it did not.
    assert [s for s in range(400, 600) if policy.is_retry("POST", s, has_retry_after=True)] == [429]
    # An answer that timed out may come after the vendor acted: urllib3 raises it at once, it is not repeated.
    with pytest.raises(ReadTimeoutError):
        policy.increment("POST", "/messages", error=ReadTimeoutError(None, "/messages", "read timed out"))


def test_a_tls_failure_is_not_retried(client):
    with pytest.raises(MaxRetryError):
        client.retry_policy(idempotent=True).increment("GET", "/x", error=SSLError("certificate verify failed"))


def test_rate_limiter_never_lets_more_than_the_limit_into_a_window():
    clock = VirtualClock()
    limiter = http.RateLimiter([(50, 60.0)], clock=clock, sleep=clock.sleep, margin=0.0)
    stamps = []
    for _call in range(120):
        limiter.acquire()
        stamps.append(clock.now)
    for i, start in enumerate(stamps):
        assert sum(1 for t in stamps[i:] if t - start < 60.0) <= 50
    assert stamps[49] == 100.0 and stamps[50] == 160.0 and stamps[100] == 220.0
    assert limiter.waited == 120.0


def test_rate_limiter_honours_every_window():
    clock = VirtualClock()
    limiter = http.RateLimiter([(3, 1.0), (5, 10.0)], clock=clock, sleep=clock.sleep, margin=0.0)
    stamps = []
    for _call in range(6):
        limiter.acquire()
        stamps.append(clock.now)
    assert stamps == [100.0, 100.0, 100.0, 101.0, 101.0, 110.0]


def test_rate_limiter_leaves_a_margin_for_network_delays():
    clock = VirtualClock()
    limiter = http.RateLimiter([(2, 1.0)], clock=clock, sleep=clock.sleep)
    for _call in range(3):
        limiter.acquire()
    assert clock.sleeps == [1.1]


def test_rate_limiter_refuses_a_zero_limit():
    with pytest.raises(CerniqError, match="at least 1 request"):
        http.RateLimiter([(0, 60.0)])


@pytest.mark.parametrize(("url", "allow_http", "expected"), [
    ("https://api.instantly.ai/", False, "https://api.instantly.ai"),
    ("  https://app.timelines.ai/integrations/api  ", False, "https://app.timelines.ai/integrations/api"),
    ("http://127.0.0.1:18080", True, "http://127.0.0.1:18080"),
])
def test_base_url_accepted(url, allow_http, expected):
    assert http.validate_base_url(url, SETTINGS, allow_http) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("http://api.instantly.ai", "is plain http://"),
    ("api.instantly.ai", "is not an http(s) URL: check cerniq_instantly_base_url"),
    ("", "is not an http(s) URL"),
    (None, "is not an http(s) URL"),
    ("https://user:pw-SECRET@api.instantly.ai", "must not carry credentials"),
    ("https://api.instantly.ai/?key=1", "must not have a query"),
    ("https://", "is not an http(s) URL"),
])
def test_base_url_refused(url, message):
    with pytest.raises(CerniqError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        http.validate_base_url(url, SETTINGS, False)
    assert "SECRET" not in err.value.msg


@pytest.mark.parametrize("token", ["", None, "   "])
def test_missing_token_names_the_setting_and_variable(token):
    with pytest.raises(CerniqError, match="cerniq_instantly_api_key .* CERNIQ_INSTANTLY_API_KEY"):
        http.validate_token(token, SETTINGS)


@pytest.mark.parametrize("token", ["abc SECRET", "abc\nSECRET", "abc\x00SECRET", "abc\tSECRET"])
def test_token_with_whitespace_is_refused_without_echoing_it(token):
    with pytest.raises(CerniqError) as err:
        http.validate_token(token, SETTINGS)
    assert "SECRET" not in err.value.msg


def response(status, body, content_type="application/json"):
    resp = requests.Response()
    resp.status_code = status
    resp.headers["Content-Type"] = content_type
    resp._content = body.encode()
    return resp


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    ('{"statusCode":404,"error":"Not Found","message":"Campaign not found"}', "application/json",
     "Campaign not found"),
    ('{"message":"Start Date must be earlier than End Date"}', "application/json",
     "Start Date must be earlier than End Date"),
    ('{"status":"error","message":"Invalid request: url must be valid","error_code":"validation_error",'
     '"errors":[{"fields":["url"],"msg":"must be a valid http(s) URL"}]}', "application/json",
     "Invalid request: url must be valid; error_code validation_error; url: must be a valid http(s) URL"),
    ('{"error":"Too Many Requests","message":"Rate limit exceeded."}', "application/json", "Rate limit exceeded."),
    ("<!DOCTYPE html>\n<html><head><title>Page not found | TimelinesAI</title></head></html>", "text/html",
     "an HTML page (Page not found | TimelinesAI)"),
    ("Unauthorized", "text/plain", "Unauthorized"),
    ("", "text/plain", ""),
])
def test_vendor_error_text(body, content_type, expected):
    assert http.vendor_error_text(response(400, body, content_type)) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("HTTPConnectionPool(host='127.0.0.1', port=1): Max retries exceeded with url: /x (Caused by "
     "NewConnectionError('<urllib3.connection.HTTPConnection object at 0x7f>: Failed to establish a new "
     "connection: [Errno 111] Connection refused'))", "[Errno 111] Connection refused"),
    ("HTTPSConnectionPool(host='nope.invalid', port=443): ... [Errno -2] Name or service not known'))",
     "[Errno -2] Name or service not known"),
    ("HTTPConnectionPool(host='x', port=80): Read timed out. (read timeout=0.3)", "Read timed out"),
])
def test_root_cause_is_the_innermost_reason(text, expected):
    assert http._root_cause(Exception(text)) == expected


def test_vendor_argument_spec_matches_the_doc_fragment():
    import yaml

    from ansible_collections.cerniq.outreach.plugins.doc_fragments._vendors import ModuleDocFragment

    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = http.vendor_argument_spec()
    assert set(documented) == set(spec)
    for name, option in spec.items():
        assert documented[name]["type"] == option["type"], name
        assert documented[name].get("default") == option.get("default"), name
        assert bool(option.get("no_log")) == name.endswith(("_api_key", "_api_token")), name
