# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a value that came with an alert may look like: data, never a template (issue 11, docs/security.md).

Shared by the EDA event source (extensions/eda/plugins/event_source/alertmanager.py), which refuses an alert carrying
a template marker before any event is queued, and by the alert_input action (playbooks/alert_response.yml,
roles/alert_response), which refuses the same before any task of a procedure runs. Neither renders the value to find
out: both look at the text as received.
"""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import CAMPAIGN_ID_RE, PHONE_ID_RE

# What opens (and closes) a Jinja expression, statement or comment with the delimiters ansible-core and
# ansible-rulebook use. Closing markers cannot start a template alone; refusing them too costs an alert nothing.
TEMPLATE_MARKERS = ("{{", "{%", "{#", "}}", "%}", "#}")
# A string that starts with this header is a template to ansible-core even without delimiters: the header may redefine
# them (`#jinja2:variable_start_string:'[['`). Refused anywhere in a value, in any case.
TEMPLATE_OVERRIDE_HEADER = "#jinja2:"

# Labels the procedures use, each with the contract's pattern (matched with fullmatch: no trailing newline).
LABEL_PATTERNS = {
    "phone": (PHONE_ID_RE, "a phone id of the form phone_NN (e.g. phone_07)"),
    "campaign": (CAMPAIGN_ID_RE, "an Instantly campaign id (a UUID such as 019cad8f-ac00-7000-8000-019cad8fac00)"),
}


def template_marker(text):
    """The first template marker found in `text` (a str), or None."""
    for marker in TEMPLATE_MARKERS:
        if marker in text:
            return marker
    if TEMPLATE_OVERRIDE_HEADER in text.lower():
        return TEMPLATE_OVERRIDE_HEADER
    return None


def find_template_markers(value, where, max_depth=32):
    """[(path, marker)] for every string (key or value) under `value` that carries a template marker.

    Walks dicts, lists and tuples as they are, without rendering anything; deeper than `max_depth` counts as a finding
    (nothing legitimate from an alert nests that deep).
    """
    found = []
    stack = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if depth > max_depth:
            found.append((path, "nesting deeper than {0} levels".format(max_depth)))
            continue
        if isinstance(item, str):
            marker = template_marker(item)
            if marker:
                found.append((path, marker))
        elif isinstance(item, dict):
            for key, child in item.items():
                key_text = str(key)
                marker = template_marker(key_text)
                if marker:
                    found.append(("{0} (a key)".format(path), marker))
                    continue
                stack.append((child, "{0}.{1}".format(path, key_text), depth + 1))
        elif isinstance(item, (list, tuple)):
            for index, child in enumerate(item):
                stack.append((child, "{0}[{1}]".format(path, index), depth + 1))
    return sorted(found)


def describe_markers(found):
    """One sentence naming where the markers are (never the values themselves)."""
    return "; ".join("{0} carries {1!r}".format(path, marker) for path, marker in found)


def label_problem(name, value):
    """Why a label the procedures use does not match the contract, or None (labels without a pattern: None)."""
    if name not in LABEL_PATTERNS:
        return None
    pattern, shape = LABEL_PATTERNS[name]
    if not isinstance(value, str) or not pattern.fullmatch(value):
        return "the {0} label must be {1}".format(name, shape)
    return None
