# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every check of a value the platform contract defines, once: phone ids, E.164 numbers, counts, tenants, labels,
TimelinesAI account ids, phone statuses, Instantly campaign ids and table names.

Just above `_contract` (whose patterns and constants it applies): a core validates its input here, before its first
connection, so bad input changes nothing. Each returns the value as the core should use it, or raises one
CerniqError that names the value and what a good one looks like. BullMQ's own names (queues, job ids) are checked in
the BullMQ modules.
"""

from __future__ import annotations

import re
import uuid

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    ALL_TABLES,
    CAMPAIGN_ID_RE,
    E164_RE,
    PHONE_ID_RE,
    PHONE_STATUSES,
    phone_sort_key,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

# A TimelinesAI WhatsApp account id is the number's JID: its digits, then the WhatsApp user domain.
JID_RE = re.compile(r"^(?P<digits>[0-9]{8,15})@s\.whatsapp\.net\Z")


def validate_phone_id(phone_id):
    if not PHONE_ID_RE.match(phone_id or ""):
        raise CerniqError("phone id {0!r} is not of the form phone_NN (e.g. phone_07)".format(phone_id))
    return phone_id


def validate_phone_ids(phone_ids):
    """Each id checked, duplicates dropped, in the order people count (phone_02 < phone_10); None for none."""
    return sorted({validate_phone_id(p) for p in phone_ids or []}, key=phone_sort_key) or None


def validate_e164(number):
    if not E164_RE.match(number or ""):
        raise CerniqError("phone number {0!r} is not E.164 (a '+', the country code, 8 to 15 digits in all, "
                          "e.g. +40712345678)".format(number))
    return number


def validate_count(value, field):
    """A non-negative integer from an int or an integer string (AWX surveys send strings); bools are not counts."""
    if isinstance(value, bool):
        raise CerniqError("{0} must be a non-negative integer, got {1!r}".format(field, value))
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    else:
        try:
            number = int(str(value).strip())
        except (TypeError, ValueError):
            raise CerniqError("{0} must be a non-negative integer, got {1!r}".format(field, value)) from None
    if number < 0:
        raise CerniqError("{0} must be a non-negative integer, got {1}".format(field, number))
    return number


def validate_tenant(value):
    """A tenant id (a UUID), in its canonical lower-case form."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise CerniqError("tenant_id {0!r} is not a UUID (e.g. 5b1f0c1e-0000-4000-8000-00000000c3e1)".format(
            value)) from None


def validate_label(value):
    label = (value or "").strip()
    if not label:
        raise CerniqError("label must not be empty: it is how people find the phone (e.g. 'Sales 21')")
    return label


def validate_account_id(value, phone_number):
    """The TimelinesAI account id; when it is a JID, its digits must be the phone number's."""
    account = (value or "").strip()
    if not account or any(ch.isspace() for ch in account):
        raise CerniqError("timelinesai_account_id {0!r} is empty or has spaces: copy the account id from "
                          "TimelinesAI (e.g. 40712345678@s.whatsapp.net)".format(value))
    match = JID_RE.match(account)
    if match and phone_number and match.group("digits") != phone_number.lstrip("+"):
        raise CerniqError("timelinesai_account_id {0} belongs to +{1}, not to {2}: check both in the TimelinesAI "
                          "dashboard".format(account, match.group("digits"), phone_number))
    return account


def validate_phone_status(value):
    """A phone status of the contract, in upper case."""
    status = str(value).upper()
    if status not in PHONE_STATUSES:
        raise CerniqError("status {0!r} is not one of {1}".format(value, ", ".join(PHONE_STATUSES)))
    return status


def validate_campaign_id(campaign_id):
    """An Instantly campaign id (a UUID), in lower case as Instantly returns it."""
    if not CAMPAIGN_ID_RE.match(str(campaign_id or "")):
        raise CerniqError("{0!r} is not an Instantly campaign id (a UUID such as 019cad8f-ac00-7000-8000-019cad8fac00;"
                          " instantly_campaign_info lists them)".format(campaign_id))
    return str(campaign_id).lower()


def validate_tables(tables):
    """Contract tables only, each once, in the order given.

    None (the option not given) means every contract table. An empty list names no table and is refused: a call that
    would read or vacuum nothing is never what its caller meant, and reading it as "all" would turn a list that came
    out empty (a filter, a survey left blank) into the heaviest run.
    """
    if tables is None:
        return list(ALL_TABLES)
    tables = list(tables)
    if not tables:
        raise CerniqError("tables is empty: name at least one of {0}".format(", ".join(ALL_TABLES)))
    unknown = [t for t in tables if t not in ALL_TABLES]
    if unknown:
        raise CerniqError("table(s) {0} are not tables of the platform contract: use {1}".format(
            ", ".join(repr(t) for t in unknown), ", ".join(ALL_TABLES)))
    return list(dict.fromkeys(tables))
