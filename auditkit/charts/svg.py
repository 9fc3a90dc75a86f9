"""Plot data from results.json drawn as an inline ``<svg>`` string.

The renderers embed the string in the HTML report (and WeasyPrint draws the same markup
in the PDF), so the output is made to live inside an HTML page:

- no XML prolog, DOCTYPE, ``<metadata>`` or comments, no namespace declarations (the HTML
  parser puts ``<svg>`` in the SVG namespace; ``href`` replaces ``xlink:href``);
- no ``<style>`` element: one inside inline SVG would style the whole page;
- every id that is referenced is prefixed (one prefix per plot) and every other id is
  dropped, so several charts on one page never clash;
- text is SVG text (``svg.fonttype: none``) in DejaVu Sans, the font matplotlib lays it out
  with, falling back to its look-alikes (Bitstream Vera Sans, Verdana): one ``<text>`` per
  label, escaped by matplotlib like any XML text. Text drawn as glyph paths (one ``<use>``
  per character) made each chart thousands of elements and WeasyPrint spent most of the
  PDF's time parsing the same glyph outlines again and again;
- ``text.parse_math`` is off, so a lone ``$`` in a column name is drawn as a dollar;
- fixed ``svg.hashsalt`` and no date: the same plot gives the same bytes.

Plot kinds are listed in :data:`PLOT_KINDS`; an unknown kind, or a plot with nothing
drawable, gives ``""`` and the report shows the data tables alone.
"""
from __future__ import annotations

import hashlib
import html
import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

PLOT_KINDS: Final = ("bar", "line", "hist", "heatmap", "scatter", "beeswarm", "waterfall")

#: Width of every chart, in inches: fits the A4 text column of the PDF (170 mm).
WIDTH_IN: Final = 6.5
HEIGHT_IN: Final = 3.0
#: Bars drawn before the chart says how many it left out (the table holds them all).
MAX_BARS: Final = 60
#: Points per line series; longer series are thinned evenly for the picture only.
MAX_POINTS: Final = 2000

# Okabe & Ito's colour-blind-safe palette (2008), its green and yellow left out: no red-green
# or orange-green pair can appear in one chart, and yellow is unreadable on white. Blue is the
# main series; the threshold lines are vermillion, a colour no series takes.
PALETTE: Final = ("#0072B2", "#E69F00", "#56B4E9", "#CC79A7", "#000000", "#8C8C8C")
INK: Final = "#333333"
MUTED: Final = "#767676"
THRESHOLD_COLOUR: Final = "#D55E00"
#: Width of a small chart (few bars, a histogram, a curve or two): two fit across the page.
HALF_WIDTH_IN: Final = 3.25
HALF_HEIGHT_IN: Final = 2.35

# A value written on a threshold line stays readable.
_LABEL_BOX: Final = {"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.85}

#: Above this many points a scatter's dots are one embedded image in the SVG (axes, labels and
#: text stay vector): thousands of <path> elements made the PDF slow to lay out and draw.
RASTER_POINTS: Final = 150
#: Fewer values than this (counts summing to less) are listed, not drawn as a histogram.
MIN_HISTOGRAM_VALUES: Final = 10
#: Resolution of those embedded dots, enough for print.
RASTER_DPI: Final = 200

_RC: Final[dict[str, Any]] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "auditkit",
    "svg.image_inline": True,
    "text.parse_math": False,
    "text.usetex": False,
    "axes.formatter.use_mathtext": False,
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs everywhere
    "font.size": 8.5,
    "axes.labelsize": 8.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.edgecolor": "#8c8c8c",
    "axes.linewidth": 0.6,
    "axes.labelcolor": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e2e2e2",
    "grid.linewidth": 0.6,
    "xtick.color": INK,
    "ytick.color": INK,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "legend.frameon": False,
    "figure.facecolor": "white",
    "axes.facecolor": "white",
    "path.simplify": True,
}


class NothingToDraw(Exception):
    """A plot whose data make no chart worth a reader's look (no value, one point, all zero):
    the report says so in one line instead of drawing an empty or misleading frame."""


@dataclass(frozen=True)
class Chart:
    """One plot drawn: ``svg`` (inline markup, ``""`` when nothing was drawn), ``reason`` (why
    not, for the reader: ``""`` when drawn) and ``width_in``, the chart's own width in inches
    (a small chart is :data:`HALF_WIDTH_IN` wide, and two stand side by side on a page)."""

    svg: str
    reason: str = ""
    width_in: float = WIDTH_IN

    @property
    def half(self) -> bool:
        return bool(self.svg) and self.width_in <= HALF_WIDTH_IN + 1e-9


#: Why an unknown kind is not drawn: a newer auditkit wrote it.
UNKNOWN_KIND: Final = "not drawn by this version of auditkit"


def plot_key(plot: Any) -> str:
    """The identity of a plot's content: two equal plots are drawn once."""
    return json.dumps(plot, sort_keys=True, default=str, allow_nan=True)


