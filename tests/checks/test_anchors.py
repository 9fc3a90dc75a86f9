"""anchors: the KL bounds and the bandit against exact references, rules a model is known to
follow recovered exactly, reported precision re-estimated on fresh samples, exact coverage."""
from __future__ import annotations

import dataclasses
import math
import pickle
import re

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from check_support import run_check
from test_explain_model_agnostic import _data_with_model

from auditkit.checks.local.anchors import AnchorsParams
from auditkit.methods.anchor_search.bandit import kl_bernoulli, kl_lower_bound, kl_lucb, kl_upper_bound, lucb_beta
from auditkit.methods.anchor_search.predicates import (Predicate, anchor_conditions, is_redundant, quantile_edges,
                                                       readable_edges, row_predicates)
from auditkit.methods.anchor_search.sampling import ConditionalSampler
from auditkit.core.registry import get_registry
from auditkit.errors import CheckError

# ----------------------------------------------------------------------------- helpers


def _parse(predicate: str) -> tuple[str, str, object]:
    """``income > 52,340`` -> ("income", ">", 52340.0); the report's text is exact."""
    if predicate.endswith(" is missing"):
        return predicate[: -len(" is missing")], "is missing", None
    feature, op, value = re.fullmatch(r"(.+?) (<=|>|=) (.+)", predicate).groups()
    if op == "=":
        return feature, op, value
    return feature, op, float(value.replace(",", ""))


def _mask(frame: pd.DataFrame, predicates: list[str]) -> np.ndarray:
    """Rows of ``frame`` that satisfy every predicate, computed from the text alone."""
    mask = np.ones(len(frame), dtype=bool)
    for text in predicates:
        feature, op, value = _parse(text)
        column = frame[feature]
        if op == "is missing":
            mask &= column.isna().to_numpy()
        elif op == "=":
            mask &= (column.astype(str) == value).to_numpy() & column.notna().to_numpy()
        elif op == "<=":
            mask &= (column <= value).to_numpy()
        else:
            mask &= (column > value).to_numpy()
    return mask


def _fresh_precision(model, pool: pd.DataFrame, x: pd.Series, predicates: list[str], decision: int, n: int,
                     seed: int) -> float:
    """An independent draw from D(z | A), written from the documented definition: background rows
    (with replacement); anchored categories set to the row's; anchored numbers outside the
    anchor's interval replaced by background values inside it. Predicted by the model itself."""
    rng = np.random.default_rng(seed)
    z = pool.iloc[rng.integers(0, len(pool), n)].reset_index(drop=True)
    bounds: dict[str, list[float]] = {}
    for text in predicates:
        feature, op, value = _parse(text)
        if op == "=":
            z[feature] = x[feature]
        elif op == "is missing":
            z[feature] = np.nan
        else:
            low, high = bounds.setdefault(feature, [-np.inf, np.inf])
            bounds[feature] = [max(low, value), high] if op == ">" else [low, min(high, value)]
    for feature, (low, high) in bounds.items():
        inside = lambda s: ((s > low) & (s <= high)).to_numpy()  # noqa: E731
        outside = ~inside(z[feature])
        options = pool[feature].to_numpy()[inside(pool[feature])]
        values = z[feature].to_numpy(copy=True)
        values[outside] = options[rng.integers(0, len(options), outside.sum())]
        z[feature] = values
    decisions = (model.predict_proba(z)[:, 1] >= 0.5).astype(int)
    return float(np.mean(decisions == decision))


# ----------------------------------------------------------------------------- KL bounds and bandit


