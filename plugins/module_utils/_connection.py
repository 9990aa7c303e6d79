# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis and PostgreSQL clients built from module parameters, with one clear message for every connection failure.

The argument specs here and the doc fragments of the same names in plugins/doc_fragments (_redis, _postgres,
_platform, _audit) describe the same options, one action group each: `module_defaults` for
group/cerniq.outreach.redis, .postgres, .platform and .audit sets them once for a play (see common_argument_spec).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib

from ansible_collections.cerniq.outreach.plugins.module_utils._contract import (
    ALL_TABLES,
    DEFAULT_BULLMQ_DB,
    DEFAULT_REDIS_DB,
    DEFAULT_TIMEZONE,
)
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import CerniqError

try:
    import redis
    import redis.exceptions
    REDIS_IMPORT_ERROR = None
except ImportError:
    redis = None
    REDIS_IMPORT_ERROR = traceback.format_exc()

try:
    import psycopg2
    import psycopg2.errors
    import psycopg2.extras
    PSYCOPG2_IMPORT_ERROR = None
except ImportError:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = traceback.format_exc()


def redis_argument_spec():
    return dict(
        redis_host=dict(type="str", fallback=(env_fallback, ["CERNIQ_REDIS_HOST"])),
        redis_port=dict(type="int", default=6379, fallback=(env_fallback, ["CERNIQ_REDIS_PORT"])),
        redis_username=dict(type="str", fallback=(env_fallback, ["CERNIQ_REDIS_USERNAME"])),
        redis_password=dict(type="str", no_log=True, fallback=(env_fallback, ["CERNIQ_REDIS_PASSWORD"])),
        redis_tls=dict(type="bool", default=False, fallback=(env_fallback, ["CERNIQ_REDIS_TLS"])),
        redis_tls_ca_cert=dict(type="path", fallback=(env_fallback, ["CERNIQ_REDIS_TLS_CA_CERT"])),
        redis_tls_verify=dict(type="bool", default=True),
        redis_db=dict(type="int", default=DEFAULT_REDIS_DB, fallback=(env_fallback, ["CERNIQ_REDIS_DB"])),
        bullmq_db=dict(type="int", default=DEFAULT_BULLMQ_DB, fallback=(env_fallback, ["CERNIQ_BULLMQ_DB"])),
        redis_timeout=dict(type="float", default=5.0),
    )


