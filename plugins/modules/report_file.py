#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: report_file
short_description: Write a procedure's report files on the controller, with their directory and retention
version_added: 0.2.0
description:
  - Runs on the controller (an action plugin) and writes there, where C(ansible-playbook) (or AWX's execution
    environment) runs, whatever the task's host or delegation (docs/hosts.md places the reports on the controller).
    No module process is started, so writing the report costs no module run.
  - Makes each file's directory (O(directory_mode), also set on a directory that exists), writes each file whose
    content differs (a temporary file in the same directory, then renamed over it, O(mode), O(owner), O(group)),
    and removes the files in those directories that match O(remove_patterns) and are O(keep_days) days old or
    older (modification time), as C(ansible.builtin.find) with C(age) and C(ansible.builtin.file) with
    C(state=absent) would. A file written by this task is never removed by it.
  - In check mode nothing is written or removed; the result says what would be.
author:
  - CERNIQ SRE (@cerniq-sre)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  files:
    description:
      - The files to write, each C(path) (absolute) and C(content) (text, written as UTF-8, as given).
    type: list
    elements: dict
    required: true
  mode:
    description:
      - The files' permissions, an octal string.
    type: str
    default: "0640"
  directory_mode:
    description:
      - The permissions of each file's directory, an octal string.
    type: str
    default: "0750"
  owner:
    description:
      - The user owning the files and directories, by name or id; empty leaves it to the user running the playbook.
    type: str
    default: ""
  group:
    description:
      - The group owning the files and directories, by name or id; empty leaves it to the user running the playbook.
    type: str
    default: ""
  keep_days:
    description:
      - Remove matching files this many days old or older; C(0) keeps them forever.
    type: int
    default: 0
  remove_patterns:
    description:
      - Shell patterns (C(check_morning-*.json)) of the files that O(keep_days) applies to, in each file's directory.
    type: list
    elements: str
    default: []
notes:
  - The roles that write reports (check_morning, check_evening) use it with C(changed_when=false), as a report is the
    procedure's output, not a change to the platform.
"""

EXAMPLES = r"""
- name: Write the JSON report, keep 30 days of them
  cerniq.outreach.report_file:
    files:
      - path: "{{ cerniq_report_dir }}/check_morning-{{ report.date }}.json"
        content: "{{ report | to_json }}"
    keep_days: 30
    remove_patterns: [check_morning-*.json]
  changed_when: false
"""

RETURN = r"""
written:
  description: The files whose content, mode or ownership was written (or would be, in check mode).
  returned: always
  type: list
  elements: str
removed:
  description: The old files removed by retention (or that would be, in check mode).
  returned: always
  type: list
  elements: str
"""
