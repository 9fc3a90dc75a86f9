"""explanation_stability: stable where importances are well apart, less so where they tie."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from check_support import run_check
from function_models import FunctionModel
from test_explain_model_agnostic import NUMERIC, _data_with_model


def test_a_logistic_model_with_distinct_effects_has_stable_explanations(samples):
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:1000]
    data = _data_with_model(samples / "credit_logreg.onnx", frame, NUMERIC, "defaulted", fmt="onnx")
    output = run_check("explanation_stability", data, {"max_rows": 150, "noise": 0.01})
    assert "exact linear SHAP" in output.notes[0]
    # linear SHAP moves by w * noise: a 1% wobble keeps almost every ranking
    assert output.metrics["rank_stability"].value > 0.95
    assert output.metrics["rank_stability_lower_quartile"].value > 0.8
    assert output.metrics["global_rank_stability"].value > 0.9
    again = run_check("explanation_stability", data, {"max_rows": 150, "noise": 0.01})
    assert again.metrics == output.metrics  # seeded


def test_larger_noise_makes_local_rankings_less_stable(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(400, 3)), columns=["x1", "x2", "x3"])
    path = tmp_path / "f.pkl"
    path.write_bytes(pickle.dumps(FunctionModel("interaction", ["x1", "x2", "x3"])))
    data = _data_with_model(path, frame.assign(y=0.0), ["x1", "x2", "x3"], "y", task="regression")
    small = run_check("explanation_stability", data, {"max_rows": 100, "noise": 0.01, "background_size": 50})
    large = run_check("explanation_stability", data, {"max_rows": 100, "noise": 1.0, "background_size": 50})
    assert small.metrics["rank_stability"].value > large.metrics["rank_stability"].value
    assert small.metrics["rank_stability_lower_quartile"].value > large.metrics["rank_stability_lower_quartile"].value


def test_multiclass_rows_are_compared_on_their_predicted_class(samples):
    """#18: explained on the predicted class instead of skipping; the tier model's trees split on
    whole numbers of late payments and a few incomes, so noise of 1e-9 sd moves no row across a split."""
    from task_support import TIER_FEATURES, model_data

    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:300]
    data = model_data(samples / "credit_tier.onnx", frame, TIER_FEATURES, "risk_tier", task="multiclass",
                      reference=pd.read_csv(samples / "credit_train.csv").iloc[:100])
    output = run_check("explanation_stability", data, {"max_rows": 30, "noise": 1e-9, "bootstrap": 5,
                                                       "background_size": 30})
    assert output.metrics["rank_stability"].value == 1.0
    assert output.metrics["rank_stability"].n > 20  # rows with a ranking were compared
    assert any("predicted class" in note for note in output.notes)
