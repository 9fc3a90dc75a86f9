"""Shared fixtures: the sample models, policy writing, the CLI runner, the seed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import json
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def samples() -> Path:
    """The sample models and data (built by sample_models/build.py when absent)."""
    if not (SAMPLES / "manifest.json").exists():
        subprocess.run([sys.executable, str(SAMPLES / "build.py")], check=True)
    return SAMPLES


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """One seed for randomised tests; printed so a failure can be replayed with AUDITKIT_TEST_SEED."""
    value = int(os.environ.get("AUDITKIT_TEST_SEED", "12345"))
    print(f"seed {value}: replay with AUDITKIT_TEST_SEED={value} pytest '{request.node.nodeid}'")
    return value


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


@pytest.fixture
def cli():
    """Invoke the CLI in-process: returns (exit code, stdout, stderr)."""
    from auditkit.cli import app

    def invoke(*args: str) -> Any:
        runner = CliRunner()
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke
