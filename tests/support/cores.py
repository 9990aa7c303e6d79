"""bullmq_queue's cores called as the module calls them, without Ansible in between.

`run` builds the request from keyword options (a DlqRequest when `dlq_type` is given, else a QueueRequest; every
option not given keeps the module's default) and hands it to the core with the test servers' connections.
"""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_dlq import DlqRequest, manage_dlq
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_ops import QueueRequest
from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_queue import operate_queue


def run(platform, check_mode=False, diff=False, **given):
    """operate_queue (or manage_dlq, with dlq_type) on QueueRequest(**given) (DlqRequest(**given))."""
    if given.get("dlq_type"):
        return manage_dlq(platform.params, DlqRequest(**given), check_mode=check_mode, want_diff=diff)
    return operate_queue(platform.params, QueueRequest(**given), check_mode=check_mode, want_diff=diff)
