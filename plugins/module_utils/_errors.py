# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One error style for the whole collection: what failed, where (host, key, row), what to do."""

from __future__ import annotations


class CerniqError(Exception):
    """A failure the operator can act on. The message is shown as is: it never carries a secret."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


def run_module(module, operation):
    """Run a module's core operation and turn every expected failure into one clear fail_json line.

    `operation` returns the result dict (with `changed`); it raises CerniqError for anything the user can fix.
    A `diff` in the result is returned only when the task runs with --diff (or diff: true).
    """
    try:
        result = operation()
    except CerniqError as exc:
        module.fail_json(msg=exc.msg, **exc.details)
    if not module._diff:
        result.pop("diff", None)
    module.exit_json(**result)
