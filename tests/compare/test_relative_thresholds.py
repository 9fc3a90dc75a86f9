"""max_decrease / max_increase: a figure judged against the same figure of a baseline run."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from auditkit.policy.models import Threshold
from auditkit.results.model import Metric
from auditkit.thresholds import compare, evaluate


def baseline_of(figures: dict[str, Metric]):
    def lookup(metric: str):
        if metric in figures:
            return figures[metric], None
        return None, f"the baseline's check 'c' has no {metric}"
    return lookup


def test_the_relative_bound_fails_while_the_absolute_one_passes():
    finding = compare("roc_auc", Metric(0.80), Threshold(min=0.75, max_decrease=0.02),
                      baseline_of({"roc_auc": Metric(0.83)}))
    assert (finding.status, finding.absolute_status, finding.relative_status) == ("fail", "pass", "fail")
    assert finding.baseline == 0.83
    assert finding.change == pytest.approx(-0.03, abs=1e-15)
    assert finding.message == ("roc_auc = 0.8 >= 0.75 (absolute: pass); fell by 0.03 from baseline 0.83 > 0.02 "
                               "(max_decrease) (relative: fail)")


def test_a_change_within_the_bound_passes():
    finding = compare("roc_auc", Metric(0.82), Threshold(min=0.75, max_decrease=0.02),
                      baseline_of({"roc_auc": Metric(0.83)}))
    assert (finding.status, finding.relative_status) == ("pass", "pass")
    assert "within max_decrease 0.02 (relative: pass)" in finding.message


def test_a_change_of_exactly_the_bound_passes():
    # 0.80 - 0.78 is 0.020000000000000018 in binary floating point
    finding = compare("x", Metric(0.78), Threshold(max_decrease=0.02), baseline_of({"x": Metric(0.80)}))
    assert finding.status == "pass"


def test_max_increase_bounds_a_rise():
    finding = compare("flip_rate[0.1]", Metric(0.07), Threshold(max=0.1, max_increase=0.01),
                      baseline_of({"flip_rate[0.1]": Metric(0.05)}))
    assert (finding.status, finding.absolute_status, finding.relative_status) == ("fail", "pass", "fail")
    assert "rose by 0.02 from baseline 0.05 > 0.01 (max_increase)" in finding.message


def test_a_relative_warning_is_a_warning():
    finding = compare("roc_auc", Metric(0.70), Threshold(max_decrease=0.01, severity="warn"),
                      baseline_of({"roc_auc": Metric(0.80)}))
    assert (finding.status, finding.relative_status, finding.absolute_status) == ("warn", "warn", None)
    assert finding.message.startswith("roc_auc = 0.7: fell by 0.1 from baseline 0.8")


def test_a_failing_absolute_bound_still_fails_when_the_relative_one_passes():
    finding = compare("roc_auc", Metric(0.70), Threshold(min=0.75, max_decrease=0.02),
                      baseline_of({"roc_auc": Metric(0.70)}))
    assert (finding.status, finding.absolute_status, finding.relative_status) == ("fail", "fail", "pass")


def test_on_lower_compares_the_lower_interval_bounds_of_both_runs():
    finding = compare("roc_auc", Metric(0.80, ci=(0.76, 0.84)), Threshold(max_decrease=0.01, on="lower"),
                      baseline_of({"roc_auc": Metric(0.80, ci=(0.78, 0.82))}))
    assert finding.status == "fail"
    assert (finding.value, finding.baseline) == (0.76, 0.78)


def test_a_metric_missing_from_the_baseline_is_not_assessed_and_says_why():
    finding = compare("roc_auc", Metric(0.80), Threshold(min=0.75, max_decrease=0.02), baseline_of({}))
    assert (finding.status, finding.relative_status) == ("pass", "skipped")
    assert finding.relative_note == "the baseline's check 'c' has no roc_auc"
    assert "max_decrease 0.02 not assessed: the baseline's check 'c' has no roc_auc" in finding.message


def test_without_a_baseline_run_the_relative_bound_is_not_assessed():
    finding = compare("roc_auc", Metric(0.80), Threshold(max_decrease=0.02), None)
    assert (finding.status, finding.relative_status) == ("pass", "skipped")
    assert finding.relative_note == "the run has no baseline (--no-baseline)"


def test_a_figure_that_could_not_be_computed_is_an_error_for_both_verdicts():
    finding = compare("roc_auc", Metric(None, note="one class"), Threshold(max_decrease=0.02),
                      baseline_of({"roc_auc": Metric(0.8)}))
    assert (finding.status, finding.relative_status) == ("error", "error")


def test_a_threshold_without_a_relative_bound_writes_no_relative_fields():
    finding = compare("roc_auc", Metric(0.80), Threshold(min=0.75), baseline_of({"roc_auc": Metric(0.9)}))
    assert set(finding.to_dict()) == {"metric", "value", "status", "severity", "min", "on", "message"}


def test_evaluate_applies_a_relative_bound_to_every_attribute():
    metrics = {"selection_rate_ratio[sex]": Metric(0.95), "selection_rate_ratio[race]": Metric(0.60)}
    base = baseline_of({"selection_rate_ratio[sex]": Metric(0.96), "selection_rate_ratio[race]": Metric(0.75)})
    findings = evaluate(metrics, {"selection_rate_ratio": Threshold(min=0.5, max_decrease=0.05)}, base)
    assert [(f.metric, f.status) for f in findings] == [("selection_rate_ratio[sex]", "pass"),
                                                       ("selection_rate_ratio[race]", "fail")]


def test_a_threshold_needs_some_bound_and_relative_bounds_are_not_negative():
    with pytest.raises(ValidationError, match="a threshold needs min, max, max_decrease or max_increase"):
        Threshold(severity="warn")
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        Threshold(max_decrease=-0.1)
    assert Threshold(max_increase=0.0).relative
