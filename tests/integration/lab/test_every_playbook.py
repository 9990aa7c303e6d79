"""Every playbook on the single-host lab over SSH (tests/support/every_playbook.py has the matrix; the HA pairs
are in test_every_playbook_ha.py, a file of its own so pytest-xdist runs the two labs side by side)."""

from __future__ import annotations

import pytest

from tests.support.every_playbook import HA_PLAYBOOKS, PLAYBOOKS_DIR, SPECS, run_case

pytestmark = pytest.mark.lab


def test_every_playbook_has_a_case():
    assert sorted(p.name for p in PLAYBOOKS_DIR.glob("*.yml")) == sorted(SPECS)
    assert set(HA_PLAYBOOKS) <= set(SPECS)


@pytest.mark.parametrize("playbook", sorted(SPECS))
def test_playbook_on_single_hosts(playbook, lab_single, tmp_path, instantly, timelines):
    run_case(lab_single, playbook, tmp_path, instantly, timelines)
