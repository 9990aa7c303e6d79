"""A module's core called as the module calls it, without Ansible in between.

`options` builds the parameters AnsibleModule would hand the core: the argument spec's defaults, the test servers'
connection options, then the given options. `run` is bullmq_queue's core with those options.
"""

from __future__ import annotations

from ansible_collections.cerniq.outreach.plugins.module_utils._bullmq_queue import manage_queue
from ansible_collections.cerniq.outreach.plugins.modules.bullmq_queue import argument_spec as queue_spec


def options(spec, platform, **given):
    """Module parameters as AnsibleModule would hand them over: the spec's defaults, the test servers, `given`."""
    params = {name: opt.get("default") for name, opt in spec().items()}
    params.update(platform.params)
    params.update(given)
    return params


def run(platform, check_mode=False, diff=False, **given):
    """bullmq_queue's core (manage_queue) with `given` over the module's defaults."""
    return manage_queue(options(queue_spec, platform, **given), check_mode=check_mode, want_diff=diff)
