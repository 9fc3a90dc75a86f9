"""Reports drawn from a results dict alone: JSON, HTML, PDF, JUnit XML, Markdown.

Renderers read only ``results`` (the content of results.json): they never run a check nor
import the check registry, so ``auditkit report results.json`` re-draws any format.

:func:`write_reports` writes the chosen formats into one directory, each file atomically;
a format that cannot be written (WeasyPrint without Pango, a full disk) is reported in its
:class:`ReportOutcome` and the other formats are still written. The renderers are imported
only when needed, so importing this package stays cheap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

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


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def write_reports(results: dict[str, Any], out_dir: Path, formats: list[str]) -> dict[str, ReportOutcome]:
    """Write ``formats`` (a subset of :data:`FORMATS`) for ``results`` into ``out_dir``.

    Returns one :class:`ReportOutcome` per requested format, in the order of
    :data:`FORMATS` (results.json first: it is the source of truth), then any unknown
    names. Never raises for a single format's failure.
    """
    out_dir = Path(out_dir)
    wanted = list(dict.fromkeys(formats))
    ordered = [f for f in FORMATS if f in wanted] + [f for f in wanted if f not in FORMATS]
    outcomes: dict[str, ReportOutcome] = {}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"cannot create the output directory {out_dir}: {_one_line(exc)}"
        return {fmt: ReportOutcome(fmt, None, message, exc) for fmt in ordered}

    from auditkit.results.io import atomic_write_bytes, atomic_write_text, dumps

    html_text: str | None = None  # drawn once, shared by the HTML and PDF reports

    def html() -> str:
        nonlocal html_text
        if html_text is None:
            from auditkit.render.html import render_html

            html_text = render_html(results)
        return html_text

    for fmt in ordered:
        if fmt not in FILE_NAMES:
            outcomes[fmt] = ReportOutcome(
                fmt, None, f"unknown report format {fmt!r} (valid: {', '.join(FORMATS)})")
            continue
        path = out_dir / FILE_NAMES[fmt]
        try:
            if fmt == "json":
                atomic_write_text(path, dumps(results))
            elif fmt == "html":
                atomic_write_text(path, html())
            elif fmt == "pdf":
                from auditkit.render.pdf import _import_weasyprint, epoch_of, html_to_pdf

                _import_weasyprint()  # PdfUnavailable before the HTML is drawn for nothing
                atomic_write_bytes(path, html_to_pdf(html(), epoch=epoch_of(results)))
            elif fmt == "junit":
                from auditkit.render.junit import render_junit

                atomic_write_text(path, render_junit(results))
            else:
                from auditkit.render.md import render_markdown

                atomic_write_text(path, render_markdown(results))
        except Exception as exc:  # noqa: BLE001 - one format's failure must not stop the others
            from auditkit.render.pdf import PdfUnavailable

            if isinstance(exc, PdfUnavailable):
                message = _one_line(exc)
            else:
                message = f"cannot write {path.name}: {type(exc).__name__}: {_one_line(exc)}"
            outcomes[fmt] = ReportOutcome(fmt, None, message, exc)
        else:
            outcomes[fmt] = ReportOutcome(fmt, path)
    return outcomes
