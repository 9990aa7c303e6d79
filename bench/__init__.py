"""Benchmarks of cerniq.outreach beside the runbook's own procedures (python -m bench)."""

import importlib

# tests.support puts the collection (ansible_collections.cerniq.outreach) on sys.path.
importlib.import_module("tests.support")
