# -*- coding: utf-8 -*-
# Copyright: (c) 2026, CERNIQ SRE
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alertmanager webhook receiver for ansible-rulebook, with the bearer token ansible.eda's own source lacks."""

from __future__ import annotations

import asyncio
import collections
import hmac
import ipaddress
import itertools
import json
import logging
import math
import os
import ssl
import string
import sys
from typing import Any

from aiohttp import web


def _collection_module_utils():
    """The collection's module_utils shared with the playbooks (the contract's patterns, the template-marker check).

    ansible-rulebook runs this file with runpy.run_path, without ansible-core's collection loader, so
    `ansible_collections.cerniq.outreach` is importable only when the directory holding that tree is on sys.path. When
    it is not, this file's own location in the installed collection (<dir>/ansible_collections/cerniq/outreach/
    extensions/eda/plugins/event_source/) names that directory; it is appended to sys.path, nothing else.
    """
    try:
        from ansible_collections.cerniq.outreach.plugins.module_utils import _alert_input
    except ImportError:
        collection_root = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), *[os.pardir] * 4))
        namespace_dir = os.path.dirname(os.path.dirname(collection_root))
        if os.path.basename(namespace_dir) != "ansible_collections":
            raise ImportError("cerniq.outreach.alertmanager: run it from the installed collection "
                              "(ansible-galaxy collection install; .../ansible_collections/cerniq/outreach/...), not "
                              "from {0}".format(collection_root)) from None
        sys.path.append(os.path.dirname(namespace_dir))
        from ansible_collections.cerniq.outreach.plugins.module_utils import _alert_input
    return _alert_input


alert_input = _collection_module_utils()

DOCUMENTATION = r"""
---
short_description: Receive Prometheus Alertmanager webhooks, authenticated with a bearer token.
description:
  - An ansible-rulebook event source for Alertmanager's C(webhook_config) (payload C(version) V(4)).
  - "Every request must carry C(Authorization: Bearer <token>); anything else gets HTTP 401. The token is compared
    in constant time and never logged. The source refuses to start without a token."
  - Listens on V(127.0.0.1) unless O(host) says otherwise. Any O(host) that is not a loopback address literal
    (V(127.0.0.0/8), V(::1)) needs O(certfile) and O(keyfile); the source refuses to start otherwise, so the token
    never crosses a network in clear.
  - "The token must be at least 16 characters long and carry at least 64 bits of estimated entropy, or the source
    refuses to start. The estimate is the token's length times the lowest of: log2 of the size of the alphabet its
    characters come from (hex 16, digits 10, lower case 26, upper case 26, other characters 33, added up per class
    used); the Shannon entropy of its characters' frequencies (one repeated letter: 0); the Shannon entropy of the
    steps between consecutive characters (C(abcdef...): near 0). A token that repeats a shorter unit
    (C(Secret12Secret12)) is judged by that unit alone. C(openssl rand -hex 32) (about 250 bits by this estimate)
    passes; C(aaaaaaaaaaaaaaaa), C(abcdefghijklmnop) and C(Password123!Password123!) do not. It is an estimate: a
    dictionary word passes it more easily than it should, so generate the token."
  - "Alerts are data, never code (docs/security.md): a request is refused with HTTP 400, and no event queued, when
    any string in it (an alert name, a label or annotation, their names, any other field) carries a template marker
    (C({{), C({%), C({#), their closing counterparts, or C(#jinja2:)); when a C(phone) label is not a phone id
    (C(phone_NN)) or a C(campaign) label not an Instantly campaign id (a UUID), both checked with the platform
    contract's patterns (plugins/module_utils/_contract.py) and C(re.fullmatch)."
  - A request with an C(Authorization) header that is not ASCII, or a body nested deeper than 32 levels, gets HTTP
    400 (never 500); one with more than O(max_alerts) alerts gets HTTP 413. In each case no event is queued.
  - One event per alert of the group, for C(firing) and C(resolved) alike (filter in the rulebook). The whole body is
    validated before any event is queued, so a malformed group produces HTTP 400 and no event at all; Alertmanager
    logs the failure and retries.
  - "Each event: C(alertname), C(status), C(labels) (the group's C(commonLabels) overlaid by the alert's own labels),
    C(annotations) (likewise), C(startsAt), C(endsAt), C(generatorURL), C(fingerprint), and C(group) (C(receiver),
    C(groupKey), C(groupLabels), C(externalURL), C(truncatedAlerts), C(version))."
options:
  host:
    description: Address to listen on.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to listen on.
    type: int
    default: 5000
  path:
    description: URL path Alertmanager posts to; other paths get HTTP 404.
    type: str
    default: /alerts
  token:
    description:
      - The bearer token Alertmanager sends (C(http_config.authorization.credentials_file) in its C(webhook_config)).
      - Prefer O(token_env); a token written in a rulebook ends up in its logs and in version control.
      - At least 16 printable ASCII characters and 64 bits of estimated entropy (see the description).
    type: str
  token_env:
    description: Environment variable holding the token, read when O(token) is not given.
    type: str
    default: CERNIQ_ALERTMANAGER_TOKEN
  max_body_bytes:
    description: Largest request body accepted; larger ones get HTTP 413 before they are parsed.
    type: int
    default: 1048576
  max_alerts:
    description:
      - Most alerts accepted in one request (each can start a playbook run); a request with more gets HTTP 413 and
        queues nothing. Alertmanager's own C(max_alerts) in the C(webhook_config) should be at most this.
    type: int
    default: 100
  certfile:
    description: PEM certificate (chain) to serve HTTPS with. Required (with O(keyfile)) off loopback.
    type: str
  keyfile:
    description: PEM private key for O(certfile).
    type: str
"""

