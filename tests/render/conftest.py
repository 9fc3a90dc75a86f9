"""Shared inputs of the renderer tests: the contract's example results and an empty audit."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import pytest

from auditkit.render.pdf import PdfUnavailable, _import_weasyprint
from auditkit.results.io import validate_results

EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "example_results.json"


@pytest.fixture
def weasyprint() -> Any:
    """The WeasyPrint module; the test is skipped where it (or Pango) cannot be loaded."""
    try:
        return _import_weasyprint()
    except PdfUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def example_results() -> dict[str, Any]:
    results = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    validate_results(results)
    return results


@pytest.fixture
def empty_results() -> dict[str, Any]:
    """A valid audit that ran no check (a policy with only skipped-out checks, --only none)."""
    results = {
        "schema_version": 1,
        "auditkit_version": "0.1.0",
        "policy_name": "Empty policy",
        "status": "pass",
        "exit_code": 0,
        "started_at": "2026-01-01T00:00:00+00:00",
        "duration_s": 0.1,
        "seed": 0,
        "inputs": {
            "model": {"path": None, "format": "predictions", "sha256": None},
            "data": {"path": "data.csv", "sha256": "0" * 64, "rows": 0, "columns": 0},
            "policy_sha256": "1" * 64,
            "environment": {"python": "3.11.7", "packages": {}},
        },
        "checks": [],
    }
    validate_results(results)
    return results


@pytest.fixture
def edit_check() -> Callable[..., dict[str, Any]]:
    """``edit_check(results, index, **changes)``: a valid copy with one check changed."""

    def edit(results: dict[str, Any], index: int = 0, **changes: Any) -> dict[str, Any]:
        out = copy.deepcopy(results)
        out["checks"][index].update(changes)
        validate_results(out)
        return out

    return edit
