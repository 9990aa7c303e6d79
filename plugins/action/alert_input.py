# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cerniq.outreach.alert_input (documented in plugins/modules/alert_input.py).

Reads the variables an alert arrives in AS STORED, never through the templar: ansible-core loads extra variables
(`-e @file`, which is how ansible-rulebook, ansible-runner and AWX pass them) as trusted templates, so reading them
through a template would render whatever an alert put in them. Refuses the run when any of them carries a template
marker, or a phone / campaign that does not match the contract; returns the validated values, which (being a task
result) ansible-core never renders.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from ansible.plugins.action import ActionBase

from ansible_collections.cerniq.outreach.plugins.module_utils import _alert_input as alert_input

# (role variable, short extra variable) per input; the role variable wins when it is not empty.
INPUTS = {
    "alert": ("alert_response_alert", "alert"),
    "labels": ("alert_response_labels", "alert_labels"),
    "phone": ("alert_response_phone", "phone"),
    "campaign": ("alert_response_campaign", "campaign"),
}
# Checked, not handed on: what ansible-rulebook adds to every run_playbook (the whole event; never read), and the
# playbook's other inputs, which an AWX survey answer can fill like any extra variable.
CHECKED_ONLY = ("ansible_eda", "confirm", "alert_response_confirm", "alert_response_vendor_retries")
DEFAULT_LABELS = ("phone", "campaign")


def _empty(value):
    return value is None or (isinstance(value, (str, Mapping, list)) and not (value.strip() if isinstance(value, str)
                                                                              else value))


def _as_text(value, where):
    """A plain str: a value loaded from an extra-vars file carries ansible-core's trust tag, and a tagged string in a
    task result would still be rendered when read; a new, untagged str never is."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError("{0} must be a string, got {1}".format(where, type(value).__name__))
    return "".join(iter(str(value).strip()))


def read_alert_input(variables, used_labels=DEFAULT_LABELS):
    """(result, None) with the validated input, or (None, message) saying why the run is refused."""
    given = {name: variables[name] for names in INPUTS.values() for name in names if name in variables}
    found = []
    for name in sorted(set(given) | {name for name in CHECKED_ONLY if name in variables}):
        found += alert_input.find_template_markers(variables[name], name)
    if found:
        return None, ("Refused: values that come with an alert are data, never templates, and {0}. Nothing was "
                      "run.".format(alert_input.describe_markers(found)))

    def pick(key):
        long_name, short_name = INPUTS[key]
        if not _empty(given.get(long_name)):
            return long_name, given[long_name]
        return short_name, given.get(short_name)

    try:
        name, alert = pick("alert")
        alert = _as_text(alert, name) if alert is not None else ""
        name, raw_labels = pick("labels")
        if isinstance(raw_labels, str) and raw_labels.strip():
            try:
                raw_labels = json.loads(raw_labels)
            except ValueError:
                raise ValueError("{0} is neither a mapping nor its JSON text".format(name)) from None
        if _empty(raw_labels):
            raw_labels = {}
        if not isinstance(raw_labels, Mapping):
            raise ValueError("{0} must be a mapping of label names to values".format(name))
        labels = {str(key): _as_text(value, "{0}.{1}".format(name, key)) for key, value in raw_labels.items()
                  if str(key) in used_labels and value is not None}
        for key in ("phone", "campaign"):
            name, value = pick(key)
            if not _empty(value):
                labels[key] = _as_text(value, name)
        labels = {key: value for key, value in labels.items() if value}
        for key, value in sorted(labels.items()):
            problem = alert_input.label_problem(key, value)
            if problem:
                raise ValueError(problem)
    except ValueError as exc:
        return None, "Refused: {0}. Nothing was run.".format(exc)
    return {"alert": alert, "labels": labels, "phone": labels.get("phone", ""),
            "campaign": labels.get("campaign", "")}, None


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("labels",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        used = self._task.args.get("labels", list(DEFAULT_LABELS))
        if not isinstance(used, (list, tuple)) or not all(isinstance(name, str) for name in used):
            result.update(failed=True, msg="labels must be a list of label names")
            return result
        # task_vars holds the variables as loaded: a trusted template in them is still its source text here.
        validated, refusal = read_alert_input(task_vars or {}, used_labels=tuple(used))
        if refusal:
            result.update(failed=True, msg=refusal)
            return result
        result.update(changed=False, **validated)
        return result
