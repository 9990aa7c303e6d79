# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Mirrors redis_argument_spec() in plugins/module_utils/_connection.py: the options of the redis group.
    DOCUMENTATION = r"""
options:
  redis_host:
    description:
      - Address of the platform's Redis server. Required by every operation that touches Redis.
      - Usually set once for a play with C(group/cerniq.outreach.redis) module defaults from the
        C(cerniq_redis_host) inventory variable.
      - If not set, the E(CERNIQ_REDIS_HOST) environment variable is used.
    type: str
  redis_port:
    description:
      - TCP port of the Redis server.
      - If not set, the E(CERNIQ_REDIS_PORT) environment variable is used.
    type: int
    default: 6379
  redis_username:
    description:
      - Redis ACL user name. Leave unset for the default user.
      - If not set, the E(CERNIQ_REDIS_USERNAME) environment variable is used.
    type: str
  redis_password:
    description:
      - Redis password. Never printed, also not with C(-vvv).
      - If not set, the E(CERNIQ_REDIS_PASSWORD) environment variable is used.
    type: str
  redis_tls:
    description:
      - Connect with TLS. The collection's roles default to V(true) (C(cerniq_redis_tls)); a server that does not
        answer the TLS handshake within O(redis_timeout) seconds fails with one message.
      - If not set, the E(CERNIQ_REDIS_TLS) environment variable is used.
    type: bool
    default: false
  redis_tls_ca_cert:
    description:
      - CA certificate file that signed the server's certificate, when O(redis_tls=true). From
        C(cerniq_redis_tls_ca_cert) in the roles.
      - If not set, the E(CERNIQ_REDIS_TLS_CA_CERT) environment variable is used.
    type: path
  redis_tls_verify:
    description:
      - Verify the server's certificate when O(redis_tls=true).
    type: bool
    default: true
  redis_db:
    description:
      - Logical database holding C(phone:status:*) and C(quota:wa:*) keys.
      - If not set, the E(CERNIQ_REDIS_DB) environment variable is used.
    type: int
    default: 0
  bullmq_db:
    description:
      - Logical database holding the BullMQ queues (prefix C(bull)).
      - If not set, the E(CERNIQ_BULLMQ_DB) environment variable is used.
    type: int
    default: 2
  redis_timeout:
    description:
      - Seconds to wait for a connection to the Redis server.
    type: float
    default: 5.0
requirements:
  - redis (redis-py); hiredis (optional, its C speed-up) for fast bulk job adds
"""
