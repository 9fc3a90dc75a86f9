"""Fairness of a multiclass model (#18): every class one-vs-rest, the favourable class under the
binary names, the predicted class as the decision.

The model is built here: a multinomial logistic regression on a synthetic credit-tier set where
group "b" is planted to reach tier "prime" less often (the group is a model input, so the
counterfactual flip is non-zero too). References: fairlearn's MetricFrame on one-vs-rest
decisions (selection_rate, true/false positive rate and their ratio/difference), scipy's
chi-square test, statsmodels-style adjustment through results.multiplicity.
"""
from __future__ import annotations

import functools
import pickle
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "checks"))

import fairlearn.metrics as flm  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from numpy.testing import assert_allclose  # noqa: E402
from scipy import stats  # noqa: E402

from check_support import run_check  # noqa: E402

from auditkit.adapters.base import AdapterSpec, load_adapter  # noqa: E402
from auditkit.engine.context import AuditData  # noqa: E402
from auditkit.results.model import CheckResult  # noqa: E402
from auditkit.results.multiplicity import apply_statistics  # noqa: E402

# Ratios of integer counts in float64 (bincounts here, confusion matrices in fairlearn): rounding only.
TOL = 1e-12
CLASSES = ["near_prime", "prime", "subprime"]  # scikit-learn's order (sorted)


@pytest.fixture(scope="module")
def tiers(tmp_path_factory) -> tuple[pd.DataFrame, object, Path]:
    rng = np.random.default_rng(1818)
    n = 4000
    group = rng.choice(["a", "b"], size=n, p=[0.6, 0.4])
    is_b = (group == "b").astype(float)
    income = rng.normal(size=n)
    # planted: group b is pushed from prime towards subprime, whatever its income
    logits = np.column_stack([np.zeros(n), 1.2 * income - 1.0 * is_b, -1.2 * income + 0.8 * is_b])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    draw = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    tier = np.array(CLASSES)[draw]
    frame = pd.DataFrame({"income": income, "is_b": is_b, "group": group, "tier": tier})
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=500).fit(frame[["income", "is_b"]], frame["tier"])
    path = tmp_path_factory.mktemp("tiers") / "tiers.pkl"
    path.write_bytes(pickle.dumps(model))
    return frame, model, path


def multiclass_data(frame: pd.DataFrame, model, path: Path, *, favourable: str | None, labelled: bool = True
                    ) -> AuditData:
    spec = AdapterSpec(format="pickle", path=str(path), trust_pickle=True, feature_names=("income", "is_b"))
    adapter = load_adapter(spec)
    proba = adapter.predict(frame[["income", "is_b"]])
    classes = [str(c) for c in adapter.classes]
    decisions = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    data_frame = frame.copy()
    data_frame.index = pd.RangeIndex(len(frame), name="row")
    return AuditData(frame=data_frame, features=["income", "is_b"], target="tier" if labelled else None,
                     protected=["group"], task="multiclass", scores=np.asarray(proba, float), decisions=decisions,
                     y=frame["tier"].astype(str).to_numpy(dtype=object) if labelled else None,
                     score_kind="probability", adapter_spec=adapter.spec, classes=classes,
                     favorable_class=favourable)


def _predicted(model, frame) -> np.ndarray:
    return model.predict(frame[["income", "is_b"]]).astype(str)


def test_every_class_one_vs_rest_equals_fairlearn(tiers):
    frame, model, path = tiers
    output = run_check("group_fairness", multiclass_data(frame, model, path, favourable=None), {"bootstrap": 0})
    predicted = _predicted(model, frame)
    assert len(set(predicted)) == 3  # each class is predicted: every one-vs-rest figure is defined
    for klass in CLASSES:
        decision = (predicted == klass).astype(int)
        truth = (frame["tier"].to_numpy() == klass).astype(int)
        reference = flm.MetricFrame(
            metrics={"selection_rate": flm.selection_rate, "true_positive_rate": flm.true_positive_rate,
                     "false_positive_rate": flm.false_positive_rate},
            y_true=truth, y_pred=decision, sensitive_features=frame["group"])
        records = {r["group"]: r for r in output.tables["groups"] if r["class"] == klass}
        for group in ("a", "b"):
            for rate in ("selection_rate", "true_positive_rate", "false_positive_rate"):
                assert_allclose(records[group][rate], reference.by_group.loc[group, rate], rtol=0, atol=TOL)
        key = f"group, class={klass}"
        for rate in ("selection_rate", "true_positive_rate", "false_positive_rate"):
            assert_allclose(output.metrics[f"{rate}_ratio[{key}]"].value, reference.ratio()[rate], rtol=0, atol=TOL)
            assert_allclose(output.metrics[f"{rate}_difference[{key}]"].value, reference.difference()[rate], rtol=0,
                            atol=TOL)
        assert_allclose(output.metrics[f"equalized_odds_difference[{key}]"].value,
                        flm.equalized_odds_difference(truth, decision, sensitive_features=frame["group"]),
                        rtol=0, atol=TOL)
    # without a favourable class no figure carries the binary name
    assert "selection_rate_ratio[group]" not in output.metrics
    assert any("No favourable class is declared" in note for note in output.notes)