def draw_plot(plot: Any) -> Chart:
    """Draw one plot of results.json as SVG markup whose ids are not yet prefixed.

    :func:`inline_chart` makes it fit for a page; the split lets one drawing serve every
    place that shows the plot (a check's section and a case file, the HTML and the PDF).
    """
    if not isinstance(plot, dict):
        return Chart("", UNKNOWN_KIND)
    kind = plot.get("kind")
    data = plot.get("data")
    drawer = _DRAWERS.get(kind) if isinstance(kind, str) else None
    if drawer is None or not isinstance(data, dict):
        return Chart("", UNKNOWN_KIND)
    with matplotlib.rc_context(_RC):
        # A Figure with its own canvas, never pyplot: no global figure state, no GUI backend.
        # dpi: the resolution of rasterized dots only; the SVG itself is drawn in points
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=RASTER_DPI)
        ax = fig.add_subplot()
        try:
            if not drawer(fig, ax, data):
                return Chart("", "nothing to draw: no value")
            for axes in fig.axes:
                _no_negative_axis(axes)
                _readable_number_ticks(axes, float(fig.get_size_inches()[0]))
            fig.tight_layout(pad=0.4)
            buf = io.StringIO()
            FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None})
        except NothingToDraw as nothing:
            return Chart("", f"nothing to draw: {nothing}")
        except (TypeError, ValueError, OverflowError):
            # Malformed plot data (a string where a number belongs, ragged lists): the
            # report still shows the tables; a chart is not worth failing the report.
            return Chart("", "not drawn: its data are malformed")
        width = float(fig.get_size_inches()[0])
    return Chart(buf.getvalue(), "", width)


def inline_chart(chart: Chart, plot: Any, *, id_prefix: str | None = None) -> str:
    """The markup of a drawn chart for an HTML page: ids prefixed, title escaped (see the module)."""
    if not chart.svg:
        return ""
    if id_prefix is None:
        id_prefix = "ak" + hashlib.sha256(plot_key(plot).encode("utf-8")).hexdigest()[:10] + "-"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", id_prefix):
        raise ValueError(f"id_prefix must be a plain identifier, got {id_prefix!r}")
    title = plot.get("title") if isinstance(plot, dict) else None
    return _inline(chart.svg, id_prefix, title if isinstance(title, str) else "")


def plot_to_svg(plot: dict[str, Any], *, id_prefix: str | None = None) -> str:
    """Draw one plot of results.json as an inline ``<svg>`` string.

    Parameters
    ----------
    plot
        ``{"kind": ..., "title": ..., "data": {...}}`` as in results.json.
    id_prefix
        Prefix of every id in the SVG; give each chart of a page its own. By default a
        hash of the plot, so the output depends on the plot alone.

    Returns
    -------
    str
        The ``<svg ...>...</svg>`` markup, or ``""`` for an unknown kind or a plot
        with nothing worth drawing (:func:`draw_plot` says why).
    """
    if id_prefix is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", id_prefix):
        raise ValueError(f"id_prefix must be a plain identifier, got {id_prefix!r}")
    return inline_chart(draw_plot(plot), plot, id_prefix=id_prefix)


def _no_negative_axis(ax: Axes) -> None:
    """A quantity that is never negative gets no negative stretch of axis (matplotlib's margins
    put one below a bar of zero or a curve that touches zero)."""
    for axis, get_lim, set_lim in (("y", ax.get_ylim, ax.set_ylim), ("x", ax.get_xlim, ax.set_xlim)):
        low = _data_minimum(ax, axis)
        lim_low, lim_high = get_lim()
        if low is not None and low >= 0 and min(lim_low, lim_high) < 0:
            if lim_low <= lim_high:
                set_lim(0.0, lim_high)
            else:  # an inverted axis (horizontal bars read from the top)
                set_lim(lim_low, 0.0)


#: Ticks on a numeric x axis per inch of chart width: matplotlib's default of up to 9 ticks
#: runs six-digit labels into each other on a half-width chart ("75000100000125000").
X_TICKS_PER_INCH: Final = 1.6


