"""The collection's Alertmanager event source (extensions/eda/plugins/event_source/alertmanager.py), served for real.

Each test starts the source's own `main(queue, args)` on a free port in a background event loop, the way
ansible-rulebook runs it, and talks to it with a real HTTP client. The queue records what the rulebook would receive.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import ipaddress
import json
import queue as stdlib_queue
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.support.services import REPO_ROOT, free_port

SOURCE_FILE = REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source" / "alertmanager.py"
TOKEN = "a3f1c9e07b5d4e2a9c8b7d6e5f4a3b2c"


def _load_source():
    spec = importlib.util.spec_from_file_location("cerniq_alertmanager_source", SOURCE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


source = _load_source()


def alertmanager_payload(*alerts, status="firing", common_labels=None):
    """A webhook body as Alertmanager 0.2x sends it (webhook_config, version 4)."""
    common_labels = common_labels if common_labels is not None else {"env": "prod", "team": "sre"}
    return {
        "receiver": "cerniq-eda",
        "status": status,
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"].get("alertname", "")} if alerts else {},
        "commonLabels": common_labels,
        "commonAnnotations": {"runbook": "runbook-etapa2.md#71"},
        "externalURL": "http://alertmanager.cerniq.internal:9093",
        "version": "4",
        "groupKey": '{}/{team="sre"}:{alertname="PhoneOffline"}',
        "truncatedAlerts": 0,
    }


def am_alert(alertname, status="firing", fingerprint="1a30ba71cca2921f", **labels):
    return {
        "status": status,
        "labels": dict({"alertname": alertname, "severity": "high"}, **labels),
        "annotations": {"summary": "{0} on {1}".format(alertname, labels.get("phone", "the platform"))},
        "startsAt": "2026-01-15T03:12:45.828Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-15T03:40:00Z",
        "generatorURL": "http://prometheus.cerniq.internal:9090/graph?g0.expr=cerniq_phone_up+%3D%3D+0",
        "fingerprint": fingerprint,
    }


class RecordingQueue:
    """Stands in for ansible-rulebook's queue: an async put, readable from the test thread."""

    def __init__(self):
        self.events = stdlib_queue.Queue()

    async def put(self, event):
        self.events.put(event)

    def drain(self):
        found = []
        while not self.events.empty():
            found.append(self.events.get_nowait())
        return found


class RunningSource:
    def __init__(self, args):
        self.args = dict(args)
        self.queue = RecordingQueue()
        self.loop = asyncio.new_event_loop()
        self.task = None
        self.error = None
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(source.main(self.queue, self.args))
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # surfaced to the test by start()
            self.error = exc
        finally:
            self.loop.close()

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.error:
                raise self.error
            try:
                socket.create_connection((self.args.get("host", "127.0.0.1"), self.args["port"]), 0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the alertmanager source did not listen within 10 s")

    def stop(self):
        if self.task is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)

    @property
    def url(self):
        scheme = "https" if self.args.get("certfile") else "http"
        return "{0}://127.0.0.1:{1}{2}".format(scheme, self.args["port"], self.args.get("path", "/alerts"))


@pytest.fixture()
def running_source():
    started = []

    def start(**args):
        args.setdefault("port", free_port())
        args.setdefault("token", TOKEN)
        server = RunningSource(args).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def post(server, body, token=TOKEN, scheme="Bearer", **kwargs):
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "{0} {1}".format(scheme, token)
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(server.url, data=data, headers=headers, timeout=5, **kwargs)


# ---- authentication ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token,scheme", [
    (None, "Bearer"),                    # no Authorization header at all
    ("", "Bearer"),
    ("b" * len(TOKEN), "Bearer"),        # same length, wrong value
    (TOKEN[:-1], "Bearer"),              # a prefix of the right one
    (TOKEN + "0", "Bearer"),
    (TOKEN, "Basic"),                    # right secret, wrong scheme
])
def test_requests_without_the_right_bearer_token_get_401_and_queue_nothing(running_source, token, scheme):
    server = running_source()
    response = post(server, alertmanager_payload(am_alert("PhoneOffline", phone="phone_07")), token=token,
                    scheme=scheme)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.text
    assert server.queue.drain() == []


def test_the_token_is_read_from_the_environment_variable_by_default(monkeypatch):
    monkeypatch.setenv("CERNIQ_ALERTMANAGER_TOKEN", TOKEN)
    assert source.settings_from_args({"port": "5099"})["token"] == TOKEN
    monkeypatch.setenv("OTHER_TOKEN_VAR", TOKEN[::-1])
    assert source.settings_from_args({"token_env": "OTHER_TOKEN_VAR"})["token"] == TOKEN[::-1]