def test_favourable_class_figures_carry_the_binary_names_and_find_the_planted_gap(tiers):
    frame, model, path = tiers
    output = run_check("group_fairness", multiclass_data(frame, model, path, favourable="prime"), {"bootstrap": 200})
    predicted = _predicted(model, frame)
    prime = (predicted == "prime").astype(int)
    expected = flm.demographic_parity_ratio(frame["tier"], prime, sensitive_features=frame["group"])
    # fairlearn's demographic_parity_ratio reads only y_pred; the planted push away from prime shows
    assert expected < 0.8
    assert_allclose(output.metrics["selection_rate_ratio[group]"].value, expected, rtol=0, atol=TOL)
    assert_allclose(output.metrics["demographic_parity_ratio[group]"].value, expected, rtol=0, atol=TOL)
    assert "selection_rate_ratio[group, class=prime]" not in output.metrics  # said once, under the binary name
    assert "selection_rate_ratio[group, class=subprime]" in output.metrics
    ci = output.metrics["selection_rate_ratio[group]"].ci
    assert ci is not None and ci[0] <= expected <= ci[1]
    favoured = [r for r in output.tables["groups"] if r["class"] == "prime"]
    assert favoured and all(r["favourable"] for r in favoured)
    # the comparison's p-value is the 2 x 2 chi-square test (no continuity correction) of group x prime
    record = next(r for r in output.tables["comparisons"] if r["class"] == "prime" and r["rate"] == "selection_rate")
    table = pd.crosstab(frame["group"], prime).to_numpy()
    assert_allclose(record["p_value"], stats.chi2_contingency(table, correction=False).pvalue, rtol=1e-9)
    assert output.metrics["selection_rate_ratio[group]"].p_value == record["p_value"]


def test_class_comparisons_are_adjusted_as_separate_members_of_the_family(tiers):
    frame, model, path = tiers
    output = run_check("group_fairness", multiclass_data(frame, model, path, favourable=None), {"bootstrap": 0})
    records = output.tables["comparisons"]
    # three classes x (selection, TPR, FPR) x one compared group, and no two share a key
    assert len(records) == 9
    keys = {(r["attribute"], r["rate"], r["group"], r["reference_group"], r["class"]) for r in records}
    assert len(keys) == 9
    result = CheckResult(id="g", type="group_fairness", family="fairness", duration_s=0.0, status="info",
                         metrics=output.metrics,
                         tables=output.tables)
    adjusted, summary = apply_statistics([result], correction="holm", alpha=0.05, power=0.8)
    assert summary["family_size"] == 9
    raw = sorted(r["p_value"] for r in records)
    holm = sorted(min(1.0, max((9 - j) * raw[j] for j in range(i + 1))) for i in range(9))
    assert_allclose(sorted(r["p_adjusted"] for r in adjusted[0].tables["comparisons"]), holm, rtol=1e-12)
    metric = adjusted[0].metrics["selection_rate_ratio[group, class=subprime]"]
    own = next(r for r in adjusted[0].tables["comparisons"] if r["class"] == "subprime" and r["rate"] == "selection_rate")
    assert metric.p_adjusted == own["p_adjusted"]


def test_reading_of_a_class_figure_names_the_class(tiers):
    from auditkit.checks.fairness.group_fairness import _reading
    from auditkit.core.wording import Wording

    frame, model, path = tiers
    output = run_check("group_fairness", multiclass_data(frame, model, path, favourable="prime"), {"bootstrap": 0})
    result = {"tables": output.tables, "params": {}}
    value = output.metrics["selection_rate_ratio[group, class=subprime]"].value
    words = Wording(subjects="applicants", decision_names={"subprime": "priced as subprime"})
    text = _reading({"metric": "selection_rate_ratio[group, class=subprime]", "value": value, "min": 0.99}, result,
                    words)
    assert text.startswith("Applicants in group group '") and "predicted class 'subprime' (priced as subprime)" in text
    favourable = _reading({"metric": "selection_rate_ratio[group]", "value": 0.5, "min": 0.8}, result,
                          Wording(favorable="rated prime"))
    assert "were rated prime at 0.50 times the rate of group 'a'" in favourable


