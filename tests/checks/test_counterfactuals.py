"""counterfactuals: every counterfactual flips when predicted again and keeps every constraint;
on a logistic model it is never nearer than the closed-form minimum and close to it."""
from __future__ import annotations

import dataclasses
import pickle
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from check_support import run_check
from test_explain_model_agnostic import _data_with_model

from auditkit.engine.worker import CheckTask, execute
from auditkit.errors import CheckError


def _mad(column: pd.Series) -> float:
    """The check's documented scale, written out again: MAD, else mean absolute deviation, else 1."""
    values = column.dropna().to_numpy(float)
    deviation = np.abs(values - np.median(values))
    return float(np.median(deviation)) or float(np.mean(deviation)) or 1.0


def _counterfactual(frame: pd.DataFrame, features: list[str], record: dict) -> pd.DataFrame:
    row = frame.loc[[record["row"]], features].copy()
    for name, (_, after) in record["changes"].items():
        row[name] = after
    return row


# ------------------------------------------------------------------ a logistic model, ground truth


@pytest.fixture(scope="module")
def logistic(tmp_path_factory):
    """A logistic regression on a, b, c; column d is a model input that the pipeline drops."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    n = 2000
    X = pd.DataFrame({name: rng.uniform(0, 10, n) for name in "abcd"})
    logit = 1.0 * X.a - 0.5 * X.b + 0.2 * X.c - 3.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = make_pipeline(ColumnTransformer([("keep", "passthrough", ["a", "b", "c"])]),
                          LogisticRegression(C=1e6, max_iter=1000)).fit(X, y)
    path = tmp_path_factory.mktemp("cf") / "logistic.pkl"
    path.write_bytes(pickle.dumps(model))
    frame = X.assign(y=y, group=np.where(X.a < np.median(X.a), "low_a", "high_a"))
    data = _data_with_model(path, frame, ["a", "b", "c", "d"], "y")
    data.protected = ["group"]
    return data, model


def _closed_form_minimum(x: np.ndarray, w: np.ndarray, b: float, lo: np.ndarray, hi: np.ndarray,
                         mad: np.ndarray) -> float:
    """The smallest sum |dx_j| / MAD_j that lifts w.x + b to 0 within the box: a fractional
    knapsack, filled greedily by logit gained per unit of distance (exact for this LP)."""
    need = -(x @ w + b)
    total = 0.0
    for j in np.argsort(-np.abs(w) * mad):
        room = (hi[j] - x[j]) if w[j] > 0 else (x[j] - lo[j])
        gain = abs(w[j]) * room
        if gain >= need:
            return total + need / abs(w[j]) / mad[j]
        need -= gain
        total += room / mad[j]
    return np.inf


def test_distance_is_never_below_the_closed_form_minimum_and_close_to_it(logistic):
    data, model = logistic
    output = run_check("counterfactuals", data, {"sample": 60, "sparsity": 0})
    records = output.tables["counterfactuals"]
    assert len(records) == 60 and output.metrics["recourse_rate"].value > 0.9  # non-trivial
    frame = data.frame
    w = np.r_[model[-1].coef_[0], 0.0]  # d is dropped: weight 0
    b = float(model[-1].intercept_[0])
    lo, hi = frame[list("abcd")].min().to_numpy(), frame[list("abcd")].max().to_numpy()
    mad = np.array([_mad(frame[c]) for c in "abcd"])
    gaps = []
    for record in records:
        optimum = _closed_form_minimum(frame.loc[record["row"], list("abcd")].to_numpy(float), w, b, lo, hi, mad)
        assert record["found"] == np.isfinite(optimum)  # found exactly when some change can flip it
        if record["found"]:
            assert record["distance"] >= optimum * (1 - 1e-9)  # no search beats the optimum
            gaps.append(record["distance"] / optimum)
    # the L1 optimum of a linear model moves one feature (or fills features in order): the scan of
    # each feature plus 10 bisection steps lands within 0.1% (measured: median 1.0001, max 1.0008)
    assert np.median(gaps) < 1.005
    assert max(gaps) < 1.02


def test_a_feature_the_model_ignores_is_never_changed(logistic):
    data, _ = logistic
    for sparsity in (0.0, 1.0):
        output = run_check("counterfactuals", data, {"sample": 40, "sparsity": sparsity, "seeds": 50}, seed=3)
        found = [r for r in output.tables["counterfactuals"] if r["found"]]
        assert len(found) > 30
        assert all("d" not in r["changes"] for r in found)


def test_sparsity_trades_distance_for_fewer_changed_features(mixed):
    # on a GBM the nearest change often moves two features; a high price per feature buys sparsity with distance
    data, _ = mixed
    near = run_check("counterfactuals", data, {"sample": 40, "sparsity": 0.0})
    sparse = run_check("counterfactuals", data, {"sample": 40, "sparsity": 1000.0})
    assert near.metrics["mean_changed_features"].value > 1.2  # non-trivial: multi-feature changes exist
    assert sparse.metrics["mean_changed_features"].value < near.metrics["mean_changed_features"].value
    assert sparse.metrics["mean_distance"].value > near.metrics["mean_distance"].value


def test_recourse_burden_is_compared_between_groups(logistic):
    # group "low_a" has low values of the strongest input: its declined rows sit farther from the boundary
    data, _ = logistic
    output = run_check("counterfactuals", data, {"sample": 80})
    groups = {r["group"]: r for r in output.tables["groups"]}
    assert set(groups) == {"low_a", "high_a"}
    assert groups["low_a"]["mean_distance"] > groups["high_a"]["mean_distance"]
    ratio = output.metrics["recourse_burden_ratio[group]"].value
    assert ratio == pytest.approx(groups["high_a"]["mean_distance"] / groups["low_a"]["mean_distance"], rel=1e-12)
    assert ratio < 0.8
    found = [r for r in output.tables["counterfactuals"] if r["found"]]
    assert output.metrics["recourse_rate"].value == pytest.approx(len(found) / 80)
    assert sum(g["n"] for g in groups.values()) == 80
    # the interval resamples rows within each group: it brackets the figure, and with two
    # groups it matches a plain per-group bootstrap of the two mean distances
    low, high = output.metrics["recourse_burden_ratio[group]"].ci
    assert low <= ratio <= high < 1.0


def test_burden_interval_matches_a_plain_bootstrap_of_two_group_means():
    from auditkit.methods.recourse.burden import ratio_intervals as _ratio_intervals

    rng = np.random.default_rng(0)
    a, b = rng.exponential(1.0, 60), rng.exponential(2.0, 40)
    distance = np.concatenate([a, b])
    found = np.ones(100, dtype=bool)
    groups = [np.arange(100) < 60, np.arange(100) >= 60]
    _, (low, high) = _ratio_intervals(groups, found, distance, np.random.default_rng(1), 4000)
    plain = np.random.default_rng(2)
    ratios = []
    for _ in range(4000):
        ma, mb = plain.choice(a, 60).mean(), plain.choice(b, 40).mean()
        ratios.append(min(ma, mb) / max(ma, mb))
    ref_low, ref_high = np.quantile(ratios, [0.025, 0.975])
    assert low == pytest.approx(ref_low, abs=0.03) and high == pytest.approx(ref_high, abs=0.03)


# ------------------------------------------------------------------ a mixed-type GBM, properties

FEATURES = ["income", "years", "ratio", "age", "sex", "housing", "purpose", "note"]
NUMERIC = ["income", "years", "ratio", "age"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """A gradient-boosted pipeline on numeric (continuous with gaps, integer, 3-decimal ratio,
    age), a protected input (sex) and categorical inputs; some incomes are missing."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(1)
    n = 1500
    frame = pd.DataFrame({
        "income": np.round(rng.lognormal(10.5, 0.5, n), 2),
        "years": rng.integers(0, 30, n),
        "ratio": np.round(rng.uniform(0, 1.2, n), 3),
        "age": rng.integers(18, 80, n),
        "sex": rng.choice(["F", "M"], n),
        "housing": rng.choice(["rent", "own", "mortgage"], n),
        "purpose": rng.choice(["car", "home", "education", "other"], n),
        "note": rng.choice(["x"], n),  # a single category: nothing to change to
        "region": rng.choice(["north", "south"], n),  # protected, not a model input
    })
    frame.loc[rng.random(n) < 0.05, "income"] = np.nan
    logit = (-(np.log(frame.income.fillna(35_000)) - 10.5) * 2 + 1.5 * frame.ratio - 0.05 * frame.years
             + np.where(frame.housing == "rent", 0.8, 0.0) + 0.5 * np.sin(frame.age / 5) + (frame.sex == "M") * 0.3)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    categorical = ["sex", "housing", "purpose", "note"]
    # not HistGradientBoosting: its OpenMP threads spin at every small batch and crawl on a busy machine
    model = make_pipeline(
        ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore"), categorical),
                           ("num", SimpleImputer(strategy="median", add_indicator=True), NUMERIC)]),
        GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0)).fit(frame[FEATURES], frame.y)
    path = tmp_path_factory.mktemp("cf") / "gbm.pkl"
    path.write_bytes(pickle.dumps(model))
    data = _data_with_model(path, frame, FEATURES, "y")
    data.protected = ["sex", "region"]
    return data, model