@pytest.mark.parametrize("args,environ,message", [
    ({}, {}, "no bearer token; set the environment variable CERNIQ_ALERTMANAGER_TOKEN"),
    ({"token": "short"}, {}, "shorter than 16 characters"),
    ({"tokne": TOKEN}, {}, "unknown argument(s) tokne"),
    ({"token": TOKEN, "port": "http"}, {}, "port must be an integer"),
    ({"token": TOKEN, "port": 70000}, {}, "outside 1-65535"),
    ({"token": TOKEN, "path": "alerts"}, {}, "path must start with '/'"),
    ({"token": TOKEN, "certfile": "/x.pem"}, {}, "certfile and keyfile go together"),
])
def test_the_source_refuses_to_start_with_a_clear_reason(args, environ, message):
    with pytest.raises(ValueError) as refused:
        source.settings_from_args(args, environ=environ)
    assert message in str(refused.value)


def test_a_refused_start_reaches_the_caller_before_anything_listens():
    port = free_port()
    with pytest.raises(ValueError, match="no bearer token"):
        RunningSource({"port": port, "token_env": "CERNIQ_TEST_UNSET_TOKEN"}).start()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 0.2)


# ---- malformed and oversized bodies -------------------------------------------------------------------------------

@pytest.mark.parametrize("body,reason", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    ([{"status": "firing"}], "must be a JSON object"),
    ({"version": "3", "alerts": []}, "version must be '4'"),
    ({"version": "4", "alerts": {"status": "firing"}}, "alerts must be a list"),
    (alertmanager_payload(am_alert("PhoneOffline", phone="phone_07"), dict(am_alert("x"), status="pending")),
     "alerts[1].status must be one of firing, resolved"),
    (alertmanager_payload(dict(am_alert("PhoneOffline"), labels={"alertname": "PhoneOffline", "phone": 7})),
     "alerts[0].labels.phone must be a string"),
    (alertmanager_payload(dict(am_alert("PhoneOffline"), labels={"phone": "phone_07"}), common_labels={}),
     "alerts[0].labels.alertname is missing"),
])
def test_a_malformed_body_gets_400_with_the_reason_and_no_event(running_source, body, reason):
    server = running_source()
    response = post(server, body)
    assert response.status_code == 400
    assert reason in response.text
    # A group with one good and one bad alert queues neither: nothing half-delivered.
    assert server.queue.drain() == []


def test_a_body_over_the_limit_gets_413_and_no_event(running_source):
    server = running_source(max_body_bytes=4096)
    many = [am_alert("PhoneOffline", phone="phone_{0:02d}".format(n), fingerprint=str(n)) for n in range(40)]
    body = json.dumps(alertmanager_payload(*many))
    assert len(body) > 4096
    response = post(server, body)
    assert response.status_code == 413
    assert server.queue.drain() == []
    # The same source still serves a body under the limit.
    assert post(server, alertmanager_payload(am_alert("PhoneOffline", phone="phone_01"))).status_code == 200


def test_only_post_on_the_configured_path_is_served(running_source):
    server = running_source(path="/hooks/cerniq")
    headers = {"Authorization": "Bearer " + TOKEN}
    assert requests.get(server.url, headers=headers, timeout=5).status_code == 405
    other = server.url.replace("/hooks/cerniq", "/alerts")
    assert requests.post(other, json=alertmanager_payload(am_alert("PhoneOffline")), headers=headers,
                         timeout=5).status_code == 404
    assert server.queue.drain() == []


# ---- good payloads ------------------------------------------------------------------------------------------------

def test_each_alert_of_a_group_becomes_one_event_with_the_common_labels(running_source):
    server = running_source()
    payload = alertmanager_payload(
        am_alert("PhoneOffline", phone="phone_07", fingerprint="aaaa000000000007"),
        am_alert("PhoneOffline", status="resolved", phone="phone_08", fingerprint="aaaa000000000008", team="wa"),
    )
    response = post(server, payload)
    assert response.status_code == 200
    assert response.json() == {"accepted": 2}
    firing, resolved = server.queue.drain()
    assert firing["alertname"] == "PhoneOffline"
    assert firing["status"] == "firing"
    assert firing["labels"] == {"alertname": "PhoneOffline", "severity": "high", "phone": "phone_07", "env": "prod",
                                "team": "sre"}
    assert firing["annotations"] == {"summary": "PhoneOffline on phone_07", "runbook": "runbook-etapa2.md#71"}
    assert firing["fingerprint"] == "aaaa000000000007"
    assert firing["startsAt"] == "2026-01-15T03:12:45.828Z"
    assert firing["group"]["receiver"] == "cerniq-eda"
    assert firing["group"]["externalURL"] == "http://alertmanager.cerniq.internal:9093"
    # The alert's own label wins over the group's common one.
    assert resolved["status"] == "resolved"
    assert resolved["labels"]["team"] == "wa"
    assert resolved["labels"]["phone"] == "phone_08"
    assert resolved["endsAt"] == "2026-01-15T03:40:00Z"


