"""charts.svg: plot data of results.json as inline SVG."""
from __future__ import annotations

import math
import re
from typing import Any

import matplotlib
import pytest

from auditkit.charts import plot_to_svg
from auditkit.charts.svg import THRESHOLD_COLOUR

BAR: dict[str, Any] = {
    "kind": "bar",
    "title": "Metrics with 95% intervals",
    "data": {
        "labels": ["roc_auc", "accuracy"],
        "values": [0.81, 0.76],
        "ci_low": [0.80, 0.75],
        "ci_high": [0.82, 0.77],
        "thresholds": [{"min": 0.75}, {"min": 0.8}],
        "ylabel": "value",
    },
}


def ids(svg: str) -> list[str]:
    return re.findall(r'\sid="([^"]+)"', svg)


def refs(svg: str) -> set[str]:
    return {a or b for a, b in re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', svg)}


def test_every_plot_of_the_example_is_drawn_as_inline_svg(example_results):
    plots = [p for check in example_results["checks"] for p in check["plots"]]
    assert {p["kind"] for p in plots} == {"bar", "line", "hist"}
    for plot in plots:
        svg = plot_to_svg(plot)
        assert svg.startswith("<svg "), plot["kind"]
        assert svg.rstrip().endswith("</svg>")
        # Inline in HTML: no prolog, no DOCTYPE, no page-wide <style>, no metadata, no URL.
        for banned in ("<?xml", "<!DOCTYPE", "<style", "<metadata", "<!--", "http://", "https://", "xlink:"):
            assert banned not in svg, (plot["kind"], banned)


def test_same_plot_gives_the_same_bytes():
    first = plot_to_svg(BAR)
    assert first  # non-trivial: something was drawn
    assert plot_to_svg(BAR) == first
    assert plot_to_svg(BAR, id_prefix="c1p1-") == plot_to_svg(BAR, id_prefix="c1p1-")


def test_ids_are_prefixed_and_references_resolve_inside_the_svg():
    svg = plot_to_svg(BAR, id_prefix="c3p2-")
    assert ids(svg), "a chart defines its clip paths"
    assert all(i.startswith("c3p2-") for i in ids(svg))
    assert refs(svg) <= set(ids(svg))


def test_two_charts_on_one_page_share_no_id():
    line = {"kind": "line", "title": "ROC", "data": {"series": [{"name": "model", "x": [0, 0.5, 1], "y": [0, 0.8, 1]}]}}
    page = plot_to_svg(BAR, id_prefix="c1p1-") + plot_to_svg(line, id_prefix="c1p2-")
    all_ids = ids(page)
    assert len(all_ids) == len(set(all_ids))


def test_default_prefixes_of_different_plots_differ():
    other = {**BAR, "title": "another"}
    assert not set(ids(plot_to_svg(BAR))) & set(ids(plot_to_svg(other)))


def test_bad_id_prefix_is_refused():
    with pytest.raises(ValueError, match="id_prefix"):
        plot_to_svg(BAR, id_prefix='x" onload="alert(1)')


@pytest.mark.parametrize("text", ["$", "a $lone dollar", "$x$ cost $", r"\frac{$", "50% of $5"])
def test_dollar_signs_in_any_text_do_not_crash(text):
    plots = [
        {"kind": "bar", "title": text, "data": {"labels": [text, "b"], "values": [1, 2], "ylabel": text}},
        {"kind": "line", "title": text,
         "data": {"series": [{"name": text, "x": [0, 1], "y": [0, 1]}], "x_label": text, "y_label": text}},
        {"kind": "hist", "title": text, "data": {"edges": [0, 1, 2], "counts": [3, 14], "x_label": text}},
    ]
    for plot in plots:
        assert plot_to_svg(plot).startswith("<svg"), plot["kind"]


def test_null_and_non_finite_values_are_skipped_like_null():
    def bar(values):
        plot = {"kind": "bar", "title": "t", "data": {"labels": ["a", "b", "c"], "values": values}}
        return plot_to_svg(plot, id_prefix="t-")  # the default prefix hashes the input

    with_null = bar([1.0, None, 2.0])
    assert with_null
    assert bar([1.0, math.nan, 2.0]) == with_null
    assert bar([1.0, math.inf, 2.0]) == with_null
    assert bar([1.0, "n/a", 2.0]) == with_null
    assert bar([1.0, 3.0, 2.0]) != with_null  # the third bar really was left out


def test_null_points_of_a_line_and_a_band_are_skipped():
    def line(x, y):
        return plot_to_svg({"kind": "line", "title": "t", "data": {"series": [
            {"name": "s", "x": x, "y": y, "y_low": [v - 0.1 if v is not None else None for v in y],
             "y_high": [v + 0.1 if v is not None else None for v in y]}]}}, id_prefix="t-")

    clean = line([0, 1, 2], [0.0, 0.5, 1.0])
    assert clean
    assert line([0, 1, None, 2], [0.0, 0.5, 0.7, 1.0]) == clean
    assert line([0, 1, 1.5, 2], [0.0, 0.5, None, 1.0]) == clean


def test_nothing_drawable_gives_an_empty_string():
    assert plot_to_svg({"kind": "bar", "title": "t", "data": {"labels": ["a"], "values": [None]}}) == ""
    assert plot_to_svg({"kind": "line", "title": "t", "data": {"series": [{"x": [None], "y": [1]}]}}) == ""
    assert plot_to_svg({"kind": "hist", "title": "t", "data": {"edges": [0, 1], "counts": [math.nan]}}) == ""


@pytest.mark.parametrize("plot", [
    {"kind": "sankey", "title": "t", "data": {"nodes": []}},
    {"kind": "bar", "title": "t", "data": "not a dict"},
    {"kind": None, "title": "t", "data": {}},
    {"title": "no kind"},
    "not a plot",
])
def test_unknown_or_malformed_plots_give_an_empty_string(plot):
    assert plot_to_svg(plot) == ""


def test_malformed_values_do_not_raise():
    plots = [
        {"kind": "bar", "title": "t", "data": {"labels": ["a", "b"], "values": [1], "ci_low": "x", "thresholds": 3}},
        {"kind": "bar", "title": "t", "data": {"labels": "ab", "values": [1, 2], "thresholds": [None, {"min": "x"}]}},
        {"kind": "line", "title": "t", "data": {"series": [{"x": [0, 1], "y": [1]}, "junk"], "thresholds": "x"}},
        {"kind": "hist", "title": "t", "data": {"edges": [0, 1, 2], "counts": [1, 2, 3, 4]}},
    ]
    for plot in plots:
        assert isinstance(plot_to_svg(plot), str)


def test_histogram_from_edges_and_from_labels():
    assert plot_to_svg({"kind": "hist", "title": "t", "data": {"edges": [0, 1, 2, 3], "counts": [3, 0, 7]}})
    assert plot_to_svg({"kind": "hist", "title": "t", "data": {"labels": ["x", "y"], "values": [0.0, 0.03]}})


def test_thresholds_as_one_dict_or_one_per_bar_are_drawn():
    base = {"labels": ["F", "M"], "values": [0.7, 0.9]}
    plain = plot_to_svg({"kind": "bar", "title": "t", "data": base})
    one = plot_to_svg({"kind": "bar", "title": "t", "data": {**base, "thresholds": {"min": 0.8, "max": 1.0}}})
    each = plot_to_svg({"kind": "bar", "title": "t", "data": {**base, "thresholds": [{"min": 0.8}, {"max": 0.95}]}})
    assert len({plain, one, each}) == 3
    colour = THRESHOLD_COLOUR.lower()  # matplotlib writes colours in lower case
    assert colour in one and colour in each and colour not in plain


def test_many_long_labels_make_a_taller_horizontal_chart():
    labels = [f"feature_{i}_with_a_long_name" for i in range(30)]
    svg = plot_to_svg({"kind": "bar", "title": "t", "data": {"labels": labels, "values": list(range(30, 0, -1))}})
    height = float(re.search(r'height="([\d.]+)pt"', svg).group(1))
    assert height > 3.0 * 72


def test_title_is_escaped_in_the_svg():
    svg = plot_to_svg({**BAR, "title": "<script>alert(1)</script> & co"})
    assert "<script>" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in svg


def test_global_matplotlib_settings_are_left_alone():
    before = {k: matplotlib.rcParams[k] for k in ("svg.fonttype", "text.parse_math", "font.size", "svg.hashsalt")}
    plot_to_svg(BAR)
    assert {k: matplotlib.rcParams[k] for k in before} == before


def test_heatmap_draws_a_matrix_with_blank_nulls_and_its_numbers():
    from auditkit.charts.svg import plot_to_svg

    plot = {"kind": "heatmap", "title": "Pairwise H",
            "data": {"labels": ["x1", "x2", "$x3"], "values": [[None, 0.95, 0.0], [0.95, None, 0.0], [0.0, 0.0, None]]}}
    svg = plot_to_svg(plot)
    assert svg.startswith("<svg") and svg == plot_to_svg(plot)  # deterministic
    assert plot_to_svg({"kind": "heatmap", "title": "", "data": {"labels": ["a"], "values": [[None]]}}) == ""


def test_scatter_and_beeswarm_draw_and_are_deterministic():
    from auditkit.charts.svg import plot_to_svg

    scatter = {"kind": "scatter", "title": "Dependence", "data": {"x": [1, 2, None, 4], "y": [0.1, -0.2, 0.3, None]}}
    categorical = {"kind": "scatter", "title": "d", "data": {"x": ["a", "b", "a"], "y": [0.1, 0.2, 0.3]}}
    bees = {"kind": "beeswarm", "title": "b", "data": {"rows": [
        {"feature": "income", "shap": [0.1, -0.3, 0.2], "value": [10.0, 50.0, 30.0]},
        {"feature": "purpose", "shap": [0.05, 0.0, None], "value": ["car", "other", "car"]}]}}
    for plot in (scatter, categorical, bees):
        svg = plot_to_svg(plot)
        assert svg.startswith("<svg") and svg == plot_to_svg(plot)
    assert plot_to_svg({"kind": "beeswarm", "title": "", "data": {"rows": []}}) == ""


def test_waterfall_draws_with_and_without_lime_beside_it_and_needs_a_base():
    from auditkit.charts.svg import plot_to_svg

    data = {"labels": ["income = 12240", "debt_ratio = 0.43", "3 other features"], "values": [1.8, -0.4, 0.05],
            "base": -1.3, "output": 0.15, "threshold": 0.0, "xlabel": "log-odds", "row": 7}
    alone = plot_to_svg({"kind": "waterfall", "title": "w", "data": data})
    beside = plot_to_svg({"kind": "waterfall", "title": "w", "data": {**data, "side_values": [1.2, -0.3, None]}})
    assert alone.startswith("<svg") and beside.startswith("<svg") and alone != beside
    assert beside == plot_to_svg({"kind": "waterfall", "title": "w", "data": {**data, "side_values": [1.2, -0.3, None]}})
    assert plot_to_svg({"kind": "waterfall", "title": "w", "data": {**data, "base": None}}) == ""


def test_a_line_chart_marks_points_and_draws_a_reference_line():
    from auditkit.charts.svg import plot_to_svg

    line = {"series": [{"name": "income", "x": [0, 50, 100], "y": [0.8, 0.5, 0.2]}]}
    plain = plot_to_svg({"kind": "line", "title": "p", "data": line})
    marked = plot_to_svg({"kind": "line", "title": "p", "data": {**line, "markers": [{"x": 50, "y": 0.5}],
                                                                 "hline": {"y": 0.5, "label": "decision threshold"}}})
    assert plain.startswith("<svg") and marked.startswith("<svg") and marked != plain


# ---------------------------------------------------------------------------- degenerate charts, palette, layout


@pytest.mark.parametrize("plot, reason", [
    ({"kind": "bar", "title": "t", "data": {"labels": ["a", "b", "c"], "values": [0, 0.0, None]}}, "every value is 0"),
    ({"kind": "bar", "title": "t", "data": {"labels": ["only"], "values": [0.4], "ci_low": [0.3], "ci_high": [0.5]}},
     "a single value"),
    ({"kind": "line", "title": "t", "data": {"series": [{"x": [0.1], "y": [0.5]}, {"x": [0.1], "y": [0.5]}]}},
     "a single point"),
    ({"kind": "line", "title": "t", "data": {"series": [{"x": [0, 1, 2], "y": [0, 0, 0]}]}}, "every value is 0"),
    ({"kind": "hist", "title": "t", "data": {"edges": [0.0, 0.5, 1.0], "counts": [0, 200]}}, "one bin, 0.5 to 1"),
    ({"kind": "hist", "title": "t", "data": {"edges": [0.5, 0.7, 0.9, 1.1], "counts": [1, 1, 1]}},
     "only 3 values, too few for a histogram"),
    ({"kind": "scatter", "title": "t", "data": {"x": [1, 1], "y": [2, 2]}}, "a single point"),
    ({"kind": "waterfall", "title": "t", "data": {"labels": ["a", "b"], "values": [0, 0], "base": 0.1}},
     "every contribution is 0"),
])
def test_a_degenerate_plot_is_not_drawn_and_says_why(plot, reason):
    from auditkit.charts.svg import draw_plot

    chart = draw_plot(plot)
    assert chart.svg == "" and plot_to_svg(plot) == ""
    assert chart.reason.startswith("nothing to draw: ") and reason in chart.reason


def test_a_non_negative_quantity_gets_no_negative_axis():
    from matplotlib.figure import Figure

    from auditkit.charts import svg as charts

    # one bar of zero among small positives: matplotlib's margins used to put -0.005 under it
    for kind, data in [("bar", {"labels": ["a", "b", "c"], "values": [0.0, 0.002, 0.01]}),
                       ("bar", {"labels": ["a", "b"], "values": [0.0, 40], "horizontal": True}),
                       ("line", {"series": [{"x": [0, 1, 2], "y": [0.0, 0.3, 0.1]}]}),
                       ("hist", {"edges": [0, 1, 2, 3], "counts": [0, 15, 2]})]:
        fig = Figure()
        ax = fig.add_subplot()
        assert charts._DRAWERS[kind](fig, ax, data)
        charts._no_negative_axis(ax)
        low = min(ax.get_xlim()) if data.get("horizontal") else min(ax.get_ylim())
        assert low >= 0, (kind, ax.get_xlim(), ax.get_ylim())
    # a quantity that does go negative keeps its negative axis
    fig = Figure()
    ax = fig.add_subplot()
    charts._bar(fig, ax, {"labels": ["a", "b"], "values": [-0.2, 0.5]})
    charts._no_negative_axis(ax)
    assert min(ax.get_ylim()) < -0.2


def test_the_palette_is_okabe_ito_without_green_and_thresholds_are_vermillion():
    from auditkit.charts.svg import PALETTE

    okabe_ito = {"#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}
    greys = {"#8C8C8C"}
    assert set(PALETTE) <= okabe_ito | greys
    assert "#009E73" not in PALETTE  # no orange-green or red-green pair can be drawn
    assert THRESHOLD_COLOUR == "#D55E00" and THRESHOLD_COLOUR not in PALETTE
    # the colours a chart draws come from the palette (and the threshold colour)
    svg = plot_to_svg({"kind": "line", "title": "t", "data": {"series": [
        {"name": f"s{i}", "x": [0, 1, 2], "y": [i, i + 1, i]} for i in range(4)], "thresholds": {"max": 2}}})
    drawn = {c.upper() for c in re.findall(r'stroke="(#[0-9a-fA-F]{6})"', svg)}
    assert drawn <= set(PALETTE) | {THRESHOLD_COLOUR} | {"#333333", "#8C8C8C", "#E2E2E2", "#767676", "#FFFFFF"}, drawn
    assert "#0072B2" in drawn and "#E69F00" in drawn


def test_grouped_bars_draw_one_section_per_attribute_with_its_own_threshold_line():
    from auditkit.charts.svg import draw_plot

    data = {"labels": ["F", "M", "Asian", "Black", "White"], "values": [0.62, 0.66, 0.7, 0.52, 0.69],
            "sections": ["sex", "sex", "race", "race", "race"], "included": [True, True, True, True, False],
            "thresholds": [{"min": 0.53}, {"min": 0.53}, {"min": 0.56}, {"min": 0.56}, {}]}
    chart = draw_plot({"kind": "bar", "title": "Selection rate per group", "data": data})
    assert chart.svg and chart.half  # a short sectioned chart takes half the width
    flat = draw_plot({"kind": "bar", "title": "Selection rate per group",
                      "data": {k: v for k, v in data.items() if k != "sections"}})
    assert flat.svg != chart.svg
    # one threshold segment per section (the bars of a section share theirs), none for "{}"
    segments = re.findall(r'<g id="LineCollection_\d+">\s*<path[^>]*stroke: #d55e00', chart.svg)
    assert len(segments) == 2


def test_small_charts_are_half_width_and_wide_ones_full():
    from auditkit.charts.svg import HALF_WIDTH_IN, WIDTH_IN, draw_plot

    few = draw_plot({"kind": "bar", "title": "t", "data": {"labels": ["a", "b", "c"], "values": [1, 2, 3]}})
    many = draw_plot({"kind": "bar", "title": "t", "data": {"labels": [f"g{i}" for i in range(10)],
                                                            "values": list(range(1, 11))}})
    hist = draw_plot({"kind": "hist", "title": "t", "data": {"edges": [0, 1, 2, 3], "counts": [3, 0, 7]}})
    assert few.width_in == HALF_WIDTH_IN and hist.width_in == HALF_WIDTH_IN
    assert many.width_in == WIDTH_IN
    assert f'width="{HALF_WIDTH_IN * 72:g}pt"' in few.svg


def test_chart_text_is_escaped_svg_text_in_dejavu_sans_or_a_look_alike():
    svg = plot_to_svg({"kind": "bar", "title": "t", "data": {"labels": ["<b>F</b>", "M & co"], "values": [1, 2],
                                                              "y_label": "rate"}})
    assert "DejaVuSans-" not in svg  # no glyph outlines: one <text> per label
    assert "&lt;b&gt;F&lt;/b&gt;" in svg and "<b>" not in svg and "M &amp; co" in svg
    assert "font-family=\"&#x27;DejaVu Sans&#x27;, &#x27;Bitstream Vera Sans&#x27;, Verdana, sans-serif\"" in svg


def test_a_narrow_charts_legend_of_long_names_stays_inside_the_chart():
    # A case file's what-if chart cut its legend at the edge ("employment_yea", "the row's own va").
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from auditkit.charts import svg

    names = ["income", "employment_years", "debt_ratio", "n_late_payments"]
    data = {"series": [{"name": n, "x": [0, 50, 100], "y": [0.8 - i / 10, 0.5, 0.2 + i / 10]} for i, n in enumerate(names)],
            "markers": [{"x": 50, "y": 0.5, "label": "the row's own value"}],
            "hline": {"y": 0.5, "label": "decision threshold"}}
    with matplotlib.rc_context(svg._RC):
        fig = Figure(figsize=(svg.WIDTH_IN, svg.HEIGHT_IN))
        ax = fig.add_subplot()
        assert svg._line(fig, ax, data)
        assert fig.get_size_inches()[0] <= svg.HALF_WIDTH_IN  # drawn as a small chart
        fig.tight_layout(pad=0.4)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        legend = ax.get_legend().get_window_extent(canvas.get_renderer())
        assert legend.x0 >= -0.5 and legend.x1 <= fig.bbox.x1 + 0.5, (legend, fig.bbox)


def test_a_half_width_charts_six_digit_tick_labels_do_not_run_into_each_other():
    # The demo's "Dependence: income" chart read "75000100000125000" under its x axis.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from auditkit.charts import svg

    incomes = [float(v) for v in range(8_000, 166_000, 1_000)]
    data = {"x": incomes, "y": [1.0 - v / 60_000 for v in incomes], "x_label": "income", "y_label": "SHAP"}
    with matplotlib.rc_context(svg._RC):
        fig = Figure(figsize=(svg.WIDTH_IN, svg.HEIGHT_IN))
        ax = fig.add_subplot()
        assert svg._scatter(fig, ax, data)
        svg._readable_number_ticks(ax, float(fig.get_size_inches()[0]))
        fig.tight_layout(pad=0.4)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        renderer = canvas.get_renderer()
        labels = [t for t in ax.get_xticklabels() if t.get_text() and t.get_visible()]
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
    assert len(boxes) >= 3
    assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:])), [t.get_text() for t in labels]
    assert {"50k", "100k"} <= {t.get_text() for t in labels}


def test_compact_tick_labels_keep_small_numbers_and_scale_large_ones():
    from auditkit.charts.svg import _compact_number

    assert [_compact_number(v) for v in (0.0, 0.25, 999.0, 7_500.0, 25_000.0, 125_000.0, 1_500_000.0, -40_000.0)] == \
        ["0", "0.25", "999", "7.5k", "25k", "125k", "1.5M", "\u221240k"]