EXAMPLES = r"""
# Alertmanager side (alertmanager.yml):
#   receivers:
#     - name: cerniq-eda
#       webhook_configs:
#         - url: http://127.0.0.1:5000/alerts
#           send_resolved: true
#           http_config:
#             authorization:
#               credentials_file: /etc/alertmanager/cerniq-eda.token
- name: Alertmanager alerts
  hosts: all
  sources:
    - cerniq.outreach.alertmanager:
        port: 5000
        token_env: CERNIQ_ALERTMANAGER_TOKEN
  rules:
    - name: Show firing alerts
      condition: event.status == "firing"
      action:
        print_event:
"""

logger = logging.getLogger(__name__)

ALERTMANAGER_WEBHOOK_VERSION = "4"
ALERT_STATUSES = ("firing", "resolved")
MIN_TOKEN_LENGTH = 16
MIN_TOKEN_BITS = 64
MAX_JSON_DEPTH = 32
OPTION_DEFAULTS = {"host": "127.0.0.1", "port": 5000, "path": "/alerts", "token": None,
                   "token_env": "CERNIQ_ALERTMANAGER_TOKEN", "max_body_bytes": 1024 * 1024, "max_alerts": 100,
                   "certfile": None, "keyfile": None}

queue_key = web.AppKey("queue", Any)
token_key = web.AppKey("token", bytes)
max_alerts_key = web.AppKey("max_alerts", int)


class MalformedPayload(ValueError):
    """The body is not an Alertmanager v4 webhook payload; the message says which field is wrong."""


class TooManyAlerts(MalformedPayload):
    """More alerts in one request than max_alerts."""

    def __init__(self, count, limit):
        super().__init__("{0} alerts in one request, more than max_alerts ({1}); none was queued".format(count, limit))
        self.count, self.limit = count, limit


def _shannon_bits(items) -> float:
    """Shannon entropy, in bits per item, of the items' frequencies (0 for no items or a single repeated one)."""
    counts = collections.Counter(items)
    total = sum(counts.values())
    return -sum(n / total * math.log2(n / total) for n in counts.values()) if total else 0.0


