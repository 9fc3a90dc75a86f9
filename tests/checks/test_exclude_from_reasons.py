"""exclude_from_reasons (#14): reasons never cite, counterfactuals never change and anchors never
condition on an excluded feature; true means the protected attributes and data.proxies."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from check_support import run_check
from test_anchors import _row, and_rule  # noqa: F401 - the fixture
from test_counterfactuals import logistic  # noqa: F401 - the fixture
from test_local_explanations import _by_row, gbm  # noqa: F401 - the fixture

from auditkit.errors import CheckError
from auditkit.methods.sensitive import excluded_features


def _declined(data, k: int) -> list[int]:
    return [int(i) for i in np.flatnonzero(np.asarray(data.decisions) == 1)[:k]]


def test_excluded_feature_is_never_a_reason_and_the_next_pushing_features_take_its_place(gbm):
    data, _, _ = gbm
    data = dataclasses.replace(data, favorable_decision=0)
    rows = _declined(data, 6)
    params = {"rows": rows, "lime_samples": 300, "top_k": 2}
    plain = run_check("local_explanations", data, params)
    cited = pd.DataFrame(plain.tables["reasons"])
    assert "x1" in set(cited["feature"])  # non-trivial: x1 drives the model and is cited without the param
    excluded = run_check("local_explanations", data, {**params, "exclude_from_reasons": ["x1"]})
    reasons = pd.DataFrame(excluded.tables["reasons"])
    assert "x1" not in set(reasons["feature"])
    # SHAP is unchanged (same seed): the reasons are the pushing features in SHAP order, x1 left out
    assert excluded.tables["attributions"] == plain.tables["attributions"]
    attributions = _by_row(excluded)
    for row in rows:
        shap_values = attributions[row]["shap"]
        pushing = shap_values[shap_values > 0].drop("x1", errors="ignore").sort_values(ascending=False)
        got = reasons[reasons["row"] == row].sort_values("rank")["feature"].tolist()
        assert got == list(pushing.index[:2])
    would = sum(1 for row in rows if "x1" in cited[cited["row"] == row]["feature"].tolist())
    note = next(n for n in excluded.notes if n.startswith("exclude_from_reasons"))
    assert "x1 (params.exclude_from_reasons)" in note and f"reasons of {would} of the {len(rows)}" in note


def test_true_means_the_protected_attributes_and_the_declared_proxies(gbm):
    data, _, _ = gbm
    data = dataclasses.replace(data, favorable_decision=0, proxies=["x2"], protected=["x3"])
    assert excluded_features(True, data) == {"x3": "protected attribute", "x2": "declared proxy (data.proxies)"}
    assert excluded_features("proxies", data) == excluded_features(True, data)
    assert excluded_features(False, data) == {}
    output = run_check("local_explanations", data, {"rows": _declined(data, 5), "lime_samples": 300,
                                                    "exclude_from_reasons": True})
    assert {r["feature"] for r in output.tables["reasons"]} <= {"x1"}


def test_counterfactuals_never_change_an_excluded_feature(logistic):
    data, _ = logistic
    plain = run_check("counterfactuals", data, {"sample": 30})
    changed = {f for r in plain.tables["counterfactuals"] for f in r["changes"]}
    assert "a" in changed  # non-trivial: a is the model's strongest input
    data = dataclasses.replace(data, proxies=["a"])
    output = run_check("counterfactuals", data, {"sample": 30, "exclude_from_reasons": True})
    records = output.tables["counterfactuals"]
    assert any(r["found"] for r in records)
    assert all("a" not in r["changes"] for r in records)
    assert any("a (exclude_from_reasons: declared proxy (data.proxies))" in n for n in output.notes)


def test_anchors_never_condition_on_an_excluded_feature_and_name_each_predicates_feature(and_rule):  # noqa: F811
    data, X = and_rule
    row = _row(X, (0.55, 0.7), (0.55, 0.7))
    plain = run_check("anchors", data, {"rows": [row]}).tables["anchors"][0]
    assert plain["features"] == [p.split(" ")[0] for p in plain["predicates"]] and "x1" in plain["features"]
    record = run_check("anchors", data, {"rows": [row], "exclude_from_reasons": ["x1"]}).tables["anchors"][0]
    assert "x1" not in record["features"] and not any(p.startswith("x1 ") for p in record["predicates"])
    assert record["features"] == [p.split(" ")[0] for p in record["predicates"]]


@pytest.mark.parametrize("check_type", ["local_explanations", "counterfactuals", "anchors"])
def test_an_unknown_column_is_rejected_naming_the_param(gbm, check_type):
    from auditkit.core.registry import get_registry

    data, _, _ = gbm
    spec = get_registry().get(check_type)
    params = spec.params.model_validate({"exclude_from_reasons": ["x_1"]})
    with pytest.raises(CheckError, match=r"params.exclude_from_reasons: 'x_1' is not a column.*x1"):
        spec.validate(params, data)
