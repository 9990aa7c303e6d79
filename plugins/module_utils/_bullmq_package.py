# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Python `bullmq` package: whether it is installed, whether it pairs with the Node workers, running it.

- the Python package's major must pair with the Node workers' (Node v5 <-> Python 2.x, Node v6 <-> Python 3.x):
  mixing them loses jobs on pause/resume, so every write first reads `meta.version` and refuses on a mismatch;
- the `bullmq` package is asyncio only: each write runs in `asyncio.run`, with the Queue built on
  `async_redis_client()` (few retries, so a dead Redis fails in seconds).
"""

from __future__ import annotations

import asyncio
import re
import traceback

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    async_redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import bullmq
    from bullmq import Queue
    BULLMQ_IMPORT_ERROR = None
except ImportError:
    bullmq = Queue = None
    BULLMQ_IMPORT_ERROR = traceback.format_exc()

try:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as _package_version
except ImportError:  # pragma: no cover - Python < 3.8 targets are not supported
    _package_version = None
    PackageNotFoundError = Exception

# The Python port that pairs with each Node major, as a pip requirement.
PYTHON_PACKAGE_FOR_NODE_MAJOR = {5: "bullmq>=2.26,<3", 6: "bullmq>=3,<4"}
NODE_MAJOR_FOR_PYTHON_MAJOR = {2: 5, 3: 6}
DEFAULT_NODE_MAJOR = 5
BULLMQ_REQUIREMENT = "bullmq==2.26.0"

_NODE_VERSION_RE = re.compile(r"^bullmq:(?P<major>[0-9]+)\.[0-9]+\.[0-9]+")


def installed_python_bullmq():
    """The installed `bullmq` distribution version, e.g. '2.26.0', or None."""
    if bullmq is None:
        return None
    if _package_version is not None:
        try:
            return _package_version("bullmq")
        except PackageNotFoundError:
            pass
    return getattr(bullmq, "__version__", None)


def _major(version):
    try:
        return int(str(version).split(".", 1)[0])
    except (TypeError, ValueError):
        return None


def pairing_problem(queue_name, meta_version, expect_node_major=DEFAULT_NODE_MAJOR, python_version=None):
    """Why writing to this queue with the installed Python bullmq would be unsafe, or None when it pairs.

    meta.version is written by Node Queues (`bullmq:<x.y.z>`); no meta.version means no Node Queue opened it yet
    (or Python created it), so the expected Node major decides.
    """
    python_version = python_version or installed_python_bullmq()
    python_major = _major(python_version)
    pairs_with = NODE_MAJOR_FOR_PYTHON_MAJOR.get(python_major)
    if meta_version:
        match = _NODE_VERSION_RE.match(meta_version)
        if not match:
            return ("queue {0} has meta.version {1!r}, not written by Node BullMQ (bullmq:<x.y.z>); refusing to "
                    "write with Python bullmq {2}, whose pairing with it is unknown".format(
                        queue_name, meta_version, python_version))
        node_major = int(match.group("major"))
        node_version = meta_version.split(":", 1)[1]
        if node_major != pairs_with:
            wanted = PYTHON_PACKAGE_FOR_NODE_MAJOR.get(node_major)
            fix = ("install {0} on the host running this module".format(wanted) if wanted else
                   "no Python bullmq release is known to pair with it")
            return ("queue {0} is managed by Node BullMQ {1}; {2} (this host has Python bullmq {3}, which pairs "
                    "with Node BullMQ {4}.x; mixing majors loses jobs on pause/resume)".format(
                        queue_name, node_version, fix, python_version, pairs_with))
        return None
    if expect_node_major != pairs_with:
        wanted = PYTHON_PACKAGE_FOR_NODE_MAJOR.get(expect_node_major, "a matching bullmq")
        return ("the workers are expected to run Node BullMQ {0}.x (expect_node_major) but this host has Python "
                "bullmq {1}, which pairs with Node BullMQ {2}.x; install {3} on the host running this module".format(
                    expect_node_major, python_version, pairs_with, wanted))
    return None


def require_bullmq():
    if bullmq is None:
        raise CerniqError("the Python package bullmq is not installed on the host running this module: install "
                          "{0} (it pairs with the platform's Node BullMQ 5 workers)".format(BULLMQ_REQUIREMENT))


def check_pairing(queue_name, depths, expect_node_major=DEFAULT_NODE_MAJOR):
    """Refuse a write to a queue whose Node workers do not pair with the installed package (depths: queue_depths)."""
    problem = pairing_problem(queue_name, depths.get("version"), expect_node_major)
    if problem:
        raise CerniqError(problem)


def run_with_queue(params, queue_name, prefix, work):
    """Run `await work(queue)` on a bullmq Queue for `queue_name`, in a fresh event loop; Redis errors -> one line."""
    require_bullmq()
    db = params["bullmq_db"]

    async def runner():
        queue = Queue(queue_name, {"connection": async_redis_client(params, db), "prefix": prefix})
        try:
            return await work(queue)
        finally:
            await queue.close()

    with redis_errors(redis_where(params, db)):
        return asyncio.run(runner())
