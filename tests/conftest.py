"""Shared fixtures: the sample models, policy writing, the CLI runner, the seed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from support import ROOT, SAMPLES, SHARED, credit_policy, write_policy  # noqa: F401 - re-exported


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


@pytest.fixture
def cli():
    """Invoke the CLI in-process: returns (exit code, stdout, stderr)."""
    from auditkit.cli import app

    def invoke(*args: str) -> Any:
        runner = CliRunner()
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)

    return invoke
