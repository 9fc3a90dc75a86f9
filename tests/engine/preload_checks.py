"""A test-only check type that reports whether the module it imports lazily was already imported
in its worker when it started (registered by tests/engine/test_preload.py)."""
from __future__ import annotations

import sys

from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric


class NoParams(CheckParams):
    pass


@check("test_sees_preload", family="data", params=NoParams, metrics=["preloaded"])
def sees_preload(ctx, params: NoParams) -> CheckOutput:
    """1 if the module this function imports was imported before the check started, else 0."""
    preloaded = "preload_probe" in sys.modules
    import preload_probe  # noqa: F401 - the lazy import a preload takes out of the check's time

    return CheckOutput(metrics={"preloaded": Metric(float(preloaded))})
