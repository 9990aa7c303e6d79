"""Instantly's own pause on high bounces (status -2, "Bounce Protect" in the OpenAPI document; runbook 4.1): the
guard never resumes it unasked; an operator resumes it with resume_vendor_paused, the campaign named, a reason and
confirm, and the audit log records the status before and after, who and why. Every exchange with the fake is
validated against the OpenAPI document."""

from __future__ import annotations

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _instantly as instantly_mod
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.support.vendors import (
    INSTANTLY_KEY,
    INSTANTLY_SERVER,
    assert_traffic_matches_openapi,
    campaign_ids,
    campaign_status,
    changes,
    vendor_params,
)

VENDOR_ACTION = "resume_vendor_paused"


@pytest.fixture()
def params(platform, instantly):
    return vendor_params(platform.params, instantly=instantly)


@pytest.fixture()
def protected(instantly):
    """The hot campaign as Instantly leaves it after its bounce protect fired."""
    hot = campaign_ids(instantly)["hot"]
    instantly.bounce_protect(hot)
    assert campaign_status(instantly, hot) == -2
    return hot


def audit(platform, action=VENDOR_ACTION):
    return platform.sql("SELECT actor, module, action, target, reason, before, after FROM ops_audit_log "
                        "WHERE action = %s ORDER BY id", (action,))


def test_a_plain_resume_names_the_vendor_paused_campaign_and_leaves_it(params, platform, instantly,
                                                                       instantly_spec, protected):
    for scope in ([protected], None):
        result = instantly_mod.deliverability_guard(params, resume=True, campaign_ids=scope, reason="INC-7")
        assert result["changed"] is False and result["resumed"] == [] and result["resumed_vendor_paused"] == []
        if scope:
            assert result["vendor_paused"] == [protected]
            assert [e["id"] for e in result["left_alone"]] == [protected]
            assert "bounce protect (status -2)" in result["left_alone"][0]["why"]
    assert campaign_status(instantly, protected) == -2 and changes(instantly) == []
    assert platform.sql("SELECT count(*) FROM ops_audit_log")[0][0] == 0
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


@pytest.mark.parametrize("kwargs,message", [
    (dict(resume=False, reason="INC-7"), "resume_vendor_paused goes with resume=true"),
    (dict(resume=True, reason="INC-7", campaign_ids=None), "name the campaign"),
    (dict(resume=True, reason="  "), "needs a reason"),
    (dict(resume=True, reason=None), "needs a reason"),
])
def test_the_override_needs_the_campaign_and_a_reason(params, platform, instantly, protected,
                                                      kwargs, message):
    kwargs.setdefault("campaign_ids", [protected])
    with pytest.raises(CerniqError, match=message):
        instantly_mod.deliverability_guard(params, resume_vendor_paused=True, **kwargs)
    assert instantly.requests() == [] and campaign_status(instantly, protected) == -2
    assert platform.sql("SELECT count(*) FROM ops_audit_log")[0][0] == 0


def test_the_override_resumes_and_audits_before_and_after(params, platform, instantly, instantly_spec,
                                                          protected):
    other = campaign_ids(instantly)["paused"]
    planned = instantly_mod.deliverability_guard(params, resume=True, resume_vendor_paused=True,
                                                 campaign_ids=[protected, other], reason="INC-7 list cleaned",
                                                 check_mode=True, want_diff=True)
    assert planned["changed"] is True and planned["resumed_vendor_paused"] == [protected]
    assert planned["diff"] == {"before": {"campaigns": {protected: "bounce_protect"}},
                               "after": {"campaigns": {protected: "active"}}}
    assert changes(instantly) == [] and audit(platform) == []

    done = instantly_mod.deliverability_guard(params, resume=True, resume_vendor_paused=True,
                                              campaign_ids=[protected, other], reason="INC-7 list cleaned")
    assert done["changed"] is True and done["resumed_vendor_paused"] == [protected] and done["resumed"] == []
    assert done["vendor_paused_after"] == {protected: "active"}
    # The campaign a person paused (status 2, not the guard's) is not touched.
    assert campaign_status(instantly, protected) == 1 and campaign_status(instantly, other) == 2
    assert [r["path"] for r in changes(instantly)] == ["/api/v2/campaigns/{0}/activate".format(protected)]
    rows = audit(platform)
    assert len(rows) == 1
    actor, module, action, target, reason, before, after = rows[0]
    assert (actor, module, action, target, reason) == (params["audit_actor"], "instantly_deliverability_guard",
                                                       VENDOR_ACTION, "instantly:campaign:" + protected,
                                                       "INC-7 list cleaned")
    assert (before["status"], before["status_name"], before["paused_by"]) == (-2, "bounce_protect",
                                                                              "instantly bounce protect")
    assert (after["status"], after["status_name"], after["campaign_ids"]) == (1, "active", [protected])

    again = instantly_mod.deliverability_guard(params, resume=True, resume_vendor_paused=True,
                                               campaign_ids=[protected], reason="INC-7 list cleaned")
    assert again["changed"] is False and len(audit(platform)) == 1
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)


