"""invariance on multiclass and regression models: decisions are the predicted class, or a move
beyond the tolerance (#18; both ended as errors before)."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd

from check_support import run_check
from noise_models import BandClassifier, OneColumnRegressor
from task_support import model_data


def test_multiclass_invariance_counts_predicted_class_changes(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({"x": rng.choice([-1.0, 0.0, 1.0], n), "z": rng.choice([1.0, 2.0, 3.0], n)})
    frame["label"] = "a"
    path = tmp_path / "bands.pkl"
    with open(path, "wb") as handle:
        pickle.dump(BandClassifier(["x", "z"], "x", -0.5, 0.5), handle)
    data = model_data(path, frame, ["x", "z"], "label", task="multiclass", fmt="pickle")
    output = run_check("invariance", data, {"invariant": ["x", "z"], "max_rows": n,
                                            "monotone": {"x": "increasing"}, "target_class": "c"})
    # each of x's three values is its own band: every change of x changes the predicted class
    assert output.metrics["violation_rate[invariant: x]"].value == 1.0
    assert output.metrics["violation_rate[invariant: z]"].value == 0.0  # the model ignores z
    # P(c) never falls as x rises (it steps from 0.1 to 0.8 at 0.5)
    assert output.metrics["violation_rate[monotone: x]"].value == 0.0
    listed = output.tables["violations"][0]
    assert listed["score_before"] == 0.8 and listed["score_after"] == 0.1  # the unchanged class's probability


def test_regression_invariance_violates_beyond_the_tolerance_in_target_units(tmp_path):
    rng = np.random.default_rng(1)
    n = 400
    frame = pd.DataFrame({"x": rng.choice([0.0, 0.005, 1.0], n), "z": rng.normal(size=n)})
    frame["y"] = frame["x"]
    path = tmp_path / "identity.pkl"
    with open(path, "wb") as handle:
        pickle.dump(OneColumnRegressor(["x", "z"], "x"), handle)
    data = model_data(path, frame, ["x", "z"], "y", task="regression", fmt="pickle")
    output = run_check("invariance", data, {"invariant": ["x"], "tolerance": 0.01, "max_rows": n})
    counts = frame["x"].value_counts()
    # each row is set to the two other values; only 0 <-> 0.005 stays within 0.01
    expected = (counts[0.0] + counts[0.005] + 2 * counts[1.0]) / (2 * n)
    assert 0 < expected < 1
    assert output.metrics["violation_rate[invariant: x]"].value == expected
    assert any("more than 0.01 (y's units)" in note for note in output.notes)
