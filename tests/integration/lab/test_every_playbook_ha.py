"""The playbooks whose placement depends on an HA pair, on the ha lab over SSH (tests/support/every_playbook.py)."""

from __future__ import annotations

import pytest

from tests.support.every_playbook import HA_PLAYBOOKS, run_case

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("playbook", HA_PLAYBOOKS)
def test_playbook_on_ha_pairs(playbook, lab_ha, tmp_path, instantly, timelines):
    run_case(lab_ha, playbook, tmp_path, instantly, timelines)
