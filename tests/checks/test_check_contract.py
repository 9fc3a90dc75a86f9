"""The contract every registered check keeps: seeded determinism, params rejected by name,
only declared metrics, JSON-clean output."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from check_support import run_check

from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.engine.context import AuditData
from auditkit.core.metric_names import metric_matches
from auditkit.core.registry import get_registry
from auditkit.engine.worker import CheckTask, execute
from auditkit.results.model import to_jsonable

# keep each check small here: the contract, not the figures, is under test
FAST = {"performance": {"bootstrap": 50}, "group_fairness": {"bootstrap": 50}, "proxy_detection": {"max_rows": 600},
        "interaction_strength": {"max_rows": 30, "top_k": 2}, "shap_importance": {"max_rows": 100, "background_size": 50},
        "permutation_importance": {"n_repeats": 2, "max_rows": 300}, "partial_dependence": {"max_rows": 100},
        "ale": {"max_rows": 300}, "lofo": {"max_rows": 200}, "calibration": {"bootstrap": 50},
        "drift": {"max_rows": 300, "bootstrap": 50, "folds": 3}, "slice_performance": {"max_depth": 1}}


@pytest.fixture(scope="module")
def data(samples) -> AuditData:
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:800].rename_axis("row")
    spec = AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx"))
    adapter = load_adapter(spec)
    scores = adapter.predict(frame)
    return AuditData(frame=frame, features=adapter.input_features, target="defaulted",
                     protected=["sex", "race", "age_band"], task="binary", scores=scores,
                     decisions=(scores >= 0.5).astype(np.int64), y=frame["defaulted"].to_numpy(float),
                     score_kind="probability", adapter_spec=spec, threshold=0.5, favorable_decision=0,
                     classes=adapter.classes, reference=pd.read_csv(samples / "credit_train.csv").iloc[:2000])


def _params(check_type) -> dict:
    return {**check_type.example.get("params", {}), **FAST.get(check_type.type, {})}


@pytest.mark.parametrize("type_name", get_registry().names())
def test_check_is_deterministic_for_a_seed_and_returns_only_declared_metrics(data, type_name):
    check_type = get_registry().get(type_name)
    first = run_check(type_name, data, _params(check_type), seed=11)
    again = run_check(type_name, data, _params(check_type), seed=11)
    as_json = [json.dumps(to_jsonable(o.__dict__ | {"plots": [p.to_dict() for p in o.plots],
                                                     "metrics": {k: m.to_dict() for k, m in o.metrics.items()}}),
                          sort_keys=True, allow_nan=False) for o in (first, again)]
    assert as_json[0] == as_json[1]
    for name in first.metrics:
        assert any(metric_matches(name, pattern) for pattern in check_type.metrics), (type_name, name)
    if first.skipped is None:
        assert first.metrics or first.tables, f"{type_name} returned nothing"


@pytest.mark.parametrize("type_name", get_registry().names())
def test_unknown_params_are_rejected_by_name(data, type_name):
    outcome = execute(CheckTask("c", type_name, {"definitely_not_a_param": 1}, 0, 60), data)
    assert outcome.output is None and "definitely_not_a_param" in outcome.error


@pytest.mark.parametrize("type_name", get_registry().names())
def test_check_has_documentation_and_an_example_that_validates(type_name):
    check_type = get_registry().get(type_name)
    assert len(check_type.documentation) > 200, "document the formula, ranges and references"
    check_type.params.model_validate(check_type.example.get("params", {}))
