"""The vendor fakes for the vendor modules' tests: module parameters, the fakes' demo campaigns, and the contract
check that every request a module sent and every response it got match the vendors' OpenAPI documents.

The fixtures (`instantly`, `timelines`, their servers and documents) come from tests/support/vendor_fixtures.py,
a plugin tests/conftest.py registers for the whole suite.
"""

from __future__ import annotations

import json

import requests
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

INSTANTLY_KEY = "inst-SECRET-key-7f3a9c"
TIMELINES_TOKEN = "tl-SECRET-token-2b8c41"
INSTANTLY_SERVER = "https://api.instantly.ai"
TIMELINES_SERVER = "https://app.timelines.ai"  # + the fake's base path /integrations/api
TENANT = "5b1f0c1e-0000-4000-8000-00000000c3e1"
# The vendors' documents in tests/fakes/openapi (byte copies of the shared reference).
INSTANTLY_DOCUMENT = "instantly-api-v2.subset.json"
TIMELINES_DOCUMENT = "timelinesai-public-api.yaml"
WEBHOOKS_DOCUMENT = "timelinesai-webhooks.yaml"


def vendor_params(platform_params, instantly=None, timelines=None, **overrides):
    """Module parameters: the platform's connections plus every vendor option, pointed at the fakes."""
    params = dict(platform_params)
    params.update(
        instantly_base_url=instantly.url if instantly else "https://api.instantly.ai",
        instantly_api_key=INSTANTLY_KEY,
        timelinesai_base_url=timelines.base_url if timelines else "https://app.timelines.ai/integrations/api",
        timelinesai_api_token=TIMELINES_TOKEN,
        timelinesai_rate_limit=50,
        allow_http=True,
        vendor_timeout=5.0,
        vendor_retries=2,
    )
    params.update(overrides)
    return params


def campaign_ids(fake):
    by_name = {c["name"]: c["id"] for c in fake.snapshot()["campaigns"]}
    return dict(hot=by_name["RO SMB Q3 - Bucuresti"], healthy=by_name["RO Enterprise Q3"],
                draft=by_name["Q4 Nurture (draft)"], paused=by_name["Q2 Reactivation"])


def campaign_status(fake, campaign_id):
    return next(c["status"] for c in fake.snapshot()["campaigns"] if c["id"] == campaign_id)


def changes(fake):
    """Requests that can change the vendor's state."""
    return [r for r in fake.requests() if r["method"] != "GET" and not r["path"].endswith("/leads/list")]


def assert_traffic_matches_openapi(fake, spec, server_root, expect_undocumented=()):
    """Validate every recorded exchange with openapi-core, as if it had gone to the vendor's real server.

    A response whose status the document does not describe must be one the test injected (a fault) or one named in
    `expect_undocumented` (status codes); its request is still validated. Returns how many exchanges were checked.
    """
    records = fake.requests()
    assert records, "the module sent nothing to {0}".format(fake.vendor)
    for record in records:
        query = [(name, value) for name, values in record["query"].items() for value in values]
        headers = {name: value for name, value in record["headers"].items()
                   if name in ("content-type", "accept")}
        if record["authorization"]:
            headers["Authorization"] = "Bearer x"
        body = json.dumps(record["json"]).encode() if record["json"] is not None else None
        prepared = requests.Request(record["method"], server_root + record["path"], params=query, headers=headers,
                                    data=body).prepare()
        oreq = RequestsOpenAPIRequest(prepared)
        spec.validate_request(oreq)
        response = requests.Response()
        response.status_code = record["status"]
        response.headers.update(record["response_headers"])
        response._content = record["response_body"].encode("utf-8")
        response.request = prepared
        if record["fault"] is not None or record["status"] in expect_undocumented:
            continue
        spec.validate_response(oreq, RequestsOpenAPIResponse(response))
    return len(records)


def seed_phones(platform, count=21, wrong_account=("phone_05",)):
    """phone_01.. as the platform seed lays them out: +40700000001.., account 40700000001@s.whatsapp.net.."""
    platform.sql(
        "INSERT INTO wa_phone_numbers (id, tenant_id, phone_number, phone_label, timelinesai_account_id, status) "
        "SELECT format('phone_%%s', lpad(n::text, 2, '0')), %s, format('+40700%%s', lpad(n::text, 6, '0')), "
        "format('Sales %%s', n), format('40700%%s@s.whatsapp.net', lpad(n::text, 6, '0')), "
        "CASE WHEN n = 7 THEN 'OFFLINE' ELSE 'ACTIVE' END FROM generate_series(1, %s) AS n", (TENANT, count))
    platform.sql("UPDATE wa_phone_numbers SET timelinesai_account_id = 'stale@s.whatsapp.net' WHERE id = ANY(%s)",
                 (list(wrong_account),))