def test_an_empty_group_is_accepted_with_no_event(running_source):
    server = running_source()
    response = post(server, alertmanager_payload())
    assert response.json() == {"accepted": 0}
    assert server.queue.drain() == []


def _listening_addresses(port):
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # 0A = LISTEN
                found.append(address)
    return found


def test_it_listens_on_loopback_only_by_default(running_source):
    server = running_source()
    assert _listening_addresses(server.args["port"]) == ["0100007F"]  # 127.0.0.1, little-endian hex


def test_it_serves_https_when_given_a_certificate(running_source, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    server = running_source(certfile=str(certfile), keyfile=str(keyfile))
    response = post(server, alertmanager_payload(am_alert("DlqOverflow")), verify=str(certfile))
    assert response.status_code == 200
    assert [event["alertname"] for event in server.queue.drain()] == ["DlqOverflow"]
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(server.url.replace("https:", "http:"), json={}, timeout=2)


# ---- security (issue 11, docs/security.md "The event source") -----------------------------------------------------

@pytest.mark.parametrize("token", [
    "a" * 16,                        # one repeated letter: 0 bits
    "x" * 64,                        # long is not enough
    "abababababababab",
    "abcdefghijklmnop",              # a sequence
    "0123456789abcdef0123456789abcdef",
    "Password123!Password123!",      # a repeated unit
])
def test_a_guessable_token_is_refused_at_start(token):
    port = free_port()
    with pytest.raises(ValueError, match="too easy to guess") as refused:
        RunningSource({"port": port, "token": token}).start()
    assert token not in str(refused.value)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), 0.2)


def test_random_tokens_pass_the_entropy_rule():
    import secrets

    for _attempt in range(200):
        for token in (secrets.token_hex(16), secrets.token_hex(32), secrets.token_urlsafe(24)):
            assert source.token_bits(token) >= source.MIN_TOKEN_BITS, token
    assert source.token_bits("a" * 16) == 0.0
    assert source.settings_from_args({"token": TOKEN})["token"] == TOKEN


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "eda.cerniq.internal", "localhost"])
def test_a_non_loopback_bind_without_tls_is_refused_before_anything_listens(host):
    port = free_port()
    with pytest.raises(ValueError, match="not a loopback address; serving there needs TLS"):
        RunningSource({"port": port, "token": TOKEN, "host": host}).start()
    assert _listening_addresses(port) == []


def test_a_non_loopback_host_is_accepted_with_tls():
    settings = source.settings_from_args({"token": TOKEN, "host": "0.0.0.0", "certfile": "/etc/c.pem",
                                          "keyfile": "/etc/k.pem"})
    assert settings["host"] == "0.0.0.0" and settings["certfile"] == "/etc/c.pem"
    for loopback in ("127.0.0.1", "127.0.0.53", "::1"):
        assert source.settings_from_args({"token": TOKEN, "host": loopback})["certfile"] is None


def _raw_post(server, head, body=b""):
    """One HTTP/1.1 request written byte for byte (requests will not send a non-ASCII header), its status code."""
    with socket.create_connection(("127.0.0.1", server.args["port"]), 5) as conn:
        conn.sendall(b"POST /alerts HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n" + head + b"\r\n\r\n"
                     + body)
        reply = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = conn.recv(65536)
            if not chunk:
                break
            reply += chunk
    status_line, _crlf, rest = reply.partition(b"\r\n")
    return int(status_line.split()[1]), rest.split(b"\r\n\r\n", 1)[-1].decode()


@pytest.mark.parametrize("header", [b"Authorization: Bearer \xff\xfe\xfd", b"Authorization: \xc3\x28" + b"a" * 30,
                                    b"Authorization: Bearer " + TOKEN.encode() + b"\xe9"])
def test_a_non_utf8_authorization_header_gets_400_not_500(running_source, header):
    server = running_source()
    body = json.dumps(alertmanager_payload(am_alert("PhoneOffline", phone="phone_07"))).encode()
    status, text = _raw_post(server, header, body)
    assert status == 400
    assert "the Authorization header must be ASCII" in text
    assert server.queue.drain() == []
    # The source is still up and serves a proper request.
    assert post(server, alertmanager_payload(am_alert("PhoneOffline", phone="phone_07"))).status_code == 200


@pytest.mark.parametrize("depth", [33, 500, 200_000])
def test_deeply_nested_json_gets_400_not_500(running_source, depth):
    server = running_source()
    nested = "[" * depth + "]" * depth
    body = '{"version": "4", "alerts": [], "groupLabels": {"x": ' + nested + "}}"
    response = post(server, body)
    assert response.status_code == 400, response.text
    assert "nested deeper than 32 levels" in response.text
    assert server.queue.drain() == []
    # Without the token the body is never parsed: 401, whatever it holds.
    assert post(server, body, token="0" * len(TOKEN)).status_code == 401


