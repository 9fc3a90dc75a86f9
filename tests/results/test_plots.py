"""results.plots: each plot kind's data is typed once; the schema is generated from the types."""
from __future__ import annotations

import pytest

from auditkit.results.io import results_schema
from auditkit.results.model import Plot
from auditkit.results.plots import PlotDataError, with_plot_definitions


def test_shipped_schema_plot_definitions_are_generated_from_the_types():
    shipped = results_schema()
    assert with_plot_definitions(shipped) == shipped, "run: python -m auditkit.results.plots"


def test_a_key_the_kind_does_not_know_is_refused_when_the_check_builds_the_plot():
    with pytest.raises(PlotDataError, match="x_lable"):
        Plot("line", "t", {"series": [{"x": [0, 1], "y": [0, 1]}], "x_lable": "typo"})


def test_a_required_key_missing_is_refused():
    with pytest.raises(PlotDataError, match="lacks values"):
        Plot("bar", "t", {"labels": ["a"]})


def test_former_axis_names_are_written_as_the_current_ones():
    plot = Plot("bar", "t", {"labels": ["a"], "values": [1.0], "xlabel": "group", "ylabel": "rate"})
    assert plot.data == {"labels": ["a"], "values": [1.0], "x_label": "group", "y_label": "rate"}


def test_unknown_kind_is_refused():
    with pytest.raises(PlotDataError, match="unknown plot kind 'pie'"):
        Plot("pie", "t", {})


def test_interval_legend_says_the_plots_level():
    from auditkit.charts.svg import interval_label

    assert interval_label({"level": 0.9}) == "90% interval"
    assert interval_label({}) == "95% interval"  # files written before plots carried a level
