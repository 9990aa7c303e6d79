"""A core's request built from keyword options asks what its module asks with the argument spec's defaults: the
request's defaults and the module's are one set, so a test names only the options it cares about."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_dlq import DlqRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import QueueRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_info
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_search import JobSearchRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._followups import FollowupRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._readings import ReadingsRequest
from ansible_collections.cerniq.outreach.plugins.modules import (
    bullmq_job_info,
    bullmq_queue,
    bullmq_queue_info,
    daily_readings_info,
    followup_reschedule,
)

REQUESTS = [
    (QueueRequest, bullmq_queue.argument_spec, dict(queue="q:wa:phone_07")),
    (DlqRequest, bullmq_queue.argument_spec, dict(dlq_type="list")),
    (JobSearchRequest, bullmq_job_info.argument_spec, {}),
    (FollowupRequest, followup_reschedule.argument_spec, {}),
    (ReadingsRequest, daily_readings_info.options, {}),
]


@pytest.mark.parametrize("request_class, spec, required", REQUESTS, ids=[r[0].__name__ for r in REQUESTS])
def test_a_request_has_its_modules_defaults(request_class, spec, required):
    options = spec()
    params = {name: option.get("default") for name, option in options.items()}
    assert request_class.from_params(dict(params, **required)) == request_class(**required)
    # Every field is an option of the module: nothing a module could not ask for.
    assert {field.name for field in dataclasses.fields(request_class)} <= set(options)


def test_queue_info_s_keyword_options_have_bullmq_queue_info_s_defaults():
    """bullmq_queue_info hands its options to queue_info as keywords (dlq_keys as dlq_list_keys, preflight as
    check_preflight): a test calling queue_info with only the options it cares about asks what the module asks."""
    keywords = dict(queues="queues", pattern="pattern", prefix="prefix", include_schedulers="include_schedulers",
                    dlq_keys="dlq_list_keys", dlq_pattern="dlq_pattern", expect_node_major="expect_node_major",
                    preflight="check_preflight")
    spec = bullmq_queue_info.argument_spec()
    parameters = inspect.signature(queue_info).parameters
    for option, keyword in keywords.items():
        default = parameters[keyword].default
        assert (list(default) if isinstance(default, tuple) else default) == spec[option].get("default"), option
