"""render.pdf: the paginated PDF, its URL fetcher, and write_reports' failure isolation."""
from __future__ import annotations

import builtins
import json
import sys
import time
from pathlib import Path

import pytest

from auditkit.render import FILE_NAMES, FORMATS, ReportOutcome, write_reports
from auditkit.render.html import render_html
from auditkit.render.pdf import (
    PdfUnavailable,
    RefusedURL,
    data_only_url_fetcher,
    decode_data_url,
    html_to_pdf,
    render_document,
    render_pdf,
)


def spy_on(fetcher):
    """Record every URL WeasyPrint asks ``fetcher`` for, and what came of it."""
    calls: list[tuple[str, str]] = []

    def record(url, call):
        try:
            result = call()
        except Exception as exc:
            calls.append((url, type(exc).__name__))
            raise
        calls.append((url, "served"))
        return result

    if hasattr(fetcher, "fetch"):  # WeasyPrint >= 66: a URLFetcher instance
        original = fetcher.fetch
        fetcher.fetch = lambda url, headers=None: record(url, lambda: original(url, headers))
        return fetcher, calls
    return (lambda url, *a, **k: record(url, lambda: fetcher(url, *a, **k))), calls


# ---------------------------------------------------------------------------- URL fetcher


@pytest.mark.parametrize("url", [
    "file:///etc/passwd", "FILE:///etc/passwd", "http://example.com/x.png", "https://example.com/a.css",
    "ftp://example.com/x", "/etc/passwd", "passwd", "../secrets", "", "javascript:alert(1)",
])
def test_fetcher_refuses_everything_but_data_urls(weasyprint, url):
    fetcher = data_only_url_fetcher()
    with pytest.raises(RefusedURL):
        fetcher(url)


def test_fetcher_serves_data_urls(weasyprint):
    fetcher = data_only_url_fetcher()
    response = fetcher("data:text/plain;base64,aGVsbG8=")
    body = response.read() if hasattr(response, "read") else response["string"]
    assert body == b"hello"
    assert decode_data_url("data:image/svg+xml,%3Csvg%3E") == (b"<svg>", "image/svg+xml")
    assert decode_data_url("data:,x") == (b"x", "text/plain;charset=US-ASCII")


def test_pdf_never_reads_a_local_file_named_in_markup(weasyprint):
    # Markup that escaping would never let through, given to the PDF step directly.
    page = (
        '<html><head><link rel="stylesheet" href="file:///etc/passwd">'
        "<style>body { background: url(file:///etc/hostname) }</style></head>"
        '<body><p>x</p><img src="file:///etc/passwd"><img src="/etc/passwd">'
        '<img src="data:image/svg+xml,%3Csvg xmlns=%22http://www.w3.org/2000/svg%22 width=%221%22 height=%221%22/%3E">'
        "</body></html>"
    )
    fetcher, calls = spy_on(data_only_url_fetcher())
    pdf = html_to_pdf(page, url_fetcher=fetcher)
    assert pdf.startswith(b"%PDF")
    outcomes = dict(calls)
    assert outcomes["file:///etc/passwd"] == "RefusedURL"
    assert outcomes["file:///etc/hostname"] == "RefusedURL"
    assert all(result == "RefusedURL" for url, result in calls if not url.startswith("data:"))
    assert any(url.startswith("data:") and result == "served" for url, result in calls)


def test_a_crafted_note_is_escaped_and_fetches_nothing(weasyprint, example_results):
    example_results["checks"][1]["notes"].append('<img src="file:///etc/passwd"> <link href="http://evil/x.css">')
    page = render_html(example_results)
    assert "&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in page
    fetcher, calls = spy_on(data_only_url_fetcher())
    document = render_document(page, url_fetcher=fetcher)
    assert calls == []  # the report names no resource at all
    assert len(document.pages) >= 5


# ---------------------------------------------------------------------------- the report


