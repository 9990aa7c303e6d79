"""Shared base for the vendor fakes: a small stdlib HTTP server with routing, a request record,
injectable faults, a sliding-window rate limit, seedable state and an admin API under ``/__fake__``.

A vendor fake subclasses :class:`FakeServer`, names its OpenAPI document (:attr:`FakeServer.openapi_document`),
lists its routes in :meth:`FakeServer.routes` and says how its vendor shapes errors
(:meth:`FakeServer.error_response`, :meth:`FakeServer.route_not_found`, :meth:`FakeServer.rate_limited_response`,
:meth:`FakeServer.unauthorized`).

The document holds the fake to it: a route it lacks cannot be served (the fake refuses to start, unless the route is
named in :attr:`FakeServer.undocumented_routes`), and every answer a route gives is validated with openapi-core
before it leaves; one the document does not allow goes out as a 500 naming the breach, so the test that drove it
fails where the drift happened. A request that breaks the document's parameters or body gets the vendor's 400
(:meth:`FakeServer.invalid_request`) before a handler runs, so handlers check only what the document cannot say.
Faults, rate limits, unknown routes and the answers to forbidden requests are the vendor's behaviour outside the
document and are not validated.
"""

from __future__ import annotations

import argparse
import collections
import copy
import http
import json
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes import OPENAPI_DIR

ADMIN_PREFIX = "/__fake__"
JSON_TYPE = "application/json; charset=utf-8"

# A truncated document: what a proxy cutting a response short, or a buggy gateway, hands a client.
MALFORMED_JSON_BODY = b'{"items": [{"id": "0'


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    _json: Any = None
    json_error: str | None = None

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    @property
    def json(self) -> Any:
        return self._json

    @property
    def bearer_token(self) -> str | None:
        value = self.headers.get("authorization")
        if value is None:
            return None
        scheme, token = value.partition(" ")[::2]
        return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Response(status, body, {"Content-Type": JSON_TYPE, **(headers or {})})


def text_response(status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode("utf-8"), {"Content-Type": content_type})


def reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


FAULT_KINDS = ("status", "malformed", "delay")


@dataclass
class Fault:
    """One injected misbehaviour, served to the next ``times`` requests it matches.

    ``kind`` is ``status`` (answer ``status`` in the vendor's error shape, e.g. 401/404/429/500),
    ``malformed`` (200 with a truncated JSON body) or ``delay`` (sleep ``seconds``, then answer normally).
    """

    kind: str
    status: int | None = None
    times: int = 1
    method: str | None = None
    path: str | None = None  # regex, searched in the request path
    retry_after: int | float | None = None
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.kind == "status" and not (self.status and 400 <= self.status <= 599):
            raise ValueError("a status fault needs a 4xx/5xx status")
        if self.times < 1:
            raise ValueError("times must be >= 1")
        self._path_re = re.compile(self.path) if self.path else None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        """Accept the admin API's forgiving form: ``{"kind": 429}``, ``{"kind": "500"}``, ``{"status": 404}``,
        ``{"kind": "malformed"}``, ``{"kind": "delay", "seconds": 2}``; plus ``times``, ``method``, ``path``,
        ``retry_after``."""
        data = dict(data)
        kind = data.pop("kind", None)
        status = data.pop("status", None)
        if isinstance(kind, int) or (isinstance(kind, str) and kind.isdigit()):
            status, kind = int(kind), "status"
        elif kind is None and status is not None:
            kind = "status"
        allowed = {"times", "method", "path", "retry_after", "seconds"}
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(kind=str(kind), status=int(status) if status is not None else None, **data)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self._path_re or bool(self._path_re.search(path))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "status": self.status,
            "times": self.times,
            "method": self.method,
            "path": self.path,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
        }


class RateLimit:
    """Sliding window: at most ``limit`` accepted requests in any ``window`` seconds.

    Rejected requests are not counted, so a client that backs off gets through again."""

    def __init__(self, limit: int, window: float = 1.0, retry_after: int | float | None = None):
        if limit < 1 or window <= 0:
            raise ValueError("rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.retry_after = retry_after
        self._hits: collections.deque[float] = collections.deque()

    def allow(self, now: float) -> bool:
        while self._hits and now - self._hits[0] >= self.window:
            self._hits.popleft()
        if len(self._hits) >= self.limit:
            return False
        self._hits.append(now)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"limit": self.limit, "window": self.window, "retry_after": self.retry_after}


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class _Route:
    method: str
    template: str  # as the OpenAPI document writes the path, without the server's base path
    handler: Handler


