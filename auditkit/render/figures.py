"""The report's charts, drawn once per report and shared by every place and format that shows them.

A plot appears in a check's section and may appear again in a case file; the HTML report and
the PDF show the same plots. :class:`Figures` draws each distinct plot once (matplotlib is most
of the HTML's cost), in worker processes when there are enough plots to repay starting them,
and hands out its markup for each medium:

- ``screen`` (report.html): inline ``<svg>``, ids prefixed per place so none clash;
- ``print`` (the HTML WeasyPrint lays out as report.pdf): an ``<img>`` whose source is the
  same SVG as a ``data:`` URL. WeasyPrint then reads the chart with its SVG parser instead of
  parsing and styling every glyph as an element of the page, which made the PDF several times
  slower (a chart with its text as paths is thousands of elements). The PDF stays vector.
"""
from __future__ import annotations

import base64
import html
import os
from typing import Any, Final, Iterable

from markupsafe import Markup

from auditkit.charts.svg import Chart, draw_plot, inline_chart, plot_key

#: Plots below which drawing in this process beats starting helpers (about a second each).
PARALLEL_FROM: Final = 16
MEDIA: Final = ("screen", "print")


def _draw_many(plots: list[Any]) -> list[Chart]:
    return [draw_plot(plot) for plot in plots]


def _workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Figures:
    """Each distinct plot of a report drawn once, looked up by its content."""

    def __init__(self, plots: Iterable[Any] = (), *, workers: int | None = None) -> None:
        self._charts: dict[str, Chart] = {}
        self.draw(list(plots), workers=workers)

    def draw(self, plots: list[Any], *, workers: int | None = None) -> None:
        """Draw the plots not drawn yet; in ``workers`` processes (default: one per core) when
        there are at least :data:`PARALLEL_FROM` of them."""
        todo: dict[str, Any] = {}
        for plot in plots:
            key = plot_key(plot)
            if key not in self._charts:
                todo.setdefault(key, plot)
        if not todo:
            return
        keys, pending = list(todo), list(todo.values())
        workers = _workers() if workers is None else workers
        if workers > 1 and len(pending) >= PARALLEL_FROM:
            charts = _draw_in_processes(pending, workers)
        else:
            charts = _draw_many(pending)
        self._charts.update(zip(keys, charts))

    def chart(self, plot: Any) -> Chart:
        key = plot_key(plot)
        if key not in self._charts:
            self._charts[key] = draw_plot(plot)
        return self._charts[key]

    def markup(self, plot: Any, id_prefix: str, medium: str = "screen") -> Markup:
        """The chart as the page of ``medium`` embeds it (``""`` when nothing was drawn)."""
        chart = self.chart(plot)
        if not chart.svg:
            return Markup("")
        svg = inline_chart(chart, plot, id_prefix=id_prefix)
        if medium != "print":
            # Safe: the SVG's text is drawn as paths and its title is escaped by inline_chart.
            return Markup(svg)
        standalone = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
        source = "data:image/svg+xml;base64," + base64.b64encode(standalone.encode("utf-8")).decode("ascii")
        title = plot.get("title") if isinstance(plot, dict) else None
        alt = html.escape(title if isinstance(title, str) else "chart", quote=True)
        return Markup(f'<img class="chart" alt="{alt}" src="{source}">')


def _draw_in_processes(plots: list[Any], workers: int) -> list[Chart]:
    """Draw ``plots`` with ``workers - 1`` helper processes and this one, each a share.

    The helpers are plain ``python -m auditkit.charts.worker`` children fed JSON on stdin:
    not multiprocessing, whose spawned children re-import the caller's main script (a script
    calling render_html without a ``__main__`` guard would run again in each) and whose forked
    ones inherit the threads of ``auditkit run``'s parent mid-lock. A helper that cannot start
    or fails leaves its share to this process.
    """
    import json
    import subprocess
    import sys
    from pathlib import Path

    import auditkit

    shares = [plots[i::workers] for i in range(workers)]
    env = dict(os.environ)
    root = str(Path(auditkit.__file__).resolve().parent.parent)  # the auditkit this process runs
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    helpers: list[tuple[int, subprocess.Popen[bytes] | None]] = []
    for index in range(1, workers):
        try:
            child = subprocess.Popen([sys.executable, "-m", "auditkit.charts.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        except OSError:
            child = None
        helpers.append((index, child))
    # feed every helper before drawing here (a pipe holds a few kB: a helper reads while this draws)
    feeders = []
    for index, child in helpers:
        if child is not None:
            import threading

            payload = json.dumps(shares[index], allow_nan=True, default=str).encode("utf-8")
            feeder = threading.Thread(target=_feed, args=(child, payload), daemon=True)
            feeder.start()
            feeders.append(feeder)
    drawn: dict[int, list[Chart]] = {0: _draw_many(shares[0])}
    for index, child in helpers:
        drawn[index] = _collect(child, shares[index])
    for feeder in feeders:
        feeder.join()
    out: list[Chart] = [Chart("")] * len(plots)
    for index, charts in drawn.items():
        for k, chart in enumerate(charts):
            out[index + k * workers] = chart
    return out


def _feed(child: Any, payload: bytes) -> None:
    try:
        child.stdin.write(payload)
        child.stdin.close()
    except OSError:  # the helper died: _collect draws its share here
        pass


def _collect(child: Any, share: list[Any]) -> list[Chart]:
    """A helper's charts, in order; its share drawn here when it failed."""
    import json

    if child is None:
        return _draw_many(share)
    try:
        output = child.stdout.read()
        code = child.wait()
        charts = [Chart(str(svg), str(reason), float(width)) for svg, reason, width in json.loads(output)]
    except (OSError, ValueError, TypeError):
        code, charts = 1, []
    if code != 0 or len(charts) != len(share):
        return _draw_many(share)
    return charts
