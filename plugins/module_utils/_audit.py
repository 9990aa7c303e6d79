# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ops_audit_log writer: every change a module makes, with actor, action, target, reason, before and after."""

from __future__ import annotations

import getpass
import json
import socket

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_AUDIT


def default_actor():
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return "{0}@{1}".format(user, socket.gethostname())


class AuditTrail(object):
    """Writes audit rows on the caller's connection, so a PostgreSQL change and its audit row commit together.

    For a Redis-only change the caller records after Redis answered and commits the row itself.
    """

    def __init__(self, conn, module_name, actor=None):
        self.conn = conn
        self.module_name = module_name
        self.actor = actor or default_actor()
        self.host = socket.gethostname()

    def record(self, action, target, reason=None, before=None, after=None):
        with self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO " + TABLE_AUDIT + " (actor, module, action, target, reason, before, after, host) "
                "VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s)",
                (self.actor, self.module_name, action, target, reason, _json(before), _json(after), self.host))


def _json(value):
    return None if value is None else json.dumps(value, default=str, sort_keys=True)