def token_bits(token: str) -> float:
    """Estimated entropy of a token, in bits (the rule is spelled out in DOCUMENTATION)."""
    # A token that repeats a shorter unit (`Secret1!Secret1!`) is worth its unit.
    period = next(p for p in range(1, len(token) + 1)
                  if all(token[i] == token[i - p] for i in range(p, len(token))))
    token = token[:period]
    if not token:
        return 0.0
    if all(c in "0123456789abcdef" for c in token) or all(c in "0123456789ABCDEF" for c in token):
        alphabet = 16
    else:
        alphabet = sum(size for chars, size in ((string.digits, 10), (string.ascii_lowercase, 26),
                                                (string.ascii_uppercase, 26)) if any(c in chars for c in token))
        if any(c not in string.ascii_letters + string.digits for c in token):
            alphabet += 33
    steps = [ord(b) - ord(a) for a, b in itertools.pairwise(token)]
    per_character = min(math.log2(alphabet), _shannon_bits(token), _shannon_bits(steps))
    return max(0.0, len(token) * per_character)


def is_loopback(host) -> bool:
    """True for a loopback address literal (127.0.0.0/8, ::1); names, wildcards and routable addresses are not."""
    try:
        return ipaddress.ip_address(str(host).strip("[]")).is_loopback
    except ValueError:
        return False


def settings_from_args(args: dict, environ=None) -> dict:
    """Validated settings from the rulebook's source arguments; raises ValueError with the fix in the message."""
    environ = os.environ if environ is None else environ
    # ansible-rulebook adds its own keys (eda_feedback_queue, ...): not ours to judge.
    unknown = sorted(key for key in args if key not in OPTION_DEFAULTS and not key.startswith("eda_"))
    if unknown:
        raise ValueError("cerniq.outreach.alertmanager: unknown argument(s) {0}; known: {1}".format(
            ", ".join(unknown), ", ".join(sorted(OPTION_DEFAULTS))))
    settings = dict(OPTION_DEFAULTS)
    settings.update({key: value for key, value in args.items() if key in OPTION_DEFAULTS and value is not None})
    for name in ("port", "max_body_bytes", "max_alerts"):
        try:
            settings[name] = int(settings[name])
        except (TypeError, ValueError):
            raise ValueError("cerniq.outreach.alertmanager: {0} must be an integer, got {1!r}".format(
                name, settings[name])) from None
    if not 0 < settings["port"] < 65536:
        raise ValueError("cerniq.outreach.alertmanager: port {0} is outside 1-65535".format(settings["port"]))
    if settings["max_body_bytes"] < 1024:
        raise ValueError("cerniq.outreach.alertmanager: max_body_bytes must be at least 1024")
    if settings["max_alerts"] < 1:
        raise ValueError("cerniq.outreach.alertmanager: max_alerts must be at least 1")
    if not str(settings["path"]).startswith("/"):
        raise ValueError("cerniq.outreach.alertmanager: path must start with '/', got {0!r}".format(settings["path"]))
    if bool(settings["certfile"]) != bool(settings["keyfile"]):
        raise ValueError("cerniq.outreach.alertmanager: certfile and keyfile go together; give both or neither")
    if not settings["certfile"] and not is_loopback(settings["host"]):
        raise ValueError("cerniq.outreach.alertmanager: host {0!r} is not a loopback address; serving there needs TLS "
                         "(certfile and keyfile), so the bearer token never crosses a network in clear".format(
                             settings["host"]))
    token = settings["token"] or environ.get(settings["token_env"], "")
    token = str(token).strip()
    if not token:
        raise ValueError("cerniq.outreach.alertmanager: no bearer token; set the environment variable {0} (or the "
                         "source argument token) to the secret Alertmanager sends".format(settings["token_env"]))
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError("cerniq.outreach.alertmanager: the bearer token is shorter than {0} characters; use a random "
                         "one, e.g. `openssl rand -hex 32`".format(MIN_TOKEN_LENGTH))
    if token_bits(token) < MIN_TOKEN_BITS:
        raise ValueError("cerniq.outreach.alertmanager: the bearer token is too easy to guess (under {0} bits of "
                         "estimated entropy: repeated characters, a short alphabet or a sequence); use a random one, "
                         "e.g. `openssl rand -hex 32`".format(MIN_TOKEN_BITS))
    if not token.isascii() or not token.isprintable():
        raise ValueError("cerniq.outreach.alertmanager: the bearer token must be printable ASCII (an HTTP header "
                         "carries it); use e.g. `openssl rand -hex 32`")
    settings["token"] = token
    return settings


