"""ALE and Friedman's H against closed forms on functions with known effects and interactions."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from check_support import run_check
from function_models import FunctionModel
from test_explain_model_agnostic import _data_with_model


def _data(tmp_path, name: str, frame: pd.DataFrame, columns: list[str]):
    path = tmp_path / f"{name}.pkl"
    path.write_bytes(pickle.dumps(FunctionModel(name, columns)))
    return _data_with_model(path, frame.assign(y=0.0), columns, "y", task="regression")


def test_ale_recovers_known_effects_of_an_additive_function(tmp_path):
    rng = np.random.default_rng(0)
    x1 = rng.uniform(-1, 1, 4000)
    frame = pd.DataFrame({"x1": x1, "x2": x1 + rng.normal(0, 0.3, 4000)})  # correlated inputs
    output = run_check("ale", _data(tmp_path, "linear_plus_square", frame, ["x1", "x2"]), {"bins": 20})
    curves = {c["feature"]: c for c in output.tables["ale"]}
    edges, ale = np.array(curves["x1"]["edges"]), np.array(curves["x1"]["ale"])
    # f = 2 x1 + x2^2: ALE of x1 is 2 x1 up to a constant (exact: the step is linear in x1)
    assert np.allclose(np.diff(ale), 2 * np.diff(edges), atol=1e-9)
    edges2, ale2 = np.array(curves["x2"]["edges"]), np.array(curves["x2"]["ale"])
    assert np.allclose(np.diff(ale2), np.diff(edges2 ** 2), atol=1e-9)  # ALE of x2 is x2^2 + c
    counts = curves["x1"]["bin_counts"]
    assert sum(counts) == 4000 and min(counts) > 150  # quantile bins: about equal counts
    # centred: its mean over the data is 0
    mids = (ale[:-1] + ale[1:]) / 2
    assert abs(np.sum(np.array(counts) * mids) / sum(counts)) < 1e-12


def test_ale_is_right_where_correlation_biases_partial_dependence(tmp_path):
    rng = np.random.default_rng(1)
    x1 = rng.uniform(-1, 1, 4000)
    frame = pd.DataFrame({"x1": x1, "x2": x1 + rng.normal(0, 0.05, 4000)})
    data = _data(tmp_path, "off_manifold", frame, ["x1", "x2"])
    ale = {c["feature"]: c for c in run_check("ale", data, {"features": ["x1"]}).tables["ale"]}["x1"]
    pdp = run_check("partial_dependence", data, {"features": ["x1"], "max_rows": 4000}).tables["pdp"][0]
    # On the data x1 ~ x2, so f ~ x1: the true local effect of x1 has slope ~1 (here 1 + 20 (x1 - x2)).
    slope_ale = np.polyfit(ale["edges"], ale["ale"], 1)[0]
    assert slope_ale == pytest.approx(1.0, abs=0.05)
    # PDP averages f(v, x2) over all x2, far from the data: 10 (v - x2)^2 makes it a parabola
    grid, curve = np.array(pdp["grid"]), np.array(pdp["pdp"])
    assert np.polyfit(grid, curve, 2)[0] == pytest.approx(10.0, rel=0.05)


def test_categorical_ale_needs_an_order(tmp_path):
    from auditkit.engine.worker import CheckTask, execute

    frame = pd.DataFrame({"x1": np.linspace(0, 1, 100), "x2": ["a", "b"] * 50})
    data = _data(tmp_path, "linear_plus_square", frame.assign(x2=frame.x1), ["x1", "x2"])
    data.frame["x2"] = frame["x2"]
    outcome = execute(CheckTask("c", "ale", {"features": ["x2"]}, 0, 60), data)
    assert outcome.output is None and "needs its categories in order" in outcome.error


def test_h_statistic_finds_the_known_interaction_and_none_elsewhere(tmp_path):
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.uniform(-1, 1, size=(3000, 3)), columns=["x1", "x2", "x3"])
    data = _data(tmp_path, "interaction", frame, ["x1", "x2", "x3"])
    output = run_check("interaction_strength", data, {"max_rows": 150, "top_k": 3})
    h = {k: v.value for k, v in output.metrics.items()}
    # f = x1 x2 + x3 with independent zero-mean inputs: x1 and x2 act only through their
    # product (H(x1,x2) = 1 in the population), x3 only additively (H(x3) = 0 exactly).
    assert h["h_pair[x1 & x2]"] > 0.9
    assert h["h_overall[x3]"] < 1e-9
    # overall H(x1)^2 = Var(x1 x2) / Var(f) = (1/9) / (1/9 + 1/3) = 1/4 on uniform(-1, 1):
    # H = 0.5, up to the sampling error of 150 rows
    assert h["h_overall[x1]"] == pytest.approx(0.5, abs=0.08)
    assert h["h_overall[x2]"] == pytest.approx(0.5, abs=0.08)
    pairs = {(p["feature_a"], p["feature_b"]): p["h"] for p in output.tables["pairs"]}
    assert all(v < 1e-9 for k, v in pairs.items() if "x3" in k)
