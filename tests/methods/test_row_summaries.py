"""Summaries of rows that combine exactly (#15): exact sums, score counts, and the
performance, group_fairness and impact_ratio figures from any split of the rows equal to the
figures of the whole."""
from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from auditkit.core.registry import get_registry
from auditkit.engine.context import AuditContext, AuditData
from auditkit.methods import score_counts as sc
from auditkit.methods.exact_sums import exact_sum, exact_sums, total
from support import credit_policy, write_policy


def _wild(rng: np.random.Generator, n: int) -> np.ndarray:
    """Values whose float sum depends on its order: magnitudes from 1e-300 to 1e300, both signs, subnormals."""
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    values[:5] = [5e-324, -5e-324, 1e300, -1e300, 0.1]
    return rng.permutation(values)


def _splits(rng: np.random.Generator, n: int, pieces: int = 3) -> list[tuple[int, int]]:
    cuts = sorted(rng.choice(np.arange(1, n), pieces - 1, replace=False).tolist())
    bounds = [0, *cuts, n]
    return list(zip(bounds, bounds[1:]))


def test_an_exact_sum_is_the_correctly_rounded_sum_whatever_the_split(seed):
    rng = np.random.default_rng(seed)
    values = _wild(rng, 20_000)
    whole = exact_sum(values)
    assert whole.value() == math.fsum(values)  # fsum: the correctly rounded sum (Shewchuk)
    assert whole.fraction == sum(Fraction(v) for v in values)
    for _ in range(5):
        parts = [exact_sum(values[a:b]) for a, b in _splits(rng, len(values))]
        assert total(parts) == whole
    assert whole.mean(len(values)) == float(sum(Fraction(v) for v in values) / len(values))


def test_an_exact_square_sum_is_the_sum_of_the_exact_squares(seed):
    from auditkit.methods.exact_sums import exact_square_sum

    rng = np.random.default_rng(seed)
    values = rng.standard_normal(5000) * 10.0 ** rng.integers(-100, 100, 5000)
    assert exact_square_sum(values).fraction == sum(Fraction(v) ** 2 for v in values)
    assert exact_square_sum(values[:2500]) + exact_square_sum(values[2500:]) == exact_square_sum(values)


def test_exact_sums_per_key_and_non_finite_values(seed):
    rng = np.random.default_rng(seed)
    values = rng.random(1000)
    keys = rng.integers(0, 4, 1000)
    sums = exact_sums(values, keys, 5)
    for k in range(5):
        assert sums[k].value() == math.fsum(values[keys == k])
    assert sums[4].value() == 0.0
    assert math.isnan(exact_sum([1.0, np.nan]).value())
    assert exact_sum([1.0, np.inf]).value() == np.inf
    assert math.isnan(exact_sum([np.inf, -np.inf]).value())


def test_score_counts_give_scikit_learns_roc_curve_auc_and_average_precision(seed):
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(5000), 3)  # many ties
    y = rng.random(5000) < scores
    whole = sc.score_counts(scores, y)
    merged = sc.merge([sc.score_counts(scores[a:b], y[a:b]) for a, b in _splits(rng, len(y))])
    for counts in (whole, merged):
        fpr, tpr = sc.roc_points(counts)
        expected_fpr, expected_tpr, _ = roc_curve(y, scores)
        assert np.array_equal(fpr, expected_fpr) and np.array_equal(tpr, expected_tpr)
        assert sc.auc(counts) == pytest.approx(roc_auc_score(y, scores), rel=1e-12)
        assert sc.average_precision(counts) == pytest.approx(average_precision_score(y, scores), rel=1e-12)
    assert np.array_equal(whole.value, merged.value) and np.array_equal(whole.pos, merged.pos)


@pytest.mark.parametrize("n", [1, 2, 7, 1000, 1001])
def test_the_median_of_counts_is_numpys(n, seed):
    rng = np.random.default_rng(seed + n)
    values = np.round(rng.standard_normal(n), 1)
    values[rng.random(n) < 0.1] = np.nan
    counts = sc.merge([sc.score_counts(values[a:b]) for a, b in (_splits(rng, n) if n > 3 else [(0, n)])])
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning) if np.isnan(values).all() else _nothing():
        expected = np.nanmedian(values)
    assert sc.median(counts) == expected or (math.isnan(expected) and math.isnan(sc.median(counts)))


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -- the checks: figures from a split's combined summaries equal the whole data's ---------------------


