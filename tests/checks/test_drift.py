"""`drift` against scipy.stats (ks_2samp, chi2_contingency, wasserstein_distance), PSI's closed
form, and the drift planted in sample_models/credit_recent.csv."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from check_support import binary_data, run_check

from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.engine.context import AuditData
from auditkit.methods.drift import Binned, bin_categorical, bin_numeric, chi_squared, psi, wasserstein

FAST = {"bootstrap": 0, "domain_classifier": False}


def _data(current: pd.DataFrame, reference: pd.DataFrame | None, features: list[str]) -> AuditData:
    n = len(current)
    return binary_data(None, np.full(n, 0.5), frame=current, features=features, reference=reference)


def test_psi_uses_the_references_quantile_bins_and_the_closed_form(seed):
    rng = np.random.default_rng(seed)
    reference, current = rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 3000)
    output = run_check("drift", _data(pd.DataFrame({"x": current}), pd.DataFrame({"x": reference}), ["x"]),
                       {**FAST, "bins": 8})
    # independently: edges at the reference's octiles, outer bins open, [a, b) bins via np.digitize
    edges = np.quantile(reference, np.linspace(0, 1, 9))[1:-1]
    r = np.bincount(np.digitize(reference, edges), minlength=8) / len(reference)
    a = np.bincount(np.digitize(current, edges), minlength=8) / len(current)
    assert_allclose(r, 1 / 8, atol=1e-3)  # equal reference shares: the bins are the reference's quantiles
    expected = float(np.sum((a - r) * np.log(a / r)))
    assert expected > 0.05  # a real shift
    # 1e-12: the same sums in another order
    assert_allclose(output.metrics["psi[x]"].value, expected, rtol=0, atol=1e-12)


def test_an_empty_bin_counts_as_epsilon_so_psi_stays_finite():
    binned = Binned(["a", "b", "c"], np.array([50, 50, 0]), np.array([40, 40, 20]))
    r = np.array([0.5, 0.5, 1e-4])
    a = np.array([0.4, 0.4, 0.2])
    assert_allclose(psi(binned, 1e-4), np.sum((a - r) * np.log(a / r)), rtol=1e-15)


def test_values_outside_the_reference_range_and_missing_values_have_their_bins():
    reference = pd.Series([1.0, 2.0, 3.0, 4.0, np.nan])
    current = pd.Series([-10.0, 100.0, np.nan, np.nan])
    binned = bin_numeric(reference, current, 2)
    assert binned.labels[-1] == "(missing)"
    assert binned.current_counts.tolist() == [1, 1, 2] and binned.reference_counts.tolist() == [2, 2, 1]  # median 2.5


@pytest.fixture(scope="module")
def recent(samples) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_csv(samples / "credit_recent.csv"), pd.read_csv(samples / "credit_train.csv")


FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
            "n_open_accounts", "home_ownership", "purpose", "zip_region"]


def test_tests_and_distances_equal_scipys_on_the_sample_files(recent):
    current, reference = recent
    output = run_check("drift", _data(current, reference, FEATURES), FAST)
    for feature in ("income", "employment_years", "n_late_payments"):
        a, b = reference[feature].dropna().to_numpy(float), current[feature].dropna().to_numpy(float)
        expected = stats.ks_2samp(a, b)
        # the same call on the same values: equal to the last bit
        assert output.metrics[f"ks_statistic[{feature}]"].value == pytest.approx(expected.statistic, abs=1e-15)
        assert output.metrics[f"ks_pvalue[{feature}]"].value == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)
        # wasserstein: auditkit's own integral of |F - G|; 1e-9 relative: sums of 38,000 widths in another order
        assert_allclose(output.metrics[f"wasserstein[{feature}]"].value, stats.wasserstein_distance(a, b), rtol=1e-9)
    for feature in ("purpose", "zip_region", "home_ownership"):
        table = pd.crosstab(pd.concat([reference[feature], current[feature]]).astype(object).to_numpy(),
                            np.r_[np.zeros(len(reference)), np.ones(len(current))]).to_numpy()
        chi2, pvalue, dof, _ = stats.chi2_contingency(table, correction=False)
        assert_allclose(output.metrics[f"chi2_statistic[{feature}]"].value, chi2, rtol=1e-10)  # sums reordered
        assert_allclose(output.metrics[f"chi2_pvalue[{feature}]"].value, pvalue, rtol=1e-8)


def test_the_planted_drift_of_the_recent_extract_is_found(recent):
    """sample_models/README.md: income (x0.78) and purpose (more debt consolidation) were shifted;
    loan_amount and home_ownership follow them; the other six features are drawn as before."""
    current, reference = recent
    output = run_check("drift", _data(current, reference, FEATURES), {"bootstrap": 0, "max_rows": 3000})
    psi_of = {f: output.metrics[f"psi[{f}]"].value for f in FEATURES}
    ranked = sorted(psi_of, key=psi_of.get, reverse=True)
    assert set(ranked[:2]) == {"income", "purpose"}
    assert psi_of["income"] > 0.2 and psi_of["purpose"] > 0.1
    undrifted = ["debt_ratio", "credit_history_years", "n_late_payments", "employment_years", "n_open_accounts",
                 "zip_region"]
    # sampling noise alone: PSI ~ (bins - 1)(1/n_ref + 1/n_cur) ~ 0.0014 here
    assert max(psi_of[f] for f in undrifted) < 0.01
    assert output.metrics["max_psi"].value == psi_of["income"]
    assert output.metrics["ks_pvalue[income]"].value < 1e-100 and output.metrics["chi2_pvalue[purpose]"].value < 1e-100
    assert output.metrics["domain_auc"].value > 0.6


def test_domain_auc_is_about_a_half_between_two_samples_of_one_distribution(seed):
    rng = np.random.default_rng(seed)
    frame = lambda n: pd.DataFrame({"x": rng.normal(0, 1, n), "c": rng.choice(["a", "b", "c"], n)})  # noqa: E731
    same = run_check("drift", _data(frame(1500), frame(1500), ["x", "c"]), {"bootstrap": 200})
    auc = same.metrics["domain_auc"]
    assert abs(auc.value - 0.5) < 0.05 and auc.ci[0] < 0.5 < auc.ci[1]
    shifted_current = frame(1500).assign(x=lambda f: f.x + 0.5)
    shifted = run_check("drift", _data(shifted_current, frame(1500), ["x", "c"]), {"bootstrap": 0})
    # a 0.5 sd mean shift: the best single-feature AUC is Phi(0.5 / sqrt 2) = 0.638
    assert shifted.metrics["domain_auc"].value > 0.58


def test_prediction_drift_scores_the_reference_with_the_audited_model(samples, recent):
    current, reference = recent
    spec = AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx"))
    adapter = load_adapter(spec)
    scores = adapter.predict(current)
    data = AuditData(frame=current.rename_axis("row"), features=adapter.input_features, target=None, protected=[],
                     task="binary", scores=scores, decisions=(scores >= 0.5).astype(np.int64), y=None,
                     score_kind="probability", adapter_spec=adapter.spec, threshold=0.5, reference=reference)
    output = run_check("drift", data, {**FAST, "features": ["income"]})
    reference_scores = adapter.predict(reference)
    expected = psi(bin_numeric(pd.Series(reference_scores), pd.Series(scores), 10), 1e-4)
    assert_allclose(output.metrics["prediction_psi"].value, expected, rtol=0, atol=1e-15)
    assert output.metrics["prediction_psi"].value > 0.02  # lower incomes: higher predicted risk
    assert output.metrics["prediction_ks_pvalue"].value == pytest.approx(stats.ks_2samp(reference_scores, scores).pvalue,
                                                                          rel=1e-12, abs=1e-300)


def test_without_a_reference_the_check_is_skipped_with_a_reason():
    output = run_check("drift", _data(pd.DataFrame({"x": [1.0, 2.0]}), None, ["x"]))
    assert "data.reference" in output.skipped


def test_chi_squared_without_a_second_category_is_not_a_test():
    binned = bin_categorical(pd.Series(["a"] * 5), pd.Series(["a"] * 3))
    assert chi_squared(binned) == (0.0, 1.0, 0)


def test_wasserstein_of_two_point_masses_is_their_distance():
    assert wasserstein(np.array([0.0, 0.0]), np.array([3.0])) == 3.0