def test_alerts_per_request_are_capped(running_source):
    server = running_source(max_alerts=5)
    alerts = [am_alert("PhoneOffline", phone="phone_{0:02d}".format(n), fingerprint=str(n)) for n in range(6)]
    response = post(server, alertmanager_payload(*alerts))
    assert response.status_code == 413
    assert "6 alerts in one request, more than max_alerts (5); none was queued" in response.text
    assert server.queue.drain() == []
    assert post(server, alertmanager_payload(*alerts[:5])).json() == {"accepted": 5}
    assert len(server.queue.drain()) == 5


def test_the_default_cap_is_100_alerts(running_source):
    server = running_source()
    alerts = [am_alert("DlqOverflow", fingerprint=str(n)) for n in range(101)]
    assert post(server, alertmanager_payload(*alerts)).status_code == 413
    assert server.queue.drain() == []
    assert post(server, alertmanager_payload(*alerts[:100])).json() == {"accepted": 100}


PIPE = "{{ lookup('ansible.builtin.pipe', 'id -un > pwned.txt') }}"


def _poisoned(where):
    alert = am_alert("PhoneOffline", phone="phone_07")
    payload = alertmanager_payload(alert)
    if where == "label value":
        alert["labels"]["instance"] = PIPE
    elif where == "label name":
        alert["labels"][PIPE] = "x"
    elif where == "annotation":
        alert["annotations"]["description"] = "phone down {% for x in range(9) %}x{% endfor %}"
    elif where == "alert name":
        alert["labels"]["alertname"] = "PhoneOffline{# #}"
    elif where == "common label":
        payload["commonLabels"]["team"] = PIPE
    elif where == "generatorURL":
        alert["generatorURL"] = "http://prometheus/graph?{{ 7 * 7 }}"
    elif where == "override header":
        alert["annotations"]["summary"] = "#jinja2:variable_start_string:'[[', variable_end_string:']]'\n[[ 7 ]]"
    elif where == "closing marker":
        alert["labels"]["instance"] = "wa-worker-1 }}"
    return payload


@pytest.mark.parametrize("where,path", [
    ("label value", "alerts[0].labels.instance carries '{{'"),
    ("label name", "alerts[0].labels (a key) carries '{{'"),
    ("annotation", "alerts[0].annotations.description carries '{%'"),
    ("alert name", "alerts[0].labels.alertname carries '{#'"),
    ("common label", "body.commonLabels.team carries '{{'"),
    ("generatorURL", "alerts[0].generatorURL carries '{{'"),
    ("override header", "alerts[0].annotations.summary carries '#jinja2:'"),
    ("closing marker", "alerts[0].labels.instance carries '}}'"),
])
def test_template_markers_anywhere_in_an_alert_get_400_and_no_event(running_source, where, path):
    server = running_source()
    good = am_alert("SlaBreach", fingerprint="ffff000000000001")
    payload = _poisoned(where)
    payload["alerts"].append(good)  # a good alert in the same group is not queued either
    response = post(server, payload)
    assert response.status_code == 400, response.text
    assert "template markers are refused, values from an alert are data" in response.text
    assert path in response.text
    assert "lookup" not in response.text and "range(9)" not in response.text  # the value itself is not echoed
    assert server.queue.drain() == []


@pytest.mark.parametrize("labels,message", [
    ({"phone": "phone_07\n"}, "the phone label must be a phone id of the form phone_NN"),   # fullmatch, not $
    ({"phone": "07"}, "the phone label must be a phone id"),
    ({"phone": "phone_07;id"}, "the phone label must be a phone id"),
    ({"campaign": "c-1"}, "the campaign label must be an Instantly campaign id"),
    ({"campaign": "019cad8f-ac00-7000-8000-019cad8fac00\n"}, "the campaign label must be an Instantly campaign id"),
])
def test_phone_and_campaign_labels_must_match_the_contract(running_source, labels, message):
    server = running_source()
    response = post(server, alertmanager_payload(am_alert("PhoneOffline", **labels)))
    assert response.status_code == 400
    assert "alerts[0]: " + message in response.text
    assert server.queue.drain() == []


def test_contract_shaped_phone_and_campaign_labels_are_accepted(running_source):
    server = running_source()
    response = post(server, alertmanager_payload(
        am_alert("PhoneOffline", phone="phone_07", fingerprint="1"),
        am_alert("BounceHigh", campaign="019CAD8F-ac00-7000-8000-019cad8fac00", fingerprint="2")))
    assert response.json() == {"accepted": 2}
    assert [event["labels"].get("phone") or event["labels"]["campaign"] for event in server.queue.drain()] == [
        "phone_07", "019CAD8F-ac00-7000-8000-019cad8fac00"]