def _prepared(samples, tmp_path, policy_overrides: dict) -> AuditData:
    from auditkit.engine.prepare import prepare
    from auditkit.policy.load import load_policy

    policy = credit_policy(samples, tmp_path / "out", **policy_overrides)
    return prepare(load_policy(write_policy(tmp_path, policy))).data


def _rows(data: AuditData, a: int, b: int) -> AuditData:
    return replace(data, frame=data.frame.iloc[a:b], scores=data.scores[a:b],
                   decisions=None if data.decisions is None else data.decisions[a:b],
                   y=None if data.y is None else data.y[a:b])


def _output(check_type: str, data: AuditData, params: dict, split: list[tuple[int, int]] | None) -> dict:
    kind = get_registry().get(check_type)
    validated = kind.params.model_validate(params)
    if split is not None:
        assert kind.summary is not None and kind.summary.serves(data, validated)
        parts = [kind.summary.summarise(_rows(data, a, b).frame, _rows(data, a, b), validated) for a, b in split]
        # the check sees no row: only the combined summary, as on a Dask worker
        data = replace(_rows(data, 0, 0), row_summaries={"c": kind.summary.combine(parts)})
    output = kind.func(AuditContext(data=data, check_id="c", seed=7), validated)
    return {"metrics": {k: vars(v) for k, v in output.metrics.items()}, "tables": output.tables,
            "plots": [vars(p) for p in output.plots], "notes": output.notes, "skipped": output.skipped}


BINARY_CHECKS = [
    ("performance", {"bootstrap": 0}),
    ("group_fairness", {"attributes": ["sex", "race", "age_band"], "intersections": [["sex", "race"]],
                        "bootstrap": 50, "min_group_size": 40}),
    ("group_fairness", {"attributes": ["sex", "income"], "bins": {"income": [30000, 60000]}, "bootstrap": 0,
                        "reference_group": {"sex": "F"}}),
    ("impact_ratio", {"attributes": ["sex", "race"]}),
    ("impact_ratio", {"attributes": ["race"], "exclude_small": True, "reference_group": {"race": "White"}}),
]


@pytest.mark.parametrize("check_type, params", BINARY_CHECKS)
def test_a_binary_models_figures_combined_from_any_split_equal_the_whole_datas(check_type, params, samples, tmp_path,
                                                                                seed):
    data = _prepared(samples, tmp_path, {"data": {"sample": 2500}})
    whole = _output(check_type, data, params, None)
    assert not whole["skipped"] and whole["metrics"]
    rng = np.random.default_rng(seed)
    for _ in range(2):
        assert _output(check_type, data, params, _splits(rng, len(data.frame))) == whole
    assert _output(check_type, data, params, [(0, len(data.frame))]) == whole


MULTICLASS_CHECKS = [
    ("performance", {"bootstrap": 0}),
    ("group_fairness", {"attributes": ["sex", "race"], "bootstrap": 30}),
    ("impact_ratio", {"attributes": ["sex", "race"]}),
]


@pytest.mark.parametrize("check_type, params", MULTICLASS_CHECKS)
def test_a_multiclass_models_figures_combined_from_any_split_equal_the_whole_datas(check_type, params, samples,
                                                                                    tmp_path, seed):
    data = _prepared(samples, tmp_path, {
        "model": {"path": str(samples / "credit_tier.onnx"), "task": "multiclass", "positive_class": None,
                  "threshold": None},
        "data": {"path": str(samples / "credit_tier_test.csv"), "target": "risk_tier", "sample": 2000,
                 "favorable_label": "low", "ignore": ["applicant_id", "interest_rate", "defaulted"]}})
    whole = _output(check_type, data, params, None)
    assert not whole["skipped"] and whole["metrics"]
    assert _output(check_type, data, params, _splits(np.random.default_rng(seed), len(data.frame))) == whole


