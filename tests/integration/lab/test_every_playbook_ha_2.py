"""Every playbook on the HA pairs over SSH, second half (tests/support/every_playbook.py: HALVES)."""

from __future__ import annotations

import pytest

from tests.support.every_playbook import HALVES, run_case

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("playbook", HALVES[1])
def test_playbook_on_ha_pairs(playbook, lab_ha, tmp_path, instantly, timelines):
    run_case(lab_ha, playbook, tmp_path, instantly, timelines)
