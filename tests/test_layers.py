"""The package's layers (pyproject.toml [tool.importlinter]): no package imports one above it,
so there is no cycle between packages (issue #17)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_no_package_imports_a_layer_above_its_own():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("import-linter is a dev dependency: pip install -e '.[dev]'")
    completed = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                               text=True)
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]
    assert "1 kept, 0 broken" in completed.stdout