def test_example_pdf_has_cover_summary_and_sections(weasyprint, example_results):
    page = render_html(example_results)
    document = render_document(page)
    pdf = document.write_pdf()
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    # Cover; contents, summary and glance; inputs with 4.1; 4.1 and 4.2; 4.2 to 4.4 with the
    # limitations; the limitations, reproducibility and sign-off (six pages since the margins
    # narrowed to 15-16 mm; seven before).
    assert 6 <= len(document.pages) <= 13
    assert document.metadata.title == "Credit model audit"  # the title once
    assert document.metadata.authors == ["Example Bank"]
    # Every check's anchor is on a page, in order, after the cover.
    anchors: dict[str, int] = {}  # where each element starts
    for number, pdf_page in enumerate(document.pages, 1):
        for name in pdf_page.anchors:
            anchors.setdefault(name, number)
    assert anchors["cover"] == 1
    assert 1 < anchors["glance"] < anchors["audited"] <= anchors["checks"] <= anchors["check-1"]
    assert anchors["check-1"] < anchors["check-2"] <= anchors["check-3"] <= anchors["check-4"] <= anchors["limitations"]
    assert anchors["limitations"] <= anchors["reproduce"] <= anchors["signoff"]


def test_render_pdf_is_deterministic(weasyprint, example_results):
    first = render_pdf(example_results)
    time.sleep(1.1)  # embedded fonts were stamped with the current second: two renders must straddle one
    assert render_pdf(example_results) == first


def test_zero_checks_pdf(weasyprint, empty_results):
    document = render_document(render_html(empty_results))
    assert document.write_pdf().startswith(b"%PDF")
    assert len(document.pages) >= 2


# ---------------------------------------------------------------------------- without Pango


def test_missing_weasyprint_raises_pdf_unavailable_with_one_line(monkeypatch, example_results):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import raises ImportError
    with pytest.raises(PdfUnavailable) as info:
        render_pdf(example_results)
    message = str(info.value)
    assert "\n" not in message
    assert "Pango" in message and "apt-get install libpango-1.0-0 libpangoft2-1.0-0" in message
    assert "brew install pango" in message


def test_missing_pango_library_raises_pdf_unavailable(monkeypatch, example_results):
    real_import = builtins.__import__

    def no_pango(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "weasyprint", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_pango)
    with pytest.raises(PdfUnavailable, match="libpango-1.0-0.*install Pango"):
        render_pdf(example_results)


# ---------------------------------------------------------------------------- write_reports


def test_write_reports_writes_every_format(weasyprint, example_results, tmp_path: Path):
    outcomes = write_reports(example_results, tmp_path / "out", list(FORMATS))
    assert list(outcomes) == list(FORMATS)
    for fmt, outcome in outcomes.items():
        assert outcome == ReportOutcome(fmt, tmp_path / "out" / FILE_NAMES[fmt]), outcome
        assert outcome.ok and outcome.path.stat().st_size > 0
    assert json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8")) == example_results
    assert (tmp_path / "out" / "report.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILE_NAMES.values())  # no temp files


def test_write_reports_goes_on_without_pdf(monkeypatch, example_results, tmp_path: Path):
    monkeypatch.setitem(sys.modules, "weasyprint", None)
    outcomes = write_reports(example_results, tmp_path, ["md", "pdf", "html", "json", "junit"])
    assert list(outcomes) == ["json", "html", "pdf", "junit", "md"]
    assert outcomes["pdf"].path is None
    assert outcomes["pdf"].error.startswith("could not write report.pdf: WeasyPrint could not be loaded")
    assert outcomes["pdf"].error.endswith("or leave pdf out of --format")  # the hint is kept
    assert "\n" not in outcomes["pdf"].error
    assert isinstance(outcomes["pdf"].exception, PdfUnavailable)
    assert not (tmp_path / "report.pdf").exists()
    for fmt in ("json", "html", "junit", "md"):
        assert outcomes[fmt].ok and outcomes[fmt].path.is_file(), fmt


def test_write_reports_reports_a_failing_format_and_an_unknown_one(example_results, tmp_path: Path):
    example_results["duration_s"] = float("nan")  # results.json refuses NaN; the others draw "—"
    outcomes = write_reports(example_results, tmp_path, ["json", "md", "docx"])
    assert outcomes["json"].error.startswith("could not write results.json: ValueError")
    assert not (tmp_path / "results.json").exists()
    assert outcomes["md"].ok
    assert outcomes["docx"] == ReportOutcome("docx", None, "unknown report format 'docx' (valid: json, html, pdf, junit, md)")


def test_write_reports_cannot_create_the_directory(example_results, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    outcomes = write_reports(example_results, blocker / "out", ["json", "md"])
    assert outcomes["json"].error.startswith("could not write results.json: cannot create the output directory")
    assert outcomes["md"].error.startswith("could not write summary.md: cannot create the output directory")
    assert outcomes["md"].error.endswith("[Errno 20] Not a directory")
