"""`auditkit run` and `auditkit report` leave one run's complete set, and say so when they cannot (#13 items 3, 4).

Item 3: re-running into an old folder with fewer formats left the old run's reports beside the
new results.json; two runs 0.5 s apart into one folder left a mix. Item 4: on a full disk every
format failed and the run said "audit status: PASS", exit 0.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import auditkit.results.io as results_io
from support import REPORT_NAMES, credit_policy, run_ids_in, write_policy

ENOSPC = "[Errno 28] No space left on device"
ALL = "json,html,pdf,junit,md"
NO_PDF = "json,html,junit,md"


def quick_policy(samples: Path, out_dir: Path, *, failing: bool = False) -> dict[str, Any]:
    """The small sample policy with one quick check (and a threshold it fails, when asked)."""
    check: dict[str, Any] = {"id": "integrity", "type": "data_integrity",
                             "thresholds": {"rows": {"min": 10**9 if failing else 1}}}
    return credit_policy(samples, out_dir, checks=[check])


def run_into(cli: Any, tmp_path: Path, samples: Path, out_dir: Path, formats: str, **kwargs: Any) -> Any:
    policy = write_policy(tmp_path, quick_policy(samples, out_dir, **kwargs))
    return cli("run", policy, "--out", out_dir, "--format", formats, "--executor", "inline")


def full_disk(*names: str) -> Any:
    """The low-level write failing with ENOSPC for ``names`` (every file when none)."""
    real = results_io.write_synced

    def write(path: Path, payload: bytes) -> None:
        if not names or Path(path).name in names:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, payload)

    return write


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


# ---------------------------------------------------------------------------- item 3


def test_rerun_with_format_json_leaves_only_its_results_json(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "my-notes.txt").write_text("kept")
    first = run_into(cli, tmp_path, samples, out_dir, NO_PDF)
    assert first.exit_code == 0, first.stderr
    old_id = run_ids_in(out_dir)["results.json"]
    assert set(run_ids_in(out_dir).values()) == {old_id}
    second = run_into(cli, tmp_path, samples, out_dir, "json", failing=True)
    assert second.exit_code == 1, second.stderr
    assert listing(out_dir) == ["my-notes.txt", "results.json"]
    new_id = run_ids_in(out_dir)["results.json"]
    assert new_id is not None and new_id != old_id
    assert (out_dir / "my-notes.txt").read_text() == "kept"
    assert f"reports: {out_dir}/ (results.json)" in second.stdout


def test_report_re_renders_with_the_run_id_of_its_results_json(cli, samples, tmp_path):
    out_dir = tmp_path / "out"
    assert run_into(cli, tmp_path, samples, out_dir, "json").exit_code == 0
    run_id = run_ids_in(out_dir)["results.json"]
    result = cli("report", out_dir / "results.json", "--format", "html,junit,md")
    assert result.exit_code == 0, result.stderr
    assert run_ids_in(out_dir) == {"results.json": run_id, "report.html": run_id, "junit.xml": run_id,
                                   "summary.md": run_id}


@pytest.mark.slow
def test_two_concurrent_runs_leave_one_runs_complete_set(samples, tmp_path):
    """Two real `auditkit run` processes started 0.5 s apart into one folder, every format."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("user file")
    policy = write_policy(tmp_path, quick_policy(samples, out_dir))
    command = [str(Path(sys.executable).parent / "auditkit"), "run", str(policy), "--format", ALL,
               "--workers", "1"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    second = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for process in (first, second):
        stdout, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stdout + stderr
    ids = run_ids_in(out_dir)
    assert sorted(ids) == sorted(REPORT_NAMES)
    assert len(set(ids.values())) == 1 and None not in ids.values(), ids
    assert listing(out_dir) == sorted([*REPORT_NAMES, "keep.txt"])  # no staging directory, no temporary file


# ---------------------------------------------------------------------------- item 4


def test_a_full_disk_makes_a_passing_run_exit_3_naming_every_file(cli, samples, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    assert run_into(cli, tmp_path, samples, out_dir, NO_PDF).exit_code == 0
    monkeypatch.setattr(results_io, "write_synced", full_disk())
    result = run_into(cli, tmp_path, samples, out_dir, NO_PDF)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert error_lines(result.stderr) == [
        f"error: could not write results.json: {ENOSPC}",
        f"error: could not write report.html: {ENOSPC}",
        f"error: could not write junit.xml: {ENOSPC}",
        f"error: could not write summary.md: {ENOSPC}",
    ]
    assert "audit status: PASS  (1 pass; exit code 3)" in result.stdout
    assert f"reports: {out_dir}/ (none written)" in result.stdout
    assert listing(out_dir) == []  # the earlier run's reports do not stand in


def test_a_full_disk_for_one_format_exits_3_and_commits_the_others(cli, samples, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    assert run_into(cli, tmp_path, samples, out_dir, NO_PDF).exit_code == 0
    monkeypatch.setattr(results_io, "write_synced", full_disk("junit.xml"))
    result = run_into(cli, tmp_path, samples, out_dir, NO_PDF)
    assert result.exit_code == 3, result.stdout + result.stderr
    assert error_lines(result.stderr) == [f"error: could not write junit.xml: {ENOSPC}"]
    ids = run_ids_in(out_dir)
    assert sorted(ids) == ["report.html", "results.json", "summary.md"]
    assert len(set(ids.values())) == 1


def test_a_full_disk_keeps_exit_1_when_a_check_failed(cli, samples, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    monkeypatch.setattr(results_io, "write_synced", full_disk())
    result = run_into(cli, tmp_path, samples, out_dir, "json,md", failing=True)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert error_lines(result.stderr) == [f"error: could not write results.json: {ENOSPC}",
                                          f"error: could not write summary.md: {ENOSPC}"]
    assert "audit status: FAIL" in result.stdout
    assert listing(out_dir) == []


def test_a_missing_pdf_renderer_makes_a_passing_run_exit_3(cli, samples, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import raises ImportError
    out_dir = tmp_path / "out"
    result = run_into(cli, tmp_path, samples, out_dir, "json,pdf")
    assert result.exit_code == 3, result.stdout + result.stderr
    [line] = error_lines(result.stderr)
    assert line.startswith("error: could not write report.pdf: WeasyPrint could not be loaded")
    assert "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in line and "or leave pdf out of --format" in line
    assert listing(out_dir) == ["results.json"]


def test_report_on_a_full_disk_exits_3_naming_the_file(cli, samples, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    assert run_into(cli, tmp_path, samples, out_dir, "json").exit_code == 0
    monkeypatch.setattr(results_io, "write_synced", full_disk("summary.md"))
    result = cli("report", out_dir / "results.json", "--format", "html,md")
    assert result.exit_code == 3, result.stdout + result.stderr
    assert error_lines(result.stderr) == [f"error: could not write summary.md: {ENOSPC}"]
    assert f"wrote {out_dir / 'report.html'}" in result.stdout
    assert listing(out_dir) == ["report.html", "results.json"]
