"""Calls to a vendor fake validated against the vendor's OpenAPI document, and the fakes' admin API."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.exceptions import OpenAPIError

DEFAULT_TOKEN = object()
# TimelinesAI's timestamps: 2024-05-01 09:30:00 +0300
TIMELINES_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}$")


def component_schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """A component schema as a standalone JSON Schema whose internal $refs still resolve."""
    return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}


def admin(fake, method: str, path: str, body: Any = None) -> Any:
    """A call to the fake's admin API (/__fake__), which must answer 200."""
    resp = requests.request(method, f"{fake.url}/__fake__{path}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


class Contract:
    """Calls a fake over HTTP and validates the exchange against the vendor's OpenAPI document, as if it had
    been sent to the vendor's real server URL."""

    def __init__(self, fake, spec: OpenAPI, server_root: str, token: str):
        self.fake, self.spec, self.server_root, self.token = fake, spec, server_root, token
        self.validated = 0

    def call(
        self,
        method: str,
        path: str,
        *,
        token: Any = DEFAULT_TOKEN,
        request_valid: bool = True,
        response_documented: bool = True,
        **kwargs: Any,
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        token = self.token if token is DEFAULT_TOKEN else token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        resp = requests.request(
            method, self.fake.url + self.fake.base_path + path, headers=headers, timeout=10, **kwargs
        )
        self.check(resp, request_valid=request_valid, response_documented=response_documented)
        return resp

    def openapi_request(self, resp: requests.Response) -> RequestsOpenAPIRequest:
        prepared = resp.request.copy()
        prepared.url = prepared.url.replace(self.fake.url, self.server_root, 1)
        return RequestsOpenAPIRequest(prepared)

    def check(self, resp: requests.Response, *, request_valid: bool = True, response_documented: bool = True):
        oreq = self.openapi_request(resp)
        if request_valid:
            self.spec.validate_request(oreq)
        else:  # the test sends a request the document forbids, on purpose: prove the validator sees it too
            with pytest.raises(OpenAPIError):
                self.spec.validate_request(oreq)
        if response_documented:
            self.spec.validate_response(oreq, RequestsOpenAPIResponse(resp))
            self.validated += 1
        else:
            with pytest.raises(OpenAPIError):
                self.spec.validate_response(oreq, RequestsOpenAPIResponse(resp))