def _compact_number(value: float, _position: Any = None) -> str:
    """A tick label of a large number in a few characters: 25000 -> 25k, 1500000 -> 1.5M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.4g}{suffix}".replace("-", "\u2212")
    return f"{value:.4g}".replace("-", "\u2212")


def _readable_number_ticks(ax: Axes, width_in: float) -> None:
    """Numeric axes (not categories, not ticks a drawer placed itself) get at most as many x
    ticks as the width holds, and labels of 10,000 and more in compact form."""
    from matplotlib.ticker import AutoLocator, MaxNLocator, ScalarFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if not (isinstance(axis.get_major_locator(), AutoLocator)
                and type(axis.get_major_formatter()) is ScalarFormatter):
            continue  # categorical, fixed by the drawer, or logarithmic
        if axis is ax.xaxis:
            axis.set_major_locator(MaxNLocator(nbins=max(3, int(width_in * X_TICKS_PER_INCH)),
                                               steps=[1, 2, 2.5, 5, 10]))
        low, high = axis.get_view_interval()
        if max(abs(low), abs(high)) >= 1e4:
            axis.set_major_formatter(_compact_number)


def _data_minimum(ax: Axes, axis: str) -> float | None:
    """The smallest data value of ``axis`` over the axes' lines, bars and points, or None."""
    import numpy as np

    values: list[float] = []
    index = 1 if axis == "y" else 0
    for line in ax.get_lines():
        data = np.asarray(line.get_ydata() if axis == "y" else line.get_xdata(), dtype=float).ravel()
        values.extend(data[np.isfinite(data)].tolist())
    for patch in ax.patches:
        box = patch.get_bbox()
        values.extend([box.y0, box.y1] if axis == "y" else [box.x0, box.x1])
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets(), dtype=float)
        if offsets.ndim == 2 and offsets.shape[1] == 2 and len(offsets):
            column = offsets[:, index]
            values.extend(column[np.isfinite(column)].tolist())
        for path in collection.get_paths():
            vertices = path.vertices[:, index]
            values.extend(vertices[np.isfinite(vertices)].tolist())
    return min(values) if values else None


# ---------------------------------------------------------------------------- values


