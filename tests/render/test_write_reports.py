"""write_reports: an output folder holds one run's complete set, never files of two runs (#13 items 3, 4).

DESIGN.md, engineering rules: "Outputs are written atomically per run, not only per file: an
output folder holds one run's complete set (every file carries the run id of its
results.json), never files of two runs."
"""
from __future__ import annotations

import copy
import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import auditkit.results.io as results_io
from auditkit.render import FILE_NAMES, FORMATS, STAGING_PREFIX, _folder_lock, write_reports
from support import REPORT_NAMES, run_ids_in

RUN_A = "20260101T000000Z-aaaaaaaaaaaa"
RUN_B = "20260101T000001Z-bbbbbbbbbbbb"
NO_PDF = ["json", "html", "junit", "md"]  # every format but the slow one, where the PDF is not the point
ENOSPC = "[Errno 28] No space left on device"


def of_run(results: dict[str, Any], run_id: str, status: str = "pass") -> dict[str, Any]:
    out = copy.deepcopy(results)
    out["run_id"] = run_id
    out["status"] = status
    return out


def listing(folder: Path) -> list[str]:
    """Every entry of ``folder``, hidden ones included (a staging directory or temporary file shows)."""
    return sorted(p.name for p in folder.iterdir())


def full_disk(*names: str) -> Any:
    """A stand-in for the low-level write that fails with ENOSPC for ``names`` (every file when none)."""
    real = results_io.write_synced

    def write(path: Path, payload: bytes) -> None:
        if not names or Path(path).name in names:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, payload)

    return write


# ---------------------------------------------------------------------------- the run id


def test_every_report_carries_the_run_id_of_its_results_json(weasyprint, example_results, tmp_path):
    outcomes = write_reports(of_run(example_results, RUN_A), tmp_path, list(FORMATS))
    assert all(o.ok for o in outcomes.values()), outcomes
    assert run_ids_in(tmp_path) == {name: RUN_A for name in REPORT_NAMES}
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    # Visible, not only in the <head>: in the reproduce table and in the footer.
    assert f'<tr><th scope="row">Run id</th><td class="mono">{RUN_A}</td></tr>' in html
    assert f'Run id <span class="mono run-id">{RUN_A}</span>' in html
    assert (tmp_path / "summary.md").read_text(encoding="utf-8").endswith(f"Run id: {RUN_A}\n")


def test_results_without_a_run_id_render_without_one(example_results, tmp_path):
    assert "run_id" not in example_results  # written before run ids existed
    outcomes = write_reports(example_results, tmp_path, NO_PDF)
    assert all(o.ok for o in outcomes.values()), outcomes
    assert run_ids_in(tmp_path) == {"results.json": None, "report.html": None, "junit.xml": None, "summary.md": None}


# ---------------------------------------------------------------------------- one run's set


def test_a_run_writing_fewer_formats_removes_the_reports_of_the_earlier_run(weasyprint, example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, list(FORMATS))
    outcomes = write_reports(of_run(example_results, RUN_B, status="fail"), tmp_path, ["json"])
    assert outcomes["json"].ok
    assert listing(tmp_path) == ["results.json"]
    assert run_ids_in(tmp_path) == {"results.json": RUN_B}


def test_only_auditkit_report_names_are_ever_removed(example_results, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "report.html.bak").write_text("mine too")
    (tmp_path / ".hidden").write_text("also mine")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "results.json").write_text("{}")
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    write_reports(of_run(example_results, RUN_B), tmp_path, ["json"])
    assert listing(tmp_path) == [".hidden", "figures", "notes.txt", "report.html.bak", "results.json"]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "report.html.bak").read_text() == "mine too"
    assert (tmp_path / "figures" / "results.json").read_text() == "{}"


def test_a_directory_named_like_a_report_is_left_and_reported(example_results, tmp_path):
    (tmp_path / "summary.md").mkdir()
    (tmp_path / "summary.md" / "keep.txt").write_text("mine")
    outcomes = write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    assert outcomes["md"].error == "could not write summary.md: [Errno 21] Is a directory"
    assert (tmp_path / "summary.md" / "keep.txt").read_text() == "mine"
    assert [o.format for o in outcomes.values() if o.ok] == ["json", "html", "junit"]
    assert listing(tmp_path) == ["junit.xml", "report.html", "results.json", "summary.md"]


def test_re_rendering_beside_its_results_json_keeps_the_runs_other_reports(example_results, tmp_path):
    results = of_run(example_results, RUN_A)
    write_reports(results, tmp_path, NO_PDF)
    before = (tmp_path / "junit.xml").read_bytes()
    outcomes = write_reports(results, tmp_path, ["html"])  # auditkit report results.json --format html
    assert list(outcomes) == ["html"] and outcomes["html"].ok
    assert run_ids_in(tmp_path) == {"results.json": RUN_A, "report.html": RUN_A, "junit.xml": RUN_A,
                                    "summary.md": RUN_A}
    assert (tmp_path / "junit.xml").read_bytes() == before