def test_kl_bernoulli_equals_scipy_relative_entropy():
    from scipy.stats import entropy

    for p, q in [(0.5, 0.5), (0.1, 0.4), (0.95, 0.8), (0.0, 0.3), (1.0, 0.9)]:
        assert_allclose(kl_bernoulli(p, q), entropy([p, 1 - p], [q, 1 - q]), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("p", [0.0, 0.05, 0.3, 0.5, 0.9, 0.97, 1.0])
@pytest.mark.parametrize("level", [1e-4, 0.01, 0.2, 3.0])
def test_kl_bounds_are_the_exact_roots_of_the_kl_equation(p, level):
    from scipy.optimize import brentq

    def kl(q: float) -> float:
        return float(kl_bernoulli(p, q)) - level

    lower, upper = kl_lower_bound(p, level), kl_upper_bound(p, level)
    # exact references: the root of KL(p || q) = level on each side of p (or the end of [0, 1])
    exact_upper = 1.0 if p == 1.0 or kl(1 - 1e-15) <= 0 else brentq(kl, p, 1 - 1e-15, xtol=1e-14)
    exact_lower = 0.0 if p == 0.0 or kl(1e-15) <= 0 else brentq(kl, 1e-15, p, xtol=1e-14)
    assert lower <= p <= upper
    assert_allclose([lower, upper], [exact_lower, exact_upper], atol=1e-9)  # bisection to 2^-40 of the bracket
    # conservative side: never inside the exact interval
    assert lower <= exact_lower + 1e-15 and upper >= exact_upper - 1e-15
    # the vectorised path agrees with the scalar one
    assert_allclose(kl_lower_bound(np.array([p, p]), level), [lower, lower], atol=1e-12)
    assert_allclose(kl_upper_bound(np.array([p, p]), level), [upper, upper], atol=1e-12)


def test_kl_bounds_narrow_as_samples_grow_and_cover_the_truth_as_promised():
    beta = math.log(1 / 0.1)
    ns = np.array([10, 100, 1_000, 10_000])
    lower, upper = kl_lower_bound(np.full(4, 0.9), beta / ns), kl_upper_bound(np.full(4, 0.9), beta / ns)
    assert np.all(np.diff(lower) > 0) and np.all(np.diff(upper) < 0)  # nested intervals
    # Chernoff: P(lower bound > p) <= exp(-n * level) = delta for the one-sided KL bound
    rng = np.random.default_rng(0)
    p, n, delta = 0.9, 200, 0.1
    means = rng.binomial(n, p, size=4_000) / n
    above = np.mean(kl_lower_bound(means, math.log(1 / delta) / n) > p)
    below = np.mean(kl_upper_bound(means, math.log(1 / delta) / n) < p)
    assert above <= delta and below <= delta
    assert above > 0.005  # not vacuous: the bound is near its nominal level (about 0.05 here)


def test_kl_lucb_finds_the_best_arms_and_samples_the_hopeless_ones_least():
    p = np.array([0.95, 0.9, 0.7, 0.6, 0.4, 0.3])
    for seed in range(20):
        rng = np.random.default_rng(seed)
        counts = np.full(6, 20, dtype=np.int64)
        hits = rng.binomial(20, p).astype(np.int64)
        chosen = kl_lucb(counts, hits, 2, lambda arms, n: rng.binomial(n, p[arms]), delta=0.1, epsilon=0.1,
                         batch_size=20, budget=10**7)
        # epsilon-optimal: every arm returned is within epsilon of the second best (0.9): only arms 0 and 1
        assert sorted(chosen) == [0, 1], seed
        assert counts[5] <= counts[2]  # the clearly worst arm needs the fewest samples
    assert lucb_beta(10, 2, 0.1) > lucb_beta(10, 1, 0.1) > lucb_beta(5, 1, 0.1)  # the rate grows with t and arms


# ----------------------------------------------------------------------------- discretisation and sampling


def test_predicates_are_the_rows_side_of_each_quartile_edge():
    assert quantile_edges(np.arange(1, 9), 4).tolist() == [2.0, 4.0, 6.0]  # data values, not interpolations
    assert quantile_edges([0, 0, 0, 0, 0, 1, 2, 7], 4).tolist() == [0.0, 1.0]  # ties collapse
    assert quantile_edges([3.0, 3.0, 3.0], 4).tolist() == []  # a constant: no edge above the maximum
    # rounded one decimal place finer than the smallest gap: order kept, each moved < gap / 20
    assert readable_edges(np.array([29_540.0, 42_180.0, 58_620.0]), [0, 1e5]).tolist() == [30_000, 42_000, 59_000]
    assert readable_edges(np.array([0.2149, 0.3312, 0.4661]), [0, 1.5]).tolist() == [0.21, 0.33, 0.47]
    assert readable_edges(np.array([2019.0, 2020.0, 2021.0]), [2000, 2030]).tolist() == [2019, 2020, 2021]
    x = pd.Series({"a": 5.0, "b": np.nan, "c": "v"})
    predicates = row_predicates(x, ["a", "b", "c"], {"a": np.array([2.0, 4.0, 6.0]), "b": np.array([1.0])})
    assert [p.text() for p in predicates] == ["a > 2", "a > 4", "a <= 6", "b is missing", "c = v"]
    # merged per feature, and a looser predicate on an anchored feature is implied
    assert [c.text() for c in anchor_conditions(predicates, (1, 2, 4))] == ["4 < a <= 6", "c = v"]
    assert is_redundant(predicates, (1,), 0) and not is_redundant(predicates, (0,), 1)


def test_conditional_samples_satisfy_the_anchor_and_leave_the_rest_as_in_the_data():
    rng = np.random.default_rng(3)
    n = 4_000
    pool = pd.DataFrame({"a": rng.integers(0, 100, n), "b": rng.normal(size=n),
                         "c": rng.choice(["u", "v", "w"], n), "m": np.where(rng.random(n) < 0.2, np.nan, 1.0)})
    x = pd.Series({"a": 40, "b": 0.0, "c": "v", "m": np.nan})
    predicates = [Predicate("a", ">", 25.0), Predicate("a", "<=", 50.0), Predicate("c", "=", "v"),
                  Predicate("m", "is missing")]
    sampler = ConditionalSampler(pool, x, predicates)
    both = sampler.sample([(0, 1, 2, 3), ()], 20_000, np.random.default_rng(0))
    anchored, free = both.iloc[:20_000], both.iloc[20_000:]
    assert ((anchored.a > 25) & (anchored.a <= 50)).all() and (anchored.c == "v").all() and anchored.m.isna().all()
    assert anchored.a.dtype == pool.a.dtype and set(anchored.a) <= set(pool.a)  # values of the data
    # a's values inside the interval follow the data's own distribution there (uniform on 26..50)
    assert_allclose(anchored.a.mean(), pool.a[(pool.a > 25) & (pool.a <= 50)].mean(), atol=0.3)  # ~0.05 s.e.
    # free features keep the data's distribution: b, and everything of the empty anchor
    assert_allclose(anchored.b.mean(), pool.b.mean(), atol=0.05)  # s.e. ~0.007
    assert_allclose((free.c == "v").mean(), (pool.c == "v").mean(), atol=0.02)
    assert_allclose(free.m.isna().mean(), pool.m.isna().mean(), atol=0.02)


# ----------------------------------------------------------------------------- ground truth: rule models


def _tree_data(tmp_path, rule: str, n: int = 4_000):
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(7)
    X = pd.DataFrame({"x1": rng.random(n), "x2": rng.random(n), "x3": rng.random(n)})
    y = ((X.x1 > 0.5) & (X.x2 > 0.5)) if rule == "and" else (X.x1 > 0.5)
    model = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y.astype(int))
    thresholds = model.tree_.threshold[model.tree_.feature >= 0]
    used = {model.feature_names_in_[f] for f in model.tree_.feature if f >= 0}
    # the tree is the rule: splits at 0.5 (within the data's spacing) on x1 (and x2) only
    assert np.all(np.abs(thresholds - 0.5) < 0.01) and used == ({"x1", "x2"} if rule == "and" else {"x1"})
    path = tmp_path / f"{rule}.pkl"
    path.write_bytes(pickle.dumps(model))
    return _data_with_model(path, X.assign(y=y.astype(int)), ["x1", "x2", "x3"], "y"), X


