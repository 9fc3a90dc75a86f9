"""ceteris_paribus: profiles are the model's own function of one input, pass through the row's
score, and find the single-feature flip where a closed form puts it."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from check_support import run_check
from function_models import FunctionModel
from test_explain_model_agnostic import _data_with_model

from auditkit.errors import CheckError
from auditkit.checks.local.ceteris_paribus import CeterisParibusParams, _validate


@pytest.fixture(scope="module")
def square(tmp_path_factory):
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"x1": rng.uniform(-1, 1, 800), "x2": rng.uniform(-2, 2, 800)})
    frame["y"] = 0.0
    path = tmp_path_factory.mktemp("cp") / "square.pkl"
    path.write_bytes(pickle.dumps(FunctionModel("linear_plus_square", ["x1", "x2"])))
    return _data_with_model(path, frame, ["x1", "x2"], "y", task="regression"), frame


@pytest.fixture(scope="module")
def logistic(tmp_path_factory):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    n = 3000
    X = pd.DataFrame({"a": rng.uniform(0, 10, n), "b": rng.uniform(0, 10, n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * X.a - 0.4 * X.b - 2)))).astype(int)
    model = LogisticRegression(C=1e6, max_iter=1000).fit(X, y)
    path = tmp_path_factory.mktemp("cp") / "logistic.pkl"
    path.write_bytes(pickle.dumps(model))
    return _data_with_model(path, X.assign(y=y), ["a", "b"], "y"), model, X


def test_a_profile_is_the_models_function_of_that_input_with_the_rest_fixed(square):
    data, frame = square
    output = run_check("ceteris_paribus", data, {"rows": [7, 30], "grid_resolution": 15})
    profiles = pd.DataFrame(output.tables["profiles"])
    for row in (7, 30):
        x1, x2 = frame.loc[row, "x1"], frame.loc[row, "x2"]
        along_x2 = profiles[(profiles.row == row) & (profiles.feature == "x2")]
        assert np.allclose(along_x2.score, 2 * x1 + along_x2.value ** 2)
        along_x1 = profiles[(profiles.row == row) & (profiles.feature == "x1")]
        assert np.allclose(along_x1.score, 2 * along_x1.value + x2 ** 2)
        # the profile passes through the row's own point
        own = along_x2[np.isclose(along_x2.value, x2)]
        assert len(own) == 1 and own.score.iloc[0] == pytest.approx(2 * x1 + x2 ** 2)
    summary = pd.DataFrame(output.tables["summary"]).set_index(["row", "feature"])
    grid_x2 = profiles[(profiles.row == 7) & (profiles.feature == "x2")].value
    assert summary.loc[(7, "x2"), "score_range"] == pytest.approx(grid_x2.abs().max() ** 2 - grid_x2.pow(2).min())
    assert output.metrics["single_feature_flip_share"].value is None  # a regression has no decision


def test_the_nearest_single_feature_flip_is_where_the_closed_form_puts_it(logistic):
    data, model, X = logistic
    (wa, wb), b0 = model.coef_[0], model.intercept_[0]
    output = run_check("ceteris_paribus", data, {"sample": 12, "grid_resolution": 60})
    profiles = pd.DataFrame(output.tables["profiles"])
    checked = 0
    for record in output.tables["summary"]:
        row, feature = record["row"], record["feature"]
        x = X.iloc[row]
        w, other = (wa, wb * x.b) if feature == "a" else (wb, wa * x.a)
        boundary = -(other + b0) / w  # where w * v + other + b0 = 0, i.e. the score is 0.5
        grid = profiles[(profiles.row == row) & (profiles.feature == feature)].value.to_numpy()
        inside = grid.min() < boundary < grid.max()
        assert record["flips"] == inside
        if inside:
            step = np.diff(np.sort(grid)).max()
            assert abs(record["nearest_flip"] - boundary) <= step
            decision = int(model.predict_proba(x.to_frame().T.assign(**{feature: record["nearest_flip"]}))[0, 1] >= 0.5)
            assert decision != data.decisions[row]  # re-predicted: it really flips
            checked += 1
    assert checked >= 5


def test_unknown_features_and_bad_percentiles_are_refused_before_running(logistic):
    data, _, _ = logistic
    with pytest.raises(CheckError, match=r"params.features: \['income'\] are not model inputs"):
        _validate(CeterisParibusParams(features=["a", "income"]), data)
    with pytest.raises(CheckError, match="params.percentiles"):
        _validate(CeterisParibusParams(percentiles=(0.9, 0.1)), data)
