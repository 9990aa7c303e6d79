"""Pytest plugin (registered in tests/conftest.py): the vendor fakes and their OpenAPI documents as fixtures.

One Instantly and one TimelinesAI fake serve the whole session on free ports; `instantly` and `timelines` put them
back in their demo state (and clear faults, records, rate limits and config) for each test. `inst` and `tl` wrap
them in a Contract that validates every call against the vendor's document.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from openapi_core import OpenAPI

from tests.fakes import OPENAPI_DIR, InstantlyFake, TimelinesAIFake
from tests.fakes import instantly as instantly_fake
from tests.fakes import timelinesai as timelinesai_fake
from tests.support.vendor_contract import Contract
from tests.support.vendors import (
    INSTANTLY_DOCUMENT,
    INSTANTLY_KEY,
    INSTANTLY_SERVER,
    TIMELINES_DOCUMENT,
    TIMELINES_SERVER,
    TIMELINES_TOKEN,
    WEBHOOKS_DOCUMENT,
)


@pytest.fixture(scope="session")
def instantly_server():
    with InstantlyFake(api_key=INSTANTLY_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
def timelines_server():
    with TimelinesAIFake(api_key=TIMELINES_TOKEN) as fake:
        yield fake


@pytest.fixture()
def instantly(instantly_server):
    """The Instantly fake in its demo state: four campaigns, one bouncing 5 % over 4,200 sends (210 bounced leads)."""
    instantly_server.reset(instantly_fake.build_demo_state())
    return instantly_server


@pytest.fixture()
def timelines(timelines_server):
    """The TimelinesAI fake in its demo state: accounts +40700000001..20, numbers 7 and 19 disconnected."""
    timelines_server.reset(timelinesai_fake.build_demo_state())
    return timelines_server


@pytest.fixture(scope="session")
def instantly_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(OPENAPI_DIR / INSTANTLY_DOCUMENT))


@pytest.fixture(scope="session")
def timelines_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(OPENAPI_DIR / TIMELINES_DOCUMENT))


@pytest.fixture(scope="session")
def webhooks_spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(OPENAPI_DIR / WEBHOOKS_DOCUMENT))


@pytest.fixture(scope="session")
def timelines_doc() -> dict[str, Any]:
    """The TimelinesAI document as data (its component schemas validate what openapi-core cannot reach)."""
    return yaml.safe_load((OPENAPI_DIR / TIMELINES_DOCUMENT).read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def webhooks_doc() -> dict[str, Any]:
    return yaml.safe_load((OPENAPI_DIR / WEBHOOKS_DOCUMENT).read_text(encoding="utf-8"))


@pytest.fixture()
def inst(instantly, instantly_spec) -> Contract:
    """Calls to the Instantly fake (demo state) validated against Instantly's document."""
    return Contract(instantly, instantly_spec, INSTANTLY_SERVER, INSTANTLY_KEY)


@pytest.fixture()
def tl(timelines, timelines_spec) -> Contract:
    """Calls to the TimelinesAI fake (demo state) validated against TimelinesAI's public API document."""
    return Contract(timelines, timelines_spec, TIMELINES_SERVER, TIMELINES_TOKEN)
