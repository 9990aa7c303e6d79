"""Every playbook on the HA pairs over SSH, first half (tests/support/every_playbook.py has the matrix; the second
half is test_every_playbook_ha_2.py): db-1 primary + db-2 streaming standby, redis-1 master + redis-2 replica, listed
standby and replica first in the inventory. And a standby or replica named as the service itself is refused."""

from __future__ import annotations

import pytest

from tests.support.every_playbook import HALVES, run_case

pytestmark = pytest.mark.lab

BANNED = "phone_02"


@pytest.mark.parametrize("playbook", HALVES[0])
def test_playbook_on_ha_pairs(playbook, lab_ha, tmp_path, instantly, timelines):
    run_case(lab_ha, playbook, tmp_path, instantly, timelines)


def test_a_standby_or_replica_named_as_the_service_is_refused_and_nothing_changes(lab_ha):
    lab = lab_ha
    lab.reset()
    before = lab.digest()
    standby = lab.hosts["db-2"].address
    replica = lab.hosts["redis-2"].address
    refused_db = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "x",
                                                         "cerniq_db_host": standby})
    assert refused_db.rc != 0
    assert "is a standby (pg_is_in_recovery() is true)" in refused_db.stdout
    refused_redis = lab.play("phone_banned.yml", extravars={"phone": BANNED, "confirm": True, "reason": "x",
                                                            "cerniq_redis_host": replica})
    assert refused_redis.rc != 0
    assert "is a replica of" in refused_redis.stdout
    assert lab.digest() == before
