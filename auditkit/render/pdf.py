"""The report as a paginated PDF: WeasyPrint's rendering of the HTML report.

The markup of report.html drawn for print (``render_html(..., medium="print")``: the charts
as ``data:`` images, long tables cut to their first rows); the print rules of
``templates/report.css`` make the pages (A4, a cover, "Page x of y", the title in the header
of later pages).

WeasyPrint fetches every URL a page names (images, stylesheets, SVG ``href``), local files
included, with its default fetcher. The report needs none: everything is inline. So it is
given :func:`data_only_url_fetcher`, which serves ``data:`` URLs and refuses anything else;
a crafted label that survived escaping still could not read ``file:///etc/passwd``.
"""
from __future__ import annotations

import base64
import binascii
import os
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Callable, Final, Iterator
from urllib.parse import unquote_to_bytes

PANGO_HINT: Final = (
    "install Pango (Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0; "
    "macOS: brew install pango) or leave pdf out of --format"
)


#: The PDF standard the report is written to (WeasyPrint's ``pdf_variant``).
PDF_VARIANT: Final = "pdf/a-3b"

#: The HTML report's ``<meta name=...>`` that names its run; copied into the PDF's document information.
RUN_ID_META: Final = "auditkit-run-id"


class PdfUnavailable(Exception):
    """WeasyPrint or the Pango library it needs cannot be loaded: no PDF, other formats go on.

    ``reason`` is the message without its "cannot write the PDF report" opening, for callers
    that name the file themselves.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"cannot write the PDF report: {reason}")
        self.reason = reason


class RefusedURL(ValueError):
    """The PDF renderer was asked for a URL that is not an embedded ``data:`` asset."""


def _import_weasyprint() -> Any:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:
        # OSError: WeasyPrint is installed but cffi cannot dlopen libpango / libgobject.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PdfUnavailable(f"WeasyPrint could not be loaded ({reason}); {PANGO_HINT}") from exc
    return weasyprint


def decode_data_url(url: str) -> tuple[bytes, str]:
    """Body and media type of a ``data:`` URL (RFC 2397); :class:`RefusedURL` for any other."""
    if not isinstance(url, str) or url[:5].lower() != "data:":
        raise RefusedURL(f"the PDF report reads only embedded data: URLs, not {str(url)[:80]!r}")
    header, comma, payload = url[5:].partition(",")
    if not comma:
        raise RefusedURL("malformed data: URL (no comma)")
    is_base64 = header.lower().endswith(";base64")
    media_type = (header[: -len(";base64")] if is_base64 else header).strip() or "text/plain;charset=US-ASCII"
    body = unquote_to_bytes(payload)
    if is_base64:
        try:
            body = base64.b64decode(body)
        except binascii.Error as exc:
            raise RefusedURL(f"malformed base64 in a data: URL ({exc})") from None
    return body, media_type


def data_only_url_fetcher() -> Callable[[str], Any]:
    """A WeasyPrint URL fetcher that serves ``data:`` URLs and raises :class:`RefusedURL` otherwise.

    The returned object is callable with one URL, as WeasyPrint calls it. WeasyPrint logs a
    refused resource and renders the page without it.
    """
    weasyprint = _import_weasyprint()
    urls = getattr(weasyprint, "urls", None)
    base = getattr(urls, "URLFetcher", None)
    if base is None:
        # WeasyPrint < 66: a fetcher is a function returning a dict.
        def legacy_fetcher(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
            body, media_type = decode_data_url(url)
            mime, _, params = media_type.partition(";")
            charset = None
            for param in params.split(";"):
                key, _, value = param.partition("=")
                if key.strip().lower() == "charset":
                    charset = value.strip()
            return {"string": body, "mime_type": mime.strip(), "encoding": charset, "redirected_url": url}

        return legacy_fetcher

    response_type = urls.URLFetcherResponse

    class DataOnlyURLFetcher(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            try:  # belt and braces: fetch() below never reaches urllib anyway
                super().__init__(allowed_protocols=("data",), allow_redirects=False)
            except TypeError:  # a WeasyPrint whose URLFetcher takes neither option
                super().__init__()

        def fetch(self, url: str, headers: Any = None) -> Any:
            body, media_type = decode_data_url(url)
            return response_type(url, body=body, headers={"Content-Type": media_type})

    return DataOnlyURLFetcher()


def render_document(html: str, *, url_fetcher: Callable[[str], Any] | None = None) -> Any:
    """Lay report HTML out as a WeasyPrint ``Document`` (its ``pages``, ``write_pdf()``)."""
    weasyprint = _import_weasyprint()
    fetcher = url_fetcher if url_fetcher is not None else data_only_url_fetcher()
    # base_url None: a relative URL resolves to nothing, and the fetcher refuses it anyway.
    return weasyprint.HTML(string=html, base_url=None, url_fetcher=fetcher).render()


@contextmanager
def _fixed_font_timestamps(epoch: int) -> Iterator[None]:
    """Embedded font subsets carry a 'modified' time (fontTools stamps the current second
    unless SOURCE_DATE_EPOCH is set): fix it so one results.json always gives one PDF."""
    saved = os.environ.get("SOURCE_DATE_EPOCH")
    if saved is None:
        os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SOURCE_DATE_EPOCH", None)


def epoch_of(results: dict[str, Any]) -> int:
    """The audit's start as a Unix time (0 when results.json has no readable start)."""
    try:
        return max(0, int(datetime.fromisoformat(str(results.get("started_at"))).timestamp()))
    except (TypeError, ValueError):
        return 0


def html_to_pdf(html: str, *, url_fetcher: Callable[[str], Any] | None = None, epoch: int = 0) -> bytes:
    """Render report HTML to PDF bytes, fetching nothing but ``data:`` URLs.

    ``epoch`` (a Unix time, e.g. the audit's start) stamps the embedded fonts, so that the
    same HTML always gives the same bytes.
    """
    with _fixed_font_timestamps(epoch):
        document = render_document(html, url_fetcher=url_fetcher)
        # Of the page's custom <meta> names only the run id goes into the PDF's information
        # dictionary (as /auditkitrunid: WeasyPrint keeps the letters and digits of a name).
        custom = getattr(document.metadata, "custom", None) or {}
        document.metadata.custom = {k: v for k, v in custom.items() if k == RUN_ID_META}
        try:
            # PDF/A-3b (archival: fonts embedded, colour profile) and tagged (structure for
            # screen readers and text extraction), where this WeasyPrint supports them
            pdf = document.write_pdf(custom_metadata=True, pdf_variant=PDF_VARIANT, pdf_tags=True)
        except (TypeError, ValueError):
            pdf = document.write_pdf(custom_metadata=True)
    assert isinstance(pdf, bytes)
    return pdf


def render_pdf(results: dict[str, Any]) -> bytes:
    """The report as PDF bytes; :class:`PdfUnavailable` when WeasyPrint/Pango cannot load."""
    from auditkit.render.html import render_html

    _import_weasyprint()  # fail before the HTML is drawn when the PDF cannot be made
    return html_to_pdf(render_html(results, medium="print"), epoch=epoch_of(results))