def _row(X: pd.DataFrame, x1: tuple[float, float], x2: tuple[float, float]) -> int:
    inside = X.x1.between(*x1) & X.x2.between(*x2) & X.x3.between(0.1, 0.9)
    return int(np.flatnonzero(inside.to_numpy())[0])


@pytest.fixture(scope="module")
def and_rule(tmp_path_factory):
    return _tree_data(tmp_path_factory.mktemp("anchors"), "and")


def test_the_anchor_of_an_and_rule_is_exactly_its_two_conditions(and_rule):
    data, X = and_rule
    row = _row(X, (0.55, 0.7), (0.55, 0.7))
    record = run_check("anchors", data, {"rows": [row]}).tables["anchors"][0]
    # x1 and x2 above their medians (0.497 and 0.505 in this sample, read as 0.5) is the model's rule;
    # x3 plays no part
    assert record["decision"] == 1
    assert sorted(record["predicates"]) == ["x1 > 0.5", "x2 > 0.5"]
    assert record["met_target"] and record["precision"] >= 0.99 and record["precision_ci"][0] >= 0.95
    assert record["rule"] == "IF x1 > 0.5 AND x2 > 0.5 THEN decision = 1 (favourable)"
    assert_allclose(record["coverage"], 0.25, atol=0.02)  # closed form for independent uniforms; n = 4,000


