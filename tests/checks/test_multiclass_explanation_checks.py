"""ale, interaction_strength and surrogate_tree on multiclass models (#18; all three skipped before)."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
from numpy.testing import assert_allclose

from check_support import run_check
from noise_models import BandClassifier, LinearProbabilityClassifier
from task_support import model_data


def _data(tmp_path, model, frame: pd.DataFrame, features: list[str], name: str = "model"):
    path = tmp_path / f"{name}.pkl"  # one file per model: workers cache adapters by their spec
    with open(path, "wb") as handle:
        pickle.dump(model, handle)
    return model_data(path, frame, features, "label", task="multiclass", fmt="pickle")


def _frame(seed: int, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"x1": rng.uniform(-1, 1, n), "x2": rng.uniform(-1, 1, n)})
    frame["label"] = "flat"
    return frame


def test_ale_per_class_has_the_closed_form_local_effects_and_sums_to_zero_over_classes(tmp_path, seed):
    a, b = 0.1, 0.05
    data = _data(tmp_path, LinearProbabilityClassifier(["x1", "x2"], a, b), _frame(seed), ["x1", "x2"])
    output = run_check("ale", data, {"features": ["x1"], "bins": 10})
    curves = {c["class"]: c for c in output.tables["ale"]}
    assert set(curves) == {"down", "flat", "up"}
    edges = np.asarray(curves["up"]["edges"])
    # P(up) = 1/3 + a x1 + ...: each bin's local effect is a (z_j - z_{j-1}), exactly
    assert_allclose(np.diff(curves["up"]["ale"]), a * np.diff(edges), atol=1e-12)
    assert_allclose(np.diff(curves["down"]["ale"]), -a * np.diff(edges), atol=1e-12)
    assert_allclose(curves["flat"]["ale"], 0.0, atol=1e-12)  # a constant probability has no effect
    # probabilities sum to 1, so the classes' ALEs sum to 0 at every edge (ALE is linear in f)
    assert_allclose(np.sum([curves[c]["ale"] for c in curves], axis=0), 0.0, atol=1e-12)
    assert output.metrics["ale_range[x1]"].value > 0.1


def test_interaction_strength_is_zero_for_additive_class_probabilities_and_not_otherwise(tmp_path, seed):
    frame = _frame(seed, 80)
    additive = run_check("interaction_strength", _data(tmp_path, LinearProbabilityClassifier(["x1", "x2"], 0.1, 0.05),
                                                       frame, ["x1", "x2"]), {"max_rows": 80})
    assert additive.metrics["h_overall[x1]"].value < 1e-6  # exactly additive: H = 0 up to rounding
    assert additive.metrics["max_h_pair"].value < 1e-6
    product = run_check("interaction_strength", _data(tmp_path, LinearProbabilityClassifier(["x1", "x2"], 0.0, 0.0, 0.2),
                                                      frame, ["x1", "x2"], "product"), {"max_rows": 80})
    # a pure product x1 x2 (on centred, independent inputs) is all interaction: H close to 1
    assert product.metrics["max_h_pair"].value > 0.9


def test_surrogate_tree_finds_the_bands_of_a_three_band_classifier(tmp_path, seed):
    frame = _frame(seed, 2000)
    data = _data(tmp_path, BandClassifier(["x1", "x2"], "x1", -0.3, 0.4), frame, ["x1", "x2"])
    output = run_check("surrogate_tree", data, {"max_depth": 2, "min_leaf_share": 0.01})
    # the tree splits midway between the training rows on either side of a band edge: a held-out row in
    # that gap (a few of 600) may land on the other side; elsewhere the two cuts are the bands'
    assert output.metrics["fidelity_accuracy"].value >= 0.99
    assert output.metrics["fidelity_r2"].value > 0.95
    assert {r["class"] for r in output.tables["rules"]} == {"a", "b", "c"}


def test_ceteris_paribus_follows_the_predicted_class_and_flips_where_the_band_changes(tmp_path, seed):
    low, high = -0.3, 0.4
    frame = _frame(seed, 500)
    data = _data(tmp_path, BandClassifier(["x1", "x2"], "x1", low, high), frame, ["x1", "x2"], "bands")
    rows = [int(frame.index[frame["x1"] < -0.6][0]), int(frame.index[(frame["x1"] > 0) & (frame["x1"] < 0.3)][0])]
    output = run_check("ceteris_paribus", data, {"rows": rows, "features": ["x1", "x2"]})
    profiles = pd.DataFrame(output.tables["profiles"])
    band = np.array(["a", "b", "c"], dtype=object)
    for row in rows:
        own = band[int(frame.loc[row, "x1"] >= low) + int(frame.loc[row, "x1"] >= high)]
        along = profiles[(profiles["row"] == row) & (profiles["feature"] == "x1")]
        values = along["value"].to_numpy(dtype=float)
        expected = band[(values >= low).astype(int) + (values >= high).astype(int)]
        assert list(along["decision"]) == list(expected)  # the class the band rule gives at each value
        assert_allclose(along["score"], np.where(expected == own, 0.8, 0.1))  # P(the row's own class)
        summary = next(s for s in output.tables["summary"] if s["row"] == row and s["feature"] == "x1")
        others = values[expected != own]
        assert summary["flips"] and summary["nearest_flip"] == others[np.argmin(np.abs(others - frame.loc[row, "x1"]))]
        x2 = next(s for s in output.tables["summary"] if s["row"] == row and s["feature"] == "x2")
        assert not x2["flips"] and x2["score_range"] == 0.0  # the model ignores x2


def test_adversarial_finds_the_distance_to_the_nearest_band_edge_on_a_multiclass_model(tmp_path, seed):
    """#18: a flip is another predicted class; the smallest one moves x1 to the nearest band edge."""
    low, high = -0.3, 0.4
    frame = _frame(seed, 1500)
    frame[["x1", "x2"]] = frame[["x1", "x2"]].round(3)  # a resolution of 0.001 for the search's grid
    data = _data(tmp_path, BandClassifier(["x1", "x2"], "x1", low, high), frame, ["x1", "x2"], "bands_adv")
    output = run_check("adversarial", data, {"max_rows": 30, "epsilon": 0.05})
    span = frame["x1"].max() - frame["x1"].min()
    examples = output.tables["examples"]
    assert len(examples) == 30  # every row has another band within reach
    for example in examples:
        x = frame.loc[example["row"], "x1"]
        # the flip must cross an edge of the row's band: at least the distance to the nearer one
        nearest = low - x if x < low else (x - high if x >= high else min(x - low, high - x))
        assert set(example["changes"]) == {"x1"}  # x2 plays no part
        assert example["decision_before"] != example["decision_after"]
        assert nearest / span - 1e-9 <= example["linf"] <= nearest / span + 0.005  # an upper bound, close to it
    assert 0 < output.metrics["success_rate_linf"].value < 1


