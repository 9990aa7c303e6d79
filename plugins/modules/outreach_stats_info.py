#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: outreach_stats_info
short_description: The outreach figures of a business day for the morning and evening checks
version_added: 0.1.0
description:
  - The figures of runbook 1.1 and 1.2 (and 3.1 step 3, 4.1 step 2), counted by PostgreSQL in one read-only
    statement however many leads, phones and messages there are. O(figures) limits what is computed.
  - V(contacted) - distinct leads an outbound message left the platform for on O(day) (C(SENT), C(DELIVERED),
    C(READ) or C(BOUNCED)), also per channel, and the messages.
  - V(replied) - distinct leads with an inbound message on O(day) or moved to C(REPLIED) on O(day) (each lead once).
  - V(converted) - leads in C(CONVERTED) whose C(updated_at) falls on O(day).
  - V(reviews_resolved) - review items resolved or auto-approved on O(day).
  - V(reviews_pending) - open review items now, pending and assigned, by priority.
  - V(sla_breaches) - open review items past their SLA now, and deadlines missed since O(breaches_since).
  - V(archive_backlog) - live communication log rows older than O(archive_after_days) (did the archive run?).
  - V(pending_followups) - leads whose follow-up is pending (C(next_action_at) in the future, sequence not
    paused), what M(cerniq.outreach.followup_reschedule) schedules, counted without reading Redis.
  - V(bounces) - bounced e-mails of the last O(bounce_window), the O(bounce_top) most frequent address and reason
    pairs, and the bounce rate against the e-mails sent in that window.
  - V(whatsapp_per_phone) - WhatsApp messages that count against the quota, per phone, on O(day).
  - O(day) is a business day in O(timezone) (its bounds computed there, so a DST day lasts 23 or 25 hours); the
    review, archive and bounce figures are about now, whatever O(day) is.
extends_documentation_fragment:
  - cerniq.outreach._postgres
  - cerniq.outreach._platform
  - cerniq.outreach._deprecated_all
  - cerniq.outreach._attributes
  - cerniq.outreach._attributes.INFO_MODULE
attributes:
  action_group:
    membership: [cerniq.outreach.postgres, cerniq.outreach.platform, cerniq.outreach.all]
options:
  figures:
    description:
      - The figures to compute; all when not set.
    type: list
    elements: str
    choices: [contacted, replied, converted, reviews_resolved, reviews_pending, sla_breaches, archive_backlog,
              pending_followups, bounces, whatsapp_per_phone]
  day:
    description:
      - The business day - V(today), V(yesterday) or V(YYYY-MM-DD); not in the future.
    type: str
    default: today
  breaches_since:
    description:
      - For V(sla_breaches), count the deadlines missed since this moment. A duration (V(12h) - that long ago),
        V(today) / V(yesterday) (start of that business day), a V(YYYY-MM-DD) date or an ISO 8601 timestamp (without
        an offset it is read in O(timezone)).
    type: str
    default: 24h
  bounce_window:
    description:
      - For V(bounces), how far back to look, as a duration (V(24h), V(2d)).
    type: str
    default: 24h
  bounce_top:
    description:
      - For V(bounces), how many address and reason pairs to list (1 or more).
    type: int
    default: 20
  archive_after_days:
    description:
      - For V(archive_backlog), the age in days after which rows belong in the archive.
    type: int
    default: 90
notes:
  - Only reads; the database refuses writes on its connection.
author:
  - CERNIQ SRE (@cerniq-sre)
"""

EXAMPLES = r"""
- name: Today's figures for the evening check (runbook 1.2)
  cerniq.outreach.outreach_stats_info:
    figures: [contacted, replied, converted, reviews_resolved, archive_backlog]
  register: today

- name: Warn when the archive did not run
  ansible.builtin.debug:
    msg: "{{ today.archive_backlog.rows }} rows older than 90 days are still in the live log"
  when: today.archive_backlog.rows > 0

- name: Bounced addresses of the last day (runbook 4.1 step 2)
  cerniq.outreach.outreach_stats_info:
    figures: [bounces]
    bounce_top: 20
  register: bounced
