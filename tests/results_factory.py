"""Small results.json documents for the compare tests (valid against the shipped schema)."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any


def metric(value: float | None, ci: tuple[float, float] | None = None, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"value": value}
    if ci is not None:
        out.update(ci=list(ci), level=0.95)
    out.update(extra)
    return out


def finding(name: str, value: float | None, status: str, **bounds: Any) -> dict[str, Any]:
    return {"metric": name, "value": value, "status": status, "severity": "fail", **bounds}


def check(check_id: str, check_type: str, metrics: dict[str, Any], findings: list[dict[str, Any]] | None = None,
          status: str = "pass") -> dict[str, Any]:
    return {"id": check_id, "type": check_type, "status": status, "duration_s": 0.1, "metrics": metrics,
            "findings": findings or [], "tables": {}, "plots": [], "notes": [], "error": None}


def results(checks: list[dict[str, Any]], *, model_sha: str = "a" * 64, data_sha: str = "d" * 64,
            policy_sha: str = "p" * 64, seed: int = 1, packages: dict[str, str] | None = None) -> dict[str, Any]:
    statuses = [c["status"] for c in checks]
    overall = next((s for s in ("fail", "error", "warn") if s in statuses), "pass")
    return {
        "schema_version": 1, "auditkit_version": "0.1.0", "policy_name": "unit", "status": overall,
        "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 1.0, "seed": seed, "fail_on": "fail",
        "inputs": {"model": {"path": "m.onnx", "format": "onnx", "sha256": model_sha},
                   "data": {"path": "d.csv", "sha256": data_sha, "rows": 100, "columns": 3, "rows_used": 100},
                   "policy_sha256": policy_sha, "policy_path": "policy.yaml",
                   "environment": {"python": "3.11.7", "packages": packages or {"numpy": "2.0.0"}}},
        "checks": copy.deepcopy(checks),
    }


def write(directory: Path, name: str, document: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(json.dumps(document))
    return path
