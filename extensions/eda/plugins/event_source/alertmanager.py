# -*- coding: utf-8 -*-
# Copyright: (c) 2026, CERNIQ SRE
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alertmanager webhook receiver for ansible-rulebook, with the bearer token ansible.eda's own source lacks."""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import ssl
from typing import Any

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Prometheus Alertmanager webhooks, authenticated with a bearer token.
description:
  - An ansible-rulebook event source for Alertmanager's C(webhook_config) (payload C(version) V(4)).
  - Every request must carry C(Authorization: Bearer <token>); anything else gets HTTP 401. The token is compared in
    constant time and never logged. The source refuses to start without a token.
  - Listens on V(127.0.0.1) unless O(host) says otherwise; put a TLS proxy in front, or set O(certfile), before
    binding to a routable address.
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
    type: str
  token_env:
    description: Environment variable holding the token, read when O(token) is not given.
    type: str
    default: CERNIQ_ALERTMANAGER_TOKEN
  max_body_bytes:
    description: Largest request body accepted; larger ones get HTTP 413 before they are parsed.
    type: int
    default: 1048576
  certfile:
    description: PEM certificate (chain) to serve HTTPS with.
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
OPTION_DEFAULTS = {"host": "127.0.0.1", "port": 5000, "path": "/alerts", "token": None,
                   "token_env": "CERNIQ_ALERTMANAGER_TOKEN", "max_body_bytes": 1024 * 1024, "certfile": None,
                   "keyfile": None}

queue_key = web.AppKey("queue", Any)
token_key = web.AppKey("token", bytes)


class MalformedPayload(ValueError):
    """The body is not an Alertmanager v4 webhook payload; the message says which field is wrong."""


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
    for name in ("port", "max_body_bytes"):
        try:
            settings[name] = int(settings[name])
        except (TypeError, ValueError):
            raise ValueError("cerniq.outreach.alertmanager: {0} must be an integer, got {1!r}".format(
                name, settings[name])) from None
    if not 0 < settings["port"] < 65536:
        raise ValueError("cerniq.outreach.alertmanager: port {0} is outside 1-65535".format(settings["port"]))
    if settings["max_body_bytes"] < 1024:
        raise ValueError("cerniq.outreach.alertmanager: max_body_bytes must be at least 1024")
    if not str(settings["path"]).startswith("/"):
        raise ValueError("cerniq.outreach.alertmanager: path must start with '/', got {0!r}".format(settings["path"]))
    if bool(settings["certfile"]) != bool(settings["keyfile"]):
        raise ValueError("cerniq.outreach.alertmanager: certfile and keyfile go together; give both or neither")
    token = settings["token"] or environ.get(settings["token_env"], "")
    token = str(token).strip()
    if not token:
        raise ValueError("cerniq.outreach.alertmanager: no bearer token; set the environment variable {0} (or the "
                         "source argument token) to the secret Alertmanager sends".format(settings["token_env"]))
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError("cerniq.outreach.alertmanager: the bearer token is shorter than {0} characters; use a random "
                         "one, e.g. `openssl rand -hex 32`".format(MIN_TOKEN_LENGTH))
    settings["token"] = token
    return settings


def bearer_token_matches(authorization: str | None, expected: bytes) -> bool:
    """True when the Authorization header is `Bearer <expected>`, compared in constant time."""
    if not authorization:
        return False
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


def alert_events(payload) -> list[dict]:
    """One event per alert of an Alertmanager v4 webhook payload; raises MalformedPayload before returning any."""
    if not isinstance(payload, dict):
        raise MalformedPayload("the body must be a JSON object (an Alertmanager webhook payload)")
    version = payload.get("version")
    if version != ALERTMANAGER_WEBHOOK_VERSION:
        raise MalformedPayload("version must be {0!r} (Alertmanager webhook payload), got {1!r}".format(
            ALERTMANAGER_WEBHOOK_VERSION, version))
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise MalformedPayload("alerts must be a list")
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
    return events


async def receive_alerts(request: web.Request) -> web.Response:
    # The token is checked before the body is read, so an unauthenticated client never gets it parsed.
    if not bearer_token_matches(request.headers.get("Authorization"), request.app[token_key]):
        logger.warning("alertmanager source: refused a request from %s without the right bearer token",
                       request.remote)
        raise web.HTTPUnauthorized(text="a valid bearer token is required\n",
                                   headers={"WWW-Authenticate": 'Bearer realm="cerniq-alertmanager"'})
    raw = await request.read()  # over client_max_size: aiohttp answers 413 itself
    try:
        events = alert_events(json.loads(raw))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise web.HTTPBadRequest(text="the body is not valid JSON: {0}\n".format(exc)) from None
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
    app[token_key] = settings["token"].encode("utf-8")
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
    # Manual run: `CERNIQ_ALERTMANAGER_TOKEN=... python alertmanager.py` prints each event it would queue.

    class _PrintQueue:
        async def put(self, event):
            print(json.dumps(event, sort_keys=True))

    asyncio.run(main(_PrintQueue(), {}))
