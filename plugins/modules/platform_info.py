#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: platform_info
short_description: Health of the platform's Redis, PostgreSQL and BullMQ workers
version_added: 0.1.0
description:
  - Reports, for each service of the cold-outreach platform, whether it answers and the figures behind it
    (Redis version, key count, C(maxmemory-policy) and persistence; PostgreSQL version and estimated rows of
    every contract table; connected BullMQ worker connections).
  - A service that does not answer is reported as unhealthy with one line saying what to check; the module
    itself only fails on bad options.
extends_documentation_fragment:
  - cerniq.outreach._redis
  - cerniq.outreach._postgres
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.redis, cerniq.outreach.postgres, cerniq.outreach.all]
options:
  expect_workers:
    description:
      - Least number of BullMQ worker connections (Node C(Worker)s) for the workers to count as healthy.
    type: int
    default: 0
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Check every service
  cerniq.outreach.platform_info:
    expect_workers: 1
  register: health

- name: Fail when one is down
  ansible.builtin.assert:
    that: health.healthy
"""

RETURN = r"""
healthy:
  description: Whether every service is healthy.
  returned: always
  type: bool
summary:
  description: One line per service, for the console.
  returned: always
  type: list
  elements: str
  sample:
    - "redis (platform): healthy - ok"
services:
  description:
    - One entry per service with C(service), C(role), C(healthy), C(where), C(message) and its figures.
    - C(warnings) lists what is wrong without making the service unhealthy; PostgreSQL's are also in its
      C(message). PostgreSQL's C(workers_hold) is a recovery's hold on the workers (as
      M(cerniq.outreach.db_snapshot_info) returns it); while it is open (C(dr_database.yml) stopped the workers and
      did not finish), a warning says so.
  returned: always
  type: list
  elements: dict
  sample:
    - service: redis
      role: platform
      healthy: true
      where: Redis at 10.0.0.5:6379 (db 0)
      version: 7.0.15
      keys: 41
      maxmemory_policy: noeviction
      warnings: []
      message: ok
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._health import platform_health


def argument_spec():
    spec = common_argument_spec("redis", "postgres")
    spec.update(expect_workers=dict(type="int", default=0))
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module)
    run_module(module, lambda: platform_health(module.params, expect_workers=module.params["expect_workers"]))


if __name__ == "__main__":
    main()
