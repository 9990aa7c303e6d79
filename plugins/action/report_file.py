# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of cerniq.outreach.report_file (documented in plugins/modules/report_file.py).

The reports are written on the controller (docs/hosts.md), so this plugin writes them itself, in the controller's
process: the directory, the files and the retention that took the roles four tasks and three module runs (file,
find, lineinfile; each a Python start-up, about half a second on a busy 2-core controller) take no module run.
"""

from __future__ import annotations

import fnmatch
import grp
import os
import pwd
import tempfile
import time

from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = dict(
    files=dict(type="list", elements="dict", required=True),
    mode=dict(type="str", default="0640"),
    directory_mode=dict(type="str", default="0750"),
    owner=dict(type="str", default=""),
    group=dict(type="str", default=""),
    keep_days=dict(type="int", default=0),
    remove_patterns=dict(type="list", elements="str", default=[]),
)


class ReportFileError(Exception):
    pass


def _octal(value, option):
    try:
        return int(str(value), 8)
    except ValueError:
        raise ReportFileError("{0} must be an octal mode such as 0640, got {1!r}".format(option, value)) from None


def _user_id(name):
    if not name:
        return -1
    try:
        return int(name) if name.isdigit() else pwd.getpwnam(name).pw_uid
    except KeyError:
        raise ReportFileError("owner {0!r}: no such user on the controller".format(name)) from None


def _group_id(name):
    if not name:
        return -1
    try:
        return int(name) if name.isdigit() else grp.getgrnam(name).gr_gid
    except KeyError:
        raise ReportFileError("group {0!r}: no such group on the controller".format(name)) from None


def _needs_attributes(stat, mode, uid, gid):
    return (stat.st_mode & 0o7777) != mode or uid not in (-1, stat.st_uid) or gid not in (-1, stat.st_gid)


def _set_attributes(path, mode, uid, gid):
    os.chmod(path, mode)
    if uid != -1 or gid != -1:
        os.chown(path, uid, gid)


def _ensure_directory(path, mode, uid, gid, check_mode):
    """True when the directory was made or its mode/ownership set (or would be)."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        if not check_mode:
            # Each directory made here gets the mode and owner, as ansible.builtin.file state=directory does.
            missing = [path]
            while not os.path.exists(os.path.dirname(missing[-1])):
                missing.append(os.path.dirname(missing[-1]))
            for directory in reversed(missing):
                try:
                    os.mkdir(directory, mode)
                except FileExistsError:
                    continue
                _set_attributes(directory, mode, uid, gid)
        return True
    if _needs_attributes(stat, mode, uid, gid):
        if not check_mode:
            _set_attributes(path, mode, uid, gid)
        return True
    return False


def _write(path, content, mode, uid, gid, check_mode):
    """True when the file was written or its mode/ownership set (or would be). Same content: left as it is."""
    data = content.encode("utf-8")
    try:
        stat = os.stat(path)
        with open(path, "rb") as handle:
            same = handle.read() == data
    except FileNotFoundError:
        stat, same = None, False
    if same and not _needs_attributes(stat, mode, uid, gid):
        return False
    if check_mode:
        return True
    if same:
        _set_attributes(path, mode, uid, gid)
        return True
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".report-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        _set_attributes(temporary, mode, uid, gid)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return True


def _old_files(directory, patterns, keep_days, keep):
    """The regular files of `directory` matching `patterns` whose modification time is keep_days days ago or more."""
    oldest = time.time() - keep_days * 86400
    found = []
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except FileNotFoundError:
        return found
    for entry in entries:
        if entry.path in keep or not any(fnmatch.fnmatch(entry.name, pattern) for pattern in patterns):
            continue
        if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime <= oldest:
            found.append(entry.path)
    return found


def write_reports(options, check_mode=False):
    """Make the directories, write the files, apply retention; {changed, written, removed}."""
    mode = _octal(options["mode"], "mode")
    directory_mode = _octal(options["directory_mode"], "directory_mode")
    uid, gid = _user_id(options["owner"]), _group_id(options["group"])
    files = []
    for item in options["files"]:
        path, content = item.get("path"), item.get("content")
        if not isinstance(path, str) or not os.path.isabs(path) or not isinstance(content, str):
            raise ReportFileError("each of files needs an absolute path and a text content, got {0!r}".format(
                sorted(item) if isinstance(item, dict) else item))
        files.append((os.path.normpath(path), content))
    changed = False
    directories = list(dict.fromkeys(os.path.dirname(path) for path, _content in files))
    for directory in directories:
        changed = _ensure_directory(directory, directory_mode, uid, gid, check_mode) or changed
    written = [path for path, content in files if _write(path, content, mode, uid, gid, check_mode)]
    removed = []
    if options["keep_days"] > 0 and options["remove_patterns"]:
        keep = {path for path, _content in files}
        for directory in directories:
            removed += _old_files(directory, options["remove_patterns"], options["keep_days"], keep)
        if not check_mode:
            for path in removed:
                os.unlink(path)
    return dict(changed=changed or bool(written) or bool(removed), written=written, removed=removed)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        _validation, options = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        try:
            result.update(write_reports(options, check_mode=self._task.check_mode))
        except (ReportFileError, OSError) as exc:
            result.update(failed=True, msg="cannot write the report: {0}".format(exc))
        return result
