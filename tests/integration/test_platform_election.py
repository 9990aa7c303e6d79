"""The platform role's election (platform_primary_info) outside the lab: with two hosts in the redis and db groups, the
play asks each at run time and works against the one that answers as primary, whatever the inventory's order.
The lab (tests/integration/lab) proves it on real HA pairs; this runs in seconds, also under ansible-core 2.19 by
`make compat` (tools/compat-check), where it is the one test that runs platform_primary_info."""

from __future__ import annotations

import pytest

from tests.support.playbooks import run_playbook, three_host_inventory

pytestmark = pytest.mark.compat

# Nothing listens there: the test servers bind 127.0.0.1 only.
DOWN = "127.0.0.3"


def test_the_play_elects_the_primary_that_answers_not_the_first_listed(platform):
    inventory = three_host_inventory(platform.redis, platform.pg)
    groups = inventory["all"]["children"]
    groups["db"]["hosts"] = {"db-1": {"ansible_host": DOWN}, "db-2": {"ansible_host": platform.pg.host}}
    groups["redis"]["hosts"] = {"redis-1": {"ansible_host": DOWN}, "redis-2": {"ansible_host": platform.redis.host}}

    run = run_playbook("stack_health.yml", inventory)

    assert run.rc == 0, run.stdout[-3000:]
    elected = run.result("Find the PostgreSQL primary and the Redis master")
    assert elected["db"]["primary"]["name"] == "db-2"
    assert elected["redis"]["primary"]["name"] == "redis-2"
    assert [(c["name"], c["reachable"]) for c in elected["db"]["candidates"]] == [("db-1", False), ("db-2", True)]
    assert [(c["name"], c["reachable"]) for c in elected["redis"]["candidates"]] == [
        ("redis-1", False),
        ("redis-2", True),
    ]
    assert run.result("Read the health")["healthy"] is True
