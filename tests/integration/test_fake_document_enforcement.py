"""The vendor fakes are held to their OpenAPI documents (tests/fakes/_server.py), proven on fakes built the way the
real ones are (a subclass with its routes and handlers), each broken on purpose: a route the document lacks stops
the fake from starting, an answer the document does not allow goes out as a 500 naming the breach, and a request
that breaks the document gets the vendor's 400 before the handler runs."""

from __future__ import annotations

import json

import pytest
import requests

from tests.fakes import InstantlyFake, TimelinesAIFake
from tests.fakes._server import json_response
from tests.support.vendors import INSTANTLY_KEY, TIMELINES_TOKEN, campaign_ids


def _answer(req):
    return json_response(200, {"ok": True})


class InstantlyWithExtraRoute(InstantlyFake):
    def routes(self):
        return [*super().routes(), ("POST", "/api/v2/campaigns/{id}/duplicate", _answer)]


class TimelinesAIWithExtraRoute(TimelinesAIFake):
    def routes(self):
        return [*super().routes(), ("DELETE", "/whatsapp_accounts/{account_id}", _answer)]


class InstantlyExcusingADocumentedRoute(InstantlyFake):
    undocumented_routes = InstantlyFake.undocumented_routes | {("GET", "/api/v2/campaigns")}


@pytest.mark.parametrize(("fake_cls", "message"), [
    (InstantlyWithExtraRoute,
     "instantly: routes its OpenAPI document lacks: [('POST', '/api/v2/campaigns/{id}/duplicate')]"),
    (TimelinesAIWithExtraRoute,
     "timelinesai: routes its OpenAPI document lacks: [('DELETE', '/whatsapp_accounts/{account_id}')]"),
    (InstantlyExcusingADocumentedRoute,
     "instantly: the document now carries [('GET', '/api/v2/campaigns')]; drop them from the exceptions"),
])
def test_a_route_its_document_lacks_stops_the_fake_from_starting(fake_cls, message):
    with pytest.raises(ValueError) as refused:
        fake_cls(api_key=INSTANTLY_KEY)
    assert str(refused.value) == message


class InstantlyWithADriftingCampaign(InstantlyFake):
    """GET /api/v2/campaigns/{id} answers the status as a word; the document says a number."""

    def get_campaign(self, req):
        resp = super().get_campaign(req)
        if resp.status != 200:
            return resp
        return json_response(200, {**json.loads(resp.body), "status": "active"})


class TimelinesAIWithoutWorkspaceData(TimelinesAIFake):
    """GET /workspace answers without the required `data`."""

    def workspace(self, req):
        return json_response(200, {"status": "ok"})


def test_an_answer_breaking_the_document_goes_out_as_a_500_naming_the_breach():
    with InstantlyWithADriftingCampaign(api_key=INSTANTLY_KEY) as fake:
        cid = campaign_ids(fake)["hot"]
        auth = {"Authorization": "Bearer " + INSTANTLY_KEY}
        got = requests.get(fake.url + "/api/v2/campaigns/" + cid, headers=auth, timeout=10)
        assert got.status_code == 500
        body = got.json()
        assert body["error"] == "the fake's answer breaks its OpenAPI document"
        assert body["breach"].startswith("GET /api/v2/campaigns/{id} -> 200: status: 'active' is not of type"), body
        record = fake.requests()[-1]
        assert (record["status"], record["breach"]) == (500, body["breach"])
        # A valid answer of the same fake goes out untouched and records no breach.
        listed = requests.get(fake.url + "/api/v2/campaigns", params={"limit": 10}, headers=auth, timeout=10)
        assert listed.status_code == 200 and cid in [c["id"] for c in listed.json()["items"]]
        assert fake.requests()[-1]["breach"] is None

    with TimelinesAIWithoutWorkspaceData(api_key=TIMELINES_TOKEN) as fake:
        got = requests.get(fake.base_url + "/workspace", headers={"Authorization": "Bearer " + TIMELINES_TOKEN},
                           timeout=10)
        assert got.status_code == 500
        breach = got.json()["breach"]
        assert breach.startswith("GET /workspace -> 200: (the body): 'data' is a required property"), breach
        assert fake.requests()[-1]["breach"] == breach


class CountingInstantly(InstantlyFake):
    def __init__(self, **kwargs):
        self.handled = 0
        super().__init__(**kwargs)

    def list_campaigns(self, req):
        self.handled += 1
        return super().list_campaigns(req)


class CountingTimelinesAI(TimelinesAIFake):
    def __init__(self, **kwargs):
        self.handled = 0
        super().__init__(**kwargs)

    def send_message(self, req):
        self.handled += 1
        return super().send_message(req)


def test_a_request_breaking_the_document_gets_the_vendors_400_before_the_handler_runs():
    with CountingInstantly(api_key=INSTANTLY_KEY) as fake:
        auth = {"Authorization": "Bearer " + INSTANTLY_KEY}
        too_many = requests.get(fake.url + "/api/v2/campaigns", params={"limit": 101}, headers=auth, timeout=10)
        assert too_many.status_code == 400
        assert too_many.json() == {"statusCode": 400, "error": "Bad Request",
                                   "message": "querystring/limit must be <= 100"}
        not_a_number = requests.get(fake.url + "/api/v2/campaigns", params={"limit": "ten"}, headers=auth,
                                    timeout=10)
        assert not_a_number.status_code == 400
        assert not_a_number.json()["message"] == "querystring/limit must be integer"
        assert fake.handled == 0
        # The same route with a request the document allows reaches the handler.
        fine = requests.get(fake.url + "/api/v2/campaigns", params={"limit": 100}, headers=auth, timeout=10)
        assert fine.status_code == 200 and fake.handled == 1

    with CountingTimelinesAI(api_key=TIMELINES_TOKEN) as fake:
        auth = {"Authorization": "Bearer " + TIMELINES_TOKEN}
        no_phone = requests.post(fake.base_url + "/messages", json={"text": "Buna ziua"}, headers=auth, timeout=10)
        assert no_phone.status_code == 400
        body = no_phone.json()
        assert (body["status"], body["error_code"]) == ("error", "validation_error"), body
        assert "phone" in body["message"] and "field required" in body["message"], body
        assert fake.handled == 0 and fake.snapshot()["messages"] == {}
        sent = requests.post(fake.base_url + "/messages", json={"phone": "+40722000001", "text": "Buna ziua"},
                             headers=auth, timeout=10)
        assert sent.status_code == 200, sent.text
        assert fake.handled == 1 and len(fake.snapshot()["messages"]) == 1