def _num(value: Any) -> float | None:
    """A finite float, or None for null, booleans, strings and non-finite numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    out = float(value)
    return out if math.isfinite(out) else None


def _nums(values: Any, n: int) -> list[float | None]:
    """``n`` cleaned values (padded with None) from a list, or Nones when it is not one."""
    seq = values if isinstance(values, list) else []
    out = [_num(v) for v in seq[:n]]
    return out + [None] * (n - len(out))


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1e4 and abs(value) < 1e15:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def _short(text: Any, limit: int = 28) -> str:
    out = " ".join(str(text).split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _text(data: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = data.get(key)
        if isinstance(value, str) and value:
            return _short(value, 60)
    return ""


def interval_label(data: dict[str, Any]) -> str:
    """The legend of a plot's intervals: their level as the plot data says (results.json files
    written before plots carried a level had 95% intervals)."""
    level = _num(data.get("level"))
    return f"{level:.0%} interval" if level is not None and 0 < level < 1 else "95% interval"


def _threshold_bounds(item: Any) -> list[tuple[str, float]]:
    if not isinstance(item, dict):
        return []
    out = []
    for key in ("min", "max"):
        value = _num(item.get(key))
        if value is not None:
            out.append((key, value))
    return out


# ---------------------------------------------------------------------------- drawers


def _sections(data: dict[str, Any], n_all: int) -> list[str] | None:
    """The section of each bar (e.g. the protected attribute of each group), when the data give one."""
    sections = data.get("sections")
    if not isinstance(sections, list) or len(sections) != n_all:
        return None
    return [str(s) for s in sections]


def _bar(fig: Figure, ax: Axes, data: dict[str, Any]) -> bool:
    """Bars (with intervals and threshold lines); with ``sections``, bars in labelled sections
    (one per attribute, say), each section with its own threshold line."""
    values_in = data.get("values") if isinstance(data.get("values"), list) else []
    labels_in = data.get("labels") if isinstance(data.get("labels"), list) else []
    n_all = max(len(values_in), len(labels_in))
    labels = [str(x) for x in labels_in] + [str(i + 1) for i in range(len(labels_in), n_all)]
    values = _nums(values_in, n_all)
    if not any(v is not None for v in values):
        return False
    sections = _sections(data, n_all)
    n = min(n_all, MAX_BARS)
    labels, values = labels[:n], values[:n]
    lows, highs = _nums(data.get("ci_low"), n), _nums(data.get("ci_high"), n)
    present = [v for v in values if v is not None]
    if n_all == 1:
        raise NothingToDraw("a single value, given in the table")
    if all(v == 0 for v in present) and all(x in (None, 0) for x in lows + highs):
        raise NothingToDraw("every value is 0")
    included_in = data.get("included")
    excluded = [isinstance(included_in, list) and i < len(included_in) and included_in[i] is False for i in range(n)]
    thresholds = data.get("thresholds")
    longest = max(len(_short(s)) for s in labels)
    horizontal = bool(data.get("horizontal")) or n > 12 or longest > 18 or sections is not None
    value_label = _text(data, "ylabel", "y_label")
    category_label = _text(data, "xlabel", "x_label")

    # positions: with sections, a heading row above each section's bars and a gap between them
    pos: list[float] = []
    heads: list[tuple[float, str]] = []
    slot = 0.0
    for i in range(n):
        if sections is not None and (i == 0 or sections[i] != sections[i - 1]):
            slot += 0.35 if i else 0.0
            heads.append((slot, sections[i]))
            slot += 1
        pos.append(slot)
        slot += 1
    slots = slot

    half = (horizontal and n <= 24 and longest <= 24) or (not horizontal and n <= 6 and longest <= 12)
    width_in = HALF_WIDTH_IN if half else WIDTH_IN
    if horizontal:
        fig.set_size_inches(width_in, min(9.0, max(HALF_HEIGHT_IN if half else HEIGHT_IN, 0.2 * slots + 0.9)))
    elif half:
        fig.set_size_inches(width_in, HALF_HEIGHT_IN)
    drawn = [i for i in range(n) if values[i] is not None]
    bar = ax.barh if horizontal else ax.bar
    width = 0.62 if n >= 4 else 0.45
    colours = ["#BBBBBB" if excluded[i] else PALETTE[0] for i in drawn]
    bar([pos[i] for i in drawn], [values[i] for i in drawn], width, color=colours, zorder=2)
    extra = []
    if any(excluded[i] for i in drawn):
        from matplotlib.patches import Patch

        extra.append(Patch(color="#BBBBBB", label="not compared (too small)"))

    with_ci = [i for i in drawn if lows[i] is not None and highs[i] is not None]
    interval = interval_label(data)
    if with_ci:
        err = [
            [max(0.0, values[i] - lows[i]) for i in with_ci],  # type: ignore[operator]
            [max(0.0, highs[i] - values[i]) for i in with_ci],  # type: ignore[operator]
        ]
        where = [pos[i] for i in with_ci]
        centres = [values[i] for i in with_ci]
        if horizontal:
            ax.errorbar(centres, where, xerr=err, fmt="none", ecolor=INK, elinewidth=0.9,
                        capsize=2.5, zorder=3, label=interval)
        else:
            ax.errorbar(where, centres, yerr=err, fmt="none", ecolor=INK, elinewidth=0.9,
                        capsize=3, zorder=3, label=interval)

    labelled: set[str] = set()

    def threshold_line(key: str, value: float, span: tuple[float, float] | None) -> None:
        style = "--" if key == "min" else ":"
        name = "minimum (threshold)" if key == "min" else "maximum (threshold)"
        label = None if name in labelled else name
        labelled.add(name)
        kwargs = dict(color=THRESHOLD_COLOUR, linestyle=style, linewidth=1.2, zorder=4, label=label)
        if span is None:
            (ax.axvline if horizontal else ax.axhline)(value, **kwargs)
        else:
            (ax.vlines if horizontal else ax.hlines)(value, span[0], span[1], **kwargs)

    if isinstance(thresholds, dict):
        for key, value in _threshold_bounds(thresholds):
            threshold_line(key, value, None)
    elif isinstance(thresholds, list):
        # one line per run of bars with the same threshold (a section's bars share theirs)
        runs: list[tuple[int, int, Any]] = []
        for i, item in enumerate(thresholds[:n]):
            same_section = sections is None or (i > 0 and sections[i] == sections[i - 1])
            if runs and runs[-1][2] == item and runs[-1][1] == i - 1 and same_section:
                runs[-1] = (runs[-1][0], i, item)
            else:
                runs.append((i, i, item))
        for first, last, item in runs:
            for key, value in _threshold_bounds(item):
                threshold_line(key, value, (pos[first] - width / 2 - 0.1, pos[last] + width / 2 + 0.1))

    annotate = n <= 16 and not (half and horizontal and n > 8)
    for i in range(n):
        v = values[i]
        if v is None:  # a null value is said, not drawn as a zero bar
            ax.annotate("n/a", (0, pos[i]) if horizontal else (pos[i], 0),
                        xytext=(4, 0) if horizontal else (0, 3), textcoords="offset points",
                        ha="left" if horizontal else "center",
                        va="center" if horizontal else "bottom", color=MUTED, fontsize=7)
        elif annotate:
            # The value is written past the end of the bar or of its interval.
            sign = 1 if v >= 0 else -1
            end = highs[i] if sign > 0 else lows[i]
            tip = v if end is None else (max(end, v) if sign > 0 else min(end, v))
            if horizontal:
                ax.annotate(_fmt(v), (tip, pos[i]), xytext=(4 * sign, 0), textcoords="offset points",
                            ha="left" if sign > 0 else "right", va="center", color=INK, fontsize=7,
                            bbox=_LABEL_BOX, zorder=5)
            else:
                ax.annotate(_fmt(v), (pos[i], tip), xytext=(0, 3 * sign), textcoords="offset points",
                            ha="center", va="bottom" if sign > 0 else "top", color=INK, fontsize=7,
                            bbox=_LABEL_BOX, zorder=5)

    short = [_short(s) for s in labels]
    ticks = pos + [p for p, _ in heads]
    tick_labels = short + [_short(name, 30) for _, name in heads]
    if horizontal:
        ax.set_yticks(ticks, labels=tick_labels)
        for tick in ax.get_yticklabels()[n:]:
            tick.set_fontweight("bold")
        for head, _ in heads:
            ax.get_yaxis().get_major_ticks()[ticks.index(head)].tick1line.set_visible(False)
        ax.set_ylim(slots - 0.5, -0.5)  # first label at the top, as in the table
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", visible=True)
        ax.margins(x=0.1)
        ax.set_xlabel(value_label)
        ax.set_ylabel(category_label)
    else:
        ax.set_xticks(pos, labels=short)
        ax.set_xlim(-0.6, n - 0.4)
        if sum(len(s) + 3 for s in short) > (45 if half else 90):  # about what fits across at 8 pt
            for tick in ax.get_xticklabels():
                tick.set_rotation(30)
                tick.set_ha("right")
                tick.set_rotation_mode("anchor")
        ax.grid(axis="x", visible=False)
        ax.margins(y=0.12)
        ax.set_ylabel(value_label)
        ax.set_xlabel(category_label)
    if n < n_all:
        fig.text(0.99, 0.01, f"first {n} of {n_all} shown", ha="right", va="bottom",
                 color=MUTED, fontsize=7)
    if labelled or with_ci or extra:
        _legend(ax, half, extra)
    return True


def _line(fig: Figure, ax: Axes, data: dict[str, Any]) -> bool:
    series = data.get("series")
    if not isinstance(series, list):
        return False
    drew = False
    named = False
    # "thin" series (e.g. ICE curves) are drawn as faint grey lines, any number of them, with
    # one legend entry; other series take palette colours, at most two rounds of it.
    thin = [item for item in series if isinstance(item, dict) and item.get("style") == "thin"]
    other = [item for item in series if isinstance(item, dict) and item.get("style") != "thin"]
    labelled_thin = False
    for index, item in enumerate(thin[:200] + other[: len(PALETTE) * 2]):
        xs_in = item.get("x") if isinstance(item.get("x"), list) else []
        n = len(xs_in)
        xs, ys = _nums(xs_in, n), _nums(item.get("y"), n)
        points = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
        if not points:
            continue
        is_thin = item.get("style") == "thin"
        colour = "#9aa3ad" if is_thin else PALETTE[(index - len(thin[:200])) % len(PALETTE)]
        lows, highs = _nums(item.get("y_low"), n), _nums(item.get("y_high"), n)
        band = [(x, lo, hi) for x, lo, hi in zip(xs, lows, highs)
                if x is not None and lo is not None and hi is not None]
        if band:
            ax.fill_between([b[0] for b in band], [b[1] for b in band], [b[2] for b in band],
                            color=colour, alpha=0.16, linewidth=0, zorder=1)
        step = max(1, math.ceil(len(points) / MAX_POINTS))
        points = points[::step]
        name = item.get("name")
        label = _short(name, 40) if isinstance(name, str) and name else None
        if is_thin:
            label, labelled_thin = (None if labelled_thin else label), True
        named = named or label is not None
        style = item.get("style") if item.get("style") in ("dashed", "dotted") else "solid"
        ax.plot([p[0] for p in points], [p[1] for p in points], color=colour,
                linewidth=0.6 if is_thin else (2.4 if item.get("style") == "bold" else 1.6),
                alpha=0.55 if is_thin else 1.0, linestyle=style,
                marker="o" if (len(points) <= 20 and not is_thin) else None, markersize=3,
                label=label, zorder=2 if is_thin else 3)
        drew = True
    ticks = data.get("x_ticks")
    if isinstance(ticks, list) and ticks:
        ax.set_xticks(range(len(ticks)))
        ax.set_xticklabels([_short(str(t), 14) for t in ticks], rotation=30 if len(ticks) > 4 else 0, ha="right"
                           if len(ticks) > 4 else "center")
    if not drew:
        return False
    points_drawn = [xy for line in ax.get_lines() for xy in line.get_xydata().tolist()]
    if len({tuple(xy) for xy in points_drawn}) < 2:
        raise NothingToDraw("a single point, given in the table")
    if all(y == 0 for _, y in points_drawn):
        raise NothingToDraw("every value is 0")
    if len(other) <= 4 and not (isinstance(ticks, list) and len(ticks) > 6):
        fig.set_size_inches(HALF_WIDTH_IN, HALF_HEIGHT_IN - 0.1)
    thresholds = data.get("thresholds")
    items = thresholds if isinstance(thresholds, list) else [thresholds]
    seen: set[str] = set()
    for item in items:
        for key, value in _threshold_bounds(item):
            name = "minimum (threshold)" if key == "min" else "maximum (threshold)"
            ax.axhline(value, color=THRESHOLD_COLOUR, linestyle="--" if key == "min" else ":",
                       linewidth=1.2, zorder=4, label=None if name in seen else name)
            seen.add(name)
    # a reference line that is not a threshold of the policy (e.g. the model's decision threshold)
    hline = data.get("hline")
    if isinstance(hline, dict) and _num(hline.get("y")) is not None:
        name = str(hline.get("label") or "reference")
        ax.axhline(_num(hline.get("y")), color=MUTED, linestyle="--", linewidth=1.0, zorder=1, label=name)
        seen.add(name)
    # points of interest on the curves (e.g. the row's own value), drawn as rings
    markers = data.get("markers")
    if isinstance(markers, list):
        points = [(_num(m.get("x")), _num(m.get("y"))) for m in markers if isinstance(m, dict)]
        points = [(x, y) for x, y in points if x is not None and y is not None]
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], s=36, facecolors="none", edgecolors=INK,
                       linewidths=1.0, zorder=5, label=str(data.get("markers_label") or "the row's own value"))
            seen.add("markers")
    ax.set_xlabel(_text(data, "x_label", "xlabel"))
    ax.set_ylabel(_text(data, "y_label", "ylabel"))
    ax.grid(axis="x", visible=True)
    if named or seen:
        _legend(ax, fig.get_size_inches()[0] <= HALF_WIDTH_IN)
    return True


def _hist(fig: Figure, ax: Axes, data: dict[str, Any]) -> bool:
    edges_in, counts_in = data.get("edges"), data.get("counts")
    if not (isinstance(edges_in, list) and isinstance(counts_in, list)):
        return _bar(fig, ax, {k: v for k, v in data.items() if k not in ("ci_low", "ci_high")})
    n = min(len(counts_in), max(0, len(edges_in) - 1))
    edges = _nums(edges_in, n + 1)
    counts = _nums(counts_in, n)
    bins = [(edges[i], edges[i + 1], counts[i]) for i in range(n)
            if edges[i] is not None and edges[i + 1] is not None and counts[i] is not None]
    if not bins or not any(b[2] for b in bins):
        return False
    filled = [b for b in bins if b[2]]
    total = sum(b[2] for b in bins)  # type: ignore[misc]
    if total < MIN_HISTOGRAM_VALUES and all(float(b[2]).is_integer() for b in bins):  # type: ignore[arg-type]
        # a histogram of three counterfactual distances draws three equal bars: say so in words
        raise NothingToDraw(f"only {int(total)} value{'s' if total != 1 else ''}, too few for a histogram; they are in the table")
    if len(filled) == 1:
        raise NothingToDraw(f"every value falls in one bin, {_fmt(filled[0][0])} to {_fmt(filled[0][1])}")  # type: ignore[arg-type]
    fig.set_size_inches(HALF_WIDTH_IN, HALF_HEIGHT_IN)
    ax.bar([b[0] for b in bins], [b[2] for b in bins], [b[1] - b[0] for b in bins],  # type: ignore[operator]
           align="edge", color=PALETTE[0], edgecolor="white", linewidth=0.5, zorder=2)
    ax.grid(axis="x", visible=False)
    ax.set_xlabel(_text(data, "x_label", "xlabel"))
    ax.set_ylabel(_text(data, "y_label", "ylabel") or "count")
    return True


def _legend(ax: Axes, narrow: bool = False, extra: list[Any] | None = None) -> None:
    handles, labels = ax.get_legend_handles_labels()
    for handle in extra or []:
        handles.append(handle)
        labels.append(handle.get_label())
    if handles:
        # Above the plotting area, never over the data.
        ax.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.0, 1.01),
                  ncol=_legend_columns(labels, narrow),
                  borderaxespad=0.0, handlelength=2.2,
                  columnspacing=1.6)


def _legend_columns(labels: list[Any], narrow: bool) -> int:
    """As many columns as the widest label allows across the chart (about 36 characters on a
    half-width chart, 80 on a full one): a legend wider than its chart is cut off at the edge."""
    widest = max((len(str(label)) for label in labels), default=1) + 5  # + the line sample
    return max(1, min(len(labels), (36 if narrow else 80) // widest, 2 if narrow else 4))


def _heatmap(fig: Figure, ax: Axes, data: dict[str, Any]) -> bool:
    """A square matrix (``labels``, ``values`` rows; null cells left blank) with its numbers."""
    labels = data.get("labels")
    rows = data.get("values")
    if not (isinstance(labels, list) and isinstance(rows, list) and labels and len(rows) == len(labels)):
        return False
    n = len(labels)
    matrix = [[_num(v) for v in (row if isinstance(row, list) else [])][:n] for row in rows]
    if not any(v is not None for row in matrix for v in row):
        return False
    if all(v in (None, 0) for row in matrix for v in row):
        raise NothingToDraw("every value is 0")
    grid = [[float("nan") if v is None else v for v in row + [None] * (n - len(row))] for row in matrix]
    size = min(6.5, 1.2 + 0.55 * n)
    fig.set_size_inches(size, size * 0.85)
    image = ax.imshow(grid, cmap="Blues", vmin=0.0, vmax=max(1e-9, max(v for row in matrix for v in row if v is not None)))
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xticklabels([_short(str(l), 14) for l in labels], rotation=30, ha="right")
    ax.set_yticklabels([_short(str(l), 18) for l in labels])
    ax.grid(False)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            if v is not None:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v > 0.6 * image.get_clim()[1] else INK)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return True


def _scatter(fig: Figure, ax: Axes, data: dict[str, Any]) -> bool:
    """Points (``x``, ``y``); text x values are placed at category positions."""
    xs_in, ys_in = data.get("x"), data.get("y")
    if not (isinstance(xs_in, list) and isinstance(ys_in, list)):
        return False
    n = min(len(xs_in), len(ys_in))
    ys = _nums(ys_in, n)
    if all(isinstance(v, str) for v in xs_in[:n] if v is not None) and any(isinstance(v, str) for v in xs_in[:n]):
        categories = sorted({v for v in xs_in[:n] if v is not None})
        xs: list[float | None] = [None if v is None else float(categories.index(v)) for v in xs_in[:n]]
        ax.set_xticks(range(len(categories)))
        ax.set_xticklabels([_short(c, 12) for c in categories], rotation=30 if len(categories) > 4 else 0)
    else:
        xs = _nums(xs_in, n)
    points = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
    if not points:
        return False
    if len(set(points)) < 2:
        raise NothingToDraw("a single point, given in the table")
    if all(p[1] == 0 for p in points):
        raise NothingToDraw("every value is 0")
    fig.set_size_inches(HALF_WIDTH_IN, HALF_HEIGHT_IN)
    ax.scatter([p[0] for p in points], [p[1] for p in points], s=6, color=PALETTE[0], alpha=0.6, linewidths=0,
               rasterized=len(points) > RASTER_POINTS)
    ax.axhline(0.0, color=INK, linewidth=0.6)
    ax.set_xlabel(_text(data, "x_label", "xlabel"))
    ax.set_ylabel(_text(data, "y_label", "ylabel"))
    return True


def _beeswarm(fig: Figure, ax: Axes, data: dict[str, Any]) -> bool:
    """One row of points per feature: x = SHAP value, colour = the feature's value (low to high)."""
    rows = data.get("rows")
    if not isinstance(rows, list) or not rows:
        return False
    import numpy as np

    fig.set_size_inches(WIDTH_IN, min(9.0, 0.45 * len(rows) + 1.2))
    rng = np.random.default_rng(0)  # fixed jitter: the same plot gives the same bytes
    drew = False
    for i, row in enumerate(reversed(rows)):
        shap_values = _nums(row.get("shap"), len(row.get("shap") or []))
        raw = row.get("value") or []
        numeric = [v for v in raw if isinstance(v, (int, float))]
        low, high = (min(numeric), max(numeric)) if numeric else (0.0, 1.0)
        points = []
        for k, s in enumerate(shap_values):
            if s is None:
                continue
            v = raw[k] if k < len(raw) else None
            shade = ((v - low) / (high - low)) if isinstance(v, (int, float)) and high > low else 0.5
            points.append((s, i + rng.uniform(-0.28, 0.28), shade))
        if points:
            ax.scatter([p[0] for p in points], [p[1] for p in points], c=[p[2] for p in points], cmap="coolwarm",
                       vmin=0, vmax=1, s=5, linewidths=0, alpha=0.8, rasterized=len(points) > RASTER_POINTS)
            drew = True
    if not drew:
        return False
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([_short(str(r.get("feature", "")), 22) for r in reversed(rows)])
    ax.axvline(0.0, color=INK, linewidth=0.6)
    ax.set_xlabel(_text(data, "x_label", "xlabel") + "   (colour: blue = low value, red = high)")
    return True


