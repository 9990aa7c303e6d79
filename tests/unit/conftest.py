"""ansible-test units runs pytest with its own configuration file and --strict-markers: the markers the suite's
configuration (pyproject.toml) declares are declared here from it too."""

import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def pytest_configure(config):
    declared = {line.split(":")[0].strip() for line in config.getini("markers")}
    with PYPROJECT.open("rb") as handle:
        markers = tomllib.load(handle)["tool"]["pytest"]["ini_options"]["markers"]
    for line in markers:
        if line.split(":")[0].strip() not in declared:
            config.addinivalue_line("markers", line)
