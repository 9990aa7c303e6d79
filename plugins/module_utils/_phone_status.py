# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Regenerating `phone:status:{id}` keys from `wa_phone_numbers.status` (runbook 6.2 step 3, and after a restore).

The database is the source of truth: one query reads every phone's status, one pipeline reads the keys, one pipeline
writes only the keys that are missing or differ.
"""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._audit import RedisChangeAudit
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import (
    postgres_reading,
    redis_client,
    redis_errors,
    redis_where,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import TABLE_PHONES, phone_status_key
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._validate import validate_phone_ids


def sync_status_keys(params, *, phone_ids=None, check_mode=False, want_diff=False):
    """Make every (or the given) phone's Redis status key say what the database says; returns what differed."""
    phone_ids = validate_phone_ids(phone_ids)
    with postgres_reading(params, require=(TABLE_PHONES,)) as cur:
        cur.execute("SELECT id, status FROM " + TABLE_PHONES + " WHERE %(all)s OR id = ANY(%(ids)s) ORDER BY id",
                    dict(all=not phone_ids, ids=phone_ids or []))
        wanted = dict(cur.fetchall())
    unknown = sorted(set(phone_ids or ()) - set(wanted))
    if unknown:
        raise CerniqError("unknown phone(s) {0}: not in {1}".format(", ".join(unknown), TABLE_PHONES))
    where = redis_where(params, params["redis_db"])
    client = redis_client(params)
    keys = [phone_status_key(phone_id) for phone_id in wanted]
    with redis_errors(where):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        current = pipe.execute()
    drift = [dict(phone_id=phone_id, key=key, before=before, after=status)
             for (phone_id, status), key, before in zip(wanted.items(), keys, current) if before != status]
    result = dict(changed=bool(drift), phones=len(wanted), corrected=drift, corrected_count=len(drift))
    if want_diff:
        result["diff"] = dict(before={d["key"]: d["before"] for d in drift},
                              after={d["key"]: d["after"] for d in drift})
    if drift and not check_mode:
        audit = RedisChangeAudit(params, "wa_phone_status", check_mode)
        try:
            audit.prepare()
            with redis_errors(where):
                pipe = client.pipeline(transaction=False)
                for entry in drift:
                    pipe.set(entry["key"], entry["after"])
                pipe.execute()
            audit.record("phone_status_sync", "phone:status:*", before={d["phone_id"]: d["before"] for d in drift},
                         after={d["phone_id"]: d["after"] for d in drift})
        finally:
            audit.close()
    return result