def _waterfall(fig: Figure, ax: Axes, data: dict[str, Any]) -> bool:
    """One row's additive explanation: from ``base`` (the expected raw output) each feature's
    contribution moves the running total, largest at the top, ending at the row's raw output.
    With ``side_values`` (e.g. LIME's weights for the same features) a second panel on the
    right draws them as bars against the same feature rows, so the two can be read across."""
    labels_in = data.get("labels") if isinstance(data.get("labels"), list) else []
    values = _nums(data.get("values"), len(labels_in))
    base = _num(data.get("base"))
    if base is None or not labels_in or all(v is None for v in values):
        return False
    if all(v in (None, 0) for v in values):
        raise NothingToDraw("every contribution is 0")
    labels = [_short(str(x), 30) for x in labels_in]
    n = len(labels)
    side = _nums(data.get("side_values"), n) if isinstance(data.get("side_values"), list) else None
    fig.set_size_inches(WIDTH_IN, min(9.0, 0.18 * (n + 2) + 0.75))
    if side is not None:
        fig.clear()  # (a gridspec with its own wspace would defeat tight_layout)
        ax, side_ax = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": (3, 2)})
    increase, decrease = PALETTE[1], PALETTE[0]
    total = base
    rows = list(range(1, n + 1))  # row 0 is the base, row n + 1 the output
    for i, v in zip(rows, values):
        if v is None:
            continue
        ax.barh(i, v, left=total, height=0.62, color=increase if v >= 0 else decrease, zorder=2)
        ax.annotate(("+" if v >= 0 else "") + _fmt(v), (total + v if v >= 0 else total + v, i),
                    xytext=(4 if v >= 0 else -4, 0), textcoords="offset points",
                    ha="left" if v >= 0 else "right", va="center", fontsize=7, color=INK, bbox=_LABEL_BOX, zorder=5)
        ax.plot([total + v, total + v], [i + 0.31, i + 0.69], color=MUTED, linewidth=0.6, zorder=1)  # to the next bar
        total += v
    output = _num(data.get("output"))
    final = total if output is None else output
    ax.axvline(base, color=MUTED, linewidth=0.8, linestyle=":", zorder=1)
    ax.axvline(final, color=INK, linewidth=0.8, zorder=1)
    threshold = _num(data.get("threshold"))
    if threshold is not None:
        ax.axvline(threshold, color=THRESHOLD_COLOUR, linestyle="--", linewidth=1.1, zorder=4,
                   label=str(data.get("threshold_label") or "decision threshold"))
        _legend(ax)
    ticks = [0] + rows + [n + 1]
    tick_labels = [f"base {_fmt(base)}"] + labels + [f"output {_fmt(final)}"]
    ax.set_yticks(ticks, labels=tick_labels)
    ax.set_ylim(n + 1.6, -0.6)
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.15)
    ax.set_xlabel(_text(data, "xlabel", "x_label"))
    if side is not None:
        drawn = [(i, v) for i, v in zip(rows, side) if v is not None]
        side_ax.barh([i for i, _ in drawn], [v for _, v in drawn], height=0.62,
                     color=[increase if v >= 0 else decrease for _, v in drawn], alpha=0.75, zorder=2)
        side_ax.axvline(0.0, color=INK, linewidth=0.6)
        side_ax.tick_params(axis="y", left=False, labelleft=False)
        side_ax.grid(axis="y", visible=False)
        side_ax.margins(x=0.15)
        side_ax.set_xlabel(_text(data, "side_label"))
    return True


