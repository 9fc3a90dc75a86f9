"""local_explanations: SHAP adds up per row, LIME recovers a linear model, reason codes say
what pushed a row towards the unfavourable decision, and bad row selections exit 2."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from check_support import run_check
from test_explain_model_agnostic import _data_with_model

from support import credit_policy, write_policy

COEFFICIENTS = {"a": 3.0, "b": -2.0, "c": 1.0, "d": -0.5}


@pytest.fixture(scope="module")
def linear(tmp_path_factory):
    """A logistic model on uniform features: its log-odds are exactly linear, w = COEFFICIENTS."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(1)
    n = 4000
    X = pd.DataFrame({f: rng.uniform(0, 1, n) for f in COEFFICIENTS})
    X.iloc[0], X.iloc[1] = 0.88, 0.12  # a row in the top quartile of every feature, one in the bottom
    logit = X.to_numpy() @ np.array(list(COEFFICIENTS.values())) - 0.75
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = LogisticRegression(C=1e6, max_iter=2000).fit(X, y)
    path = tmp_path_factory.mktemp("local") / "linear.pkl"
    path.write_bytes(pickle.dumps(model))
    data = _data_with_model(path, X.assign(y=y), list(COEFFICIENTS), "y")
    return data, model, X


@pytest.fixture(scope="module")
def gbm(tmp_path_factory):
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(2)
    n = 1500
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "x3": rng.uniform(size=n)})
    y = ((X.x1 + X.x2 ** 2 + 0.3 * rng.normal(size=n)) > 1).astype(int)
    model = GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0).fit(X, y)
    path = tmp_path_factory.mktemp("local") / "gbm.pkl"
    path.write_bytes(pickle.dumps(model))
    return _data_with_model(path, X.assign(y=y), ["x1", "x2", "x3"], "y"), model, X


def _by_row(output, table="attributions"):
    frame = pd.DataFrame(output.tables[table])
    return {row: part.set_index("feature") for row, part in frame.groupby("row")}


def test_shap_values_add_up_to_each_rows_log_odds(gbm):
    data, model, X = gbm
    output = run_check("local_explanations", data, {"sample": 8, "lime_samples": 500})
    attributions = _by_row(output)
    for record in output.tables["explanations"]:
        row = record["row"]
        p = model.predict_proba(X.iloc[[row]])[0, 1]
        total = record["base_value"] + attributions[row]["shap"].sum()
        assert total == pytest.approx(np.log(p / (1 - p)), abs=1e-6)
        assert record["score"] == pytest.approx(p)
    assert output.metrics["additivity_error"].value < 1e-6


def test_lime_recovers_the_signs_and_order_of_a_linear_models_coefficients(linear):
    data, model, X = linear
    # A row in the top quartile of every feature: being in its bin moves the log-odds by
    # w_f times the same displacement for every (uniform) feature, so LIME's weights have the
    # coefficients' signs and order; in the bottom quartile every sign is reversed.
    top, bottom = 0, 1
    output = run_check("local_explanations", data, {"rows": [top, bottom], "lime_samples": 5000})
    weights = {row: frame["lime_weight"] for row, frame in _by_row(output).items()}
    coefficients = pd.Series(COEFFICIENTS)
    by_magnitude = list(coefficients.abs().sort_values(ascending=False).index)
    for row, flip in ((top, 1.0), (bottom, -1.0)):
        w = weights[row][list(COEFFICIENTS)]
        assert (np.sign(w) == flip * np.sign(coefficients)).all(), w
        assert list(w.abs().sort_values(ascending=False).index) == by_magnitude, w
    # SHAP ranks the features alike (|w| (x - E[x]) with equal displacements) and signs agree
    assert output.metrics["shap_lime_agreement"].value == pytest.approx(1.0)
    assert output.metrics["sign_agreement"].value == 1.0


def test_linear_shap_values_differ_between_rows_by_the_coefficients_times_the_inputs(linear):
    # linear SHAP is w * (x - E[x]) whatever the background: between two rows the difference
    # is exactly w * (x1 - x2)
    data, model, X = linear
    output = run_check("local_explanations", data, {"rows": [3, 10], "lime_samples": 300})
    rows = _by_row(output)
    difference = rows[3]["shap"][list(COEFFICIENTS)] - rows[10]["shap"][list(COEFFICIENTS)]
    expected = model.coef_[0] * (X.iloc[3] - X.iloc[10]).to_numpy()
    assert np.allclose(difference.to_numpy(), expected, atol=1e-9)


