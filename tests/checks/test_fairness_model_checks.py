"""proxy_detection finds the planted proxy; counterfactual_fairness sees direct use of an attribute."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest

from check_support import binary_data, run_check

from support import write_policy


def test_proxy_detection_finds_the_planted_zip_region_proxy_for_race(samples):
    frame = pd.read_csv(samples / "credit_test.csv")
    features = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount",
                "employment_years", "n_open_accounts", "home_ownership", "purpose", "zip_region"]
    data = binary_data(frame["defaulted"].to_numpy(float), np.full(len(frame), 0.3), frame=frame,
                       features=features, protected=["race", "sex"])
    output = run_check("proxy_detection", data, {"max_rows": 4000})
    race = [r for r in output.tables["proxies"] if r["attribute"] == "race"]
    # ground truth (sample_models/README.md): zip_region alone, AUC ~0.83 for Black vs the rest
    assert race[0]["feature"] == "zip_region" and race[0]["group"] == "Black"
    assert race[0]["auc"] > 0.78
    assert output.metrics["max_single_feature_auc[race]"].value == race[0]["auc"]
    # sex was given no proxy: every feature is close to chance
    assert output.metrics["max_single_feature_auc[sex]"].value < 0.56
    assert output.metrics["all_features_auc[race]"].value >= race[0]["auc"] - 0.03
    mi = {r["feature"]: r["mutual_information"] for r in race}
    assert max(mi, key=mi.get) == "zip_region"


def test_proxy_detection_mutual_information_matches_scikit_learn_on_a_categorical_feature():
    from sklearn.metrics import mutual_info_score

    rng = np.random.default_rng(0)
    group = rng.choice(["a", "b"], 600)
    proxy = np.where(rng.random(600) < 0.8, group, rng.choice(["a", "b"], 600))
    frame = pd.DataFrame({"x": proxy, "g": group, "noise": rng.normal(size=600)})
    data = binary_data(None, np.full(600, 0.5), frame=frame, features=["x", "noise"], protected=["g"])
    output = run_check("proxy_detection", data, {"folds": 3})
    record = next(r for r in output.tables["proxies"] if r["feature"] == "x")
    assert record["mutual_information"] == pytest.approx(mutual_info_score(proxy, group), abs=1e-12)
    assert record["auc"] > 0.85  # 90% agreement between proxy and group


def _sex_model(tmp_path, uses_sex: bool):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    n = 2000
    frame = pd.DataFrame({"x": rng.normal(size=n), "sex_code": rng.integers(0, 2, n)})
    y = (frame.x + (1.5 * frame.sex_code if uses_sex else 0) + rng.normal(0, 0.5, n) > 0.5).astype(int)
    columns = ["x", "sex_code"] if uses_sex else ["x"]
    model = LogisticRegression().fit(frame[columns], y)
    frame["y"] = y
    data_path = tmp_path / f"data_{uses_sex}.csv"
    frame.to_csv(data_path, index=False)
    model_path = tmp_path / f"model_{uses_sex}.pkl"
    model_path.write_bytes(pickle.dumps(model))
    return model_path, data_path


@pytest.mark.parametrize("uses_sex", [True, False])
def test_counterfactual_flip_rate_is_positive_only_for_a_model_that_uses_the_attribute(tmp_path, cli, uses_sex):
    model_path, data_path = _sex_model(tmp_path, uses_sex)
    out_dir = tmp_path / "out"
    features = ["x", "sex_code"] if uses_sex else ["x"]
    policy = write_policy(tmp_path, {
        "version": 1, "name": "flip", "model": {"path": str(model_path)},
        "data": {"path": str(data_path), "target": "y", "protected": ["sex_code"], "features": features},
        "checks": [{"id": "cf", "type": "counterfactual_fairness", "thresholds": {"flip_rate": {"max": 0.0}}}],
        "report": {"formats": ["json"], "output_dir": str(out_dir)}})
    result = cli("run", policy, "--trust-pickle")
    check = json.loads((out_dir / "results.json").read_text())["checks"][0]
    if uses_sex:
        assert result.exit_code == 1
        assert check["metrics"]["flip_rate[sex_code]"]["value"] > 0.2
        flips = {(r["source"], r["target"]): r for r in check["tables"]["flips"]}
        # raising sex_code raises the score (coefficient +1.5): 0 -> 1 only moves scores up
        assert flips[("0", "1")]["mean_score_change"] > 0 > flips[("1", "0")]["mean_score_change"]
    else:
        assert result.exit_code == 0
        assert check["status"] == "skipped"
        assert any("is not a model input" in note for note in check["notes"])