def test_impact_ratio_selects_the_favourable_class(tiers):
    frame, model, path = tiers
    output = run_check("impact_ratio", multiclass_data(frame, model, path, favourable="prime"), {"attributes": ["group"]})
    prime = pd.Series(_predicted(model, frame) == "prime").groupby(frame["group"].to_numpy()).mean()
    rows = {r["category"]: r for r in output.tables["categories"]}
    for group in ("a", "b"):
        assert_allclose(rows[group]["impact_ratio"], prime[group] / prime.max(), rtol=0, atol=TOL)
    assert_allclose(output.metrics["impact_ratio[group]"].value, prime.min() / prime.max(), rtol=0, atol=TOL)
    skipped = run_check("impact_ratio", multiclass_data(frame, model, path, favourable=None), {"attributes": ["group"]})
    assert skipped.skipped and "data.favorable_label" in skipped.skipped and "prime" in skipped.skipped


def test_counterfactual_flip_is_a_change_of_predicted_class(tiers):
    frame, model, path = tiers
    output = run_check("counterfactual_fairness", multiclass_data(frame, model, path, favourable="prime"),
                       {"attributes": ["is_b"]})
    inputs = frame[["income", "is_b"]]
    flipped = inputs.assign(is_b=1.0 - inputs["is_b"])
    before, after = model.predict(inputs), model.predict(flipped)
    assert (before != after).any()  # the model uses the planted input
    assert_allclose(output.metrics["flip_rate[is_b]"].value, np.mean(before != after), rtol=0, atol=TOL)
    to_prime = int(((before != after) & (after == "prime")).sum())
    assert sum(r["to_favourable"] for r in output.tables["flips"]) == to_prime
    change = model.predict_proba(flipped) - model.predict_proba(inputs)
    largest = np.abs(change).max(axis=1)
    # the adapter feeds the pickled model float32-safe float64: probabilities agree to rounding
    assert_allclose(output.metrics["mean_abs_score_change[is_b]"].value, largest.mean(), rtol=1e-9)


def test_policy_favourable_label_must_be_a_class(tiers, tmp_path, cli):
    frame, _, path = tiers
    data_path = tmp_path / "tiers.csv"
    frame.to_csv(data_path, index=False)
    text = yaml.safe_dump({
        "version": 1, "name": "tiers", "model": {"path": str(path), "task": "multiclass"},
        "data": {"path": str(data_path), "target": "tier", "protected": ["group"],
                 "features": ["income", "is_b"], "favorable_label": "platinum"},
        "checks": [{"type": "group_fairness", "params": {"bootstrap": 0}}]}, sort_keys=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "favorable_label" in row)
    result = cli("run", policy, "--trust-pickle", "--out", tmp_path / "out")
    message = result.stderr
    assert result.exit_code == 2, message
    assert "Traceback" not in message
    assert f"policy.yaml:{line}" in message and "data.favorable_label" in message
    assert "'platinum' is not a class of the model; classes: near_prime, prime, subprime" in message


def test_without_a_target_each_class_has_selection_rates_only(tiers):
    frame, model, path = tiers
    output = run_check("group_fairness", multiclass_data(frame, model, path, favourable="prime", labelled=False),
                       {"bootstrap": 0})
    assert output.metrics["selection_rate_ratio[group]"].value is not None
    assert output.metrics["true_positive_rate_ratio[group, class=subprime]"].value is None
    assert {r["rate"] for r in output.tables["comparisons"]} == {"selection_rate"}
    assert len(output.tables["comparisons"]) == 3  # one per class


# proxy_detection reads the data alone (features against protected attributes), whatever the model's task
@pytest.mark.parametrize("check_type", ["group_fairness", "impact_ratio", "counterfactual_fairness", "calibration"])
@pytest.mark.parametrize("favourable", ["prime", None])
def test_every_fairness_check_runs_on_a_multiclass_model_or_skips_with_a_reason(tiers, check_type, favourable):
    from auditkit.core.registry import get_registry

    frame, model, path = tiers
    params = {k: v for k, v in get_registry().get(check_type).example.get("params", {}).items()
              if k not in ("attributes", "intersections", "features")}
    params.update({"attributes": ["group"]} if check_type != "counterfactual_fairness" else {"attributes": ["is_b"]})
    if "bootstrap" in get_registry().get(check_type).params.model_fields:
        params["bootstrap"] = 50
    output = run_check(check_type, multiclass_data(frame, model, path, favourable=favourable), params)
    if output.skipped is not None:
        assert check_type == "impact_ratio" and favourable is None, output.skipped
        assert "data.favorable_label" in output.skipped
    else:
        assert output.metrics and all(name.count("[") <= 1 for name in output.metrics)


def test_report_comparisons_name_the_class_of_each_row(tiers):
    from auditkit.render.html import comparisons_view

    frame, model, path = tiers
    output = run_check("group_fairness", multiclass_data(frame, model, path, favourable=None), {"bootstrap": 0})
    rates = {row["rate"] for row in comparisons_view(output.tables["comparisons"])["rows"]}
    assert "selection rate (class prime)" in rates and "false positive rate (class subprime)" in rates
