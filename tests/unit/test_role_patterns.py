"""Regexes in the roles and playbooks match whole values (issue 11): a pattern ending in `$` also accepts a trailing
newline (`"7\\n" is match('^[0-9]+$')` is true), so a Jinja `match` / `search` / `regex` test or `regex_search`
filter that validates a value uses fullmatch (`is regex('[0-9]+', match_type='fullmatch')`) or ends with `\\Z`.
tests/unit/plugins/module_utils/test_validation_fullmatch.py holds the Python side to the same rule."""

from __future__ import annotations

import re

import pytest

from tests.support.services import REPO_ROOT

SCANNED = ("roles", "playbooks", "extensions")
# The test or filter's name, then (directly or as select('match', ...)'s second argument) the pattern literal.
PATTERN_ARG = re.compile(r"""\b(?:match|search|regex|regex_search)\b'?\s*[(,]\s*(?P<q>['"])(?P<pattern>.*?)(?P=q)""")
DOLLAR_END = re.compile(r"(?<!\\)\$\Z")


def patterns(text):
    return [found.group("pattern") for found in PATTERN_ARG.finditer(text)]


def ending_in_dollar(text):
    return [pattern for pattern in patterns(text) if DOLLAR_END.search(pattern)]


@pytest.mark.parametrize(("line", "flagged"), [
    ("- quota_reset_days_back | string is match('^[0-9]+$')", ["^[0-9]+$"]),
    ('- value is search("^phone_[0-9]{2,}$")', ["^phone_[0-9]{2,}$"]),
    ("{{ x | regex_search('^[a-z]+$') }}", ["^[a-z]+$"]),
    ("{{ lines | select('match', '^[a-z]+$') | list }}", ["^[a-z]+$"]),
    ("- value is regex('[0-9]+', match_type='fullmatch')", []),
    ("- value is match('^[0-9]+\\Z')", []),
    ("- value is match('^costs \\$')", []),
    ("{{ lines | reject('match', '^(#|--|$)') }}", []),
])
def test_the_scanner_flags_a_trailing_dollar(line, flagged):
    assert patterns(line), line
    assert ending_in_dollar(line) == flagged


def test_no_role_or_playbook_pattern_ends_with_a_dollar():
    files = sorted(path for top in SCANNED for path in (REPO_ROOT / top).rglob("*.yml")
                   if "node_modules" not in path.parts)
    seen, dollar = [], []
    for path in files:
        text = path.read_text()
        seen += patterns(text)
        dollar += ["{0}: {1}".format(path.relative_to(REPO_ROOT), p) for p in ending_in_dollar(text)]
    # The scan sees the roles' patterns (the two whole-number checks among them), so an empty result means something.
    assert seen.count("[0-9]+") >= 2 and len(seen) >= 5, seen
    assert dollar == [], "match the whole value (match_type='fullmatch' or \\Z): {0}".format(dollar)
