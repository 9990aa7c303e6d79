"""The Molecule scenarios' idempotence proof (tests/support/molecule_state.py) against the session's real servers: two
records of an unchanged platform compare equal; a re-set expiry, a rewritten row, a new key, another database's
marker each fail the compare, named; a scenario's ignore entry leaves out what it names, and only with a reason."""

from __future__ import annotations

import json

import pytest
import redis

from tests.support import molecule_state

KEY = "phone:phone_01:status"


def _record(tmp_path, platform, ignore=None):
    params = tmp_path / "params.json"
    params.write_text(json.dumps(platform.params))
    argv = ["record", "--dir", str(tmp_path), "--params", str(params)]
    assert molecule_state.main(argv + (["--ignore", str(ignore)] if ignore else [])) == 0


def _compare(tmp_path, capsys, ignore=None):
    argv = ["compare", "--dir", str(tmp_path)] + (["--ignore", str(ignore)] if ignore else [])
    rc = molecule_state.main(argv)
    return rc, capsys.readouterr().out


@pytest.fixture()
def seeded(platform):
    platform.seed(phones=3, leads=20, old_log_rows=5, reviews=2, jobs_per_phone=2, dlq_entries=2)
    platform.r(0).set(KEY, "ACTIVE")
    platform.r(0).pexpireat(KEY, 4_102_444_800_000)  # 2100-01-01
    return platform


def test_an_unchanged_platform_compares_equal(seeded, tmp_path, capsys):
    _record(tmp_path, seeded)
    _record(tmp_path, seeded)
    rc, out = _compare(tmp_path, capsys)
    assert rc == 0, out
    assert "converge 1 and 2 left the same state, byte for byte" in out
    records = sorted(p.name for p in (tmp_path / molecule_state.RECORDS).iterdir())
    assert records == ["1.json", "2.json"]
    assert "redis0" in json.loads((tmp_path / molecule_state.RECORDS / "2.json").read_text())


def test_a_re_set_expiry_with_the_same_value_is_named(seeded, tmp_path, capsys):
    _record(tmp_path, seeded)
    seeded.r(0).set(KEY, "ACTIVE", keepttl=True)  # the same bytes: not a difference
    seeded.r(0).pexpireat(KEY, 4_102_444_800_000 + 1000)  # "the same TTL", a second later
    _record(tmp_path, seeded)
    rc, out = _compare(tmp_path, capsys)
    assert rc == 1
    assert "redis0: {0} changed".format(KEY) in out
    assert "4102444800000" in out and "4102444801000" in out


def test_a_rewritten_row_and_a_new_key_are_named(seeded, tmp_path, capsys):
    _record(tmp_path, seeded)
    seeded.sql("UPDATE wa_phone_numbers SET phone_label = phone_label || ' (renamed)' WHERE id = 'phone_01'")
    seeded.r(2).set("bull:q:wa:phone_01:meta-extra", "1")
    _record(tmp_path, seeded)
    rc, out = _compare(tmp_path, capsys)
    assert rc == 1
    assert "postgres: wa_phone_numbers changed" in out
    assert "redis2: bull:q:wa:phone_01:meta-extra appeared" in out


def test_every_database_the_user_reaches_is_recorded_with_its_marker(seeded, tmp_path, capsys):
    name = "cerniq_molecule_state_kept"
    conn = seeded.pg.superuser_connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS {0}".format(name))
            cur.execute("CREATE DATABASE {0} OWNER cerniq".format(name))
        _record(tmp_path, seeded)
        with conn.cursor() as cur:
            cur.execute("COMMENT ON DATABASE {0} IS %s".format(name), ('{"cerniq_outreach": "kept"}',))
        _record(tmp_path, seeded)
        rc, out = _compare(tmp_path, capsys)
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS {0}".format(name))
        conn.close()
    assert rc == 1
    assert "postgres:{0}: (marker) changed (None -> {{'cerniq_outreach': 'kept'}})".format(name) in out


def test_an_ignore_entry_leaves_out_what_it_names_with_its_reason(seeded, tmp_path, capsys):
    ignore = tmp_path / "idempotence_ignore.yml"
    ignore.write_text("- part: redis0\n  name: 'phone:*:status'\n  reason: set by the clock in this test\n")
    _record(tmp_path, seeded, ignore)
    seeded.r(0).pexpireat(KEY, 4_102_444_800_000 + 1000)
    _record(tmp_path, seeded, ignore)
    rc, out = _compare(tmp_path, capsys, ignore)
    assert rc == 0, out
    assert "not compared: redis0 {0} (set by the clock in this test)".format(KEY) in out
    ignore.write_text("- name: 'phone:*:status'\n")
    with pytest.raises(SystemExit, match="needs a name"):
        _compare(tmp_path, capsys, ignore)


def test_a_verify_without_the_idempotence_record_fails(seeded, tmp_path, capsys):
    _record(tmp_path, seeded)
    rc, out = _compare(tmp_path, capsys)
    assert rc == 1
    assert "1 converge(s) recorded" in out


def test_a_failed_record_says_why_without_the_password(platform, tmp_path):
    params = tmp_path / "params.json"
    params.write_text(json.dumps(dict(platform.params, redis_password="not-the-password-42")))
    with pytest.raises(redis.exceptions.RedisError):
        molecule_state.main(["record", "--dir", str(tmp_path), "--params", str(params)])
    said = (tmp_path / molecule_state.RECORDS / "record-error.txt").read_text()
    assert said.startswith("recording the state after converge failed: ")
    assert "not-the-password-42" not in said
    assert not list((tmp_path / molecule_state.RECORDS).glob("*.json"))


def _audit(platform, module, action):
    platform.sql("INSERT INTO ops_audit_log (actor, module, action, target) VALUES ('pytest', %s, %s, 'x')",
                 (module, action))


def test_a_new_audit_row_is_named_and_allowed_only_for_its_module_and_action(seeded, tmp_path, capsys):
    ignore = tmp_path / "idempotence_ignore.yml"
    ignore.write_text("- new_audit_rows: {module: comm_log_archive, action: comm_log_archive}\n"
                      "  reason: the archive's run summary, every run\n")
    _audit(seeded, "wa_phone", "ban")
    _record(tmp_path, seeded, ignore)
    _audit(seeded, "comm_log_archive", "comm_log_archive")
    _record(tmp_path, seeded, ignore)
    rc, out = _compare(tmp_path, capsys)
    assert rc == 1
    assert "audit rows: " in out and " appeared" in out and "postgres: ops_audit_log changed" in out
    rc, out = _compare(tmp_path, capsys, ignore)
    assert rc == 0, out
    assert "(comm_log_archive/comm_log_archive) (the archive's run summary, every run)" in out

    _audit(seeded, "wa_phone", "ban")  # another kind of row: named despite the entry
    seeded.sql("UPDATE ops_audit_log SET reason = 'rewritten' WHERE module = 'wa_phone'")  # and a rewritten one
    _record(tmp_path, seeded, ignore)
    rc, out = _compare(tmp_path, capsys, ignore)
    assert rc == 1
    lines = [line for line in out.splitlines() if line.startswith("  audit rows: ")]
    assert len(lines) == 2 and any(" appeared" in line for line in lines) and any(" changed" in line for line in lines)
