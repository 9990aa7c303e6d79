"""BullMQ rules that need no server: job ids, key paths, version pairing."""

from __future__ import annotations

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_jobs import parse_due_ms, prepare_jobs
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_keys import (
    node_address,
    node_client_name,
    split_queue_key,
    validate_job_id,
    validate_limit,
    validate_queue_name,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_package import pairing_problem
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import pending_counts
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_repeat import (
    croniter_pattern,
    prepare_scheduler,
    scheduler_differs,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import followup_job_id
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError


@pytest.mark.parametrize("job_id", ["123", "007", "-5"])
def test_integer_job_ids_are_refused_like_node_does(job_id):
    with pytest.raises(CerniqError, match="is an integer"):
        validate_job_id(job_id)


@pytest.mark.parametrize("job_id", ["a:b", "repeat:x:1"])
def test_job_ids_with_colons_are_refused(job_id):
    with pytest.raises(CerniqError, match="contains ':'"):
        validate_job_id(job_id)


def test_missing_job_id_asks_for_a_deterministic_one():
    with pytest.raises(CerniqError, match="deterministic id"):
        validate_job_id(None)


def test_the_contract_followup_id_is_a_valid_job_id():
    assert validate_job_id(followup_job_id("5f0c1b7e-0000-4000-8000-000000000001", 1790000000000))


def test_a_key_path_is_what_node_opens_as_prefix_and_last_segment():
    assert node_address("bull", "q:wa:phone_07") == ("bull:q:wa", "phone_07")
    assert node_client_name("bull", "q:wa:phone_07") == "bull:q:wa:cGhvbmVfMDc="
    assert split_queue_key("bull:q:wa:phone_07:id") == ("bull:q:wa", "phone_07")
    assert split_queue_key("bull:q:wa:phone_07:wait") is None


@pytest.mark.parametrize("name", ["", ":q", "q:", "q::x", "q:wa:*", "q wa"])
def test_bad_queue_names_are_refused(name):
    with pytest.raises(CerniqError):
        validate_queue_name(name)


def test_pairing_node_v5_with_python_2_is_fine():
    assert pairing_problem("q:wa:phone_07", "bullmq:5.81.5", python_version="2.26.0") is None
    assert pairing_problem("q:wa:phone_07", None, python_version="2.26.0") is None


def test_pairing_node_v6_with_python_2_names_the_package_to_install():
    problem = pairing_problem("q:wa:phone_07", "bullmq:6.7.0", python_version="2.26.0")
    assert problem.startswith("queue q:wa:phone_07 is managed by Node BullMQ 6.7.0; install bullmq>=3,<4 on the "
                              "host running this module")


def test_pairing_node_v5_with_python_3_asks_for_python_2():
    assert "install bullmq>=2.26,<3" in pairing_problem("q", "bullmq:5.0.0", python_version="3.4.4")


def test_pairing_without_meta_version_follows_the_expected_node_major():
    assert "expect_node_major" in pairing_problem("q", None, expect_node_major=6, python_version="2.26.0")


def test_pairing_refuses_a_version_it_does_not_know():
    assert "not written by Node BullMQ" in pairing_problem("q", "bullmq-pro:7.1.0", python_version="2.26.0")
    assert "no Python bullmq release" in pairing_problem("q", "bullmq:7.0.0", python_version="2.26.0")


def test_pending_counts_leave_the_schedulers_next_job_alone():
    depths = dict(wait=3, paused=0, prioritized=1, delayed=5)
    expected = {"waiting": 3, "paused": 0, "prioritized": 1, "delayed": 4, "cancelled": 8}
    assert pending_counts(depths, {"delayed": 1}) == expected


def test_due_times_in_ms_or_iso_naive_ones_in_the_platform_zone():
    assert parse_due_ms(1790000000000, "UTC", "j") == 1790000000000
    assert parse_due_ms("1790000000000", "UTC", "j") == 1790000000000
    assert parse_due_ms("2026-11-25T09:00:00Z", "UTC", "j") == 1795597200000
    # Bucharest is UTC+2 in November: 09:00 there is 07:00 UTC.
    assert parse_due_ms("2026-11-25T09:00:00", "Europe/Bucharest", "j") == 1795597200000 - 2 * 3600_000


def test_six_field_crons_are_read_seconds_first_like_node():
    assert croniter_pattern("30 0 0 * * *") == "0 0 * * * 30"
    assert croniter_pattern("0 0 * * *") == "0 0 * * *"


def test_a_stored_scheduler_is_up_to_date_only_when_every_managed_field_matches():
    wanted = prepare_scheduler(dict(id="quota-reset-daily", pattern="0 0 * * *", job_name="reset"),
                               "Europe/Bucharest")
    stored = dict(name="reset", pattern="0 0 * * *", every=None, tz="Europe/Bucharest", data={}, opts={}, offset=0)
    assert scheduler_differs(wanted, stored) == []
    assert scheduler_differs(wanted, dict(stored, tz="UTC")) == ["tz"]
    assert scheduler_differs(wanted, dict(stored, limit=3)) == ["limit"]
    assert scheduler_differs(wanted, None) == ["(new)"]


def test_a_duplicate_id_in_one_request_is_refused():
    with pytest.raises(CerniqError, match="appears twice"):
        prepare_jobs([dict(id="a-1"), dict(id="a-1")], "job", None, "UTC")


@pytest.mark.parametrize(("value", "expected"), [(None, 0), (0, 0), (25, 25)])
def test_a_limit_of_the_queue_operations_is_a_count_where_nothing_is_no_limit(value, expected):
    assert validate_limit(value, "limit") == expected


@pytest.mark.parametrize("value", [-1, True, 1.5, "ten"])
def test_a_limit_is_refused_as_a_count_is_saying_what_zero_means(value):
    with pytest.raises(CerniqError, match=r"limit \(0: all\) must be a non-negative integer"):
        validate_limit(value, "limit")
