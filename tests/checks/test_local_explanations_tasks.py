"""local_explanations on multiclass models: each row's predicted class, centred margins (#18)."""
from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
from numpy.testing import assert_allclose
from sklearn.linear_model import LogisticRegression

from check_support import run_check
from task_support import model_data

COLUMNS = ["a", "b", "c"]


def test_multiclass_rows_explain_their_predicted_class_as_centred_linear_shap(tmp_path):
    rng = np.random.default_rng(4)
    n = 400
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=COLUMNS)
    frame["label"] = np.array(["x", "y", "z"], dtype=object)[
        np.where(frame["c"] > 0.7, 2, np.where(frame["a"] - frame["b"] > 0, 1, 0))]
    logreg = LogisticRegression(max_iter=1000).fit(frame[COLUMNS], frame["label"])
    path = tmp_path / "logreg.joblib"
    joblib.dump(logreg, path)
    data = model_data(path, frame, COLUMNS, "label", task="multiclass", fmt="joblib", reference=frame.iloc[:200])
    rows = [5, 17, 230]
    output = run_check("local_explanations", data, {"rows": rows, "lime_samples": 500, "background_size": 200})
    W, b = logreg.coef_, logreg.intercept_
    mean = frame[COLUMNS].iloc[:200].to_numpy().mean(axis=0)
    attributions = pd.DataFrame(output.tables["attributions"])
    explanations = {e["row"]: e for e in output.tables["explanations"]}
    for row in rows:
        x = frame[COLUMNS].to_numpy()[row]
        c = int(logreg.predict_proba(frame[COLUMNS].iloc[[row]])[0].argmax())
        assert explanations[row]["explained_class"] == explanations[row]["decision"] == logreg.classes_[c]
        # closed form: the centred margin m_c - mean_k m_k is linear with weights W_c - mean_k W_k
        centred = W[c] - W.mean(axis=0)
        expected = centred * (x - mean)
        got = attributions[attributions["row"] == row].set_index("feature")["shap"]
        assert np.abs(expected).max() > 0.1  # non-trivial
        assert_allclose(got[COLUMNS].to_numpy(), expected, atol=1e-10)
        assert_allclose(explanations[row]["base_value"], (b[c] - b.mean()) + centred @ mean, atol=1e-10)
        logs = np.log(logreg.predict_proba(frame[COLUMNS].iloc[[row]])[0])
        assert_allclose(explanations[row]["raw_output"], logs[c] - logs.mean(), atol=1e-10)
    assert output.metrics["additivity_error"].value < 1e-10
    assert output.metrics["reason_code_coverage"].value == 1.0  # every row gets reasons towards its class
    assert output.metrics["shap_lime_agreement"].value > 0.3  # LIME explains the same centred margin


def test_target_class_explains_every_row_on_that_class(tmp_path, samples):
    from task_support import TIER_FEATURES

    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:200]
    data = model_data(samples / "credit_tier.onnx", frame, TIER_FEATURES, "risk_tier", task="multiclass",
                      reference=pd.read_csv(samples / "credit_train.csv").iloc[:100])
    output = run_check("local_explanations", data, {"rows": [3, 8], "target_class": "high", "lime_samples": 300,
                                                    "background_size": 50})
    assert {e["explained_class"] for e in output.tables["explanations"]} == {"high"}
    assert output.metrics["additivity_error"].value < 1e-4  # log of float32 probabilities from onnxruntime