def test_a_negative_decision_of_the_and_rule_needs_one_condition_only(and_rule):
    data, X = and_rule
    row = _row(X, (0.3, 0.45), (0.3, 0.45))
    record = run_check("anchors", data, {"rows": [row]}).tables["anchors"][0]
    assert record["decision"] == 0 and record["predicates"] in (["x1 <= 0.5"], ["x2 <= 0.5"])  # the shortest
    assert record["precision"] >= 0.99 and record["met_target"]


def test_a_one_feature_model_is_anchored_on_that_feature_alone(tmp_path):
    data, X = _tree_data(tmp_path, "x1")
    row = _row(X, (0.55, 0.7), (0.0, 1.0))
    output = run_check("anchors", data, {"rows": [row]})
    record = output.tables["anchors"][0]
    assert record["predicates"] == ["x1 > 0.5"]
    assert record["precision"] >= 0.99 and record["met_target"]
    assert output.metrics["anchor_length"].value == 1.0 and output.metrics["anchor_target_met"].value == 1.0


def test_a_decision_that_holds_everywhere_gets_the_empty_anchor(and_rule):
    data, _ = and_rule
    everyone = dataclasses.replace(data, threshold=0.0, decisions=np.ones(len(data.frame), dtype=np.int64))
    record = run_check("anchors", everyone, {"rows": [0]}).tables["anchors"][0]
    assert record["predicates"] == [] and record["coverage"] == 1.0 and record["precision"] == 1.0
    assert record["rule"].startswith("IF (no condition) THEN decision = 1")


def test_same_seed_same_anchors_and_a_rows_anchor_does_not_depend_on_the_others(and_rule):
    data, X = and_rule
    rows = [_row(X, (0.55, 0.7), (0.55, 0.7)), _row(X, (0.3, 0.45), (0.6, 0.9))]
    first = run_check("anchors", data, {"rows": rows}, seed=5).tables["anchors"]
    again = run_check("anchors", data, {"rows": rows}, seed=5).tables["anchors"]
    alone = run_check("anchors", data, {"rows": rows[1:]}, seed=5).tables["anchors"]
    assert first == again
    assert alone[0] == first[1]


# ----------------------------------------------------------------------------- a real model: precision and coverage


@pytest.fixture(scope="module")
def gbm(tmp_path_factory):
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(11)
    n = 3_000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(0, 10, n).round(2), "c": rng.poisson(2, n),
                      "d": rng.choice(["u", "v", "w"], n), "e": rng.normal(size=n)})
    logit = 1.5 * X.a - 0.4 * (X.b - 5) + 0.6 * X.c * (X.d == "w") - 0.8 * (X.d == "u") - 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = make_pipeline(ColumnTransformer([("d", OneHotEncoder(), ["d"])], remainder="passthrough"),
                          GradientBoostingClassifier(n_estimators=60, max_depth=3, random_state=0)).fit(X, y)
    path = tmp_path_factory.mktemp("anchors") / "gbm.pkl"
    path.write_bytes(pickle.dumps(model))
    data = _data_with_model(path, X.assign(y=y), list(X.columns), "y")
    rows = [int(r) for r in np.argsort(data.scores)[[150, 900, 1800, 2850]]]  # confident and borderline, both sides
    output = run_check("anchors", data, {"rows": rows, "max_samples": 40_000}, seed=3)
    return data, model, X, output