def test_re_rendering_another_run_into_a_folder_removes_that_folders_reports(example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    write_reports(of_run(example_results, RUN_B), tmp_path, ["html", "md"])
    assert run_ids_in(tmp_path) == {"report.html": RUN_B, "summary.md": RUN_B}


def test_results_without_a_run_id_are_matched_by_content(example_results, tmp_path):
    write_reports(example_results, tmp_path, NO_PDF)
    write_reports(example_results, tmp_path, ["md"])
    assert listing(tmp_path) == ["junit.xml", "report.html", "results.json", "summary.md"]
    other = copy.deepcopy(example_results)
    other["seed"] = example_results["seed"] + 1
    write_reports(other, tmp_path, ["md"])
    assert listing(tmp_path) == ["summary.md"]


# ---------------------------------------------------------------------------- nothing left behind


def test_no_staging_directory_or_temporary_file_is_left(example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    assert listing(tmp_path) == ["junit.xml", "report.html", "results.json", "summary.md"]
    broken = of_run(example_results, RUN_B)
    broken["duration_s"] = float("nan")  # results.json refuses NaN: one format fails while staging
    outcomes = write_reports(broken, tmp_path, NO_PDF)
    assert outcomes["json"].error.startswith("could not write results.json: ValueError")
    written = sorted(o.path.name for o in outcomes.values() if o.ok)
    assert "junit.xml" in written and "summary.md" in written
    assert listing(tmp_path) == written  # no staging directory, no temporary file


def test_a_staging_directory_left_by_a_killed_run_is_removed(example_results, tmp_path):
    stale = tmp_path / f"{STAGING_PREFIX}killed"
    stale.mkdir()
    (stale / "report.html").write_text("half")
    write_reports(of_run(example_results, RUN_A), tmp_path, ["json"])
    assert listing(tmp_path) == ["results.json"]


def test_ctrl_c_while_rendering_leaves_the_earlier_run_whole_and_no_staging(monkeypatch, example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)

    def interrupted(results: dict[str, Any]) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("auditkit.render.junit.render_junit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_reports(of_run(example_results, RUN_B), tmp_path, NO_PDF)
    assert listing(tmp_path) == ["junit.xml", "report.html", "results.json", "summary.md"]
    assert set(run_ids_in(tmp_path).values()) == {RUN_A}


@pytest.mark.parametrize("when", ["before the rename", "after the rename"])
def test_ctrl_c_during_the_commit_finishes_the_commit_first(monkeypatch, example_results, tmp_path, when):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    real_replace = os.replace
    calls = []

    def replace(src: Any, dst: Any) -> None:
        calls.append(Path(dst).name)
        if len(calls) == 2:  # in the middle of the set
            if when == "after the rename":
                real_replace(src, dst)
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        write_reports(of_run(example_results, RUN_B), tmp_path, NO_PDF)
    monkeypatch.undo()
    assert calls[-1] == "results.json"
    assert listing(tmp_path) == ["junit.xml", "report.html", "results.json", "summary.md"]
    assert set(run_ids_in(tmp_path).values()) == {RUN_B}


# ---------------------------------------------------------------------------- a full disk (#13 item 4)


def test_a_full_disk_leaves_no_report_and_names_each_file(monkeypatch, example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    monkeypatch.setattr(results_io, "write_synced", full_disk())
    outcomes = write_reports(of_run(example_results, RUN_B), tmp_path, NO_PDF)
    assert {fmt: o.error for fmt, o in outcomes.items()} == {
        fmt: f"could not write {FILE_NAMES[fmt]}: {ENOSPC}" for fmt in NO_PDF}
    assert all(o.path is None for o in outcomes.values())
    assert listing(tmp_path) == []  # run A's reports do not stand in for run B's


def test_a_full_disk_for_one_format_commits_the_others(monkeypatch, example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    monkeypatch.setattr(results_io, "write_synced", full_disk("report.html"))
    outcomes = write_reports(of_run(example_results, RUN_B), tmp_path, NO_PDF)
    assert outcomes["html"].error == f"could not write report.html: {ENOSPC}"
    assert [fmt for fmt, o in outcomes.items() if o.ok] == ["json", "junit", "md"]
    assert run_ids_in(tmp_path) == {"results.json": RUN_B, "junit.xml": RUN_B, "summary.md": RUN_B}


def test_a_full_disk_that_refuses_the_staging_directory(monkeypatch, example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)

    def no_space(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("auditkit.render.tempfile.mkdtemp", no_space)
    outcomes = write_reports(of_run(example_results, RUN_B), tmp_path, ["json", "md"])
    assert [o.error for o in outcomes.values()] == [f"could not write results.json: {ENOSPC}",
                                                    f"could not write summary.md: {ENOSPC}"]
    assert listing(tmp_path) == []


# ---------------------------------------------------------------------------- two writers


def test_a_writer_waits_for_the_folder_lock_of_another(example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, ["json"])
    done = threading.Event()

    def other_run() -> None:
        write_reports(of_run(example_results, RUN_B), tmp_path, NO_PDF)
        done.set()

    with _folder_lock(tmp_path) as fd:
        assert fd is not None  # flock is available here (Linux, macOS)
        worker = threading.Thread(target=other_run)
        worker.start()
        time.sleep(0.5)  # long enough for an unlocked writer to finish several times over
        assert not done.is_set()
        assert run_ids_in(tmp_path) == {"results.json": RUN_A}
    worker.join(timeout=30)
    assert done.is_set()
    assert set(run_ids_in(tmp_path).values()) == {RUN_B}
    assert listing(tmp_path) == ["junit.xml", "report.html", "results.json", "summary.md"]


def test_a_directory_named_like_a_report_not_requested_is_left_alone(example_results, tmp_path):
    (tmp_path / "report.pdf").mkdir()
    outcomes = write_reports(of_run(example_results, RUN_A), tmp_path, ["json"])
    assert list(outcomes) == ["json"] and outcomes["json"].ok
    assert listing(tmp_path) == ["report.pdf", "results.json"]


def test_a_stale_report_that_cannot_be_removed_is_reported(monkeypatch, example_results, tmp_path):
    write_reports(of_run(example_results, RUN_A), tmp_path, NO_PDF)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self.name == "junit.xml":
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    outcomes = write_reports(of_run(example_results, RUN_B), tmp_path, ["json"])
    assert outcomes["json"].ok
    assert outcomes["junit"].error == "could not remove junit.xml of another run: [Errno 13] Permission denied"
    assert list(outcomes) == ["json", "junit"]
