"""Validation patterns match the whole value: a `$` also accepts a trailing newline ("phone_01\n"), `\\Z` does not."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

from ansible_collections.cerniq.outreach.plugins import module_utils
from ansible_collections.cerniq.outreach.plugins.module_utils import (
    _backup,
    _bullmq_keys,
    _contract,
    _database,
    _validate,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

pytestmark = pytest.mark.compat

CAMPAIGN = "019cad8f-ac00-7000-8000-019cad8fac00"


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\nx"])
@pytest.mark.parametrize(("validate", "good"), [
    (_validate.validate_phone_id, "phone_01"),
    (_validate.validate_e164, "+40712345678"),
    (_validate.validate_campaign_id, CAMPAIGN),
    (_database.validate_database_name, "cerniq_restore"),
])
def test_a_trailing_newline_is_refused(validate, good, suffix):
    assert validate(good)
    with pytest.raises(CerniqError):
        validate(good + suffix)


def test_other_patterns_refuse_a_trailing_newline():
    assert _contract.parse_quota_key("quota:wa:phone_01:2026-11-25") is not None
    assert _contract.parse_quota_key("quota:wa:phone_01:2026-11-25\n") is None
    assert _contract.PHONE_ID_RE.match("phone_01\n") is None and _contract.CAMPAIGN_ID_RE.match(CAMPAIGN + "\n") is None
    assert _backup.BACKUP_ID_RE.match("2026-11-25T031500Z\n") is None
    assert _backup.RUNBOOK_ID_RE.match("2026-11-25\n") is None
    assert _validate.JID_RE.match("40712345678@s.whatsapp.net\n") is None
    assert _bullmq_keys.split_queue_key("bull:q:wa:phone_01:id\n") is None
    with pytest.raises(CerniqError, match="whitespace"):
        _bullmq_keys.validate_job_id("123\n")  # not taken for an integer id, refused for its newline
    with pytest.raises(CerniqError):
        _contract.parse_day("2026-11-25\nx", "Europe/Bucharest")


def _patterns():
    for info in pkgutil.iter_modules(module_utils.__path__):
        module = importlib.import_module("{0}.{1}".format(module_utils.__name__, info.name))
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern):
                yield "{0}.{1}".format(info.name, name), value


def test_no_anchored_pattern_in_module_utils_ends_with_a_dollar():
    """Every compiled pattern anchored at the start (^) ends with \\Z, not $ (or is used with fullmatch)."""
    found = dict(_patterns())
    assert "_contract.PHONE_ID_RE" in found
    dollar = [name for name, pattern in found.items()
              if pattern.pattern.startswith("^") and re.search(r"(?<!\\)\$$", pattern.pattern)]
    assert dollar == [], "use \\Z (or fullmatch): {0}".format(dollar)