_DRAWERS: Final[dict[str, Callable[[Figure, Axes, dict[str, Any]], bool]]] = {
    "scatter": _scatter,
    "beeswarm": _beeswarm,
    "heatmap": _heatmap,
    "bar": _bar,
    "line": _line,
    "hist": _hist,
    "waterfall": _waterfall,
}


# ---------------------------------------------------------------------------- inline SVG

_STYLE_RE: Final = re.compile(r'\sstyle="([^"]*)"')


def _presentation_attributes(match: re.Match[str]) -> str:
    """``style="fill: #fff; stroke-width: 0.6"`` as ``fill="#fff" stroke-width="0.6"``.

    Inside an HTML page the ``style`` attribute of an SVG element also goes through the
    page's CSS, where WeasyPrint reports every SVG property as unknown; presentation
    attributes mean the same to every SVG renderer.
    """
    out = []
    for declaration in match.group(1).split(";"):
        name, colon, value = declaration.partition(":")
        name, value = name.strip(), value.strip()
        if colon and re.fullmatch(r"[a-z-]+", name):
            out.append(f' {name}="{html.escape(value, quote=True)}"')
    return "".join(out)


_REF_RE: Final = re.compile(r'(?:href="#([^"]+)"|url\(#([^)]+)\))')
_ID_RE: Final = re.compile(r'\sid="([^"]*)"')


