"""The lab of real hosts (tests/support/lab.py) as session fixtures: `lab_single` and `lab_ha`.

Each is built once per session (per pytest-xdist worker that asks for it: two workers build two labs on two
subnets) and removed at the session's end, when a test fails too (and at interpreter exit; a killed run's lab is
removed by the next lab's start). Tests share it: call `lab.reset()` for a freshly seeded lab. Every test in this
directory is marked `lab` (selected with `-m lab`, skipped with `-m "not lab"`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.lab import Lab

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.lab)


def _build(request, topology):
    lab = Lab(topology)
    request.addfinalizer(lab.close)
    lab.start()
    return lab


@pytest.fixture(scope="session")
def lab_single(request):
    """redis-1, db-1, workers-1: Redis, PostgreSQL (seeded with tests/support/seed.py's small plan), a workers host."""
    return _build(request, "single")


@pytest.fixture(scope="session")
def lab_ha(request):
    """redis-1 master + redis-2 replica, db-1 primary + db-2 streaming standby, workers-1."""
    return _build(request, "ha")
