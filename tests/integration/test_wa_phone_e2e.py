"""wa_phone, wa_phone_info, quota_counter and quota_counter_info run by ansible-playbook: check mode writes nothing and
predicts the real run, --diff shows fields, a second run changes nothing, secrets never appear (also with -vvvv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.snapshots import platform_state

# Four ansible-playbook runs.
pytestmark = pytest.mark.slow

PLAYBOOK = Path(__file__).parent / "playbooks" / "wa_phone_quota.yml"
MUTATING = ("Onboard a phone", "Take a phone offline", "Ban a phone", "Set a counter by hand",
            "Recount the counters from the log", "Reset yesterday's counters")


def test_check_mode_then_real_run_then_idempotent_rerun(platform):
    platform.seed(phones=6, leads=120, old_log_rows=0, reviews=0, jobs_per_phone=6, dlq_entries=0,
                  offline=("phone_06",), banned=(), drift_phone="phone_06", leak_phone="phone_05",
                  no_ttl_phone="phone_04")
    before = platform_state(platform)

    check = platform.play(str(PLAYBOOK), check=True, diff=True, verbosity=4)
    assert check.rc == 0, check.stdout[-3000:]
    # -vvvv prints every module's arguments: the passwords are masked.
    assert platform.redis.password not in check.stdout and platform.pg.password not in check.stdout
    assert platform_state(platform) == before
    assert [t for t in MUTATING if check.result(t)["changed"]] == list(MUTATING)
    predicted = {t: check.result(t) for t in MUTATING}
    assert predicted["Onboard a phone"]["phone_id"] == "phone_07"
    assert "phone_label" in check.stdout and "Sales 77" in check.stdout  # the diff, printed

    real = platform.play(str(PLAYBOOK), diff=True)
    assert real.rc == 0, real.stdout
    assert [t for t in MUTATING if real.result(t)["changed"]] == list(MUTATING)
    ban = real.result("Ban a phone")
    assert ban["released"] == predicted["Ban a phone"]["released"]
    assert ban["cancelled"] == predicted["Ban a phone"]["cancelled"] and ban["cancelled"]["cancelled"] == 6
    assert real.result("Recount the counters from the log")["corrected"] == \
        predicted["Recount the counters from the log"]["corrected"]
    assert real.result("Reset yesterday's counters")["counter_keys"] == \
        predicted["Reset yesterday's counters"]["counter_keys"]
    phones = real.result("Read the phones")
    assert phones["summary"]["by_status"] == {"ACTIVE": 4, "OFFLINE": 2, "BANNED": 1}
    assert phones["summary"]["drifted"] == ["phone_06"]
    counters = real.result("Read the counters")
    assert [leak["phone_id"] for leak in counters["leaks"]] == ["phone_03"]  # the hand-set counter
    assert counters["without_ttl"] == [] and counters["usage"]["missing"] == []

    again = platform.play(str(PLAYBOOK))
    assert again.rc == 0, again.stdout
    assert [t for t in MUTATING if again.result(t)["changed"]] == []
    assert len(platform.audit()) == len(MUTATING)


def test_bad_input_through_ansible_is_one_line_and_changes_nothing(platform, tmp_path):
    platform.seed(phones=3, leads=0, old_log_rows=0, reviews=0, jobs_per_phone=0, dlq_entries=0,
                  offline=(), banned=(), drift_phone="phone_03", leak_phone="phone_02", no_ttl_phone="phone_01")
    before = platform_state(platform)
    playbook = tmp_path / "bad.yml"
    playbook.write_text(PLAYBOOK.read_text().split("  tasks:")[0] + """  tasks:
    - name: Onboard with a bad number
      cerniq.outreach.wa_phone:
        phone_number: "0740 123 456"
        tenant_id: 5b1f0c1e-0000-4000-8000-00000000c3e1
        label: Bad
      ignore_errors: true
      register: bad_number

    - name: Reset today
      cerniq.outreach.quota_counter:
        state: absent
        date: today
      ignore_errors: true
""")
    run = platform.play(str(playbook))
    assert "is not E.164" in run.result("Onboard with a bad number")["msg"]
    assert "is today" in run.result("Reset today")["msg"]
    assert platform_state(platform) == before
