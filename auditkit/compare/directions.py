"""Which way is better for a metric: the direction a change must take to be a regression.

A direction comes, in this order, from

1. the thresholds of the two runs: a metric judged with ``min`` only (or ``max_decrease``
   only) is better higher, one judged with ``max`` only (or ``max_increase`` only) is better
   lower. The policy's author knows what the figure means for this model, so the threshold
   wins over the table. A band (``min`` and ``max``) says nothing about a direction;
2. :data:`KNOWN_DIRECTIONS`, the metrics whose direction does not depend on the use: a
   higher ROC AUC, a ratio of group rates closer to 1, a lower flip rate are better whatever
   the model. It is keyed by the metric's base name (``selection_rate_ratio`` for
   ``selection_rate_ratio[race]``); ``check_type:name`` entries override a name for one
   check type;
3. otherwise none: the change is shown, never called a regression (descriptive figures:
   importances, ranges, row counts, coefficients).
"""
from __future__ import annotations

from typing import Any, Final, Iterable, Literal, Optional

Direction = Literal["higher", "lower"]

#: Per-group rates of ``group_fairness`` (DESIGN.md); ``base_rate`` is the data's, not the model's.
_MODEL_RATES: Final = ("selection_rate", "true_positive_rate", "false_positive_rate", "false_negative_rate",
                       "true_negative_rate", "positive_predictive_value", "negative_predictive_value", "accuracy")

_HIGHER: Final = (
    # performance: scikit-learn's scorer names
    "accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro", "roc_auc", "average_precision", "r2",
    # fairness: a ratio of group rates is smallest / largest, 1 at parity
    *(f"{rate}_ratio" for rate in _MODEL_RATES),
    "demographic_parity_ratio", "equalized_odds_ratio", "equal_opportunity_ratio",
    "impact_ratio", "scoring_impact_ratio",
    # recourse and robustness: the share of rows with recourse, its parity, the change needed to flip
    "recourse_rate", "recourse_rate_ratio", "recourse_burden_ratio",
    "median_perturbation_linf", "median_perturbation_l2", "median_perturbation_ratio",
    # explanations: agreement, fidelity and stability
    "rank_stability", "rank_stability_lower_quartile", "global_rank_stability",
    "lime_fidelity", "lime_fidelity_min", "shap_lime_agreement", "top_k_overlap", "sign_agreement",
    "reason_code_coverage", "anchor_precision", "anchor_precision_min", "anchor_coverage", "anchor_target_met",
    "fidelity_r2", "fidelity_accuracy",
)
_LOWER: Final = (
    # performance: losses and errors
    "log_loss", "brier_score", "mae", "rmse",
    # fairness: a difference of group rates is largest - smallest, 0 at parity
    *(f"{rate}_difference" for rate in _MODEL_RATES),
    "demographic_parity_difference", "equalized_odds_difference", "equal_opportunity_difference",
    "average_odds_difference", "predictive_parity_difference",
    "flip_rate", "max_pair_flip_rate", "mean_abs_score_change",
    # data quality: counts and shares of faults
    "missing_cells", "max_missing_share", "missing_share", "infinite_cells", "infinite_values", "constant_columns",
    "duplicate_columns", "duplicate_rows", "duplicate_row_share", "out_of_range", "out_of_range_rows",
    "out_of_range_share", "dtype_mismatches",
    # proxies: how well the inputs predict a protected attribute
    "max_single_feature_auc", "all_features_auc", "max_mutual_information", "max_mutual_information_share",
    "protected_share",
    # robustness: flips, breakages and violations
    "performance_drop", "sensitivity", "success_rate_linf", "success_rate_l2", "error_rate", "decision_change_rate",
    "features_breaking", "max_decision_change_rate", "failures", "failure_rate", "violation_rate",
    "max_violation_rate", "monotonicity_violation", "pdp_max_violation",
    # explanations: numerical error, rule length, recourse cost
    "additivity_error", "anchor_length", "mean_changed_features", "median_changed_features", "mean_distance",
)

#: The table of known directions (documented in the README's ``auditkit diff`` section).
KNOWN_DIRECTIONS: Final[dict[str, Direction]] = {**{name: "higher" for name in _HIGHER},
                                                 **{name: "lower" for name in _LOWER}}


def base_name(metric: str) -> str:
    """``selection_rate_ratio`` for ``selection_rate_ratio[race]``."""
    return metric.split("[", 1)[0]


def from_thresholds(findings: Iterable[dict[str, Any]]) -> Optional[Direction]:
    """The direction the findings of one metric imply, or None (none, a band, or a conflict)."""
    seen: set[Direction] = set()
    for finding in findings:
        lower_bound = finding.get("min") is not None or finding.get("max_decrease") is not None
        upper_bound = finding.get("max") is not None or finding.get("max_increase") is not None
        if lower_bound and not upper_bound:
            seen.add("higher")
        elif upper_bound and not lower_bound:
            seen.add("lower")
    return seen.pop() if len(seen) == 1 else None


def known_direction(check_type: str, metric: str) -> Optional[Direction]:
    """The table's direction for ``metric`` of a ``check_type`` check, or None."""
    name = base_name(metric)
    return KNOWN_DIRECTIONS.get(f"{check_type}:{name}", KNOWN_DIRECTIONS.get(name))


def direction_of(check_type: str, metric: str, findings: Iterable[dict[str, Any]]
                 ) -> tuple[Optional[Direction], Optional[Literal["threshold", "table"]]]:
    """The direction of ``metric`` and where it came from (see the module docstring)."""
    implied = from_thresholds(findings)
    if implied is not None:
        return implied, "threshold"
    known = known_direction(check_type, metric)
    return (known, "table") if known is not None else (None, None)
