#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: platform_primary_info
short_description: Which PostgreSQL server is the primary and which Redis the master, asked of each at run time
version_added: 0.1.0
description:
  - With several hosts in the C(db) or C(redis) group (an HA pair), the procedures' service-level work must run
    once, against the primary. This module asks each candidate itself (PostgreSQL C(pg_is_in_recovery()),
    Redis C(ROLE)), never trusting the inventory's order.
  - Fails with one line when no candidate is the primary (naming why each one is not), or when more than one is
    (a split brain). An unreachable standby or replica is reported, not an error.
  - The procedures call it through the C(platform) role, which then points C(cerniq_db_host) and
    C(cerniq_redis_host) at the primary and names its inventory host (C(cerniq_db_primary_host)).
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
  db_candidates:
    description:
      - The PostgreSQL servers to ask, each with C(host) (an address), C(name) (the inventory host, returned as is)
        and optionally C(port) (default O(db_port)). Empty to skip PostgreSQL.
    type: list
    elements: dict
    default: []
  redis_candidates:
    description:
      - The Redis servers to ask, each with C(host), C(name) and optionally C(port) (default O(redis_port)). Empty
        to skip Redis.
    type: list
    elements: dict
    default: []
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Find the primary of the db group and the master of the redis group
  cerniq.outreach.platform_primary_info:
    db_candidates: [{name: db-1, host: 10.0.0.11}, {name: db-2, host: 10.0.0.12}]
    redis_candidates: [{name: redis-1, host: 10.0.0.21}, {name: redis-2, host: 10.0.0.22}]
  register: primaries

- name: Use it
  ansible.builtin.debug:
    msg: "PostgreSQL primary: {{ primaries.db.primary.name }}, Redis master: {{ primaries.redis.primary.name }}"
"""

RETURN = r"""
db:
  description:
    - The PostgreSQL election, null when O(db_candidates) is empty. C(primary) is the candidate that is not in
      recovery; C(candidates) lists each with C(name), C(host), C(port), C(role) (C(primary), C(standby) or null when
      unreachable), C(reachable) and C(message).
  returned: always
  type: dict
  sample:
    primary: {name: db-2, host: 10.0.0.12, port: 5432, role: primary, reachable: true, message: ok}
    candidates:
      - {name: db-1, host: 10.0.0.11, port: 5432, role: standby, reachable: true, message: ok}
      - {name: db-2, host: 10.0.0.12, port: 5432, role: primary, reachable: true, message: ok}
redis:
  description: The Redis election, the same shape (C(role) is C(primary) for the master, C(replica) otherwise).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._health import find_primaries


def argument_spec():
    spec = common_argument_spec("redis", "postgres")
    spec.update(
        db_candidates=dict(type="list", elements="dict", default=[]),
        redis_candidates=dict(type="list", elements="dict", default=[]),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_redis=bool(module.params["redis_candidates"]),
                      need_postgres=bool(module.params["db_candidates"]))
    run_module(module, lambda: find_primaries(module.params, db_candidates=module.params["db_candidates"],
                                              redis_candidates=module.params["redis_candidates"]))


if __name__ == "__main__":
    main()