def test_reported_precision_is_confirmed_on_fresh_samples(gbm):
    data, model, X, output = gbm
    records = output.tables["anchors"]
    assert len(records) == 4 and {r["decision"] for r in records} == {0, 1}
    assert any(r["predicates"] for r in records)  # non-trivial anchors
    for k, record in enumerate(records):
        x = X.iloc[record["row"]]
        fresh = _fresh_precision(model, X, x, record["predicates"], record["decision"], 20_000, seed=1_000 + k)
        # the contract: within 0.05 (20,000 fresh samples: s.e. <= 0.004)
        assert abs(fresh - record["precision"]) <= 0.05, (record, fresh)
        low, high = record["precision_ci"]
        assert low <= record["precision"] <= high
        assert low - 0.02 <= fresh <= high + 0.02  # the KL interval holds the truth (slack: the fresh estimate's error)
        assert record["n_samples"] <= 40_000 and record["precision_n"] <= record["n_samples"]
        if record["met_target"]:
            assert low >= 0.95


def test_coverage_is_the_share_of_audit_rows_that_satisfy_the_rule(gbm):
    data, _, X, output = gbm
    for record in output.tables["anchors"]:
        mask = _mask(X, record["predicates"])
        assert mask[record["row"]]  # the explained row satisfies its own anchor
        assert record["coverage"] == pytest.approx(mask.mean(), abs=1e-12)
    coverages = [r["coverage"] for r in output.tables["anchors"]]
    assert output.metrics["anchor_coverage"].value == pytest.approx(np.median(coverages))
    assert output.metrics["anchor_precision_min"].value == min(r["precision"] for r in output.tables["anchors"])


def test_the_sample_budget_is_respected_and_said(gbm):
    data, _, _, _ = gbm
    hard = int(np.argsort(np.abs(data.scores - 0.5))[0])  # the most borderline row
    output = run_check("anchors", data, {"rows": [hard], "max_samples": 1_000})
    record = output.tables["anchors"][0]
    assert record["n_samples"] <= 1_000 and not record["met_target"]
    assert any("budget ran out" in note for note in output.notes)


# ----------------------------------------------------------------------------- params against the data


def test_rows_and_queries_that_select_nothing_are_rejected_before_the_run(and_rule):
    data, _ = and_rule
    validate = get_registry().get("anchors").validate
    validate(AnchorsParams(rows=[0, 5]), data)  # fine
    validate(AnchorsParams(query="decision == 1"), data)
    with pytest.raises(CheckError, match=r"params\.rows and params\.query are both given"):
        validate(AnchorsParams(rows=[0], query="decision == 1"), data)
    with pytest.raises(CheckError, match=r"params\.rows: row 99999 is not among the audit rows"):
        validate(AnchorsParams(rows=[0, 99_999]), data)
    with pytest.raises(CheckError, match=r"params\.query .* selects no row"):
        validate(AnchorsParams(query="x1 > 5"), data)
    with pytest.raises(CheckError, match=r"params\.query .* cannot be evaluated"):
        validate(AnchorsParams(query="no_such_column > 1"), data)


def test_params_have_the_documented_defaults():
    params = AnchorsParams()
    assert (params.threshold, params.delta, params.epsilon, params.beam_size, params.bins) == (0.95, 0.1, 0.1, 2, 4)
    with pytest.raises(ValueError):
        AnchorsParams(threshold=1.0)


def test_a_query_explains_only_the_rows_it_selects(and_rule):
    data, X = and_rule
    records = run_check("anchors", data, {"query": "decision == 1 and x3 < 0.5", "sample": 2}).tables["anchors"]
    assert len(records) == 2
    assert all(r["decision"] == 1 and X.x3[r["row"]] < 0.5 for r in records)