def test_a_continuous_attribute_is_refused_with_its_distinct_values_over_every_block(samples, tmp_path):
    from auditkit.errors import CheckError

    data = _prepared(samples, tmp_path, {"data": {"sample": 2000}})
    params = {"attributes": ["income"], "bootstrap": 0}
    with pytest.raises(CheckError) as on_whole:
        _output("group_fairness", data, params, None)
    with pytest.raises(CheckError) as on_blocks:
        _output("group_fairness", data, params, [(0, 40), (40, 90), (90, len(data.frame))])  # few values per block
    assert str(on_blocks.value) == str(on_whole.value)
    assert f"({data.frame['income'].nunique()} distinct values)" in str(on_whole.value)


def test_the_exact_figures_are_the_exactly_rounded_ones(samples, tmp_path):
    """Log loss and Brier score: the correctly rounded means of the per-row losses (scikit-learn's
    figures up to its summation's rounding)."""
    from sklearn.metrics import brier_score_loss, log_loss

    from auditkit.methods.performance_counts import binary_row_losses

    data = _prepared(samples, tmp_path, {"data": {"sample": 2500}})
    out = _output("performance", data, {"bootstrap": 0, "metrics": ["log_loss", "brier_score"]}, None)
    labelled = data.labelled
    y, p = data.y[labelled], data.scores[labelled]
    losses, briers = binary_row_losses(y, p)
    exact = {"log_loss": sum(Fraction(v) for v in losses) / len(y), "brier_score": sum(Fraction(v) for v in briers) / len(y)}
    for name, value in exact.items():
        assert out["metrics"][name]["value"] == float(value)
    assert out["metrics"]["log_loss"]["value"] == pytest.approx(log_loss(y, p), rel=1e-12)
    assert out["metrics"]["brier_score"]["value"] == pytest.approx(brier_score_loss(y, p), rel=1e-12)


@pytest.mark.parametrize("check_type, params", [
    ("performance", {"bootstrap": 0}),
    ("impact_ratio", {"attributes": ["sex", "race"], "cutoff": 12.0, "favorable_scores": "low"}),
])
def test_a_regressors_figures_combined_from_any_split_equal_the_whole_datas(check_type, params, samples, tmp_path,
                                                                             seed):
    data = _prepared(samples, tmp_path, {
        "model": {"path": str(samples / "credit_rate_gbr.onnx"), "task": "regression", "positive_class": None,
                  "threshold": None},
        "data": {"target": "interest_rate", "sample": 2000, "favorable_label": None,
                 "ignore": ["applicant_id", "defaulted"]}})
    whole = _output(check_type, data, params, None)
    assert not whole["skipped"] and whole["metrics"]
    assert _output(check_type, data, params, _splits(np.random.default_rng(seed), len(data.frame))) == whole


def test_r2_and_the_error_means_are_the_exactly_rounded_ones(samples, tmp_path):
    from sklearn.metrics import mean_absolute_error, r2_score

    data = _prepared(samples, tmp_path, {
        "model": {"path": str(samples / "credit_rate_gbr.onnx"), "task": "regression", "positive_class": None,
                  "threshold": None},
        "data": {"target": "interest_rate", "sample": 2000, "favorable_label": None,
                 "ignore": ["applicant_id", "defaulted"]}})
    out = _output("performance", data, {"bootstrap": 0}, None)["metrics"]
    labelled = data.labelled
    y, p = [list(map(Fraction, a)) for a in (data.y[labelled], data.scores[labelled])]
    n = len(y)
    mean_y = sum(y) / n
    ss_res = sum((pi - yi) ** 2 for pi, yi in zip(p, y))
    # each row's error is rounded to float64 once (p - y), then squared exactly
    ss_res_rows = sum(Fraction(float(pi - yi)) ** 2 for pi, yi in zip(p, y))
    assert out["mae"]["value"] == float(sum(Fraction(abs(float(pi - yi))) for pi, yi in zip(p, y)) / n)
    assert out["mae"]["value"] == pytest.approx(mean_absolute_error(data.y[labelled], data.scores[labelled]), rel=1e-12)
    ss_tot = sum((yi - mean_y) ** 2 for yi in y)
    assert out["r2"]["value"] == float(1 - ss_res_rows / ss_tot)  # exactly rounded, given each row's rounded error
    assert out["rmse"]["value"] == float(np.sqrt(float(ss_res_rows / n)))
    assert out["r2"]["value"] == pytest.approx(float(1 - ss_res / ss_tot), rel=1e-12)
    assert out["r2"]["value"] == pytest.approx(r2_score(data.y[labelled], data.scores[labelled]), rel=1e-12)
