# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Until 1.0.0: every option the deprecated group/cerniq.outreach.all hands to each module, as common_argument_spec()
    # in plugins/module_utils/_connection.py accepts it from a module outside that option's group. Every module in that
    # group extends this fragment after its group fragments: an option a group fragment already documents keeps that
    # text (earlier fragments win), so only the options the module does not use show this one. Delete in 1.0.0.
    DOCUMENTATION = r"""
options:
  redis_host:
    description: &ignored
      - >-
        Not used by this module: accepted only so that a play still setting the deprecated
        C(group/cerniq.outreach.all) module defaults runs. Ignored, with a deprecation warning when set; removed
        in release 1.0.0 (set it with the module defaults of its own group instead).
    type: raw
  redis_port:
    description: *ignored
    type: raw
  redis_username:
    description: *ignored
    type: raw
  redis_password:
    description: *ignored
    type: raw
  redis_tls:
    description: *ignored
    type: raw
  redis_tls_ca_cert:
    description: *ignored
    type: raw
  redis_tls_verify:
    description: *ignored
    type: raw
  redis_db:
    description: *ignored
    type: raw
  bullmq_db:
    description: *ignored
    type: raw
  redis_timeout:
    description: *ignored
    type: raw
  db_host:
    description: *ignored
    type: raw
  db_port:
    description: *ignored
    type: raw
  db_name:
    description: *ignored
    type: raw
  db_user:
    description: *ignored
    type: raw
  db_password:
    description: *ignored
    type: raw
  db_sslmode:
    description: *ignored
    type: raw
  db_ssl_rootcert:
    description: *ignored
    type: raw
  db_connect_timeout:
    description: *ignored
    type: raw
  timezone:
    description: *ignored
    type: raw
  audit_actor:
    description: *ignored
    type: raw
"""