def test_adversarial_on_a_regressor_counts_a_move_beyond_the_tolerance(tmp_path, seed):
    from noise_models import OneColumnRegressor

    frame = _frame(seed, 1500)
    frame[["x1", "x2"]] = frame[["x1", "x2"]].round(3)
    frame["label"] = frame["x1"]
    path = tmp_path / "identity_adv.pkl"
    with open(path, "wb") as handle:
        pickle.dump(OneColumnRegressor(["x1", "x2"], "x1"), handle)
    data = model_data(path, frame, ["x1", "x2"], "label", task="regression", fmt="pickle")
    skipped = run_check("adversarial", data, {"max_rows": 10})
    assert "params.tolerance" in skipped.notes[0]  # no decision without a declared tolerance
    tolerance = 0.2
    output = run_check("adversarial", data, {"max_rows": 20, "tolerance": tolerance})
    span = frame["x1"].max() - frame["x1"].min()
    for example in output.tables["examples"]:
        moved = abs(example["prediction_after"] - example["prediction_before"])
        assert moved > tolerance  # verified flips only
        # the prediction is x1 itself: the smallest flip moves it just past the tolerance (0.001 grid)
        assert tolerance / span < example["linf"] <= (tolerance + 0.002) / span + 0.005
    assert any("more than 0.2 (label's units)" in note for note in output.notes)


def test_missing_values_counts_predicted_class_changes_on_a_multiclass_model(tmp_path, seed):
    """A blank x1 reaches the band rule as NaN, which compares false: every row lands in band a."""
    low, high = -0.3, 0.4
    frame = _frame(seed, 400)
    data = _data(tmp_path, BandClassifier(["x1", "x2"], "x1", low, high), frame, ["x1", "x2"], "bands_missing")
    output = run_check("missing_values", data, {"max_rows": 400})
    x = frame["x1"].to_numpy()
    assert 0 < np.mean(x >= low) < 1
    assert output.metrics["decision_change_rate[x1]"].value == np.mean(x >= low)  # rows not already in band a
    assert output.metrics["decision_change_rate[x2]"].value == 0.0
