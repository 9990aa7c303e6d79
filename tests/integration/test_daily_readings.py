"""daily_readings_info's core against real Redis, PostgreSQL and the TimelinesAI fake: each view is what its own
module returns, read at the same time; a TimelinesAI failure is a finding, any other failure fails the read."""

from __future__ import annotations

import copy
import time
from datetime import datetime

import pytest

from ansible_collections.cerniq.outreach.plugins.filter.daily_checks import morning_checks, summarize
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_reads import queue_info
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from ansible_collections.cerniq.outreach.plugins.module_utils._phones import phones_info
from ansible_collections.cerniq.outreach.plugins.module_utils._readings import (
    ReadingsRequest,
    daily_readings,
    morning_report,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._stats import outreach_stats
from ansible_collections.cerniq.outreach.plugins.module_utils._timelinesai import account_info
from tests.fakes import timelinesai as timelinesai_fake
from tests.support.vendors import vendor_params

FIGURES = ["reviews_pending", "sla_breaches", "whatsapp_per_phone"]


def _without_ttls(entries):
    """The phones view less what derives from a counter's TTL at the moment of the read: the TTL and its expiry (read
    time + TTL, rounded to the second, may land a second apart across two reads)."""
    entries = copy.deepcopy(entries)
    for entry in entries:
        entry["quota"].pop("ttl")
        entry["quota"].pop("expires_at")
    return entries


def connections(platform, timelines, **given):
    """The test servers' and the TimelinesAI fake's connection parameters, with `given` over them."""
    return dict(vendor_params(platform.params, timelines=timelines), **given)


def every_view(**given):
    """The request of the morning check: every view (these figures, every queue, TimelinesAI), `given` over it."""
    return ReadingsRequest(**dict(dict(stats=tuple(FIGURES), breaches_since="15h", queue_pattern="*",
                                       timelinesai=True), **given))


@pytest.fixture()
def seeded(platform, timelines):
    platform.seed(phones=6, leads=120, old_log_rows=0, reviews=8, jobs_per_phone=3, dlq_entries=4,
                  offline=("phone_04",), drift_phone="phone_04", leak_phone="phone_02", leak_extra=3)
    timelines.reset(timelinesai_fake.build_demo_state(phones=6, disconnected=(4,)))


def test_each_view_is_what_its_own_module_returns(platform, timelines, seeded):
    params = connections(platform, timelines)
    started = time.monotonic()
    readings = daily_readings(params, every_view())
    assert readings["readings"] == ["phones", "stats", "queues", "vendor"] and readings["changed"] is False

    phones = phones_info(params)
    # A counter's TTL is read relative to the moment of the read: the two reads may see it a second or so apart.
    seconds_between_reads = time.monotonic() - started
    assert _without_ttls(readings["phones"]["phones"]) == _without_ttls(phones["phones"])
    for together, alone in zip(readings["phones"]["phones"], phones["phones"]):
        assert 0 <= together["quota"]["ttl"] - alone["quota"]["ttl"] <= seconds_between_reads + 1
        expiries = [view["quota"]["expires_at"] for view in (together, alone)]
        if None in expiries:  # no counter, or one without a TTL: both reads say so
            assert expiries[0] == expiries[1]
        else:
            apart = datetime.fromisoformat(expiries[0]) - datetime.fromisoformat(expiries[1])
            assert abs(apart.total_seconds()) <= 1
    assert readings["phones"]["summary"] == phones["summary"]
    stats = outreach_stats(params, figures=FIGURES, breaches_since="15h")
    assert readings["stats"]["whatsapp_per_phone"] == stats["whatsapp_per_phone"]
    # The oldest pending item's age is the database's now() less its creation: the two reads may be a second apart.
    seconds_between_reads = time.monotonic() - started
    pending = [_without_ages(view["reviews_pending"]) for view in (readings["stats"], stats)]
    assert pending[0][0] == pending[1][0]
    for priority, age in pending[0][1].items():
        assert 0 <= pending[1][1][priority] - age <= seconds_between_reads + 1, priority
    assert readings["stats"]["sla_breaches"]["open"] == stats["sla_breaches"]["open"]
    queues = queue_info(params, pattern="*")
    assert readings["queues"]["queues"] == queues["queues"]
    assert readings["queues"]["dlq_lists"] == queues["dlq_lists"]
    vendor = account_info(params)
    assert readings["vendor"]["phones"] == vendor["phones"] and readings["vendor"]["disconnected"] == ["phone_04"]
    # The seeded faults are in the views the morning check judges.
    assert [p["id"] for p in readings["phones"]["phones"] if p["drift"]] == ["phone_04"]


def _without_ages(pending):
    """reviews_pending without each priority's oldest_pending_age_seconds, and those ages by priority."""
    ages = {name: view.get("oldest_pending_age_seconds") for name, view in pending["by_priority"].items()}
    by_priority = {name: {k: v for k, v in view.items() if k != "oldest_pending_age_seconds"}
                   for name, view in pending["by_priority"].items()}
    return dict(pending, by_priority=by_priority), {name: age for name, age in ages.items() if age is not None}


def test_only_the_views_asked_for_are_read(platform, timelines, seeded):
    readings = daily_readings(platform.params, ReadingsRequest(phones=False, stats=("sla_breaches",)))
    assert readings["readings"] == ["stats"] and set(readings["stats"]["figures"]) == {"sla_breaches"}
    assert "phones" not in readings and "queues" not in readings and "vendor" not in readings
    nothing = daily_readings(platform.params, ReadingsRequest(phones=False))
    assert nothing == dict(changed=False, readings=[], warnings=[])


def test_timelinesai_down_is_a_finding_and_the_other_views_are_read(platform, timelines, seeded):
    readings = daily_readings(connections(platform, timelines, timelinesai_api_token="wrong-token"), every_view())
    assert readings["vendor"]["failed"] is True and "TimelinesAI" in readings["vendor"]["msg"]
    assert "wrong-token" not in readings["vendor"]["msg"]
    assert len(readings["phones"]["phones"]) == 6 and readings["queues"]["queues"]


def test_a_database_that_cannot_be_read_fails_the_whole_read_with_one_line(platform, timelines, seeded):
    with pytest.raises(CerniqError, match="PostgreSQL at .*:1 "):
        daily_readings(connections(platform, timelines, db_port=1), every_view(timelinesai=False, queue_pattern=None))


def test_morning_checks_judged_in_the_module_are_the_filters_judgement_of_the_views(platform, timelines, seeded):
    """The role's one module run (option morning_checks) returns the report the filters make of the registered
    views, and no view: at 1,000 phones they are megabytes Ansible would have to register and template."""
    thresholds = dict(pending_reviews_warn="5", queue_waiting_warn=2, timezone="Europe/Bucharest")
    judging = every_view(morning_checks=dict(thresholds=thresholds, run_tags=["all"], skip_tags=[]))
    params = connections(platform, timelines, timezone="Europe/Bucharest")
    views = daily_readings(params, every_view())
    report = morning_report(copy.deepcopy({name: views[name] for name in views["readings"]}), judging,
                            "Europe/Bucharest")
    expected = summarize(morning_checks(dict(views, timelinesai=True, run_tags=["all"], skip_tags=[]), thresholds),
                         "morning", views["phones"]["date"], "Europe/Bucharest", report["generated_at"])
    assert report == expected
    assert "drift" in report["failed"], "the seeded drift is found"

    judged = daily_readings(params, judging)
    assert judged["readings"] == ["phones", "stats", "queues", "vendor"]
    assert not {"phones", "stats", "queues", "vendor"} & set(judged)
    assert [c["name"] for c in judged["report"]["checks"]] == [c["name"] for c in expected["checks"]]

    sla_checks = dict(thresholds={}, run_tags=["sla"], skip_tags=[])
    sla_only = daily_readings(params, ReadingsRequest(phones=False, stats=("sla_breaches",), morning_checks=sla_checks))
    assert [check["name"] for check in sla_only["report"]["checks"]] == ["sla"]
    with pytest.raises(CerniqError, match="unknown daily check setting 'queue_warn'"):
        daily_readings(params, every_view(morning_checks=dict(thresholds=dict(queue_warn=1), run_tags=[],
                                                              skip_tags=[])))
