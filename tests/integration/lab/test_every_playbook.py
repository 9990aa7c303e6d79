"""Every playbook on the single-host lab over SSH, first half (tests/support/every_playbook.py has the matrix and its
halves; the second half is test_every_playbook_2.py, the HA pairs test_every_playbook_ha*.py: one file per half so
pytest-xdist runs them side by side)."""

from __future__ import annotations

import pytest

from tests.support.every_playbook import HALVES, PLAYBOOKS_DIR, SPECS, run_case

pytestmark = pytest.mark.lab


def test_every_playbook_has_a_case_in_one_half():
    assert sorted(p.name for p in PLAYBOOKS_DIR.glob("*.yml")) == sorted(SPECS) == sorted(HALVES[0] + HALVES[1])


@pytest.mark.parametrize("playbook", HALVES[0])
def test_playbook_on_single_hosts(playbook, lab_single, tmp_path, instantly, timelines):
    run_case(lab_single, playbook, tmp_path, instantly, timelines)
