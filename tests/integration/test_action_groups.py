"""module_defaults by action group: each module takes the options of the groups it is in (meta/runtime.yml), and the
deprecated group/cerniq.outreach.all, which hands every Redis, PostgreSQL, platform and audit option to every module,
still runs until 1.0.0.

The same small play runs twice against the test servers, once with one module_defaults line per group and once with
the old `all` line; each run must reach Redis (a Redis-only module), PostgreSQL (a PostgreSQL-only module), the
platform's time zone and the audit actor.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess

import pytest
import yaml

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import GROUP_ARGUMENT_SPECS
from ansible_collections.cerniq.outreach.plugins.module_utils._http import vendor_argument_spec
from tests.support.playbooks import COLLECTIONS_PATH, MODULE_DEFAULTS, VENV_BIN
from tests.support.seed import TENANT_ID
from tests.support.services import REPO_ROOT

DLQ_KEY = "cerniq:test:groups:dlq"
# Far from the modules' default (Europe/Bucharest), so a result in it shows the platform group's option arrived.
TIMEZONE = "Pacific/Kiritimati"
DEPRECATED_ALL = {"group/cerniq.outreach.all": "{{ cerniq_module_defaults }}"}
GROUP_OPTIONS = dict({group: set(build()) for group, build in GROUP_ARGUMENT_SPECS.items()},
                     vendors=set(vendor_argument_spec()))


def write_play(path, module_defaults):
    path.write_text(yaml.safe_dump([{
        "name": "Action groups", "hosts": "db", "gather_facts": False,
        "module_defaults": module_defaults,
        "roles": [{"role": "cerniq.outreach.platform"}],
        "tasks": [
            {"name": "Redis only", "cerniq.outreach.bullmq_job_info": {"states": [], "dlq_keys": [DLQ_KEY]}},
            {"name": "PostgreSQL only", "cerniq.outreach.db_snapshot_info": {"tables": ["wa_phone_numbers"]}},
            {"name": "Phones in the platform's zone", "cerniq.outreach.wa_phone_info": {"phone_ids": ["phone_01"]}},
            {"name": "Audited change", "cerniq.outreach.quota_counter": {
                "phone_ids": ["phone_01"], "value": 7, "reason": "action groups", "confirmed": True}},
        ]}]))
    return path


@pytest.fixture()
def one_phone(platform):
    platform.sql("INSERT INTO wa_phone_numbers (id, tenant_id, phone_number, phone_label) "
                 "VALUES ('phone_01', %s, '+40700000101', 'Groups')", (str(TENANT_ID),))
    platform.r(2).lpush(DLQ_KEY, json.dumps({"jobId": "j-1", "reason": "groups test"}))
    return platform


@pytest.mark.parametrize("module_defaults", [MODULE_DEFAULTS, DEPRECATED_ALL], ids=["per-group", "deprecated-all"])
def test_the_play_reaches_every_group_s_options(one_phone, tmp_path, module_defaults):
    platform = one_phone
    play = write_play(tmp_path / "groups.yml", module_defaults)
    run = platform.play(str(play), extravars={"cerniq_timezone": TIMEZONE}, env={"ANSIBLE_DEPRECATION_WARNINGS": "1"})
    assert run.rc == 0, run.stdout[-3000:]

    (dlq,) = run.result("Redis only")["dlq_lists"]
    assert dlq["key"] == DLQ_KEY and [entry["jobId"] for entry in dlq["newest"]] == ["j-1"]
    assert run.result("PostgreSQL only")["tables"]["wa_phone_numbers"]["rows"] == 1
    phones = run.result("Phones in the platform's zone")
    assert phones["timezone"] == TIMEZONE and [p["id"] for p in phones["phones"]] == ["phone_01"]
    assert run.result("Audited change")["changed"] is True
    assert [(actor, module, reason) for actor, module, _a, _t, reason, _b, _f in platform.audit("quota_set")] == [
        ("pytest", "quota_counter", "action groups")]

    # Only `all` hands a module options of groups it is not in (bullmq_job_info is in redis alone): ignored, warned.
    warned = "Param 'db_host' is deprecated" in run.stdout
    assert warned is (module_defaults is DEPRECATED_ALL), run.stdout[-3000:]
    assert ("will be removed from collection 'cerniq.outreach' version 1.0.0" in run.stdout) is warned


@functools.cache
def module_docs():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    groups = runtime["action_groups"]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
               ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"))
    names = ["cerniq.outreach." + name for name in groups["all"]]
    out = subprocess.run([os.path.join(VENV_BIN, "ansible-doc"), "--json", "-t", "module"] + names, env=env,
                         capture_output=True, text=True, check=True).stdout
    return groups, {name.split(".")[-1]: entry["doc"] for name, entry in json.loads(out).items()}


def deprecated_placeholders(doc):
    """The options a module documents only as accepted for the deprecated `all` group (doc fragment _deprecated_all)."""
    return {name for name, option in doc["options"].items()
            if option["type"] == "raw" and "group/cerniq.outreach.all" in " ".join(option["description"])}


def test_each_module_documents_exactly_the_options_of_its_groups():
    groups, docs = module_docs()
    assert set(docs) == set(groups["all"])
    deprecated_all = set().union(*(GROUP_OPTIONS[group] for group in ("redis", "postgres", "platform", "audit")))
    for module, doc in docs.items():
        member_of = {group for group, modules in groups.items() if group != "all" and module in modules}
        assert sorted(doc["attributes"]["action_group"]["membership"]) == sorted(
            "cerniq.outreach." + group for group in member_of | {"all"}), module
        own = set(doc["options"]) - deprecated_placeholders(doc)
        for group, names in GROUP_OPTIONS.items():
            if group in member_of:
                assert names <= own, (module, group, names - own)
            else:
                assert not names & own, (module, group, names & own)
        # Until 1.0.0 the options `all` hands on that the module does not use are there, marked as ignored.
        assert deprecated_placeholders(doc) == deprecated_all - own, module


def test_a_redis_only_module_shows_no_postgresql_options():
    _groups, docs = module_docs()
    doc = docs["bullmq_job_info"]
    own = set(doc["options"]) - deprecated_placeholders(doc)
    assert "redis_host" in own and not {name for name in own if name.startswith("db_")}
    assert not own & (GROUP_OPTIONS["postgres"] | GROUP_OPTIONS["audit"] | GROUP_OPTIONS["platform"])