def bearer_token_matches(authorization: str | None, expected: bytes) -> bool:
    """True when the Authorization header is `Bearer <expected>`, compared in constant time.

    Raises MalformedPayload for a header that is not ASCII (aiohttp hands undecodable bytes on as surrogates).
    """
    if not authorization:
        return False
    if not authorization.isascii():
        raise MalformedPayload("the Authorization header must be ASCII (Bearer <token>)")
    scheme, presented = authorization.strip().partition(" ")[::2]
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode("utf-8"), expected)


def _string_map(value, where):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MalformedPayload("{0} must be an object of strings".format(where))
    for key, item in value.items():
        if not isinstance(item, str):
            raise MalformedPayload("{0}.{1} must be a string, got {2}".format(where, key, type(item).__name__))
    return value


def _check_nesting(payload, limit=MAX_JSON_DEPTH):
    stack = [(payload, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise MalformedPayload("the body is nested deeper than {0} levels".format(limit))
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def _check_alert_data(payload, events):
    """Refuse template markers anywhere in the body and phone/campaign labels that break the contract."""
    found = alert_input.find_template_markers(payload, "body", max_depth=MAX_JSON_DEPTH)
    if found:
        raise MalformedPayload("template markers are refused, values from an alert are data: {0}".format(
            alert_input.describe_markers(found)))
    for index, event in enumerate(events):
        for name, value in sorted(event["labels"].items()):
            problem = alert_input.label_problem(name, value)
            if problem:
                raise MalformedPayload("alerts[{0}]: {1}".format(index, problem))


def alert_events(payload, max_alerts=None) -> list[dict]:
    """One event per alert of an Alertmanager v4 webhook payload; raises MalformedPayload before returning any."""
    if not isinstance(payload, dict):
        raise MalformedPayload("the body must be a JSON object (an Alertmanager webhook payload)")
    _check_nesting(payload)
    version = payload.get("version")
    if version != ALERTMANAGER_WEBHOOK_VERSION:
        raise MalformedPayload("version must be {0!r} (Alertmanager webhook payload), got {1!r}".format(
            ALERTMANAGER_WEBHOOK_VERSION, version))
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise MalformedPayload("alerts must be a list")
    if max_alerts is not None and len(alerts) > max_alerts:
        raise TooManyAlerts(len(alerts), max_alerts)
    common_labels = _string_map(payload.get("commonLabels"), "commonLabels")
    common_annotations = _string_map(payload.get("commonAnnotations"), "commonAnnotations")
    group = {
        "receiver": payload.get("receiver"),
        "groupKey": payload.get("groupKey"),
        "groupLabels": _string_map(payload.get("groupLabels"), "groupLabels"),
        "externalURL": payload.get("externalURL"),
        "truncatedAlerts": payload.get("truncatedAlerts", 0),
        "version": version,
    }
    events = []
    for index, alert in enumerate(alerts):
        where = "alerts[{0}]".format(index)
        if not isinstance(alert, dict):
            raise MalformedPayload("{0} must be an object".format(where))
        status = alert.get("status")
        if status not in ALERT_STATUSES:
            raise MalformedPayload("{0}.status must be one of {1}, got {2!r}".format(
                where, ", ".join(ALERT_STATUSES), status))
        labels = dict(common_labels)
        labels.update(_string_map(alert.get("labels"), where + ".labels"))
        if not labels.get("alertname"):
            raise MalformedPayload("{0}.labels.alertname is missing".format(where))
        annotations = dict(common_annotations)
        annotations.update(_string_map(alert.get("annotations"), where + ".annotations"))
        events.append({
            "alertname": labels["alertname"],
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": alert.get("startsAt"),
            "endsAt": alert.get("endsAt"),
            "generatorURL": alert.get("generatorURL"),
            "fingerprint": alert.get("fingerprint"),
            "group": group,
        })
    _check_alert_data(payload, events)
    return events


async def receive_alerts(request: web.Request) -> web.Response:
    # The token is checked before the body is read, so an unauthenticated client never gets it parsed.
    try:
        authenticated = bearer_token_matches(request.headers.get("Authorization"), request.app[token_key])
    except MalformedPayload as exc:
        logger.warning("alertmanager source: refused a request from %s: %s", request.remote, exc)
        raise web.HTTPBadRequest(text="{0}\n".format(exc),
                                 headers={"WWW-Authenticate": 'Bearer realm="cerniq-alertmanager"'}) from None
    if not authenticated:
        logger.warning("alertmanager source: refused a request from %s without the right bearer token",
                       request.remote)
        raise web.HTTPUnauthorized(text="a valid bearer token is required\n",
                                   headers={"WWW-Authenticate": 'Bearer realm="cerniq-alertmanager"'})
    raw = await request.read()  # over client_max_size: aiohttp answers 413 itself
    try:
        events = alert_events(json.loads(raw), max_alerts=request.app[max_alerts_key])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise web.HTTPBadRequest(text="the body is not valid JSON: {0}\n".format(exc)) from None
    except RecursionError:
        raise web.HTTPBadRequest(text="not an Alertmanager webhook payload: the body is nested deeper than {0} "
                                      "levels\n".format(MAX_JSON_DEPTH)) from None
    except TooManyAlerts as exc:
        logger.warning("alertmanager source: refused a request from %s: %s", request.remote, exc)
        raise web.HTTPRequestEntityTooLarge(max_size=exc.limit, actual_size=exc.count,
                                            text="{0}\n".format(exc)) from None
    except MalformedPayload as exc:
        logger.warning("alertmanager source: refused a malformed payload from %s: %s", request.remote, exc)
        raise web.HTTPBadRequest(text="not an Alertmanager webhook payload: {0}\n".format(exc)) from None
    queue = request.app[queue_key]
    for event in events:
        await queue.put(event)
    return web.json_response({"accepted": len(events)})


def build_app(queue, settings: dict) -> web.Application:
    app = web.Application(client_max_size=settings["max_body_bytes"])
    app[queue_key] = queue
    app[token_key] = settings["token"].encode("ascii")
    app[max_alerts_key] = settings["max_alerts"]
    app.router.add_post(settings["path"], receive_alerts)
    return app


def _ssl_context(settings):
    if not settings["certfile"]:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings["certfile"], settings["keyfile"])
    return context


async def main(queue, args: dict) -> None:
    """ansible-rulebook entry point: serve until the rulebook stops (the task is cancelled)."""
    settings = settings_from_args(args)
    runner = web.AppRunner(build_app(queue, settings), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings["host"], settings["port"], ssl_context=_ssl_context(settings))
        await site.start()
        logger.info("alertmanager source: listening on %s:%s%s", settings["host"], settings["port"],
                    settings["path"])
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    # Manual run, from the installed collection (it imports the collection's module_utils):
    # `CERNIQ_ALERTMANAGER_TOKEN=... python <...>/ansible_collections/cerniq/outreach/extensions/eda/plugins/
    # event_source/alertmanager.py` prints each event it would queue.

    class _PrintQueue:
        async def put(self, event):
            print(json.dumps(event, sort_keys=True))

    asyncio.run(main(_PrintQueue(), {}))
