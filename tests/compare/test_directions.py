"""Which way is better for a metric: thresholds first, then the table of known directions."""
from __future__ import annotations

from auditkit.compare.directions import KNOWN_DIRECTIONS, direction_of, from_thresholds, known_direction


def test_a_min_threshold_means_higher_is_better():
    assert from_thresholds([{"metric": "x", "min": 0.8}]) == "higher"
    assert from_thresholds([{"metric": "x", "max_decrease": 0.02}]) == "higher"


def test_a_max_threshold_means_lower_is_better():
    assert from_thresholds([{"metric": "x", "max": 0.1}]) == "lower"
    assert from_thresholds([{"metric": "x", "max_increase": 0.01}]) == "lower"


def test_a_band_or_conflicting_thresholds_give_no_direction():
    assert from_thresholds([{"metric": "x", "min": 0.9, "max": 1.1}]) is None
    assert from_thresholds([{"metric": "x", "min": 0.9}, {"metric": "x", "max": 1.1}]) is None
    assert from_thresholds([]) is None


def test_the_threshold_wins_over_the_table():
    # importance[n_open_accounts] has no direction in the table; a max threshold gives one
    assert direction_of("permutation_importance", "importance[n_open_accounts]", [{"max": 0.01}]) == ("lower", "threshold")
    # roc_auc is higher-is-better in the table, but a policy author who caps it is obeyed
    assert direction_of("performance", "roc_auc", [{"max": 0.99}]) == ("lower", "threshold")


def test_the_table_gives_directions_by_base_name():
    assert direction_of("group_fairness", "selection_rate_ratio[race]", []) == ("higher", "table")
    assert direction_of("group_fairness", "equalized_odds_difference[sex & race]", []) == ("lower", "table")
    assert direction_of("performance", "log_loss", []) == ("lower", "table")
    assert direction_of("noise_robustness", "flip_rate[0.1]", []) == ("lower", "table")


def test_descriptive_figures_have_no_direction():
    for check_type, name in (("shap_importance", "mean_abs_shap[income]"), ("data_integrity", "rows"),
                             ("group_fairness", "base_rate_ratio[race]"), ("coefficients", "coefficient[income]")):
        assert direction_of(check_type, name, []) == (None, None), name


def test_every_known_direction_is_a_metric_some_check_declares():
    """The table names real metrics (a typo there would silently never apply)."""
    from auditkit.core.registry import get_registry

    declared = {pattern[:-3] if pattern.endswith("[*]") else pattern
                for check_type in get_registry().types() for pattern in check_type.metrics}
    stray = {name.split(":", 1)[-1] for name in KNOWN_DIRECTIONS} - declared
    assert stray == set()
    assert known_direction("performance", "roc_auc") == "higher"
