"""Helpers for the engine tests."""
from __future__ import annotations

import sys
from pathlib import Path

ENGINE_TESTS = Path(__file__).resolve().parent


def register_faulty_checks() -> None:
    """Register the misbehaving test checks in this process (workers import them by name)."""
    if str(ENGINE_TESTS) not in sys.path:
        sys.path.insert(0, str(ENGINE_TESTS))
    import faulty_checks

    from auditkit.core.registry import get_registry

    registry = get_registry()
    if "test_raises" not in registry:
        registry.register_module(faulty_checks)
