"""The README's playbook tables against playbooks/*.yml: every playbook is listed in both, and "Where each playbook
runs" names the groups its plays target (`hosts:`), in the order they run."""

from __future__ import annotations

import fnmatch
import re

import yaml

from tests.support.services import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
PLAYBOOKS = sorted((REPO_ROOT / "playbooks").glob("*.yml"))


def table(header):
    """The rows (lists of cells) of the README's table whose header row is `header`."""
    lines = README.splitlines()
    start = lines.index(header) + 2
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def ticked(cell):
    return re.findall(r"`([^`]+)`", cell)


def targeted_groups(path):
    groups = []
    for play in yaml.safe_load(path.read_text()):
        if play["hosts"] not in groups:
            groups.append(play["hosts"])
    return groups


def test_every_playbook_is_in_the_procedure_table():
    listed = [ticked(row[0])[0] for row in table("| playbook | runbook | what it does |")]
    assert sorted(listed) == [path.name for path in PLAYBOOKS]


def test_the_placement_table_names_each_playbooks_groups():
    rows = table("| playbook | group it targets | where its work runs |")
    said = {}
    for row in rows:
        for pattern in ticked(row[0]):
            matched = [path.stem for path in PLAYBOOKS if fnmatch.fnmatchcase(path.stem, pattern)]
            assert matched, "the README names {0!r}, which is no playbook".format(pattern)
            for name in matched:
                assert name not in said, "{0} is in two rows".format(name)
                said[name] = ticked(row[1])
    assert said == {path.stem: targeted_groups(path) for path in PLAYBOOKS}
