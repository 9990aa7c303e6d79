"""Local HTTP fakes of the SaaS vendors (Instantly API v2, TimelinesAI Public API), built on the standard library.

    from tests.fakes import InstantlyFake, TimelinesAIFake

    with InstantlyFake(api_key="k") as fake:  # free port on 127.0.0.1, served from a thread
        requests.get(fake.url + "/api/v2/campaigns", headers={"Authorization": "Bearer k"})

They serve what the vendors' OpenAPI documents in ``tests/fakes/openapi/`` say; faults, rate limits, state and the
request record are reachable in-process and over HTTP under ``/__fake__/``. See ``_server.FakeServer``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for readers and linters; at run time __getattr__ imports them on first use
    from tests.fakes._server import FakeServer, Fault, RateLimit
    from tests.fakes.instantly import InstantlyFake
    from tests.fakes.timelinesai import TimelinesAIFake

OPENAPI_DIR = Path(__file__).resolve().parent / "openapi"

# Imported lazily so `python -m tests.fakes.instantly` does not import the module twice (runpy warns about that).
_EXPORTS = {
    "FakeServer": "tests.fakes._server",
    "Fault": "tests.fakes._server",
    "RateLimit": "tests.fakes._server",
    "InstantlyFake": "tests.fakes.instantly",
    "TimelinesAIFake": "tests.fakes.timelinesai",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["OPENAPI_DIR", "FakeServer", "Fault", "InstantlyFake", "RateLimit", "TimelinesAIFake"]