@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(immutable=st.none() | st.lists(st.sampled_from(FEATURES + ["region"]), unique=True, max_size=3),
       directions=st.dictionaries(st.sampled_from(["income", "years", "ratio"]),
                                  st.sampled_from(["increase", "decrease"]), max_size=3),
       favourable=st.sampled_from([0, 1]), sparsity=st.sampled_from([0.0, 0.5, 1.0, 1000.0]),
       seed=st.integers(0, 2**16))
@example(immutable=FEATURES, directions={}, favourable=1, sparsity=1.0, seed=0)  # nothing may change
def test_every_counterfactual_flips_and_keeps_every_constraint(mixed, immutable, directions, favourable, sparsity,
                                                               seed):
    base, model = mixed
    immutable = immutable if immutable is None else list(immutable)
    directions = {k: v for k, v in directions.items() if immutable is None or k not in immutable}
    data = dataclasses.replace(base, favorable_decision=favourable)
    params = {"sample": 12, "immutable": immutable, "directions": directions, "sparsity": sparsity,
              "candidates": 40, "max_rounds": 12}
    output = run_check("counterfactuals", data, params, seed=seed)
    frame = data.frame
    fixed = set(immutable if immutable is not None else ["age"]) | {"sex"}  # default: age-like; sex is protected
    records = output.tables["counterfactuals"]
    assert records and all(data.decisions[frame.index.get_loc(r["row"])] != favourable for r in records)
    found = [r for r in records if r["found"]]
    if set(FEATURES) - {"note"} <= fixed:
        assert not found  # every feature that could change is immutable
    for record in found:
        row = frame.loc[record["row"]]
        cf = _counterfactual(frame, FEATURES, record)
        score = model.predict_proba(cf)[0, 1]
        assert int(score >= 0.5) == favourable  # predicted again, independently: the decision flips
        assert score == pytest.approx(record["score_after"], abs=1e-9)
        assert record["n_changed"] == len(record["changes"]) >= 1
        distance = 0.0
        for name, (before, after) in record["changes"].items():
            assert name not in fixed and name != "note"
            assert before == row[name] and after != before and not pd.isna(before)  # a missing value stays missing
            if name in NUMERIC:
                assert frame[name].min() <= after <= frame[name].max()
                if name in ("years", "age"):
                    assert isinstance(after, int)
                if name == "ratio":
                    assert round(after, 3) == after  # the data's resolution
                if directions.get(name) == "increase":
                    assert after > before
                if directions.get(name) == "decrease":
                    assert after < before
                distance += abs(after - before) / _mad(frame[name])
            else:
                assert after in set(frame[name])
                distance += 1.0
        assert record["distance"] == pytest.approx(distance, rel=1e-9)
    assert output.metrics["recourse_rate"].value == pytest.approx(len(found) / len(records))
    for name, metric in output.metrics.items():
        if name.startswith("recourse_") and metric.value is not None:
            assert 0.0 <= metric.value <= 1.0


