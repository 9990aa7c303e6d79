"""A core's request built from keyword options asks what its module asks with the argument spec's defaults: the
request's defaults and the module's are one set, so a test names only the options it cares about."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._archive import archive_comm_log
from ansible_collections.cerniq.outreach.plugins.module_utils._backup import backup_listing, manage_backups
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_dlq import DlqRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import QueueRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_info
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import JobSearchRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._connection import GROUP_ARGUMENT_SPECS
from ansible_collections.cerniq.outreach.plugins.module_utils._database import ensure_database, snapshot_info
from ansible_collections.cerniq.outreach.plugins.module_utils._followups import FollowupRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._health import find_primaries, platform_health
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_argument_spec
from ansible_collections.cerniq.outreach.plugins.module_utils._instantly import (
    campaign_info,
    deliverability_guard,
    set_campaign_state,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._maintenance import vacuum_tables
from ansible_collections.cerniq.outreach.plugins.module_utils._phone_status import sync_status_keys
from ansible_collections.cerniq.outreach.plugins.module_utils._phones import PhoneRequest, phones_info
from ansible_collections.cerniq.outreach.plugins.module_utils._quota import quota_counter, quota_counters_info
from ansible_collections.cerniq.outreach.plugins.module_utils._readings import ReadingsRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._reviews import change_review_queue, review_queue_overview
from ansible_collections.cerniq.outreach.plugins.module_utils._stats import outreach_stats
from ansible_collections.cerniq.outreach.plugins.module_utils._timelinesai import (
    account_info,
    send_test_message,
    webhook,
)
from ansible_collections.cerniq.outreach.plugins.modules import (
    bullmq_job_info,
    bullmq_queue,
    bullmq_queue_info,
    comm_log_archive,
    daily_readings_info,
    db_backup,
    db_backup_info,
    db_database,
    db_maintenance,
    db_snapshot_info,
    followup_reschedule,
    instantly_campaign,
    instantly_campaign_info,
    instantly_deliverability_guard,
    outreach_stats_info,
    platform_info,
    platform_primary_info,
    quota_counter_info,
    review_queue,
    review_queue_info,
    timelinesai_account_info,
    timelinesai_message,
    timelinesai_webhook,
    wa_phone,
    wa_phone_info,
    wa_phone_status,
)
from ansible_collections.cerniq.outreach.plugins.modules import quota_counter as quota_counter_module

REQUESTS = [
    (QueueRequest, bullmq_queue.argument_spec, dict(queue="q:wa:phone_07")),
    (DlqRequest, bullmq_queue.argument_spec, dict(dlq_type="list")),
    (JobSearchRequest, bullmq_job_info.argument_spec, {}),
    (FollowupRequest, followup_reschedule.argument_spec, {}),
    (ReadingsRequest, daily_readings_info.options, {}),
    (PhoneRequest, wa_phone.argument_spec, dict(phone_id="phone_07")),
]


@pytest.mark.parametrize("request_class, spec, required", REQUESTS, ids=[r[0].__name__ for r in REQUESTS])
def test_a_request_has_its_modules_defaults(request_class, spec, required):
    options = spec()
    params = {name: option.get("default") for name, option in options.items()}
    assert request_class.from_params(dict(params, **required)) == request_class(**required)
    # Every field is an option of the module: nothing a module could not ask for.
    assert {field.name for field in dataclasses.fields(request_class)} <= set(options)


# The cores that take keyword options: (core, the module's options, {module option: core keyword} where the names
# differ, the module's own options the core does not take: the module uses them itself, e.g. to pick the core).
KEYWORD_CORES = [
    (queue_info, bullmq_queue_info.argument_spec, dict(dlq_keys="dlq_list_keys", preflight="check_preflight"), ()),
    (deliverability_guard, instantly_deliverability_guard.options, dict(campaigns="campaign_ids"), ()),
    (archive_comm_log, comm_log_archive.argument_spec, {}, ()),
    (vacuum_tables, db_maintenance.argument_spec, {}, ()),
    (change_review_queue, review_queue.argument_spec, {}, ()),
    (review_queue_overview, review_queue_info.argument_spec, {}, ()),
    (outreach_stats, outreach_stats_info.argument_spec, {}, ()),
    (quota_counter, quota_counter_module.argument_spec, {}, ()),
    (quota_counters_info, quota_counter_info.argument_spec, {}, ()),
    (phones_info, wa_phone_info.argument_spec, {}, ()),
    (sync_status_keys, wa_phone_status.argument_spec, {}, ()),
    (platform_health, platform_info.argument_spec, {}, ()),
    (find_primaries, platform_primary_info.argument_spec, {}, ()),
    (set_campaign_state, instantly_campaign.options, {}, ()),
    (campaign_info, instantly_campaign_info.options, {}, ()),
    (account_info, timelinesai_account_info.options, {}, ()),
    (send_test_message, timelinesai_message.options, {}, ()),
    (webhook, timelinesai_webhook.options, {}, ()),
    (manage_backups, db_backup.argument_spec, {}, ()),
    (backup_listing, db_backup_info.argument_spec, {}, ()),
    (ensure_database, db_database.argument_spec, {}, ()),
    (snapshot_info, db_snapshot_info.argument_spec, {}, ()),
]
# What every core may take besides the module's options (sleep and clock: a test's stand-ins for the waits).
CORE_CONTROLS = {"check_mode", "want_diff", "now", "sleep", "clock"}


def own_options(spec):
    """A module's options less those of the action groups (connections, vendors, audit) and the confirmation."""
    shared = set(vendor_argument_spec()) | {"confirmed"}
    for build in GROUP_ARGUMENT_SPECS.values():
        shared |= set(build())
    return {name: option for name, option in spec.items() if name not in shared}


@pytest.mark.parametrize("core, spec, renamed, module_only", KEYWORD_CORES, ids=[c[0].__name__ for c in KEYWORD_CORES])
def test_a_keyword_core_has_its_modules_options_and_defaults(core, spec, renamed, module_only):
    """The module hands every option it documents to its core as a keyword of the same default: a test calling the
    core with only the options it cares about asks what the module asks."""
    options = own_options(spec())
    keywords = {name: parameter for name, parameter in inspect.signature(core).parameters.items()
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY and name not in CORE_CONTROLS}
    keyword_of = {option: renamed.get(option, option) for option in options if option not in module_only}
    assert set(keyword_of.values()) == set(keywords), "a core keyword the module lacks, or an option it does not pass"
    for option, keyword in keyword_of.items():
        default = keywords[keyword].default
        default = None if default is inspect.Parameter.empty else default
        assert (list(default) if isinstance(default, tuple) else default) == options[option].get("default"), option


# Modules whose work is an action plugin on the controller (plugins/action/): no core of module_utils to call.
ACTION_MODULES = {"alert_input", "report_file"}


def test_every_module_s_core_is_in_one_of_the_two_shapes():
    """A new module joins REQUESTS or KEYWORD_CORES (its core checked against its options) or this test fails."""
    modules_dir = Path(bullmq_queue.__file__).parent
    every = {path.stem for path in modules_dir.glob("*.py") if path.stem != "__init__"}
    covered = {spec.__module__.rsplit(".", 1)[1] for spec in [r[1] for r in REQUESTS] + [c[1] for c in KEYWORD_CORES]}
    assert covered | ACTION_MODULES == every, sorted(every - covered - ACTION_MODULES)
