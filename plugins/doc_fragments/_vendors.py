# -*- coding: utf-8 -*-
# Copyright (c) 2026 CERNIQ
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    # Instantly.ai API v2 connection options.
    INSTANTLY = r"""
options:
  instantly_base_url:
    description:
      - Base URL of the Instantly API (the C(/api/v2/...) paths are appended).
      - Plain C(http://) is refused unless O(allow_http=true) (the local fakes need it).
      - If not set, the E(CERNIQ_INSTANTLY_BASE_URL) environment variable is used.
    type: str
    default: https://api.instantly.ai
  instantly_api_key:
    description:
      - Instantly API v2 key (Bearer). Never printed, also not with C(-vvv).
      - If not set, the E(CERNIQ_INSTANTLY_API_KEY) environment variable is used.
    type: str
  allow_http:
    description:
      - Allow a plain C(http://) base URL. Only for local fakes and tests.
    type: bool
    default: false
  vendor_timeout:
    description:
      - Seconds to wait for one HTTP response from the vendor.
    type: float
    default: 15.0
requirements:
  - requests
"""

    # TimelinesAI public API connection options.
    TIMELINESAI = r"""
options:
  timelinesai_base_url:
    description:
      - Base URL of the TimelinesAI public API.
      - Plain C(http://) is refused unless O(allow_http=true) (the local fakes need it).
      - If not set, the E(CERNIQ_TIMELINESAI_BASE_URL) environment variable is used.
    type: str
    default: https://app.timelines.ai/integrations/api
  timelinesai_api_token:
    description:
      - TimelinesAI public API token (Bearer). Never printed, also not with C(-vvv).
      - If not set, the E(CERNIQ_TIMELINESAI_API_TOKEN) environment variable is used.
    type: str
  timelinesai_rate_limit:
    description:
      - Most requests per minute sent to TimelinesAI (its help center documents 50 per minute).
    type: int
    default: 50
  allow_http:
    description:
      - Allow a plain C(http://) base URL. Only for local fakes and tests.
    type: bool
    default: false
  vendor_timeout:
    description:
      - Seconds to wait for one HTTP response from the vendor.
    type: float
    default: 15.0
requirements:
  - requests
"""
