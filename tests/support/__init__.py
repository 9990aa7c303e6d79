"""Test and demo support: services, seed data, the local stack, playbook runner."""

import sys
from pathlib import Path

# The collection imports itself as ansible_collections.cerniq.outreach; `make` links the checkout there.
_COLLECTIONS = Path(__file__).resolve().parents[2] / ".collections"
if str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))
