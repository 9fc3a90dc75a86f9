"""charts.svg: plot data of results.json as inline SVG."""
from __future__ import annotations

import math
import re
from typing import Any

import matplotlib
import pytest

from auditkit.charts import plot_to_svg

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
    assert ids(svg), "a chart with text as paths defines glyphs and clip paths"
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
        {"kind": "hist", "title": text, "data": {"edges": [0, 1, 2], "counts": [3, 4], "x_label": text}},
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
    assert "#a8322d" in one and "#a8322d" in each and "#a8322d" not in plain  # the threshold colour


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