@dataclass(frozen=True)
class Problem:
    """One way a request breaks its document: where (``querystring``, ``params``, ``headers``, ``body``; the
    names Fastify uses), the field path inside it, the JSON Schema keyword that failed and that keyword's value
    (``maximum`` 100, ``required`` 'bl_value', ``type`` 'integer')."""

    location: str
    path: tuple[str | int, ...]
    keyword: str
    value: Any = None


_LOCATIONS = {"query": "querystring", "path": "params", "header": "headers", "cookie": "cookies"}


class Document:
    """A vendor's OpenAPI document as openapi-core reads it: the operations it has, what a request breaks and
    whether an answer keeps to it. The documents themselves are validated once by the contract tests, not on every
    load."""

    def __init__(self, name: str):
        # imported here: a second of start-up that a fake pays once per process (see document())
        from openapi_core import Config, OpenAPI
        from openapi_core.validation.request import validators

        self.spec = OpenAPI.from_file_path(str(OPENAPI_DIR / name), config=Config(spec_validator_cls=None))
        paths = self.spec.spec / "paths"
        self.operations = {(method.upper(), tpl) for tpl in paths.keys() for method in (paths / tpl).keys()}
        with (self.spec.spec / "servers" / 0 / "url").open() as url:  # the vendor's URL a fake stands for
            server = urlsplit(url)
        self.host_url = f"{server.scheme}://{server.netloc}"
        with (self.spec.spec / "openapi").open() as version:
            flavour = "V31" if version.startswith("3.1") else "V30"
        # the request's parameters and body only: a fake answers missing or wrong credentials itself (401)
        self._request_checks = [
            getattr(validators, f"{flavour}RequestParametersValidator")(self.spec.spec),
            getattr(validators, f"{flavour}RequestBodyValidator")(self.spec.spec),
        ]

    def _mock_request(self, req: Request) -> Any:
        from openapi_core.testing import MockRequest

        request = MockRequest(
            self.host_url,
            req.method,
            req.path,
            args=[(name, value) for name, values in req.query.items() for value in values],  # type: ignore[arg-type]
            headers=req.headers,
            content_type=req.headers.get("content-type", ""),
        )
        request.body = req.body or None  # no body at all, not an empty one (MockRequest would say b"")
        return request

    def request_problems(self, req: Request) -> list[Problem]:
        """How ``req`` breaks the document's parameters and request body, in the order the document checks."""
        request = self._mock_request(req)
        problems: list[Problem] = []
        for check in self._request_checks:
            for error in check.iter_errors(request):
                problems.extend(_problems(error))
        return problems

    def breach(self, req: Request, resp: Response) -> str | None:
        """How ``resp`` breaks the document as the answer to ``req``; None when it keeps to it."""
        from openapi_core.exceptions import OpenAPIError
        from openapi_core.testing import MockResponse

        response = MockResponse(
            resp.body, status_code=resp.status, headers=resp.headers, content_type=resp.content_type or ""
        )
        try:
            self.spec.validate_response(self._mock_request(req), response)
        except OpenAPIError as exc:
            return _explain(exc)
        return None


def _problems(error: Exception) -> list[Problem]:
    """openapi-core's request error as Problems: the schema errors beneath it, or the missing or uncastable value."""
    name = getattr(error, "name", None)
    location = _LOCATIONS.get(getattr(error, "location", None) or "", "body")
    base: tuple[str | int, ...] = (name,) if name else ()
    cause = error.__cause__
    schema_errors = list(getattr(cause, "schema_errors", ()))
    if schema_errors:
        problems = []
        for schema_error in schema_errors:
            value = schema_error.validator_value
            if schema_error.validator == "required":  # the property missing, not the whole list
                value = next((r for r in value if r not in (schema_error.instance or {})), value)
            problems.append(Problem(location, (*base, *schema_error.absolute_path), schema_error.validator, value))
        return problems
    kind = type(error).__name__
    if kind.startswith("MissingRequired"):  # MissingRequiredParameter, MissingRequiredRequestBody
        return [Problem(location, (), "required", name) if name else Problem(location, (), "type", "object")]
    if kind.startswith("Missing"):  # an optional parameter or request body left out: nothing wrong
        return []
    return [Problem(location, base, "type", getattr(cause, "type", None) or "object")]  # a value that does not cast


