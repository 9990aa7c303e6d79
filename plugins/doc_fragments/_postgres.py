# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Mirrors postgres_argument_spec() in plugins/module_utils/_connection.py: the options of the postgres group.
    DOCUMENTATION = r"""
options:
  db_host:
    description:
      - Address of the platform's PostgreSQL server. Required by every operation that touches the database
        (including the audit log).
      - Usually set once for a play with C(group/cerniq.outreach.postgres) module defaults from the
        C(cerniq_db_host) inventory variable.
      - If not set, the E(CERNIQ_DB_HOST) environment variable is used.
    type: str
  db_port:
    description:
      - TCP port of the PostgreSQL server.
      - If not set, the E(CERNIQ_DB_PORT) environment variable is used.
    type: int
    default: 5432
  db_name:
    description:
      - Database holding the platform's tables.
      - If not set, the E(CERNIQ_DB_NAME) environment variable is used.
    type: str
    default: cerniq
  db_user:
    description:
      - Database user.
      - If not set, the E(CERNIQ_DB_USER) environment variable is used.
    type: str
    default: cerniq
  db_password:
    description:
      - Database password. Never printed, also not with C(-vvv).
      - If not set, the E(CERNIQ_DB_PASSWORD) environment variable is used.
    type: str
  db_sslmode:
    description:
      - libpq C(sslmode) for the connection. The collection's roles default to V(verify-full)
        (C(cerniq_db_sslmode)); only a local lab opts out.
      - If not set, the E(CERNIQ_DB_SSLMODE) environment variable is used.
    type: str
    default: prefer
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  db_ssl_rootcert:
    description:
      - CA certificate file for O(db_sslmode=verify-ca) or O(db_sslmode=verify-full). From
        C(cerniq_db_ssl_rootcert) in the roles.
    type: path
  db_connect_timeout:
    description:
      - Seconds to wait for a connection to the database.
    type: int
    default: 5
requirements:
  - psycopg2 (psycopg2-binary)
"""