def test_a_skops_model_is_explained_too(samples):
    from auditkit.adapters.base import AdapterSpec, load_adapter
    from auditkit.engine.context import AuditData

    frame = pd.read_csv(samples / "credit_test.csv").iloc[:2_000].rename_axis("row")
    spec = AdapterSpec(format="skops", path=str(samples / "credit_rf.skops"),
                       trusted_types=("numpy.dtype", "sklearn.tree._tree.Tree"))
    adapter = load_adapter(spec)
    scores = adapter.predict(frame)
    data = AuditData(frame=frame, features=adapter.input_features, target="defaulted", protected=[], task="binary",
                     scores=scores, decisions=(scores >= 0.5).astype(np.int64), y=frame["defaulted"].to_numpy(float),
                     score_kind="probability", adapter_spec=spec, threshold=0.5, favorable_decision=0)
    row = int(np.argmin(scores))  # a clear approval
    record = run_check("anchors", data, {"rows": [row], "max_samples": 20_000}).tables["anchors"][0]
    assert record["decision"] == 0 and record["rule"].endswith("THEN decision = 0 (favourable)")
    assert record["met_target"] and record["precision_ci"][0] >= 0.95 and record["n_samples"] <= 20_000
    assert _mask(frame, record["predicates"])[row]


def test_a_failing_threshold_is_read_in_plain_words(and_rule):
    from auditkit.checks.local.anchors import _reading

    data, X = and_rule
    output = run_check("anchors", data, {"rows": [_row(X, (0.55, 0.7), (0.55, 0.7))]})
    result = {"tables": {"anchors": [{**output.tables["anchors"][0], "precision": 0.8, "met_target": False}]}}
    sentence = _reading({"metric": "anchor_precision_min", "value": 0.8, "min": 0.9}, result)
    assert "IF x1 > 0.5 AND x2 > 0.5" in sentence and "80%" in sentence
    assert "1 of 1 explained decisions" in _reading({"metric": "anchor_target_met", "value": 0.0}, result)
    with pytest.raises(ValueError, match="at least twice batch_size"):
        AnchorsParams(batch_size=1_000, max_samples=1_500)


def test_multiclass_anchors_keep_the_predicted_class_and_find_the_planted_late_payments_rule(samples):
    """#18: the tier model gives 'high' to two or more late payments whatever else is true
    (sample_models/README.md, section 5): a 'high' row's anchor rests on n_late_payments and holds
    its predicted class, re-checked here by predicting samples that satisfy the rule."""
    from auditkit.adapters.base import load_adapter
    from task_support import TIER_FEATURES, model_data

    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:600]
    data = dataclasses.replace(
        model_data(samples / "credit_tier.onnx", frame, TIER_FEATURES, "risk_tier", task="multiclass",
                   reference=pd.read_csv(samples / "credit_train.csv").iloc[:2000]),
        favorable_class="low")
    high = [int(i) for i in np.flatnonzero(np.asarray(data.decisions, dtype=str) == "high")[:2]]
    output = run_check("anchors", data, {"rows": high})
    records = output.tables["anchors"]
    assert [r["decision"] for r in records] == ["high", "high"]
    adapter = load_adapter(data.adapter_spec)
    classes = np.asarray([str(c) for c in adapter.classes])
    for record in records:
        # the planted rule itself: two or more late payments (a whole number above 1), nothing else
        assert record["predicates"] == ["n_late_payments > 1"], record
        assert record["rule"] == "IF n_late_payments > 1 THEN predicted class = high (unfavourable)"
        assert record["precision"] >= 0.95
        # coverage: the share of audit rows with more than one late payment, exactly
        assert record["coverage"] == pytest.approx((data.frame["n_late_payments"] > 1).mean())
    # the model predicts 'high' for the rows the rule covers (the rule's precision on the data itself)
    covered = data.frame[data.frame["n_late_payments"] > 1]
    predicted = classes[np.asarray(adapter.predict(covered[TIER_FEATURES])).argmax(axis=1)]
    assert (predicted == "high").mean() >= 0.95