@cache
def document(name: str) -> Document:
    return Document(name)


def _compile(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template)
    return re.compile(f"^{pattern}$")


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeServer:
    """Base class of a vendor fake.

    ``api_key``: the one accepted bearer token (``None`` accepts any non-empty token).
    ``state``: initial state (dict); ``state_file``: JSON file read instead when given.
    ``rate_limit``/``rate_window``: enable the rate limit from the start.
    ``config``: vendor-specific knobs, also settable via ``POST /__fake__/config``.
    """

    vendor = "fake"
    base_path = ""  # the path part of the vendor's server URL (spec ``servers[0].url``)
    openapi_document: str | None = None  # the vendor's document in tests/fakes/openapi/
    # (method, path template) served although the document lacks them; each says why where it is set
    undocumented_routes: frozenset[tuple[str, str]] = frozenset()
    # (method, path template, status) answered as the vendor does where the document's schema cannot be met
    undocumented_responses: frozenset[tuple[str, str, int]] = frozenset()
    default_config: dict[str, Any] = {}
    verbose = False

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = "test-key",
        state: dict[str, Any] | None = None,
        state_file: str | Path | None = None,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        config: dict[str, Any] | None = None,
        max_records: int = 10_000,
    ):
        self.host = host
        self.port = port
        self.api_key = api_key
        self._lock = threading.RLock()
        if state_file is not None:
            state = json.loads(Path(state_file).read_text(encoding="utf-8"))
        self._initial_state = copy.deepcopy(state if state is not None else self.empty_state())
        self.state: dict[str, Any] = self.normalize_state(copy.deepcopy(self._initial_state))
        self._initial_config = {**copy.deepcopy(self.default_config), **(config or {})}
        self.config: dict[str, Any] = copy.deepcopy(self._initial_config)
        self._rate_args = (rate_limit, rate_window)
        self.rate_limiter: RateLimit | None = RateLimit(rate_limit, rate_window) if rate_limit else None
        self.faults: list[Fault] = []
        self.records: collections.deque[dict[str, Any]] = collections.deque(maxlen=max_records)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        routes = list(self.routes())
        self._check_routes_against_document(routes)
        self._routes = [
            (method, _compile(self.base_path + tpl), _Route(method, tpl, handler)) for method, tpl, handler in routes
        ]
        self._admin = [(method, _compile(ADMIN_PREFIX + tpl), handler) for method, tpl, handler in self._all_admin()]

    # ---- to be provided by a vendor -------------------------------------------------------------------------

    def routes(self) -> Iterable[tuple[str, str, Handler]]:
        return []

    def admin_routes(self) -> Iterable[tuple[str, str, Handler]]:
        return []

    def empty_state(self) -> dict[str, Any]:
        return {}

    def normalize_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults into a seeded state so a partial seed file works."""
        return state

    def authenticate(self, req: Request) -> Response | None:
        token = req.bearer_token
        if token is None:
            return self.unauthorized(req, missing=True)
        if not token or (self.api_key is not None and token != self.api_key):
            return self.unauthorized(req, missing=False)
        return None

    def unauthorized(self, req: Request, *, missing: bool) -> Response:
        return self.error_response(401, "Unauthorized")

    def error_response(self, status: int, message: str | None = None) -> Response:
        return json_response(status, {"error": reason(status), "message": message or reason(status)})

    def rate_limited_response(self, retry_after: int | float | None) -> Response:
        resp = self.error_response(429)
        if retry_after is not None:
            resp.headers["Retry-After"] = _retry_after_value(retry_after)
        return resp

    def route_not_found(self, req: Request) -> Response:
        return json_response(404, {"error": "Not Found"})

    def invalid_json(self, req: Request) -> Response:
        return self.error_response(400, "Body is not valid JSON")

    def invalid_request(self, req: Request, problems: list[Problem]) -> Response:
        """The vendor's 400 for a request that breaks the document (``problems`` in the document's order)."""
        first = problems[0]
        return self.error_response(400, f"{'/'.join(map(str, (first.location, *first.path)))} {first.keyword}")

    def before_handler(self, req: Request) -> Response | None:
        """Last vendor-wide check after routing and auth; a response here replaces the handler's."""
        return None

    # ---- the OpenAPI document ------------------------------------------------------------------------------------

    def _check_routes_against_document(self, routes: list[tuple[str, str, Handler]]) -> None:
        if self.openapi_document is None:
            return
        documented = document(self.openapi_document).operations
        lacking = {(method, tpl) for method, tpl, _handler in routes} - documented - self.undocumented_routes
        if lacking:
            raise ValueError(f"{self.vendor}: routes its OpenAPI document lacks: {sorted(lacking)}")
        stale = self.undocumented_routes & documented
        if stale:
            raise ValueError(f"{self.vendor}: the document now carries {sorted(stale)}; drop them from the exceptions")

    def _request_problems(self, req: Request, route: _Route) -> list[Problem]:
        if self.openapi_document is None or (route.method, route.template) in self.undocumented_routes:
            return []
        return document(self.openapi_document).request_problems(req)

    def _hold_to_document(self, req: Request, route: _Route, resp: Response) -> tuple[Response, str | None]:
        """``resp`` if the document allows it as the answer to ``req``, else a 500 naming the breach."""
        key = (route.method, route.template)
        if self.openapi_document is None or key in self.undocumented_routes:
            return resp, None
        if (*key, resp.status) in self.undocumented_responses:
            return resp, None
        breach = document(self.openapi_document).breach(req, resp)
        if breach is None:
            return resp, None
        breach = f"{req.method} {route.template} -> {resp.status}: {breach}"
        return json_response(500, {"error": "the fake's answer breaks its OpenAPI document", "breach": breach}), breach

    # ---- lifecycle --------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL of the running server (``http://127.0.0.1:PORT``), where ``/__fake__`` lives too."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        """The URL that stands for the vendor's server URL in its OpenAPI document."""
        return self.url + self.base_path

    def _bind(self) -> _HTTPServer:
        if self._httpd is None:
            fake = self

            class _Handler(_RequestHandler):
                server_fake = fake

            self._httpd = _HTTPServer((self.host, self.port), _Handler)
        return self._httpd

    def start(self) -> FakeServer:
        httpd = self._bind()
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.1,), name=f"{self.vendor}-fake", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_foreground(self, announce: Callable[[str], None] | None = None) -> None:
        """Serve until SIGTERM/SIGINT. ``announce`` gets the base URL once the socket is listening."""
        httpd = self._bind()

        def _graceful(signum: int, frame: object) -> None:
            # shutdown() waits for serve_forever() to return, so it must not run on the serving thread
            threading.Thread(target=httpd.shutdown, daemon=True).start()

        signal.signal(signal.SIGTERM, _graceful)
        signal.signal(signal.SIGINT, _graceful)
        (announce or (lambda url: print(url, flush=True)))(self.base_url)
        try:
            httpd.serve_forever(poll_interval=0.1)
        finally:
            httpd.server_close()
            self._httpd = None

    # ---- state, faults, records ------------------------------------------------------------------------------

    def reset(self, state: dict[str, Any] | None = None) -> None:
        """Back to the initial (or the given) state; clears faults, the record, rate limit and config changes."""
        with self._lock:
            if state is not None:
                self._initial_state = copy.deepcopy(state)
            self.state = self.normalize_state(copy.deepcopy(self._initial_state))
            self.config = copy.deepcopy(self._initial_config)
            self.faults.clear()
            self.records.clear()
            limit, window = self._rate_args
            self.rate_limiter = RateLimit(limit, window) if limit else None

    def load_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.state = self.normalize_state(copy.deepcopy(state))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self.state)

    def add_fault(self, kind: str | int = "status", **kwargs: Any) -> Fault:
        """``add_fault(429, retry_after=2)``, ``add_fault(500, times=3, path="/campaigns")``,
        ``add_fault("malformed")``, ``add_fault("delay", seconds=1.5, method="GET")``."""
        fault = Fault.from_dict({"kind": kind, **kwargs})
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def set_rate_limit(self, limit: int | None, window: float = 1.0, retry_after: int | float | None = None) -> None:
        with self._lock:
            self.rate_limiter = RateLimit(limit, window, retry_after) if limit else None

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
        """Recorded vendor requests (admin calls excluded), oldest first; ``path`` is a regex."""
        with self._lock:
            out = list(self.records)
        if method:
            out = [r for r in out if r["method"] == method.upper()]
        if path:
            rx = re.compile(path)
            out = [r for r in out if rx.search(r["path"])]
        return copy.deepcopy(out)

    def clear_requests(self) -> None:
        with self._lock:
            self.records.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # ---- dispatch ---------------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        if req.path == ADMIN_PREFIX or req.path.startswith(ADMIN_PREFIX + "/"):
            return self._dispatch_admin(req)
        resp, fault, route = self._serve_vendor(req)
        breach = None
        if route is not None:
            resp, breach = self._hold_to_document(req, route, resp)
        self._record(req, resp, fault, breach)
        return resp

    def _serve_vendor(self, req: Request) -> tuple[Response, Fault | None, _Route | None]:
        """The answer, the fault that made it, and the route it came from (None: not the document's business)."""
        fault = self._take_fault(req.method, req.path)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)  # outside the lock: other clients keep being served meanwhile
        elif fault is not None and fault.kind == "malformed":
            return Response(200, MALFORMED_JSON_BODY, {"Content-Type": JSON_TYPE}), fault, None
        elif fault is not None:
            assert fault.status is not None
            if fault.status == 429:
                return self.rate_limited_response(fault.retry_after), fault, None
            if fault.status == 401:
                resp = self.unauthorized(req, missing=False)
            else:
                resp = self.error_response(fault.status)
            if fault.retry_after is not None:
                resp.headers["Retry-After"] = _retry_after_value(fault.retry_after)
            return resp, fault, None
        with self._lock:
            limiter = self.rate_limiter
            if limiter is not None and not limiter.allow(time.monotonic()):
                return self.rate_limited_response(limiter.retry_after), fault, None
            route, params = self._match(self._routes, req)
            if route is None:
                return self.route_not_found(req), fault, None
            denied = self.authenticate(req)
            if denied is not None:
                return denied, fault, route
            if req.json_error is not None:
                return self.invalid_json(req), fault, route
            req.params = params
            early = self.before_handler(req)
            if early is not None:
                return early, fault, route
            problems = self._request_problems(req, route)
            if problems:  # the vendor's answer to a request its document forbids is not the document's business
                return self.invalid_request(req, problems), fault, None
            return route.handler(req), fault, route

    @staticmethod
    def _match(table: list[tuple[str, re.Pattern[str], Any]], req: Request) -> tuple[Any, dict]:
        for method, rx, target in table:
            m = rx.match(req.path)
            if m and method == req.method:
                return target, m.groupdict()
        return None, {}

    def _record(self, req: Request, resp: Response, fault: Fault | None, breach: str | None = None) -> None:
        headers = {k: v for k, v in req.headers.items() if k != "authorization"}
        token = req.bearer_token
        entry = {
            "time": time.time(),
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": headers,
            "authorization": token is not None,  # the value itself is never kept
            "authorized": bool(token) and (self.api_key is None or token == self.api_key),
            "json": req.json,
            "body_size": len(req.body),
            "status": resp.status,
            # what was answered, so a contract test can validate the exchanges a client drove, not only its requests
            "response_headers": dict(resp.headers),
            "response_body": resp.body.decode("utf-8", "replace"),
            "fault": fault.to_dict() if fault else None,
            "breach": breach,  # how the fake's own answer broke the document (it went out as a 500)
        }
        with self._lock:
            self.records.append(entry)

    # ---- admin API --------------------------------------------------------------------------------------------

    def _all_admin(self) -> list[tuple[str, str, Handler]]:
        return [
            ("GET", "/health", lambda r: json_response(200, {"ok": True, "vendor": self.vendor})),
            ("GET", "/requests", self._admin_requests),
            ("DELETE", "/requests", self._admin_clear_requests),
            ("GET", "/faults", lambda r: json_response(200, [f.to_dict() for f in self.faults])),
            ("POST", "/faults", self._admin_add_faults),
            ("DELETE", "/faults", self._admin_clear_faults),
            ("GET", "/rate_limit", self._admin_get_rate_limit),
            ("POST", "/rate_limit", self._admin_set_rate_limit),
            ("GET", "/state", lambda r: json_response(200, self.snapshot())),
            ("POST", "/state", self._admin_set_state),
            ("GET", "/config", lambda r: json_response(200, self.config)),
            ("POST", "/config", self._admin_set_config),
            ("POST", "/reset", self._admin_reset),
            *self.admin_routes(),
        ]

    def _dispatch_admin(self, req: Request) -> Response:
        if req.json_error is not None:
            return json_response(400, {"error": f"invalid JSON: {req.json_error}"})
        handler, params = self._match(self._admin, req)
        if handler is None:
            return json_response(404, {"error": f"no admin route {req.method} {req.path}"})
        req.params = params
        try:
            if getattr(handler, "unlocked", False):
                return handler(req)
            with self._lock:
                return handler(req)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response(400, {"error": str(exc)})

    def _admin_requests(self, req: Request) -> Response:
        return json_response(200, self.requests(req.arg("method"), req.arg("path")))

    def _admin_clear_requests(self, req: Request) -> Response:
        self.clear_requests()
        return json_response(200, {"ok": True})

    def _admin_add_faults(self, req: Request) -> Response:
        body = req.json
        items = body if isinstance(body, list) else [body]
        if not all(isinstance(item, dict) for item in items):
            raise ValueError("expected a fault object or a list of them")
        faults = [Fault.from_dict(item) for item in items]
        self.faults.extend(faults)
        return json_response(200, [f.to_dict() for f in self.faults])

    def _admin_clear_faults(self, req: Request) -> Response:
        self.clear_faults()
        return json_response(200, [])

    def _admin_get_rate_limit(self, req: Request) -> Response:
        return json_response(200, self.rate_limiter.to_dict() if self.rate_limiter else {"limit": None})

    def _admin_set_rate_limit(self, req: Request) -> Response:
        body = req.json or {}
        self.set_rate_limit(body.get("limit"), float(body.get("window", 1.0)), body.get("retry_after"))
        return self._admin_get_rate_limit(req)

    def _admin_set_state(self, req: Request) -> Response:
        if not isinstance(req.json, dict):
            raise ValueError("expected the state as a JSON object")
        self.load_state(req.json)
        return json_response(200, self.snapshot())

    def _admin_set_config(self, req: Request) -> Response:
        body = req.json
        if not isinstance(body, dict):
            raise ValueError("expected a JSON object")
        unknown = set(body) - set(self.default_config)
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}; known: {sorted(self.default_config)}")
        self.config.update(body)
        return json_response(200, self.config)

    def _admin_reset(self, req: Request) -> Response:
        body = req.json if isinstance(req.json, dict) else {}
        self.reset(self.seed_from_admin(body) if body else None)
        return json_response(200, {"ok": True})

    def seed_from_admin(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """``POST /__fake__/reset`` with a body: a vendor turns e.g. ``{"seed": "demo"}`` into a new state."""
        return body.get("state")


def unlocked(handler: Handler) -> Handler:
    """Mark an admin handler that takes the lock itself, e.g. because it calls out to other servers (webhook
    receivers) that may call back into the fake while it waits."""
    handler.unlocked = True  # type: ignore[attr-defined]
    return handler


def _explain(exc: Exception) -> str:
    """The schema errors beneath openapi-core's error (where, what), else the error itself, in one line."""
    cause = exc.__cause__
    details = [
        f"{'/'.join(map(str, error.absolute_path)) or '(the body)'}: {error.message[:300]}"
        for error in getattr(cause, "schema_errors", ())
    ]
    return "; ".join(details) or f"{type(exc).__name__}: {exc} {cause or ''}".strip()


def _retry_after_value(value: int | float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class _RequestHandler(BaseHTTPRequestHandler):
    server_fake: FakeServer
    server_version = "vendor-fake"
    sys_version = ""

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(
            method=self.command.upper(),
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        if body:
            try:
                req._json = json.loads(body)
            except ValueError as exc:
                req.json_error = str(exc)
        try:
            resp = self.server_fake.handle(req)
        except Exception as exc:  # a bug in a fake must surface as a 500, not a dropped connection
            resp = json_response(500, {"error": "fake crashed", "detail": repr(exc)})
        try:
            self.send_response(resp.status, reason(resp.status))
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (a timeout test): nobody is left to answer

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        if self.server_fake.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")


def base_cli(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--api-key", "--api-token", dest="api_key", default="test-key", help="the accepted bearer token; '' accepts any"
    )
    parser.add_argument("--seed", choices=("demo", "empty"), default="demo")
    parser.add_argument("--state-file", help="JSON state to serve instead of --seed")
    parser.add_argument("--rate-limit", type=int, help="requests allowed per --rate-window seconds")
    parser.add_argument("--rate-window", type=float, default=1.0)
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return parser
