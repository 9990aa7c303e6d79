"""Every benchmark scenario at tiny size, so the suite cannot rot (the full run is `make bench`, minutes)."""

import json
import subprocess
import sys

import pytest

from bench.__main__ import load_scenarios
from tests.support.services import REPO_ROOT

# A scenario on the lab of real hosts (bench/lab_*.py) builds one (root, network namespaces): marked `lab` like
# tests/integration/lab, so `-m "not lab"` skips it too.
SCENARIOS = [pytest.param(scenario.name, marks=pytest.mark.lab) if scenario.name.startswith("lab_") else scenario.name
             for scenario in load_scenarios()]


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_runs_at_tiny_size_and_reports_figures(name, tmp_path):
    report = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--size", "tiny", "--only", name, "--json", str(report)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    rows = json.loads(report.read_text())["rows"]
    assert rows, "scenario {0} reported no row".format(name)
    for row in rows:
        assert row["ours_s"] and row["ours_s"] > 0
        assert row["scenario"] in proc.stdout