#: The chart's text font and the fonts that stand in for it where it is not installed.
FONT_FAMILY: Final = "'DejaVu Sans', 'Bitstream Vera Sans', Verdana, sans-serif"


def _inline(svg: str, prefix: str, title: str) -> str:
    start = svg.find("<svg")
    svg = svg[start:]
    svg = svg.replace("font-family: 'DejaVu Sans'", f"font-family: {FONT_FAMILY}")
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<style[^>]*>.*?</style>\s*", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->\s*", "", svg, flags=re.S)
    svg = re.sub(r"<defs>\s*</defs>\s*", "", svg)
    svg = re.sub(r'\sxmlns(?::\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    referenced = {a or b for a, b in _REF_RE.findall(svg)}

    def rename_id(match: re.Match[str]) -> str:
        ident = match.group(1)
        return f' id="{prefix}{ident}"' if ident in referenced else ""

    def rename_ref(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return f'href="#{prefix}{match.group(1)}"'
        return f"url(#{prefix}{match.group(2)})"

    svg = _ID_RE.sub(rename_id, svg)
    svg = _REF_RE.sub(rename_ref, svg)
    svg = _STYLE_RE.sub(_presentation_attributes, svg)
    label = html.escape(title, quote=True)
    # The dropped <style> set these two for every element; they inherit from the root.
    root_attrs = (f'<svg class="chart" role="img" aria-label="{label}" '
                  'stroke-linejoin="round" stroke-linecap="butt"')
    svg = svg.replace("<svg", root_attrs, 1)
    if title:
        head_end = svg.index(">") + 1
        svg = svg[:head_end] + f"\n <title>{html.escape(title, quote=False)}</title>" + svg[head_end:]
    return svg.rstrip() + "\n"

