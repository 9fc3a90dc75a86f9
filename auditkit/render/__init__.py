"""Reports drawn from a results dict alone: JSON, HTML, PDF, JUnit XML, Markdown.

Renderers read only ``results`` (the content of results.json): they never run a check nor
import the check registry, so ``auditkit report results.json`` re-draws any format.

:func:`write_reports` writes one run's chosen formats into a folder as one set (DESIGN.md:
"an output folder holds one run's complete set, never files of two runs"):

1. it takes an exclusive lock on the folder, so two runs writing into it commit one after
   the other;
2. it renders every format into a private staging directory inside the folder (same file
   system, so the final renames are atomic); a format that cannot be made (WeasyPrint
   without Pango, a full disk) is reported in its :class:`ReportOutcome` and the others go on;
3. it commits: auditkit's own report files of another run are removed (results.json first,
   so that no results.json stands beside a half-replaced set), then the staged files are
   renamed into place with results.json last: a reader who sees the new results.json sees
   the whole new set. Files that are not auditkit's report names are never touched.

The staging directory is removed whatever happens (success, failure, Ctrl-C). The renderers
are imported only when needed, so importing this package stays cheap.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Final, Iterator

FORMATS: Final = ("json", "html", "pdf", "junit", "md")
FILE_NAMES: Final = {
    "json": "results.json",
    "html": "report.html",
    "pdf": "report.pdf",
    "junit": "junit.xml",
    "md": "summary.md",
}

__all__ = ["FILE_NAMES", "FORMATS", "ReportOutcome", "write_reports"]


@dataclass(frozen=True)
class ReportOutcome:
    """What happened to one format: the file written, or one line saying why not."""

    format: str
    path: Path | None
    error: str | None = None
    # The exception behind ``error``, for a traceback under --debug; not part of equality.
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


#: Prefix of the staging directory made inside the output folder while a run writes.
STAGING_PREFIX: Final = ".auditkit-staging-"
#: Attempts at one commit step interrupted by a signal before the interruption is let through.
_COMMIT_ATTEMPTS: Final = 5


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _os_error(exc: OSError) -> str:
    """``[Errno 28] No space left on device``: without the path, which would name a staging file."""
    if exc.errno is not None and exc.strerror:
        return f"[Errno {exc.errno}] {exc.strerror}"
    return _one_line(exc)


def _not_written(name: str, exc: BaseException) -> str:
    from auditkit.render.pdf import PdfUnavailable

    if isinstance(exc, PdfUnavailable):
        return f"could not write {name}: {exc.reason}"
    if isinstance(exc, OSError):
        return f"could not write {name}: {_os_error(exc)}"
    return f"could not write {name}: {type(exc).__name__}: {_one_line(exc)}"


#: Called as a format is written: ``(file name, None, True)`` when it starts, then
#: ``(file name, seconds, staged)``: ``staged`` False when it failed (its outcome says why).
Progress = Callable[[str, "float | None", bool], None]


def write_reports(results: dict[str, Any], out_dir: Path, formats: list[str], *,
                  progress: Progress | None = None) -> dict[str, ReportOutcome]:
    """Write ``formats`` (a subset of :data:`FORMATS`) for ``results`` into ``out_dir`` as one set.

    Returns one :class:`ReportOutcome` per requested format, in the order of
    :data:`FORMATS` (results.json first: it is the source of truth), then any unknown
    names; a format that could not be written has ``path`` None and its file is absent.
    Never raises for a single format's failure. When auditkit's report files of another
    run had to be removed and one could not be, an outcome for that format says so.

    A format not requested is kept only when the folder's results.json is this very run's
    (``auditkit report results.json --format html`` beside its results.json keeps the
    run's PDF); otherwise it belongs to another run and is removed.

    ``progress`` hears of each format as it starts and ends (the terminal's "writing
    report.pdf …"); the charts are drawn once, with the first of HTML and PDF.
    """
    out_dir = Path(out_dir)
    wanted = list(dict.fromkeys(formats))
    ordered = [f for f in FORMATS if f in wanted] + [f for f in wanted if f not in FORMATS]
    outcomes: dict[str, ReportOutcome] = {}
    for fmt in ordered:
        if fmt not in FILE_NAMES:
            outcomes[fmt] = ReportOutcome(
                fmt, None, f"unknown report format {fmt!r} (valid: {', '.join(FORMATS)})")
    known = [f for f in ordered if f in FILE_NAMES]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        for fmt in known:
            message = f"could not write {FILE_NAMES[fmt]}: cannot create the output directory {out_dir}: {_os_error(exc)}"
            outcomes[fmt] = ReportOutcome(fmt, None, message, exc)
        return {fmt: outcomes[fmt] for fmt in ordered}

    with _folder_lock(out_dir) as lock_fd:
        if lock_fd is not None:  # unlocked, a staging directory may be a live writer's
            _remove_stale_staging(out_dir)
        # A format not requested stays only beside this very run's results.json.
        same_run = "json" not in known and _holds_this_run(out_dir, results)
        keep = {FILE_NAMES[f] for f in FORMATS if f not in known} if same_run else set()
        try:
            staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=STAGING_PREFIX))
        except OSError as exc:  # a full disk may refuse even the directory
            for fmt in known:
                outcomes[fmt] = ReportOutcome(fmt, None, _not_written(FILE_NAMES[fmt], exc), exc)
            _commit(out_dir, {}, keep, outcomes)
        else:
            try:
                _commit(out_dir, _stage(results, staging, known, outcomes, progress), keep, outcomes)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        if lock_fd is not None:
            _sync_directory(lock_fd)
    extra = [fmt for fmt in outcomes if fmt not in ordered]  # a stale file that could not be removed
    return {fmt: outcomes[fmt] for fmt in [*ordered, *extra]}


def _stage(results: dict[str, Any], staging: Path, known: list[str],
           outcomes: dict[str, ReportOutcome], progress: Progress | None = None) -> dict[str, Path]:
    """Render each format into ``staging``; returns the staged files by format, records failures."""
    import time

    from auditkit.results.io import dumps, write_synced

    # The charts are drawn once and shared by the HTML report and the page laid out as the PDF.
    figures: Any = None
    pages: dict[str, str] = {}

    def html(medium: str) -> str:
        nonlocal figures
        if medium not in pages:
            from auditkit.render.figures import Figures
            from auditkit.render.html import plots_of, render_html

            if figures is None:
                figures = Figures(plots_of(results))
            pages[medium] = render_html(results, medium=medium, figures=figures)
        return pages[medium]

    staged: dict[str, Path] = {}
    for fmt in known:
        path = staging / FILE_NAMES[fmt]
        started = time.perf_counter()
        if progress is not None:
            progress(FILE_NAMES[fmt], None, True)
        try:
            if fmt == "json":
                payload = dumps(results).encode("utf-8")
            elif fmt == "html":
                payload = html("screen").encode("utf-8")
            elif fmt == "pdf":
                from auditkit.render.pdf import _import_weasyprint, epoch_of, html_to_pdf

                _import_weasyprint()  # PdfUnavailable before the HTML is drawn for nothing
                payload = html_to_pdf(html("print"), epoch=epoch_of(results))
            elif fmt == "junit":
                from auditkit.render.junit import render_junit

                payload = render_junit(results).encode("utf-8")
            else:
                from auditkit.render.md import render_markdown

                payload = render_markdown(results).encode("utf-8")
            write_synced(path, payload)
        except Exception as exc:  # noqa: BLE001 - one format's failure must not stop the others
            outcomes[fmt] = ReportOutcome(fmt, None, _not_written(FILE_NAMES[fmt], exc), exc)
            path.unlink(missing_ok=True)  # a partial file's blocks back to a full disk, for the next format
        else:
            staged[fmt] = path
        if progress is not None:
            progress(FILE_NAMES[fmt], time.perf_counter() - started, fmt in staged)
    return staged


def _commit(out_dir: Path, staged: dict[str, Path], keep: set[str], outcomes: dict[str, ReportOutcome]) -> None:
    """Put the staged files in place and remove auditkit's report files of other runs.

    Order: the old results.json goes first and the new one comes last, so a results.json
    only ever stands beside its own complete set. Every step is idempotent and the commit
    runs to its end even when a signal (Ctrl-C, SIGTERM) arrives in the middle: a half-done
    commit is exactly the mixed folder this function exists to prevent.
    """
    json_name = FILE_NAMES["json"]
    by_name = {FILE_NAMES[fmt]: fmt for fmt in FORMATS}
    steps: list[Callable[[], None]] = []
    if json_name not in keep:
        steps.append(lambda: _remove(out_dir / json_name, by_name[json_name], outcomes))
    for name in FILE_NAMES.values():
        if name not in keep and name != json_name and by_name[name] not in staged:
            steps.append(lambda name=name: _remove(out_dir / name, by_name[name], outcomes))
    for fmt in sorted(staged, key=lambda f: f == "json"):  # results.json last
        steps.append(lambda fmt=fmt: _place(staged[fmt], out_dir / FILE_NAMES[fmt], fmt, outcomes))
    _run_to_the_end(steps)


def _run_to_the_end(steps: list[Callable[[], None]]) -> None:
    """Run every step; an interruption (KeyboardInterrupt or another non-Exception) is held
    back until the last step has run, then raised. A step interrupted is run again (steps
    are idempotent), at most :data:`_COMMIT_ATTEMPTS` times."""
    interruption: BaseException | None = None
    for step in steps:
        for attempt in range(_COMMIT_ATTEMPTS):
            try:
                step()
                break
            except Exception:
                raise
            except BaseException as exc:  # noqa: B036 - held back, raised below
                interruption = exc
                if attempt == _COMMIT_ATTEMPTS - 1:
                    raise
    if interruption is not None:
        raise interruption


def _remove(path: Path, fmt: str, outcomes: dict[str, ReportOutcome]) -> None:
    """Remove an auditkit report file of another run (a directory of that name is the user's: left)."""
    if path.is_dir() and not path.is_symlink():
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        message = f"could not remove {path.name} of another run: {_os_error(exc)}"
        outcomes.setdefault(fmt, ReportOutcome(fmt, None, message, exc))  # a format's own failure comes first


def _place(staged: Path, target: Path, fmt: str, outcomes: dict[str, ReportOutcome]) -> None:
    if staged.exists():  # else an interrupted attempt has already moved it
        try:
            os.replace(staged, target)
        except OSError as exc:
            outcomes[fmt] = ReportOutcome(fmt, None, _not_written(target.name, exc), exc)
            _remove(target, fmt, {})  # never an old file of another run standing in for it
            return
    outcomes[fmt] = ReportOutcome(fmt, target)


def _holds_this_run(out_dir: Path, results: dict[str, Any]) -> bool:
    """Whether ``out_dir/results.json`` is these results (by run id; by content for files without one)."""
    try:
        existing = json.loads((out_dir / FILE_NAMES["json"]).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(existing, dict):
        return False
    if results.get("run_id"):
        return bool(existing.get("run_id") == results["run_id"])
    return bool(existing == results)


def _remove_stale_staging(out_dir: Path) -> None:
    """Staging directories left by a run that was killed (SIGKILL, power loss) while writing.

    Called under the folder lock, which every writer holds while its staging directory
    exists: any staging directory found now belongs to a process that is gone.
    """
    for entry in out_dir.glob(f"{STAGING_PREFIX}*"):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def _folder_lock(directory: Path) -> Iterator[int | None]:
    """Hold an exclusive lock on ``directory`` itself (``flock`` on its descriptor).

    Locking the folder rather than a lock file inside it leaves nothing behind. Yields the
    descriptor (to fsync the renames), or None where no lock can be taken (no fcntl on
    Windows; a network file system without flock): writing then goes on unlocked, and only
    runs writing into one folder at the same instant can mix.
    """
    try:
        import fcntl
    except ImportError:
        yield None
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        yield None
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EBADF, errno.EINVAL):
                raise
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _sync_directory(fd: int) -> None:
    """Make the renames durable (a crash after the run still finds the new set)."""
    try:
        os.fsync(fd)
    except OSError:
        pass