"""

RETURN = r"""
day:
  description: The business day of the day-bound figures (YYYY-MM-DD).
  returned: always
  type: str
day_start:
  description: Start of O(day) (ISO 8601, UTC).
  returned: always
  type: str
day_end:
  description: End of O(day), exclusive (ISO 8601, UTC).
  returned: always
  type: str
figures:
  description: The figures computed.
  returned: always
  type: list
  elements: str
contacted:
  description: C(leads), C(whatsapp), C(email) (distinct leads) and C(messages).
  returned: when asked for
  type: dict
  sample: {leads: 1480, whatsapp: 1330, email: 170, messages: 1545}
replied:
  description: C(leads) (distinct), C(inbound_messages) (leads who wrote), C(moved_to_replied) (leads moved).
  returned: when asked for
  type: dict
converted:
  description: C(leads).
  returned: when asked for
  type: dict
reviews_resolved:
  description: C(total), C(resolved), C(auto_approved).
  returned: when asked for
  type: dict
reviews_pending:
  description: C(pending), C(assigned) and C(by_priority) (every priority, as in review_queue_info's C(open)).
  returned: when asked for
  type: dict
sla_breaches:
  description: C(open), C(since), C(open_by_priority), C(since_by_priority), C(breaches_since).
  returned: when asked for
  type: dict
archive_backlog:
  description:
    - C(rows), C(first_id), C(last_id), C(oldest), C(newest) of the live rows older than C(cutoff).
    - C(last_run) - the last finished archive run from C(ops_audit_log) (C(at), C(actor), C(rows_moved), C(complete),
      C(cutoff)), null when none; C(last_batch_at) - its last committed batch (later than C(last_run.at) when a run
      stopped midway).
  returned: when asked for
  type: dict
  sample: {rows: 0, first_id: null, last_id: null, oldest: null, newest: null, cutoff: "2026-01-17T22:00:00+00:00",
           last_run: null, last_batch_at: null}
bounces:
  description: C(bounced), C(sent), C(rate_percent), C(since) and C(top) (C(email), C(bounce_reason), C(count)).
  returned: when asked for
  type: dict
  sample: {bounced: 7, sent: 20, rate_percent: 35.0, top: [{email: a@example.ro, bounce_reason: 550 5.1.1, count: 3}]}
pending_followups:
  description: C(leads) with a pending follow-up, C(next_due) and C(last_due) (the earliest and latest due time).
  returned: when asked for
  type: dict
  sample: {leads: 100000, next_due: "2026-11-25T09:00:00+00:00", last_due: "2026-12-02T17:30:00+00:00"}
whatsapp_per_phone:
  description: C(total) and C(phones) (C(phone_id), C(sent), C(limit), C(status)), every phone, in phone order.
  returned: when asked for
  type: dict
summary:
  description: One line per figure, for the console.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.cerniq.outreach.plugins.module_utils._connection import common_argument_spec, require_libraries
from ansible_collections.cerniq.outreach.plugins.module_utils._contract import ARCHIVE_AFTER_DAYS
from ansible_collections.cerniq.outreach.plugins.module_utils._errors import run_module
from ansible_collections.cerniq.outreach.plugins.module_utils._stats import DEFAULT_BOUNCE_TOP, FIGURES, outreach_stats


def argument_spec():
    spec = common_argument_spec("postgres", "platform")
    spec.update(
        figures=dict(type="list", elements="str", choices=list(FIGURES)),
        day=dict(type="str", default="today"),
        breaches_since=dict(type="str", default="24h"),
        bounce_window=dict(type="str", default="24h"),
        bounce_top=dict(type="int", default=DEFAULT_BOUNCE_TOP),
        archive_after_days=dict(type="int", default=ARCHIVE_AFTER_DAYS),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    require_libraries(module, need_redis=False)
    params = module.params
    run_module(module, lambda: outreach_stats(
        params, figures=params["figures"], day=params["day"], breaches_since=params["breaches_since"],
        bounce_window=params["bounce_window"], bounce_top=params["bounce_top"],
        archive_after_days=params["archive_after_days"]))


if __name__ == "__main__":
    main()