def test_rows_and_query_select_only_unfavourable_rows_and_say_so(mixed):
    data, _ = mixed
    decisions = np.asarray(data.decisions)
    favourable_row = int(data.frame.index[np.flatnonzero(decisions == 1)[0]])
    declined = [int(r) for r in data.frame.index[np.flatnonzero(decisions == 0)[:3]]]
    output = run_check("counterfactuals", data, {"rows": [favourable_row, *declined]})
    assert [r["row"] for r in output.tables["counterfactuals"]] == declined
    assert any("favourable decision already" in note for note in output.notes)
    default = run_check("counterfactuals", data, {"sample": 10})
    assert all(decisions[data.frame.index.get_loc(r["row"])] == 0 for r in default.tables["counterfactuals"])
    by_query = run_check("counterfactuals", data, {"query": "decision == 0 and years > 20", "sample": 5})
    assert all(data.frame.loc[r["row"], "years"] > 20 for r in by_query.tables["counterfactuals"])


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("params, message", [
    ({"immutable": ["incme"]}, "params.immutable: 'incme' is not a column"),
    ({"directions": {"housing": "increase"}}, "params.directions: 'housing' is categorical"),
    ({"directions": {"region": "increase"}}, "params.directions: 'region' is not a model feature"),
    ({"directions": {"age": "increase"}}, "params.directions: 'age' is immutable"),
    ({"directions": {"sex": "increase"}}, "params.directions: 'sex' is categorical"),
    ({"rows": [0, 99_999]}, "params.rows: row 99999 is not among the audit rows"),
    ({"query": "income >"}, "params.query 'income >' cannot be evaluated"),
    ({"query": "years > 1000"}, "selects no row"),
    ({"rows": [0], "query": "years > 1"}, "params.rows and params.query are both given"),
])
def test_params_that_do_not_fit_the_data_are_rejected_before_anything_runs(mixed, params, message):
    from auditkit.checks.local.counterfactuals import CounterfactualsParams, validate

    data, _ = mixed
    with pytest.raises(CheckError, match=re.escape(message)):
        validate(CounterfactualsParams.model_validate(params), data)
    outcome = execute(CheckTask("c", "counterfactuals", params, 0, 60), data)  # the check says the same
    assert outcome.output is None and message in outcome.error