def test_a_cooldown_holds_the_override_too(params, platform, instantly, protected):
    held = instantly_mod.deliverability_guard(params, pause_all=True, mark_bounced_leads=False, reason="INC-8")
    assert held["changed"] is True
    with pytest.raises(CerniqError, match="cool-down until"):
        instantly_mod.deliverability_guard(params, resume=True, resume_vendor_paused=True,
                                           campaign_ids=[protected], reason="INC-8")
    assert campaign_status(instantly, protected) == -2


# --- the playbook ------------------------------------------------------------------------------------------------

def play(platform, instantly, check=False, **extravars):
    base = {"cerniq_instantly_base_url": instantly.url, "cerniq_instantly_api_key": INSTANTLY_KEY,
            "cerniq_vendor_allow_http": "true"}
    base.update(extravars)
    return platform.play("bounce_high.yml", extravars=base, check=check)


def test_bounce_high_resumes_a_vendor_paused_campaign_only_with_flag_reason_and_confirm(
        platform, instantly, instantly_spec, protected):
    plain = play(platform, instantly, resume="true", campaign=protected, confirm="true")
    assert plain.rc == 0, plain.stdout[-3000:]
    summary = plain.result("Summary")["msg"]
    assert any("bounce protect (status -2)" in line for line in summary["done"]), summary
    assert any("resume_vendor_paused=true" in line for line in summary["next"]), summary
    assert campaign_status(instantly, protected) == -2 and changes(instantly) == []

    no_reason = play(platform, instantly, resume="true", resume_vendor_paused="true", campaign=protected,
                     confirm="true")
    assert no_reason.rc != 0 and "-e reason=" in no_reason.stdout, no_reason.stdout[-2000:]
    no_campaign = play(platform, instantly, resume="true", resume_vendor_paused="true", reason="INC-9",
                       confirm="true")
    assert no_campaign.rc != 0 and "-e campaign=" in no_campaign.stdout
    unconfirmed = play(platform, instantly, resume="true", resume_vendor_paused="true", campaign=protected,
                       reason="INC-9 list cleaned")
    assert unconfirmed.rc != 0 and "Nothing was changed" in unconfirmed.stdout
    plan = unconfirmed.result("What this run will change")["msg"]
    assert any("Instantly's bounce protect paused" in line and protected in line and "INC-9 list cleaned" in line
               for line in plan), plan
    checked = play(platform, instantly, check=True, resume="true", resume_vendor_paused="true", campaign=protected,
                   reason="INC-9 list cleaned")
    assert checked.rc == 0, checked.stdout[-3000:]
    assert campaign_status(instantly, protected) == -2 and changes(instantly) == [] and audit(platform) == []

    done = play(platform, instantly, resume="true", resume_vendor_paused="true", campaign=protected,
                reason="INC-9 list cleaned", confirm="true")
    assert done.rc == 0, done.stdout[-3000:]
    assert campaign_status(instantly, protected) == 1
    rows = audit(platform)
    assert [(r[0], r[3], r[4], r[5]["status"], r[6]["status"]) for r in rows] == [
        ("pytest", "instantly:campaign:" + protected, "INC-9 list cleaned", -2, 1)]
    assert done.stats["artifact_data"]["bounce_high"]["resumed_vendor_paused"] == [protected]
    assert any("resumed (reason: INC-9 list cleaned)" in line and "now active" in line
               for line in done.result("Summary")["msg"]["done"])
    assert_traffic_matches_openapi(instantly, instantly_spec, INSTANTLY_SERVER)
