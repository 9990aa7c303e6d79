# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Mirrors vendor_argument_spec() in plugins/module_utils/_http.py: the options of the vendors group. Every
    # vendor module takes both vendors' options, because group/cerniq.outreach.vendors module defaults
    # (cerniq_vendor_defaults) hand all of them to each vendor module.
    DOCUMENTATION = r"""
options:
  instantly_base_url:
    description:
      - Base URL of the Instantly API v2 (the C(/api/v2/...) paths are appended).
      - Plain C(http://) is refused unless O(allow_http=true) (only the local fakes need it).
      - Usually set once for a play with C(group/cerniq.outreach.vendors) module defaults from the
        C(cerniq_instantly_base_url) inventory variable.
      - If not set, the E(CERNIQ_INSTANTLY_BASE_URL) environment variable is used.
    type: str
    default: https://api.instantly.ai
  instantly_api_key:
    description:
      - Instantly API v2 key, sent as a Bearer token. Never printed, also not with C(-vvv).
      - Needed by the Instantly modules only.
      - If not set, the E(CERNIQ_INSTANTLY_API_KEY) environment variable is used.
    type: str
  timelinesai_base_url:
    description:
      - Base URL of the TimelinesAI Public API (C(/whatsapp_accounts), C(/messages), ... are appended).
      - Plain C(http://) is refused unless O(allow_http=true).
      - If not set, the E(CERNIQ_TIMELINESAI_BASE_URL) environment variable is used.
    type: str
    default: https://app.timelines.ai/integrations/api
  timelinesai_api_token:
    description:
      - TimelinesAI Public API token, sent as a Bearer token. Never printed, also not with C(-vvv).
      - Needed by the TimelinesAI modules only.
      - If not set, the E(CERNIQ_TIMELINESAI_API_TOKEN) environment variable is used.
    type: str
  timelinesai_rate_limit:
    description:
      - Most requests per minute this module sends to TimelinesAI (its help center documents 50 per minute per
        workspace). Counted per module run; runs in parallel share the vendor's limit, not this one.
    type: int
    default: 50
  allow_http:
    description:
      - Allow plain C(http://) base URLs (and webhook receiver URLs). Only for local fakes and tests, since the token
        would travel unencrypted.
    type: bool
    default: false
  vendor_timeout:
    description:
      - Seconds to wait for one HTTP response from a vendor.
    type: float
    default: 15.0
  vendor_retries:
    description:
      - How many times a request is retried after a 429, a 5xx, a timeout or a refused connection, with
        urllib3's exponential backoff (the first retry at once, then 1 s, 2 s, 4 s, ... plus up to 0.5 s of
        jitter, at most 30 s) or the vendor's C(Retry-After). One request waits at most 120 s in all; a
        C(Retry-After) beyond that fails at once.
      - A message send that may have reached the vendor (a timeout, a 5xx) is never repeated; a 429 is, since
        the vendor did not act on it.
    type: int
    default: 4
requirements:
  - requests
"""