def test_a_bad_param_in_a_policy_exits_2_naming_its_line(tmp_path, samples, cli):
    from support import credit_policy, write_policy

    policy = credit_policy(samples, tmp_path / "out", checks=[
        {"id": "recourse", "type": "counterfactuals", "params": {"directions": {"purpose": "increase"}}}])
    result = cli("run", write_policy(tmp_path, policy), "--format", "json")
    assert result.exit_code == 2
    assert "params.directions: 'purpose' is categorical" in result.output
    assert "policy.yaml:" in result.output


def test_age_like_names_are_immutable_by_default():
    from auditkit.methods.recourse.constraints import looks_like_age

    assert all(map(looks_like_age, ["age", "age_band", "AgeBand", "applicant_age", "date_of_birth", "DOB"]))
    assert not any(map(looks_like_age, ["mileage", "average_balance", "page_views", "agent", "percentage"]))


def test_section_draws_a_before_after_table_per_row_and_lists_rows_without_one(logistic):
    import json
    from pathlib import Path

    from auditkit.render.html import render_html

    data, _ = logistic
    output = run_check("counterfactuals", data, {"sample": 12, "immutable": ["a", "b"]})  # c alone: not always enough
    records = output.tables["counterfactuals"]
    assert any(r["found"] for r in records) and not all(r["found"] for r in records)
    results = json.loads((Path(__file__).resolve().parents[1] / "data" / "example_results.json").read_text())
    check = results["checks"][0]
    check.update(type="counterfactuals", tables=output.tables, plots=[], findings=[], status="pass")
    page = render_html(results)
    section = page[page.index("Counterfactuals: before"):]
    section = section[:section.index("</section>")]
    for record in records:
        assert f">{record['row']}</" in section  # every explained row: in the table, or listed as not found
    for record in (r for r in records if r["found"]):
        body = section[section.index(f">{record['row']}</td>"):]
        body = body[:body.index("</tbody>")]
        assert body.count("</tr>") == record["n_changed"]  # one line per changed feature
        for name, (before, after) in record["changes"].items():
            assert f'<td class="text">{name}</td>' in body
    assert "No counterfactual found" in section


# ------------------------------------------------------------------ shared params (#17)


def test_confidence_sets_the_level_of_the_ratio_intervals(logistic):
    data, _ = logistic
    wide = run_check("counterfactuals", data, {"sample": 80, "bootstrap": 400})
    narrow = run_check("counterfactuals", data, {"sample": 80, "bootstrap": 400, "confidence": 0.8})
    for name in ("recourse_rate_ratio[group]", "recourse_burden_ratio[group]"):
        a, b = wide.metrics[name], narrow.metrics[name]
        assert a.value == b.value and a.ci is not None and b.ci is not None
        assert (a.level, b.level) == (0.95, 0.8)
        assert a.method.endswith("400 resamples, 95% percentile") and b.method.endswith("400 resamples, 80% percentile")
    # the same seeded resamples: the 80% interval of the burden ratio lies strictly inside the 95% one
    a, b = wide.metrics["recourse_burden_ratio[group]"].ci, narrow.metrics["recourse_burden_ratio[group]"].ci
    assert a[0] < b[0] <= b[1] < a[1]


