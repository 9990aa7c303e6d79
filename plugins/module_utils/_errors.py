# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One error style for the whole collection: what failed, where (host, key, row), what to do."""

from __future__ import annotations

import dataclasses


class CerniqError(Exception):
    """A failure the operator can act on. The message is shown as is: it never carries a secret."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details


def request_from_params(request_class, params):
    """A core's frozen request from a module's parameters, as AnsibleModule hands them over (lists as tuples, so the
    request stays hashable); an option absent keeps the request's default."""
    return request_class(**{field.name: tuple(params[field.name]) if isinstance(params[field.name], list)
                            else params[field.name]
                            for field in dataclasses.fields(request_class) if field.name in params})


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


def with_warnings(module, result):
    """Hand a core result's `warnings` to module.warn (exit_json no longer takes them) and return the rest."""
    for warning in result.pop("warnings", None) or ():
        module.warn(warning)
    return result


# The option every module with a destructive operation declares (documented once in doc_fragments/_confirm.py).
CONFIRMED_ARGUMENT_SPEC = dict(confirmed=dict(type="bool", default=False))


def refusal_message(what):
    """The one sentence every confirmation gate says (the roles' platform/confirm.yml says the same)."""
    return "Nothing was changed: {0} is destructive; re-run with -e confirm=true".format(what)


def run_destructive(module, operation, destructive):
    """Run a module core whose change can be destructive: without `confirmed: true` it writes nothing.

    `operation(check_mode)` returns the result dict. `destructive` names what this call's change destroys
    ("deleting quota counters"), or is None when the options asked for need no confirmation.

    The gate is enforced here, at the point of change, not by the tags of a confirmation task a run can skip:
    when the operation is destructive, the module is not in check mode and `confirmed` is not true, the core runs
    in check mode (which writes nothing). If it would change nothing, that result is returned (a run with nothing
    to do needs no confirmation); if it would change something, the module fails with one message, the plan
    (`would`) attached. Check mode itself never needs `confirmed`.
    """
    if not destructive or module.check_mode or module.params.get("confirmed"):
        return run_module(module, lambda: operation(module.check_mode))

    def plan_then_refuse():
        plan = operation(True)
        if not plan.get("changed"):
            return plan
        plan.pop("diff", None)
        plan.pop("changed", None)
        would = plan.pop("msg", None)
        raise CerniqError("{0} (a task calling {1} directly sets confirmed: true). It would: {2}".format(
            refusal_message(destructive), module._name, would or "change something (run with --check to see it)"),
            confirmation_required=True, would=plan)

    return run_module(module, plan_then_refuse)
