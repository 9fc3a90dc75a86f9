"""The report draws table ``comparisons`` with raw and adjusted p-values, and escapes its labels (#18)."""
from __future__ import annotations

from results_factory import check, metric, results

from auditkit.render.html import comparisons_view, format_p, metrics_view, render_html
from auditkit.results.io import validate_results


def _record(group: str, p: float | None, p_adjusted: float | None, detectable: float | None) -> dict:
    return {"attribute": "race", "rate": "selection_rate", "group": group, "reference_group": "White",
            "n": 40, "reference_n": 3000, "group_rate": 0.3, "reference_rate": 0.5, "ratio": 0.6,
            "difference": -0.2, "test": "Fisher's exact test", "p_value": p, "p_adjusted": p_adjusted,
            "min_detectable_ratio": detectable, "underpowered": detectable is None or detectable < 0.8}


def test_p_values_keep_their_magnitude_and_never_print_as_zero():
    assert format_p(3.9e-18) == "3.9e-18"
    assert format_p(0.04567) == "0.0457"
    assert format_p(1.0) == "1.0000"
    assert format_p(None) == format_p(float("nan")) == "—"


def test_comparisons_view_pairs_each_group_with_its_reference():
    view = comparisons_view([_record("Black", 0.0123, 0.0492, 0.52), _record("Other", 0.2, 1.0, None)])
    first, second = view["rows"]
    assert (first["n"], first["rates"], first["test"]) == ("40 / 3,000", "0.3 / 0.5", "Fisher")
    assert (first["p"], first["p_adjusted"], first["detectable"], first["underpowered"]) == \
        ("0.0123", "0.0492", "0.52", True)
    assert second["detectable"] == "none" and view["has_adjusted"]


def test_a_regressors_comparison_shows_its_smallest_detectable_difference():
    record = {"attribute": "race", "rate": "mean_prediction", "group": "Black", "reference_group": "White",
              "n": 2000, "reference_n": 12000, "group_rate": 9.6, "reference_rate": 9.0, "ratio": 1.067,
              "difference": 0.6, "test": "Welch's t test", "p_value": 1e-20, "p_adjusted": 1e-19,
              "min_detectable_ratio": None, "min_detectable_difference": 0.0728, "underpowered": False}
    (row,) = comparisons_view([record])["rows"]
    assert row["detectable"] == "±0.0728 (difference)"


def test_report_shows_adjusted_p_values_in_the_comparisons_and_metrics_tables():
    fairness = check("rates", "group_fairness", {
        "selection_rate_ratio[race]": metric(0.6, p_value=0.0123, p_adjusted=0.0492, correction="holm",
                                             family_size=4, comparison={"attribute": "race", "rate": "selection_rate",
                                                                        "group": "<b>Black</b>",
                                                                        "reference_group": "White"})})
    fairness["tables"]["comparisons"] = [_record("<b>Black</b>", 0.0123, 0.0492, 0.52)]
    document = results([fairness])
    document["statistics"] = {"multiple_comparisons": "holm", "alpha": 0.05, "power": 0.8, "family_size": 4}
    validate_results(document)
    rows = metrics_view(document["checks"][0])
    assert rows["has_p_adjusted"] and rows["rows"][0]["p_adjusted"] == "0.0492"
    html = render_html(document)
    assert "adj. p" in html and "min. detectable ratio" in html and "0.0492" in html
    assert "&lt;b&gt;Black&lt;/b&gt;" in html and "<b>Black</b>" not in html