def test_reason_codes_name_the_features_pushing_towards_the_unfavourable_decision(gbm):
    data, model, X = gbm
    # favourable decision 0: decision 1 is unfavourable; a positive SHAP value pushes towards it
    data.favorable_decision = 0
    declined = np.flatnonzero(np.asarray(data.decisions) == 1)[:5]
    approved = np.flatnonzero(np.asarray(data.decisions) == 0)[:2]
    output = run_check("local_explanations", data, {"rows": [*map(int, declined), *map(int, approved)],
                                                    "lime_samples": 300, "top_k": 2})
    attributions = _by_row(output)
    reasons = pd.DataFrame(output.tables["reasons"])
    assert set(reasons["row"]) == set(map(int, declined))  # approved rows get no reasons
    for row, part in reasons.groupby("row"):
        shap_values = attributions[row]["shap"]
        pushing = shap_values[shap_values > 0].sort_values(ascending=False)
        assert list(part.sort_values("rank")["feature"]) == list(pushing.index[:2])
        for _, reason in part.iterrows():
            value = X.iloc[row][reason["feature"]]
            below, above = (X[reason["feature"]] < value).mean(), (X[reason["feature"]] > value).mean()
            expected = (f"higher than {int(np.floor(below * 100))}%" if below >= above
                        else f"lower than {int(np.floor(above * 100))}%")
            assert reason["text"].startswith(f"{reason['feature']} = ") and expected in reason["text"]
    assert output.metrics["reason_code_coverage"].value == 1.0
    assert output.metrics["reason_code_coverage"].n == len(declined)


def test_a_tied_value_is_placed_on_the_side_with_more_cases_beyond_it():
    from auditkit.checks.local.local_explanations import _Standing

    frame = pd.DataFrame({"late": [0] * 45 + [1] * 39 + [2] * 10 + [5] * 6, "kind": ["a"] * 30 + ["b"] * 70})
    standing = _Standing(frame)
    assert standing.text("late", 1) == "higher than 45% of the audited cases"  # not "lower than 16%"
    assert standing.text("late", 0) == "lower than 55% of the audited cases"
    assert standing.text("late", 5) == "higher than 94% of the audited cases"
    assert standing.text("kind", "a") == "shared by 30% of the audited cases"
    assert standing.text("late", float("nan")) == "missing"


def test_a_query_selects_rows_and_a_larger_result_is_sampled_with_the_seed(gbm):
    data, model, X = gbm
    output = run_check("local_explanations", data, {"query": "x1 > 1 and decision == 1", "sample": 4,
                                                    "lime_samples": 200})
    rows = [r["row"] for r in output.tables["explanations"]]
    assert len(rows) == 4 and all(X.iloc[r]["x1"] > 1 and data.decisions[r] == 1 for r in rows)
    again = run_check("local_explanations", data, {"query": "x1 > 1 and decision == 1", "sample": 4,
                                                   "lime_samples": 200})
    assert [r["row"] for r in again.tables["explanations"]] == rows
    assert output.tables["attributions"] == again.tables["attributions"]


def test_each_explained_row_gets_a_waterfall_with_lime_beside_it(gbm):
    data, model, X = gbm
    output = run_check("local_explanations", data, {"sample": 3, "lime_samples": 200})
    assert [p.kind for p in output.plots] == ["waterfall"] * 3
    for plot, record in zip(output.plots, output.tables["explanations"]):
        assert plot.data["row"] == record["row"]
        assert plot.data["base"] + sum(plot.data["values"]) == pytest.approx(plot.data["output"], abs=1e-6)
        assert len(plot.data["side_values"]) == len(plot.data["values"])


# ------------------------------------------------------------------ bad input: exit 2


@pytest.mark.parametrize("params, fragments", [
    ({"rows": [999999]}, ["checks[0].params.rows", "row 999999 is not among the audit rows"]),
    ({"query": "income >"}, ["checks[0].params.query", "cannot be evaluated", "SyntaxError"]),
    ({"query": "no_such_column > 3"}, ["checks[0].params.query", "cannot be evaluated", "no_such_column"]),
    ({"query": "income < 0"}, ["checks[0].params.query", "selects no row"]),
])
def test_bad_row_selection_exits_2_naming_the_key_before_anything_runs(cli, samples, tmp_path, params, fragments):
    out = tmp_path / "out"
    policy = credit_policy(samples, out, checks=[{"id": "why", "type": "local_explanations", "params": params}])
    result = cli("run", write_policy(tmp_path, policy))
    assert result.exit_code == 2, result.stdout + result.stderr
    message = result.stderr
    assert "Traceback" not in message and message.startswith("error: ")
    for fragment in fragments:
        assert fragment in message, message
    assert not out.exists()  # nothing written, not even the output directory
