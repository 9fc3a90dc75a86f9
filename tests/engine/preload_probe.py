"""Imported only by the test check in preload_checks.py (inside its function): whether the worker
had it imported before the check started tells whether the engine preloaded the plan's modules."""
