# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Mirrors CONFIRMED_ARGUMENT_SPEC and run_destructive() in plugins/module_utils/_errors.py. Each module says in
    # its own description which of its operations are destructive (those that need this option).
    DOCUMENTATION = r"""
options:
  confirmed:
    description:
      - >-
        Confirms a destructive change (the module's description says which of its operations are). Without
        V(true), the module works out the change as in check mode and, when there is one, fails with
        C(Nothing was changed: <what> is destructive; re-run with -e confirm=true) and the plan in C(would),
        writing nothing (no audit row either). A call with nothing to change succeeds without it.
      - >-
        The procedures (roles) pass C(confirmed) from C(confirm | default(false) | bool), so the confirmation is
        enforced where the change is made, whatever C(--tags) or C(--skip-tags) a run is given.
      - Check mode never needs it (it changes nothing); operations that are not destructive ignore it.
    type: bool
    default: false
"""
