"""The wheel carries every package, the templates and the results schema."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_directory_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "auditkit").rglob("__init__.py")}
    assert on_disk - listed == set(), "add these packages to [tool.setuptools] packages"
    assert "auditkit.templates" in listed


@pytest.mark.slow
def test_the_wheel_ships_templates_schema_and_every_check_module(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                               capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr[-2000:]
    (wheel,) = tmp_path.glob("auditkit-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "auditkit/templates/report.html.j2" in names
    assert "auditkit/templates/report.css" in names
    assert "auditkit/templates/sections/generic.html.j2" in names
    assert "auditkit/results/results-v1.schema.json" in names
    assert "auditkit/regulatory/obligations.yaml" in names  # the regulatory mapping's data (#14)
    from auditkit.core.registry import builtin_check_modules

    for module in builtin_check_modules():  # the registry finds the built-in checks by walking the package
        assert module.replace(".", "/") + ".py" in names, module
