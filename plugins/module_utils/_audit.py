# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ops_audit_log writer: every change a module makes, with actor, action, target, reason, before and after."""

from __future__ import annotations

import getpass
import json
import socket

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import postgres_connect, postgres_errors
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_AUDIT
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError


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


class RedisChangeAudit(object):
    """Audit rows for Redis-only changes. `prepare()` reaches PostgreSQL right before the Redis change (so an
    unreachable audit log stops the run before anything changed); each row commits right after Redis accepted it.
    In check mode it never connects."""

    def __init__(self, params, module_name, check_mode):
        self.params = params
        self.module_name = module_name
        self.check_mode = check_mode
        self.conn = None
        self.trail = None

    def prepare(self):
        if self.check_mode or self.trail is not None:
            return
        self.conn = postgres_connect(self.params, require=(TABLE_AUDIT,))
        self.trail = AuditTrail(self.conn, self.module_name, self.params.get("audit_actor"))

    def record(self, action, target, before=None, after=None):
        if self.check_mode:
            return
        self.prepare()
        try:
            with postgres_errors(self.params, self.conn):
                self.trail.record(action, target, reason=self.params.get("reason"), before=before, after=after)
                self.conn.commit()
        except CerniqError as exc:
            raise CerniqError("Redis accepted {0} on {1}, but its audit row could not be written: {2}".format(
                action, target, exc.msg)) from exc

    def close(self):
        if self.conn is not None:
            self.conn.close()
