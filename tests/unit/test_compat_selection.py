"""tests/compat-playbooks.txt, what tools/compat-check runs on ansible-core 2.19: every playbook of playbooks/ has a
test there, and each named test exists in a file that runs that playbook."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SELECTION = REPO / "tests" / "compat-playbooks.txt"


def selection():
    """[(playbook path, pytest node id)] in the file's order."""
    rows = []
    for line in SELECTION.read_text().splitlines():
        words = line.split()
        if words and not words[0].startswith("#"):
            assert len(words) == 2, "one playbook and one test a line: {0!r}".format(line)
            rows.append((words[0], words[1]))
    return rows


def test_every_playbook_has_one_compat_test():
    listed = [playbook for playbook, _test in selection()]
    assert len(listed) == len(set(listed)), "a playbook listed twice"
    procedures = sorted("playbooks/" + path.name for path in (REPO / "playbooks").glob("*.yml"))
    assert len(procedures) >= 17
    missing = sorted(set(procedures) - set(listed))
    assert missing == [], "no compat test for {0}: add a line to {1}".format(missing, SELECTION.name)


def test_each_listed_test_exists_and_runs_its_playbook():
    for playbook, node in selection():
        assert (REPO / playbook).is_file(), playbook
        path, sep, name = node.partition("::")
        assert sep and "::" not in name, "a test function of a module, not a class's: " + node
        source = (REPO / path).read_text()
        functions = {item.name for item in ast.parse(source).body if isinstance(item, ast.FunctionDef)}
        assert name in functions, "{0} has no test {1}".format(path, name)
        # The file drives this playbook (the test or its fixture names it); compat-check proves it ran.
        assert '"{0}"'.format(Path(playbook).name) in source, "{0} never runs {1}".format(path, playbook)