def postgres_argument_spec():
    return dict(
        db_host=dict(type="str", fallback=(env_fallback, ["CERNIQ_DB_HOST"])),
        db_port=dict(type="int", default=5432, fallback=(env_fallback, ["CERNIQ_DB_PORT"])),
        db_name=dict(type="str", default="cerniq", fallback=(env_fallback, ["CERNIQ_DB_NAME"])),
        db_user=dict(type="str", default="cerniq", fallback=(env_fallback, ["CERNIQ_DB_USER"])),
        db_password=dict(type="str", no_log=True, fallback=(env_fallback, ["CERNIQ_DB_PASSWORD"])),
        db_sslmode=dict(type="str", default="prefer", fallback=(env_fallback, ["CERNIQ_DB_SSLMODE"]),
                        choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
        db_ssl_rootcert=dict(type="path"),
        db_connect_timeout=dict(type="int", default=5),
    )


def platform_argument_spec():
    """The platform's time zone: business days, relative dates (today, 24h) and timestamps read from the database."""
    return dict(
        timezone=dict(type="str", default=DEFAULT_TIMEZONE, fallback=(env_fallback, ["CERNIQ_TIMEZONE"])),
    )


def audit_argument_spec():
    """Who is acting, for the ops_audit_log rows of a module that changes something."""
    return dict(
        audit_actor=dict(type="str", fallback=(env_fallback, ["CERNIQ_AUDIT_ACTOR"])),
    )


# Each action group of meta/runtime.yml (but vendors, in _http.py) and the options its module_defaults hand on.
GROUP_ARGUMENT_SPECS = dict(
    redis=redis_argument_spec,
    postgres=postgres_argument_spec,
    platform=platform_argument_spec,
    audit=audit_argument_spec,
)
# The release that drops the deprecated group/cerniq.outreach.all and the options it hands to every module.
ALL_GROUP_REMOVED_IN = "1.0.0"


def common_argument_spec(*groups):
    """The options of the action groups `groups` (a module is in each group whose options it uses).

    Until ALL_GROUP_REMOVED_IN, also every other option the deprecated group/cerniq.outreach.all hands to each
    module: accepted so a play that still sets that group runs, ignored, and warned about when set. The doc fragment
    cerniq.outreach._deprecated_all documents them, one text for all, in every module of that group.
    """
    unknown = set(groups) - set(GROUP_ARGUMENT_SPECS)
    if unknown:
        raise ValueError("no action group {0}".format(", ".join(sorted(unknown))))
    spec = {}
    for build in GROUP_ARGUMENT_SPECS.values():
        for name, option in build().items():
            spec[name] = dict(type="raw", no_log=option.get("no_log", False), removed_in_version=ALL_GROUP_REMOVED_IN,
                              removed_from_collection="cerniq.outreach")
    for group in groups:
        spec.update(GROUP_ARGUMENT_SPECS[group]())
    return spec


def require_libraries(module, need_redis=True, need_postgres=True):
    if need_redis and redis is None:
        module.fail_json(msg=missing_required_lib("redis (redis-py)"), exception=REDIS_IMPORT_ERROR)
    if need_postgres and psycopg2 is None:
        module.fail_json(msg=missing_required_lib("psycopg2 (psycopg2-binary)"), exception=PSYCOPG2_IMPORT_ERROR)


# --- Redis ------------------------------------------------------------------------------------------------------

def redis_where(params, db):
    return "Redis at {0}:{1} (db {2})".format(params.get("redis_host"), params.get("redis_port"), db)


def _redis_kwargs(params, db):
    if not params.get("redis_host"):
        raise CerniqError("redis_host is not set: set cerniq_redis_host in the inventory (or redis_host in "
                          "module_defaults for group/cerniq.outreach.redis, or CERNIQ_REDIS_HOST)")
    kwargs = dict(
        host=params["redis_host"],
        port=params["redis_port"],
        db=db,
        username=params.get("redis_username") or None,
        password=params.get("redis_password") or None,
        socket_connect_timeout=params["redis_timeout"],
        socket_timeout=max(params["redis_timeout"], 30.0),
        decode_responses=True,
        client_name="cerniq.outreach",
    )
    if params.get("redis_tls"):
        kwargs.update(ssl=True, ssl_ca_certs=params.get("redis_tls_ca_cert"),
                      ssl_cert_reqs="required" if params.get("redis_tls_verify", True) else "none")
    return kwargs


def explain_redis_error(exc, where):
    """One line for a redis-py exception: what failed, where, what to check."""
    text = str(exc)
    if isinstance(exc, redis.exceptions.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text \
            or "invalid password" in text or "invalid username-password" in text:
        return ("{0} refused the credentials: check cerniq_redis_password / cerniq_redis_username "
                "(or CERNIQ_REDIS_PASSWORD)".format(where))
    if "DB index is out of range" in text:
        return ("{0} does not exist: the server has fewer logical databases; check cerniq_redis_db / "
                "cerniq_bullmq_db".format(where))
    if "READONLY" in text or isinstance(exc, redis.exceptions.ReadOnlyError):
        return ("{0} is a read-only replica and refused a write: point cerniq_redis_host at the master".format(where))
    if "WRONGTYPE" in text:
        return "{0}: a key has the wrong Redis type ({1})".format(where, text)
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return ("cannot reach {0}: {1}. Check cerniq_redis_host / cerniq_redis_port / cerniq_redis_tls and that "
                "redis-server is running".format(where, text))
    return "{0} answered an error: {1}".format(where, text)


@contextlib.contextmanager
def redis_errors(where):
    """Turn any redis-py failure inside the block into a CerniqError naming the server."""
    try:
        yield
    except redis.exceptions.RedisError as exc:
        raise CerniqError(explain_redis_error(exc, where)) from exc


def tls_handshake_check(params, where):
    """With redis_tls, fail in redis_timeout seconds with one message when the server does not answer TLS.

    A plaintext Redis reads a TLS ClientHello as the start of an inline command and waits for more: redis-py would
    hang for its socket timeout, retry, and end with a bare timeout. The certificate itself is verified by redis-py.
    """
    if not params.get("redis_tls"):
        return
    timeout = params.get("redis_timeout") or 5.0
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with socket.create_connection((params["redis_host"], params["redis_port"]), timeout=timeout) as raw:
            raw.settimeout(timeout)
            with context.wrap_socket(raw, server_hostname=params["redis_host"]):
                pass
    except (OSError, ssl.SSLError) as exc:
        if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
            return  # not a TLS question: redis-py reports the unreachable server
        raise CerniqError(
            "{0} did not complete a TLS handshake within {1:g}s ({2}): the server does not serve TLS on that port. "
            "Connections use TLS by default (cerniq_redis_tls: true, CA file cerniq_redis_tls_ca_cert); only a "
            "plaintext local lab sets cerniq_redis_tls: false".format(where, timeout, str(exc) or type(exc).__name__)
        ) from exc


def redis_client(params, db=None, allow_replica=False):
    """A connected redis-py client on `db` (default: the platform db), on a master unless `allow_replica`."""
    db = params["redis_db"] if db is None else db
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    where = redis_where(params, db)
    tls_handshake_check(params, where)
    # redis-py's default retries for ~10 s; an operator after an alert wants the answer now.
    client = redis.Redis(retry=Retry(ExponentialBackoff(cap=0.5, base=0.1), 1), **_redis_kwargs(params, db))
    with redis_errors(where):
        role = redis_role(client)
    if role[0] == "slave" and not allow_replica:
        raise CerniqError(replica_refusal(where, role))
    return client


def redis_role(client):
    """ROLE's reply (['master', ...] or ['slave', host, port, ...]); it answers in the round trip PING would take.

    A user whose ACL denies ROLE gets ['unknown']: a replica then refuses writes itself (READONLY), which
    explain_redis_error names.
    """
    try:
        reply = client.execute_command("ROLE")
    except redis.exceptions.NoPermissionError:
        client.ping()
        return ["unknown"]
    return list(reply)


def replica_refusal(where, role):
    master = "{0}:{1}".format(role[1], role[2]) if len(role) >= 3 else "its master"
    return ("{0} is a replica of {1}: this collection works against the master only (a replica refuses writes "
            "and may lag). Point cerniq_redis_host at the master (or list every Redis host in the redis group and "
            "leave cerniq_redis_host unset: the master is found at run time). Nothing was changed."
            .format(where, master))


def async_redis_client(params, db):
    """A redis.asyncio client for the bullmq package: few retries, so a dead server fails in seconds."""
    import redis.asyncio
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    kwargs = _redis_kwargs(params, db)
    kwargs.pop("client_name")
    tls_handshake_check(params, redis_where(params, db))
    return redis.asyncio.Redis(retry=Retry(ExponentialBackoff(cap=1, base=0.1), 2),
                               single_connection_client=True, **kwargs)


# --- PostgreSQL -------------------------------------------------------------------------------------------------

def postgres_where(params):
    return "PostgreSQL at {0}:{1} (database {2}, user {3})".format(
        params.get("db_host"), params.get("db_port"), params.get("db_name"), params.get("db_user"))


def explain_postgres_error(exc, params):
    where = postgres_where(params)
    text = (str(exc).strip().splitlines() or ["unknown error"])[0]
    if "password authentication failed" in text or "no password supplied" in text:
        return "{0} refused the password: check cerniq_db_password (or CERNIQ_DB_PASSWORD)".format(where)
    if "does not exist" in text and "database" in text:
        return "{0}: the database does not exist; check cerniq_db_name".format(where)
    if psycopg2 is not None and isinstance(exc, psycopg2.errors.UndefinedTable):
        return ("{0}: {1}; load schema/platform.sql (see docs/platform-contract.md)".format(where, text))
    # Both are OperationalErrors, yet the server answered: not a connection problem.
    if psycopg2 is not None and isinstance(exc, psycopg2.errors.LockNotAvailable):
        return ("{0}: {1} - another session holds a lock this needs (see pg_locks / pg_stat_activity); retry when "
                "it is released".format(where, text))
    if psycopg2 is not None and isinstance(exc, psycopg2.errors.QueryCanceled):
        return "{0}: {1}".format(where, text)
    if psycopg2 is not None and isinstance(exc, psycopg2.OperationalError):
        return ("cannot reach {0}: {1}. Check cerniq_db_host / cerniq_db_port / cerniq_db_sslmode and that "
                "PostgreSQL is running".format(where, text))
    return "{0} failed: {1}".format(where, text)


@contextlib.contextmanager
def postgres_errors(params, conn=None):
    """Roll back and turn any psycopg2 failure inside the block into a CerniqError naming the server."""
    try:
        yield
    except psycopg2.Error as exc:
        if conn is not None and not conn.closed:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
        raise CerniqError(explain_postgres_error(exc, params)) from exc


# A link that dies mid-procedure (a host or network gone, not a refused connection) is noticed in ~20 s on both
# sides instead of the kernel's 2 hours: the module fails with one message, and the server's backend ends its
# transaction and releases its locks, so a re-run is not blocked by a session nobody holds.
DEAD_LINK_DETECTION = dict(
    keepalives=1, keepalives_idle=10, keepalives_interval=3, keepalives_count=3, tcp_user_timeout=20000,
    options="-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=3 -c tcp_keepalives_count=3",
)


def postgres_connect(params, require=ALL_TABLES, writable=True):
    """A psycopg2 connection (not autocommit) after checking that the contract's tables exist.

    A standby is refused unless the caller only reads (`writable=False`).
    """
    if not params.get("db_host"):
        raise CerniqError("db_host is not set: set cerniq_db_host in the inventory (or db_host in module_defaults "
                          "for group/cerniq.outreach.postgres, or CERNIQ_DB_HOST)")
    kwargs = dict(host=params["db_host"], port=params["db_port"], dbname=params["db_name"],
                  user=params["db_user"], sslmode=params["db_sslmode"],
                  connect_timeout=params["db_connect_timeout"], application_name="cerniq.outreach",
                  **DEAD_LINK_DETECTION)
    if params.get("db_password"):
        kwargs["password"] = params["db_password"]
    if params.get("db_ssl_rootcert"):
        kwargs["sslrootcert"] = params["db_ssl_rootcert"]
    with postgres_errors(params):
        conn = psycopg2.connect(**kwargs)
    missing, standby = missing_tables(conn, params, require or ())
    if standby and writable:
        conn.close()
        raise CerniqError(standby_refusal(postgres_where(params)))
    if missing:
        conn.close()
        raise CerniqError("{0}: table(s) {1} missing; load schema/platform.sql (see docs/platform-contract.md)"
                          .format(postgres_where(params), ", ".join(missing)))
    return conn


def standby_refusal(where):
    return ("{0} is a standby (pg_is_in_recovery() is true): this collection never changes one. Point cerniq_db_host "
            "at the primary (or list every PostgreSQL host in the db group and leave cerniq_db_host unset: the "
            "primary is found at run time). Nothing was changed.".format(where))


def missing_tables(conn, params, tables):
    """The contract tables that do not exist, and whether the server is a standby: one round trip."""
    with postgres_errors(params, conn), conn.cursor() as cur:
        cur.execute("SELECT ARRAY(SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NULL), "
                    "pg_is_in_recovery()", (list(tables),))
        missing, standby = cur.fetchone()
    conn.rollback()
    return list(missing), standby


@contextlib.contextmanager
def postgres_reading(params, require=ALL_TABLES):
    """A cursor in a read-only transaction, timestamps shown in the platform's time zone; the connection closes after.

    For info modules and check mode: PostgreSQL itself refuses any write made through it.
    """
    conn = postgres_connect(params, require, writable=False)
    try:
        with postgres_errors(params, conn):
            conn.set_session(readonly=True)
            with conn.cursor() as cur:
                cur.execute("SET TIME ZONE %s", (params.get("timezone") or DEFAULT_TIMEZONE,))
                yield cur
            conn.rollback()
    finally:
        conn.close()