def test_reading_quotes_the_level_of_the_interval():
    from auditkit.checks.local.counterfactuals import _reading

    groups = [{"attribute": "sex", "group": "F", "n": 40, "recourse_rate": 0.5, "mean_distance": 3.0},
              {"attribute": "sex", "group": "M", "n": 40, "recourse_rate": 0.9, "mean_distance": 1.5}]
    for level, text in ((0.8, "80% CI 0.40-0.70"), (0.975, "97.5% CI 0.40-0.70"), (None, "95% CI 0.40-0.70")):
        figure = {"value": 0.56, "ci": [0.4, 0.7], **({"level": level} if level is not None else {})}
        result = {"metrics": {"recourse_rate_ratio[sex]": figure}, "tables": {"groups": groups},
                  "params": {"min_group_size": 5}}
        sentence = _reading({"metric": "recourse_rate_ratio[sex]", "value": 0.6}, result)
        assert f"(ratio 0.56, {text})" in sentence


@pytest.mark.parametrize("params", [{"rows": []}, {"rows": [0, 99_999]}, {"rows": [0], "query": "years > 1"},
                                    {"query": "income >"}, {"query": "years > 1000"}])
def test_row_selection_is_refused_with_the_message_of_every_local_check(mixed, params):
    from auditkit.checks.local.counterfactuals import CounterfactualsParams, validate
    from auditkit.core.params import RowSelectionParams
    from auditkit.methods.rows import validate_selection

    data, _ = mixed
    with pytest.raises(CheckError) as shared:
        validate_selection(RowSelectionParams.model_validate(params), data)
    with pytest.raises(CheckError) as own:
        validate(CounterfactualsParams.model_validate(params), data)
    assert str(own.value) == str(shared.value)


def test_counterfactuals_keeps_its_own_sample_default_and_limit():
    from auditkit.checks.local.counterfactuals import CounterfactualsParams
    from pydantic import ValidationError

    assert CounterfactualsParams().sample == 100
    assert CounterfactualsParams(sample=5_000).sample == 5_000  # above the shared limit of 1,000
    with pytest.raises(ValidationError, match="sample"):
        CounterfactualsParams(sample=5_001)


# ------------------------------------------------------------------ multiclass: the favourable class (#18)


def test_multiclass_counterfactuals_reach_the_favourable_class_and_respect_the_planted_tier_rule(samples):
    """The tier model (sample_models/README.md, section 5): two or more late payments mean 'high'
    whatever else is true, so a counterfactual that reaches 'low' from 'high' lowers them below 2;
    every counterfactual, predicted again, has 'low' as its most probable class."""
    import dataclasses

    from auditkit.adapters.base import load_adapter
    from task_support import TIER_FEATURES, model_data

    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:400]
    data = dataclasses.replace(model_data(samples / "credit_tier.onnx", frame, TIER_FEATURES, "risk_tier",
                                          task="multiclass"), favorable_class="low", protected=["sex"])
    output = run_check("counterfactuals", data, {"sample": 40, "bootstrap": 20, "min_group_size": 5})
    records = output.tables["counterfactuals"]
    assert len(records) == 40 and all(str(data.decisions[r["row"]]) != "low" for r in records)
    found = [r for r in records if r["found"]]
    assert len(found) >= 35
    adapter = load_adapter(data.adapter_spec)
    classes = [str(c) for c in adapter.classes]
    after = pd.concat([_counterfactual(data.frame, TIER_FEATURES, r) for r in found])
    probabilities = np.asarray(adapter.predict(after[TIER_FEATURES]), dtype=float)
    assert all(classes[k] == "low" for k in probabilities.argmax(axis=1))
    low = classes.index("low")
    for record, p in zip(found, probabilities):
        assert record["score_before"] == pytest.approx(data.scores[record["row"], low])  # P(low) before
        assert record["score_after"] == pytest.approx(p[low], abs=1e-6)
    for record in found:
        if data.frame.loc[record["row"], "n_late_payments"] >= 2:
            assert record["changes"]["n_late_payments"][1] < 2, record


def test_multiclass_counterfactuals_without_a_favourable_class_skip_naming_the_policy_key(samples):
    from task_support import TIER_FEATURES, model_data

    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:50]
    data = model_data(samples / "credit_tier.onnx", frame, TIER_FEATURES, "risk_tier", task="multiclass")
    output = run_check("counterfactuals", data, {"sample": 5})
    assert output.skipped is not None and "data.favorable_label" in output.skipped
