"""The foundation against real servers: connections, clear errors, no secret printed, the health playbook."""

import pytest

from ansible_collections.cerniq.outreach.plugins.module_utils import _connection as connection
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError
from tests.conftest import module_params
from tests.support.playbooks import inventory_for, run_playbook

# Also run under ansible-core 2.19 / Python 3.11 by `make compat`.
pytestmark = pytest.mark.compat


def test_health_playbook_reports_every_service_healthy(platform):
    run = platform.play("stack_health.yml")
    assert run.rc == 0, run.stdout
    health = run.result("Read the health")
    assert health["healthy"] is True
    by_service = {(s["service"], s["role"]): s for s in health["services"]}
    assert by_service[("redis", "platform")]["maxmemory_policy"] == "noeviction"
    # The test Redis keeps nothing on disk, as BullMQ's production rules warn against.
    assert any("persistence is off" in w for w in by_service[("redis", "platform")]["warnings"])
    assert by_service[("postgresql", "db")]["version"].startswith("15")
    assert set(by_service[("postgresql", "db")]["estimated_rows"]) >= {"wa_phone_numbers", "ops_audit_log"}


def test_health_playbook_fails_naming_the_host_when_redis_is_down(platform, private_redis):
    inventory = inventory_for(private_redis, platform.pg)
    private_redis.kill()
    run = run_playbook("stack_health.yml", inventory)
    assert run.rc != 0
    assert "cannot reach Redis at {0}:{1}".format(private_redis.host, private_redis.port) in run.stdout


def test_wrong_redis_password_is_one_clear_line_without_the_secret(platform):
    params = module_params(platform.redis, platform.pg, redis_password="not-the-password-xyz")
    with pytest.raises(CerniqError) as err:
        connection.redis_client(params)
    assert "refused the credentials" in err.value.msg and "cerniq_redis_password" in err.value.msg
    assert "not-the-password-xyz" not in err.value.msg


def test_redis_db_out_of_range_names_the_setting(platform):
    params = module_params(platform.redis, platform.pg, redis_db=99)
    with pytest.raises(CerniqError, match="db 99.*cerniq_redis_db"):
        connection.redis_client(params)


def test_wrong_postgres_password_is_refused_without_the_secret(platform):
    params = module_params(platform.redis, platform.pg, db_password="wrong-db-secret-123")
    with pytest.raises(CerniqError) as err:
        connection.postgres_connect(params)
    assert "refused the password" in err.value.msg and "wrong-db-secret-123" not in err.value.msg


def test_wrong_postgres_port_names_host_and_port(platform):
    params = module_params(platform.redis, platform.pg, db_port=1)
    with pytest.raises(CerniqError, match="cannot reach PostgreSQL at 127.0.0.1:1 .*cerniq_db_port"):
        connection.postgres_connect(params)


def test_missing_table_is_named_with_the_fix(platform):
    platform.sql("ALTER TABLE wa_quota_usage RENAME TO wa_quota_usage_moved")
    try:
        with pytest.raises(CerniqError, match="wa_quota_usage missing; load schema/platform.sql"):
            connection.postgres_connect(connection_params(platform))
    finally:
        platform.sql("ALTER TABLE wa_quota_usage_moved RENAME TO wa_quota_usage")


def test_secrets_are_never_printed_even_with_vvv(platform):
    run = platform.play("stack_health.yml", verbosity=4)
    assert run.rc == 0
    assert platform.pg.password not in run.stdout
    assert platform.redis.password not in run.stdout


def test_missing_host_setting_explains_where_to_set_it(platform):
    params = module_params(platform.redis, platform.pg, redis_host=None)
    with pytest.raises(CerniqError, match="cerniq_redis_host"):
        connection.redis_client(params)


def connection_params(platform):
    return module_params(platform.redis, platform.pg)
