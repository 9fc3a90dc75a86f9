"""Helpers shared by the tests (import as `from support import ...`; conftest.py names clash)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
SHARED = ROOT.parent / "shared"

def write_policy(directory: Path, policy: dict[str, Any] | str, name: str = "policy.yaml") -> Path:
    """Write a policy (a dict is dumped as YAML) and return its path."""
    path = directory / name
    # JSON is YAML: a dict needs no YAML writer
    path.write_text(policy if isinstance(policy, str) else json.dumps(policy, indent=2))
    return path


def credit_policy(samples: Path, out_dir: Path, **overrides: Any) -> dict[str, Any]:
    """A small valid policy on the sample GBM (ONNX), with absolute paths."""
    policy: dict[str, Any] = {
        "version": 1,
        "name": "test audit",
        "seed": 3,
        "model": {"path": str(samples / "credit_gbm.onnx"), "task": "binary", "positive_class": 1, "threshold": 0.5},
        "data": {"path": str(samples / "credit_test.csv"), "target": "defaulted",
                 "protected": ["sex", "race", "age_band"], "ignore": ["applicant_id", "interest_rate"],
                 "favorable_label": 0, "sample": 3000},
        "checks": [
            {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc", "accuracy"], "bootstrap": 100},
             "thresholds": {"roc_auc": {"min": 0.7}}},
            {"id": "integrity", "type": "data_integrity"},
        ],
        "report": {"formats": ["json"], "output_dir": str(out_dir)},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(policy.get(key), dict):
            policy[key] = {**policy[key], **value}
        else:
            policy[key] = value
    return policy


def hiring_predictions_policy(samples: Path, out_dir: Path, checks: list[dict[str, Any]]) -> dict[str, Any]:
    """A policy in predictions mode: the vendor's recorded scores and decisions, no model."""
    return {
        "version": 1, "name": "vendor decisions",
        "model": {"format": "predictions", "score_column": "assessment_score", "prediction_column": "advanced"},
        "data": {"path": str(samples / "hiring_decisions.csv"), "target": "performed_well",
                 "protected": ["sex", "race", "age_band"], "ignore": ["candidate_id"], "favorable_label": 1},
        "checks": checks,
        "report": {"formats": ["json"], "output_dir": str(out_dir)},
    }


REPORT_NAMES = ("results.json", "report.html", "report.pdf", "junit.xml", "summary.md")


def run_id_of(path: Path) -> str | None:
    """The run id a report file carries, read the way a person or a CI job would find it.

    results.json: its ``run_id``; report.html: ``<meta name="auditkit-run-id">``; junit.xml:
    the testsuite's ``auditkit.run_id`` property; summary.md: its last line; report.pdf:
    the ``/auditkitrunid`` entry of its document information (in a compressed object stream).
    """
    import re
    import xml.etree.ElementTree as ET
    import zlib

    name = path.name
    if name == "results.json":
        return json.loads(path.read_text(encoding="utf-8")).get("run_id")
    if name == "report.html":
        found = re.findall(r'<meta name="auditkit-run-id" content="([^"]*)">', path.read_text(encoding="utf-8"))
        return found[0] if found else None
    if name == "junit.xml":
        prop = ET.parse(path).getroot().find("testsuite/properties/property[@name='auditkit.run_id']")
        return None if prop is None else prop.get("value")
    if name == "summary.md":
        last = path.read_text(encoding="utf-8").rstrip("\n").splitlines()[-1]
        return last.removeprefix("Run id: ") if last.startswith("Run id: ") else None
    if name == "report.pdf":
        data = path.read_bytes()
        chunks = [data]
        for match in re.finditer(rb"stream\r?\n", data):
            try:
                chunks.append(zlib.decompressobj().decompress(data[match.end():]))
            except zlib.error:
                continue
        for chunk in chunks:
            found = re.search(rb"/auditkitrunid \(([^)]*)\)", chunk)
            if found:
                return found.group(1).decode("ascii")
        return None
    raise ValueError(f"not an auditkit report file: {path}")


def run_ids_in(folder: Path) -> dict[str, str | None]:
    """The run id of each auditkit report file present in ``folder``."""
    return {name: run_id_of(folder / name) for name in REPORT_NAMES if (folder / name).exists()}


def float32_ties(final: Any, Xt: Any) -> Any:
    """Rows with a value between a split's float64 threshold and its float32 rounding, where
    shap's interventional code (thresholds held as C floats) takes the other branch than the
    model: shap is no reference on them, nor with them in the background."""
    import numpy as np
    import shap

    tie = np.zeros(len(Xt), dtype=bool)
    for tree in shap.TreeExplainer(final).model.trees:
        for k in np.flatnonzero(tree.children_left >= 0):
            t = float(tree.thresholds[k])
            low, high = sorted((t, float(np.float32(t))))
            x = Xt[:, tree.features[k]]
            tie |= (x >= low) & (x <= high) & (low != high)
    return tie
