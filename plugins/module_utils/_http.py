# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP client of the vendor modules (Instantly, TimelinesAI), on `requests`.

Bearer auth, a timeout on every call, bounded retries on 429/5xx with backoff that honour Retry-After (urllib3's
`Retry` on requests' `HTTPAdapter`; we add only the cap on the total wait and the figures), a client-side rate
limiter, plain http:// refused unless allowed, and one clear line for every failure with the vendor's own error text
in it. The token is never part of a message: it only ever travels in the Authorization header.

The argument spec here and the doc fragment plugins/doc_fragments/_vendors.py describe the same options;
`module_defaults: {group/cerniq.outreach.vendors: "{{ cerniq_vendor_defaults }}"}` sets them once for a play.
"""

from __future__ import annotations

import collections
import re
import time
import traceback
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import requests
    import requests.exceptions
    from requests.adapters import HTTPAdapter
    from urllib3.exceptions import (
        InvalidHeader,
        MaxRetryError,
        NewConnectionError,
        ProtocolError,
        ResponseError,
    )
    from urllib3.exceptions import TimeoutError as Urllib3Timeout
    from urllib3.util.retry import Retry
    REQUESTS_IMPORT_ERROR = None
except ImportError:
    requests = None
    HTTPAdapter = Retry = object
    REQUESTS_IMPORT_ERROR = traceback.format_exc()

INSTANTLY_DEFAULT_URL = "https://api.instantly.ai"
TIMELINESAI_DEFAULT_URL = "https://app.timelines.ai/integrations/api"
DEFAULT_TIMEOUT = 15.0
DEFAULT_RETRIES = 4
DEFAULT_TIMELINESAI_RATE_LIMIT = 50
# 429 is "not processed, come back later"; these 5xx are a gateway or server that may answer the next time.
RETRY_STATUSES = (429, 500, 502, 503, 504)
# A send (a call the vendor must not act on twice) is repeated only when the vendor surely did not act on it.
SEND_RETRY_STATUSES = (429,)
# urllib3's backoff: no pause before the first retry, then 1, 2, 4 ... s, each plus up to BACKOFF_JITTER, at most
# BACKOFF_CAP; a Retry-After header replaces it.
BACKOFF_FACTOR = 0.5
BACKOFF_JITTER = 0.5
BACKOFF_CAP = 30.0
# The most one call waits between its attempts in all: a vendor asking for more is better answered by a clear failure
# than by a hung play.
WAIT_CAP = 120.0
USER_AGENT = "cerniq.outreach (Ansible collection)"
MASK = "********"
UNSURE_SEND = "It was not repeated, since the vendor may have acted on it: check there before sending again"


def vendor_argument_spec():
    """The vendors group's options. Every vendor module takes both vendors' options: module_defaults for
    group/cerniq.outreach.vendors (cerniq_vendor_defaults) hand all of them to each one."""
    return dict(
        instantly_base_url=dict(type="str", default=INSTANTLY_DEFAULT_URL,
                                fallback=(env_fallback, ["CERNIQ_INSTANTLY_BASE_URL"])),
        instantly_api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["CERNIQ_INSTANTLY_API_KEY"])),
        timelinesai_base_url=dict(type="str", default=TIMELINESAI_DEFAULT_URL,
                                  fallback=(env_fallback, ["CERNIQ_TIMELINESAI_BASE_URL"])),
        timelinesai_api_token=dict(type="str", no_log=True,
                                   fallback=(env_fallback, ["CERNIQ_TIMELINESAI_API_TOKEN"])),
        timelinesai_rate_limit=dict(type="int", default=DEFAULT_TIMELINESAI_RATE_LIMIT),
        allow_http=dict(type="bool", default=False),
        vendor_timeout=dict(type="float", default=DEFAULT_TIMEOUT),
        vendor_retries=dict(type="int", default=DEFAULT_RETRIES),
    )


def require_requests(module):
    if requests is None:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)


def vendor_module(options, groups, **module_kwargs):
    """The AnsibleModule of a vendor module: both vendors' options, those of its other action groups `groups`
    (see common_argument_spec) and its own, check mode on, and the libraries it needs checked (PostgreSQL for the
    audit log and the phone/lead tables)."""
    argument_spec = common_argument_spec(*groups)
    argument_spec.update(vendor_argument_spec())
    argument_spec.update(options)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_kwargs)
    require_requests(module)
    if "postgres" in groups:
        require_libraries(module, need_redis=False)
    return module


class VendorSettings(object):
    """How to name a vendor and its settings in a message, so every failure says what to change."""

    def __init__(self, name, url_setting, token_setting, token_env):
        self.name = name
        self.url_setting = url_setting
        self.token_setting = token_setting
        self.token_env = token_env


class RateLimiter(object):
    """At most `limit` calls in any `period` seconds, for each (limit, period) window: a sliding log per window.

    Per process: two plays calling the same vendor at once share the vendor's limit but not this limiter.
    Each window is `margin` seconds longer than the vendor's: the vendor counts arrivals, and network delays vary.
    """

    def __init__(self, windows, clock=time.monotonic, sleep=time.sleep, margin=0.1):
        for limit, period in windows:
            if int(limit) < 1 or float(period) <= 0:
                raise CerniqError("a rate limit needs at least 1 request per period, got {0} per {1} s".format(
                    limit, period))
        # Only the last `limit` calls of a window decide when the next one may go.
        self.windows = [(int(limit), float(period) + margin, collections.deque(maxlen=int(limit)))
                        for limit, period in windows]
        self.clock = clock
        self.sleep = sleep
        self.waited = 0.0

    def acquire(self):
        now = self.clock()
        ready_at = now
        for limit, period, hits in self.windows:
            if len(hits) >= limit:
                ready_at = max(ready_at, hits[0] + period)
        if ready_at > now:
            self.sleep(ready_at - now)
            self.waited += ready_at - now
        stamp = max(self.clock(), ready_at)
        for _limit, _period, hits in self.windows:
            hits.append(stamp)


def validate_base_url(url, settings, allow_http):
    """The base URL without a trailing slash; refuses anything but https:// (http:// only with allow_http)."""
    text = (url or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise CerniqError("{0} base URL {1!r} is not an http(s) URL: check {2}".format(
            settings.name, _redact_userinfo(text), settings.url_setting))
    if parts.username or parts.password:
        raise CerniqError("{0} base URL must not carry credentials (user:password@): put the token in {1} "
                          "and fix {2}".format(settings.name, settings.token_setting, settings.url_setting))
    if parts.query or parts.fragment:
        raise CerniqError("{0} base URL {1!r} must not have a query or fragment: check {2}".format(
            settings.name, text, settings.url_setting))
    if parts.scheme == "http" and not allow_http:
        raise CerniqError("{0} base URL {1} is plain http://: the token would travel unencrypted. Use https://, or "
                          "set allow_http=true (cerniq_vendor_allow_http) for a local fake only".format(
                              settings.name, text))
    return text.rstrip("/")


def _redact_userinfo(text):
    return re.sub(r"//[^/@]*@", "//{0}@".format(MASK), text)


def validate_token(token, settings):
    value = (token or "").strip()
    if not value:
        raise CerniqError("{0} token is not set: set {1} in the inventory (vaulted) or the {2} environment "
                          "variable".format(settings.name, settings.token_setting, settings.token_env))
    # requests quotes an invalid header value in its exception: refuse it here so the token is never echoed.
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise CerniqError("{0} token in {1} contains whitespace or control characters (a pasted line break?): "
                          "set it again".format(settings.name, settings.token_setting))
    return value


class _BearerAuth(object):
    """requests auth callable: the Authorization header and nothing else (its repr never shows the token)."""

    def __init__(self, token):
        self._token = token

    def __call__(self, request):
        request.headers["Authorization"] = "Bearer " + self._token
        return request

    def __repr__(self):
        return "<BearerAuth {0}>".format(MASK)


class _VendorRetry(Retry):
    """urllib3's retry policy for one call of a VendorClient, which it tells of every retry before urllib3 sleeps.

    The client plans the pause (Retry-After, else urllib3's backoff), refuses one that would take the call past
    WAIT_CAP (urllib3 then hands back the last answer, or raises the last error), counts it, sleeps and waits for the
    rate limiter.
    """

    # Only status_forcelist names the statuses retried (urllib3 would add a 413 or 503 carrying Retry-After, also on a
    # send).
    RETRY_AFTER_STATUS_CODES = frozenset()

    def __init__(self, *args, client=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.client = client
        self.planned = 0.0

    def new(self, **kw):
        retry = super().new(**kw)
        retry.client = self.client
        return retry

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        retry.planned = self.client.plan_pause(retry, response)
        if retry.planned is None:
            reason = error or ResponseError("the pauses would pass {0:g} s".format(WAIT_CAP))
            raise MaxRetryError(_pool, url, reason) from reason
        return retry

    def sleep(self, response=None):
        self.client.pause(self.planned)


class VendorClient(object):
    """JSON over HTTPS to one vendor. `request` returns the decoded body or raises one CerniqError.

    `stats` counts requests, retries and seconds spent waiting, for the module's figures.
    """

    def __init__(self, settings, base_url, token, allow_http=False, timeout=DEFAULT_TIMEOUT,
                 retries=DEFAULT_RETRIES, rate_windows=(), sleep=time.sleep, clock=time.monotonic,
                 backoff_factor=BACKOFF_FACTOR):
        if requests is None:
            raise CerniqError("the Python library requests is needed on the managed host (requirements.txt)")
        self.settings = settings
        self.base_url = validate_base_url(base_url, settings, allow_http)
        self._token = validate_token(token, settings)
        if timeout is None or float(timeout) <= 0:
            raise CerniqError("vendor_timeout must be a positive number of seconds, got {0!r}".format(timeout))
        if retries is None or int(retries) < 0:
            raise CerniqError("vendor_retries must be 0 or more, got {0!r}".format(retries))
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.sleep = sleep
        self.backoff_factor = backoff_factor
        self.limiter = RateLimiter(rate_windows, clock=clock, sleep=sleep)
        self.stats = dict(requests=0, retries=0, waited_seconds=0.0)
        self._call = None
        self._adapter = HTTPAdapter()
        self.session = requests.Session()
        self.session.mount("https://", self._adapter)
        self.session.mount("http://", self._adapter)
        # As session auth, so a ~/.netrc entry for the vendor's host cannot replace the token; the environment's
        # proxies and CA bundle (REQUESTS_CA_BUNDLE) still apply, as the execution environment may need them.
        self.session.auth = _BearerAuth(self._token)
        self.session.headers.update({"Accept": "application/json", "User-Agent": USER_AGENT})

    def figures(self):
        figures = dict(self.stats)
        figures["waited_seconds"] = round(figures["waited_seconds"] + self.limiter.waited, 3)
        return figures

    def retry_policy(self, idempotent):
        """urllib3's Retry for one call: 429/5xx and lost connections retried, `vendor_retries` times in all.

        A send (`idempotent=False`) is repeated only on a 429 or when the connection was never made: after a read
        timeout or a dropped answer the vendor may have acted. TLS failures are not retried (`other=0`).
        """
        return _VendorRetry(
            total=self.retries, read=None if idempotent else False, other=0,
            status_forcelist=RETRY_STATUSES if idempotent else SEND_RETRY_STATUSES, allowed_methods=None,
            backoff_factor=self.backoff_factor, backoff_jitter=BACKOFF_JITTER, backoff_max=BACKOFF_CAP,
            respect_retry_after_header=True, raise_on_status=False, client=self)

    def plan_pause(self, retry, response):
        """Seconds to pause before the next attempt of this call, or None when that would pass WAIT_CAP."""
        retry_after = None
        if response is not None:
            try:
                retry_after = retry.get_retry_after(response)
            except InvalidHeader:
                pass  # not seconds nor an HTTP date: urllib3's backoff instead
        seconds = retry_after if retry_after is not None else retry.get_backoff_time()
        if self._call["waited"] + seconds > WAIT_CAP:
            self._call["refused_retry_after"] = retry_after
            return None
        return seconds

    def pause(self, seconds):
        self.stats["retries"] += 1
        self.stats["waited_seconds"] += seconds
        self._call["waited"] += seconds
        self.sleep(seconds)
        self._attempt()

    def _attempt(self):
        self.limiter.acquire()
        self.stats["requests"] += 1
        self._call["attempts"] += 1

    def request(self, method, path, params=None, json_body=None, idempotent=True, hints=None, accept=(200,)):
        """Call `method path` and return the decoded JSON body of a status in `accept`.

        `idempotent=False` (a send): only retried when the vendor surely did not act on it (429, no connection).
        `hints` maps a status to what the operator should do about it, e.g. {404: "check the campaign id"}.
        """
        what = "{0} {1}".format(method, path)
        self._call = dict(attempts=0, waited=0.0, refused_retry_after=None)
        self._adapter.max_retries = self.retry_policy(idempotent)
        self._attempt()
        try:
            resp = self.session.request(method, self.base_url + path, params=params, json=json_body,
                                        timeout=self.timeout, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            raise CerniqError("{0} at {1}: TLS failed for {2}: {3}. Check {4} and the CA bundle".format(
                self.settings.name, self.base_url, what, _root_cause(exc), self.settings.url_setting)) from exc
        except (requests.exceptions.ConnectTimeout, requests.exceptions.ConnectionError,
                requests.exceptions.ReadTimeout) as exc:
            message = self._transport_message(exc, what, self._call["attempts"])
            if not idempotent and _may_have_arrived(exc):
                message += ". " + UNSURE_SEND
            raise CerniqError(message) from exc
        except requests.exceptions.RequestException as exc:
            raise CerniqError("{0} at {1}: {2} failed: {3}".format(
                self.settings.name, self.base_url, what, self._scrub(_root_cause(exc)))) from exc
        status, asked = resp.status_code, self._call["refused_retry_after"]
        if asked is not None:
            waited = self._call["waited"]
            allowed = "{0:.0f} s left of the {1:.0f} s".format(WAIT_CAP - waited, WAIT_CAP) if waited else \
                "{0:.0f} s".format(WAIT_CAP)
            raise CerniqError("{0}: {1} answered {2} and asks to retry after {3:.0f} s (Retry-After), longer than the "
                              "{4} this module waits: run it again later".format(
                                  self.settings.name, what, status, asked, allowed))
        if status in accept:
            return self._decode(resp, what)
        message = self._status_message(resp, what, self._call["attempts"], hints or {})
        if status >= 500 and not idempotent:
            message += ". " + UNSURE_SEND
        raise CerniqError(message, http_status=status)

    def _decode(self, resp, what):
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError as exc:
            raise CerniqError("{0}: {1} answered {2} but the body is not valid JSON ({3} bytes, starting {4!r}): a "
                              "proxy may have cut the response or the base URL points elsewhere ({5}); nothing "
                              "was changed after this call".format(
                                  self.settings.name, what, resp.status_code, len(resp.content),
                                  self._scrub(resp.text[:60]), self.settings.url_setting)) from exc

    def _transport_message(self, exc, what, attempts):
        cause = self._scrub(_root_cause(exc))
        tries = _attempts(attempts)
        if _timed_out(exc):
            return ("{0} at {1}: {2} got no answer within {3:g} s ({4}). The vendor may be down or slow: check its "
                    "status page, or raise vendor_timeout".format(
                        self.settings.name, self.base_url, what, self.timeout, tries))
        return ("cannot reach {0} at {1}: {2} ({3}). Check {4} and that the host is reachable from the managed "
                "host".format(self.settings.name, self.base_url, cause, tries, self.settings.url_setting))

    def _status_message(self, resp, what, attempts, hints):
        status = resp.status_code
        text = "{0}: {1} answered {2} {3}".format(self.settings.name, what, status, resp.reason or "")
        detail = self._scrub(vendor_error_text(resp)).rstrip(". ")
        if detail:
            text += ": " + detail
        hint = hints.get(status) or self._default_hint(status, attempts)
        if 300 <= status < 400:
            hint = "redirected to {0}: check {1} (the vendor's API root, with https://)".format(
                resp.headers.get("Location"), self.settings.url_setting)
        if hint:
            text += ". " + hint[0].upper() + hint[1:]
        return text

    def _default_hint(self, status, attempts):
        settings = self.settings
        if status == 401:
            return "the token was refused: check {0} (or {1}); it may have been regenerated".format(
                settings.token_setting, settings.token_env)
        if status == 402:
            return "the vendor workspace has no active paid plan"
        if status == 403:
            return "the token lacks the permission (scope) for this call, or a quota is used up"
        if status == 404:
            return "check {0}: it must be the API root, e.g. {1}".format(
                settings.url_setting,
                INSTANTLY_DEFAULT_URL if "instantly" in settings.url_setting else TIMELINESAI_DEFAULT_URL)
        if status == 429:
            return ("still rate limited after {0}: something else is using the workspace's quota; run it "
                    "again later".format(_attempts(attempts)))
        if status >= 500:
            return "the vendor is failing ({0}): check its status page and run it again later".format(
                _attempts(attempts))
        return None

    def _scrub(self, text):
        return (text or "").replace(self._token, MASK)


def vendor_error_text(resp):
    """The vendor's own words from an error body: Instantly's Fastify `message`, TimelinesAI's `message`,
    `error_code` and field errors; the title of an HTML page; else the start of the text."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = []
        message = body.get("message") or body.get("error")
        if message:
            parts.append(str(message))
        if body.get("error_code"):
            parts.append("error_code {0}".format(body["error_code"]))
        for item in body.get("errors") or []:
            if isinstance(item, dict):
                parts.append("{0}: {1}".format(", ".join(str(f) for f in item.get("fields") or []), item.get("msg")))
        return "; ".join(parts)
    text = resp.text or ""
    if "<html" in text[:200].lower() or "<!doctype" in text[:200].lower():
        title = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        return "an HTML page{0}".format(" ({0})".format(title.group(1).strip()) if title else "")
    return " ".join(text.split())[:200]


def _urllib3_error(exc):
    """The urllib3 error under a requests exception: the last one when urllib3 gave up retrying (MaxRetryError)."""
    inner = exc.args[0] if exc.args else None
    return getattr(inner, "reason", inner)


def _timed_out(exc):
    inner = _urllib3_error(exc)
    return isinstance(exc, requests.exceptions.Timeout) or (
        isinstance(inner, Urllib3Timeout) and not isinstance(inner, NewConnectionError))


def _may_have_arrived(exc):
    """The request reached the vendor, which may have acted: the answer timed out or the connection dropped."""
    return isinstance(exc, requests.exceptions.ReadTimeout) or isinstance(_urllib3_error(exc), ProtocolError)


def _attempts(count):
    return "{0} attempt{1}".format(count, "" if count == 1 else "s")


def _root_cause(exc):
    """The innermost reason of a requests/urllib3 exception ('[Errno 111] Connection refused'), not the repr chain."""
    text = str(exc)
    match = re.search(r"\[Errno -?\d+\] [^'\")\]]+", text)
    if match:
        return match.group(0).strip()
    for marker in ("Read timed out", "timed out", "Name or service not known", "certificate verify failed",
                   "Connection refused", "Connection reset", "Remote end closed connection"):
        if marker in text:
            return marker
    return text[:200] or type(exc).__name__
