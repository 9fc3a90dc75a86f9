"""The models users bring, as they save them: every kind x {ONNX, joblib, skops} x {binary,
multiclass, regression} (#18).

Each model loads and predicts as its source does; SHAP is exact where the model is a tree
ensemble or linear (equal to shap on the source model, additive, in the units of the model's
raw output: log-odds or P(class 1) for a binary task, each class's softmax margin or
probability for a multiclass one, the target's units for a regressor), else model-agnostic
with its sample size (the MLP: exact enumeration of every coalition, equal to shap's Exact
explainer); every check family runs or skips with a reason a user accepts.

The binary target is ``defaulted``; the multiclass one the interest-rate tier
(high / low / medium; codes 0..2 for XGBoost, which takes no other labels); the regression
target the interest rate itself, in percent.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("xgboost", reason="the model zoo needs the zoo extra (pip install -e '.[zoo]')")
pytest.importorskip("lightgbm", reason="the model zoo needs the zoo extra (pip install -e '.[zoo]')")
pytest.importorskip("onnxmltools", reason="the model zoo needs the zoo extra (pip install -e '.[zoo]')")

from zoo_models import FEATURES, KINDS, TASKS, TIERS, TREE_KINDS, build, load_frames, task_target  # noqa: E402
from zoo_reference import exact_kind, expected_units, reference_shap, tree_ties  # noqa: E402

from auditkit.adapters.base import AdapterSpec, load_adapter  # noqa: E402
from auditkit.engine.context import AuditData  # noqa: E402
from auditkit.methods.shap_values import explain, explain_classes  # noqa: E402

FORMATS = ["onnx", "joblib", "skops"]
# skops trusts no XGBoost or LightGBM class: those come as joblib (and ONNX)
CASES = [(task, kind, fmt) for task in TASKS for kind in KINDS for fmt in FORMATS
         if not (fmt == "skops" and kind in ("xgboost", "lightgbm"))]
EXPLAINED, BACKGROUND = slice(0, 40), slice(100, 160)
# the model-agnostic explainer evaluates 1,024 coalitions x background rows per row: fewer rows
MLP_EXPLAINED, MLP_BACKGROUND = slice(0, 6), slice(100, 120)


def _id(case: tuple[str, str, str]) -> str:
    return "-".join(case)


@pytest.fixture(scope="module")
def frames(samples):
    return load_frames(samples)


@pytest.fixture(scope="module")
def zoo(frames, tmp_path_factory):
    train, _ = frames
    directory = tmp_path_factory.mktemp("zoo")
    built = {}

    def get(kind, task):
        if (kind, task) not in built:
            built[kind, task] = build(kind, train, directory, task=task)
        return built[kind, task]
    return get


def path_of(model, fmt):
    return {"onnx": model.onnx_path, "joblib": model.joblib_path, "skops": model.skops_path}[fmt]


def adapter_of(model, fmt):
    trusted = ()
    if fmt == "skops":
        import skops.io as sio

        trusted = tuple(sio.get_untrusted_types(file=model.skops_path))
    spec = AdapterSpec(format=fmt, path=str(path_of(model, fmt)), trust_pickle=True, feature_names=tuple(FEATURES),
                       trusted_types=trusted)
    return load_adapter(spec), spec


@pytest.mark.parametrize("task,kind,fmt", CASES, ids=map(_id, CASES))
def test_model_loads_and_scores_as_its_source(zoo, frames, task, kind, fmt):
    _, audit = frames
    model = zoo(kind, task)
    adapter, _ = adapter_of(model, fmt)
    assert adapter.task == task
    X = audit[FEATURES]
    # ONNX computes in float32: scores agree to float32 rounding (relative, for interest rates)
    tolerance = 1e-6 if fmt == "onnx" else 1e-12
    if task == "regression":
        expected = model.pipeline.predict(X)
        assert_allclose(adapter.predict(X), expected, rtol=tolerance, atol=tolerance)
        return
    assert adapter.score_kind == "probability"
    expected = model.pipeline.predict_proba(X)
    if task == "binary":
        expected = expected[:, 1]
    else:
        assert [str(c) for c in adapter.classes] == [str(c) for c in model.pipeline.classes_]
    assert_allclose(adapter.predict(X), expected, atol=tolerance)


def _explain(adapter, task: str, X: pd.DataFrame, background: pd.DataFrame):
    """auditkit's SHAP values: one set per class for a multiclass model, with its base values
    as an array either way."""
    if task == "multiclass":
        ours = explain_classes(adapter, X, background, FEATURES)
        return ours, ours.base_values
    ours = explain(adapter, X, background, FEATURES)
    return ours, np.atleast_1d(ours.base_value)


EXACT_CASES = [c for c in CASES if exact_kind(c[1])]


@pytest.mark.parametrize("task,kind,fmt", EXACT_CASES, ids=map(_id, EXACT_CASES))
def test_shap_is_exact_additive_and_in_the_units_of_the_raw_output(zoo, frames, task, kind, fmt):
    _, audit = frames
    model = zoo(kind, task)
    adapter, _ = adapter_of(model, fmt)
    X, background = audit.iloc[EXPLAINED][FEATURES], audit.iloc[BACKGROUND][FEATURES]
    if kind in TREE_KINDS:  # a background on which shap is itself exact, so that it can be the reference
        background = background[~tree_ties(model, background)]
    ours, base = _explain(adapter, task, X, background)
    assert "exact" in ours.explainer and "approximate" not in ours.explainer and "model-agnostic" not in ours.explainer
    assert ours.units == expected_units(kind, task)
    reference = reference_shap(model, task, X, background)
    assert ours.values.shape == reference.values.shape
    assert np.abs(reference.values).max() > 1e-2 and reference.additive.mean() > 0.9  # a non-trivial case
    fair = reference.additive
    # ONNX holds float32 thresholds and leaf values: the same Shapley values to float32 rounding
    assert_allclose(ours.values[fair], reference.values[fair], atol=1e-6)
    # the base value is the mean raw output over the background (an interest rate in float32: relative)
    assert_allclose(base, reference.base, rtol=1e-6, atol=1e-6)
    assert ours.additivity_error < 1e-5
    # the raw output SHAP adds up to is the model's own score in those units
    assert_allclose(ours.raw_output, reference.raw, rtol=1e-6, atol=1e-5)


MLP_CASES = [c for c in CASES if c[1] == "mlp"]


@pytest.mark.slow  # shap's Exact explainer, the reference, compiles with numba first (tens of seconds)
@pytest.mark.parametrize("task,kind,fmt", MLP_CASES, ids=map(_id, MLP_CASES))
def test_mlp_shap_is_exact_enumeration_equal_to_shap_exact_explainer(zoo, frames, task, kind, fmt):
    """10 inputs: 1,024 coalitions per row is affordable, so the values are exact Shapley values
    (shap's Exact explainer on the source pipeline, with the same background, is the reference),
    and the explainer names its sample: the coalitions and the background rows."""
    _, audit = frames
    model = zoo(kind, task)
    adapter, _ = adapter_of(model, fmt)
    X, background = audit.iloc[MLP_EXPLAINED][FEATURES], audit.iloc[MLP_BACKGROUND][FEATURES]
    ours, base = _explain(adapter, task, X, background)
    assert "exact" in ours.explainer and "model-agnostic" in ours.explainer
    assert "1,024 coalitions" in ours.explainer and "20 background rows" in ours.explainer
    assert ours.units == expected_units(kind, task) and ours.standard_error is None
    reference = reference_shap(model, task, X, background)
    assert np.abs(reference.values).max() > 1e-2
    # ONNX's float32 MLP against scikit-learn's float64 one: the same function to ~1e-6 (relative)
    tolerance = 1e-4 if fmt == "onnx" else 1e-9
    assert_allclose(ours.values, reference.values, atol=tolerance)
    assert_allclose(base, reference.base, rtol=tolerance, atol=tolerance)
    assert ours.additivity_error < 1e-5


# the checks a small audit can afford (as tests/checks/test_check_contract.py keeps them)
FAST = {"performance": {"bootstrap": 50}, "group_fairness": {"bootstrap": 50},
        "proxy_detection": {"max_rows": 200, "folds": 2}, "interaction_strength": {"max_rows": 20, "top_k": 2},
        "shap_importance": {"max_rows": 30, "background_size": 20},
        "permutation_importance": {"n_repeats": 2, "max_rows": 200}, "partial_dependence": {"max_rows": 60},
        "ale": {"max_rows": 200}, "lofo": {"max_rows": 150, "folds": 2},
        "local_explanations": {"lime_samples": 300, "sample": 3, "background_size": 20},
        "explanation_stability": {"max_rows": 10, "bootstrap": 5, "background_size": 20},
        "counterfactuals": {"sample": 3, "seeds": 3, "candidates": 20, "max_rounds": 5, "bootstrap": 50},
        "anchors": {"sample": 2, "max_samples": 2000, "batch_size": 50, "background_size": 200},
        "adversarial": {"max_rows": 10, "candidates": 5, "binary_steps": 6, "refine_rounds": 1, "gradient_rounds": 3,
                        "gradient_samples": 6},
        "noise_robustness": {"max_rows": 100, "n_repeats": 2, "levels": [0.1]}, "ceteris_paribus": {"sample": 2},
        "invariance": {"max_rows": 100}, "out_of_range": {"max_rows": 100}, "missing_values": {"max_rows": 100},
        "counterfactual_fairness": {"max_rows": 200}, "calibration": {"bootstrap": 50},
        "slice_performance": {"bootstrap": 50}, "influential_instances": {"max_rows": 100}}


def _one_format_per_kind() -> list[tuple[str, str, str]]:
    """Every kind once per task, the formats taken in turn (every check on every case takes
    many minutes; loading and SHAP are tested on the whole matrix above)."""
    chosen = []
    for t, task in enumerate(TASKS):
        for i, kind in enumerate(KINDS):
            formats = [fmt for ta, k, fmt in CASES if (ta, k) == (task, kind)]
            chosen.append((task, kind, formats[(i + t) % len(formats)]))
    return chosen


FAMILY_CASES = _one_format_per_kind()


def audit_data(task: str, kind: str, adapter, spec, audit: pd.DataFrame, reference: pd.DataFrame) -> AuditData:
    """The audit data ``prepare`` makes for a policy auditing this model (its target, decisions,
    favourable outcome: not defaulting, the low interest tier)."""
    frame = audit.reset_index(drop=True).rename_axis("row")
    scores = adapter.predict(frame[FEATURES])
    common = dict(features=list(FEATURES), protected=["sex", "race", "age_band"], task=task, scores=scores,
                  score_kind=adapter.score_kind, adapter_spec=spec, classes=adapter.classes,
                  reference=reference.reset_index(drop=True))
    if task == "binary":
        return AuditData(frame=frame, target="defaulted", decisions=(scores >= 0.5).astype(np.int64),
                         y=frame["defaulted"].to_numpy(float), threshold=0.5, favorable_decision=0, **common)
    if task == "regression":
        return AuditData(frame=frame, target="interest_rate", decisions=None,
                         y=frame["interest_rate"].to_numpy(float), threshold=None, **common)
    frame["tier"] = task_target("multiclass", kind, frame)
    classes = list(adapter.classes)
    favorable = str(classes[[str(c) for c in classes].index("low")] if "low" in map(str, classes)
                    else TIERS.index("low"))
    return AuditData(frame=frame, target="tier", decisions=np.asarray(classes, dtype=object)[scores.argmax(axis=1)],
                     y=frame["tier"].astype(str).to_numpy(dtype=object), threshold=None, favorable_class=favorable,
                     **common)


def _params(check_type, task: str, classes) -> dict:
    params = {**check_type.example.get("params", {}), **{k: v for k, v in FAST.get(check_type.type, {}).items()
                                                         if k in check_type.params.model_fields}}
    if task != "binary":
        # the examples are written for a binary model: its 0/1 decisions and its metric roc_auc
        params.pop("query", None)
        params.pop("metric", None)
        params.pop("metrics", None)
    if task == "multiclass" and "target_class" in check_type.params.model_fields and "monotone" in params:
        params["target_class"] = str(classes[0])  # a monotone direction follows one class's probability
    if task == "regression" and check_type.type in ("noise_robustness", "adversarial"):
        params["tolerance"] = 0.5  # percentage points of interest_rate
    if task == "regression" and check_type.type == "impact_ratio":
        params.update(cutoff=9.0, favorable_scores="low")  # a predicted rate under 9% is favourable
    return params


@pytest.mark.slow
@pytest.mark.parametrize("task,kind,fmt", FAMILY_CASES, ids=map(_id, FAMILY_CASES))
def test_every_check_family_runs_or_skips_with_a_reason(zoo, frames, task, kind, fmt):
    from auditkit.core.registry import get_registry
    from auditkit.engine.worker import CheckTask, execute

    train, audit = frames
    model = zoo(kind, task)
    adapter, spec = adapter_of(model, fmt)
    data = audit_data(task, kind, adapter, spec, audit, train.iloc[:300])
    problems = []
    for name in get_registry().names():
        check_type = get_registry().get(name)
        if not check_type.func.__module__.startswith("auditkit.checks."):
            continue  # test-only checks other tests register (one kills its own process on purpose)
        if check_type.family == "data" and (task, kind, fmt) != FAMILY_CASES[0]:
            continue  # the data checks read the data alone: once is enough (proxy_detection takes ~40 s)
        outcome = execute(CheckTask("c", name, _params(check_type, task, adapter.classes), 3, 120), data)
        print(f"{name}: {outcome.duration_s:.1f} s", outcome.output.skipped if outcome.output else outcome.error)
        if outcome.error is not None:
            problems.append(f"{name}: {outcome.error}")
        elif outcome.output.skipped is not None and len(outcome.output.skipped) < 20:
            problems.append(f"{name}: skipped without a reason a user accepts ({outcome.output.skipped!r})")
        elif name in ("shap_importance", "local_explanations"):
            problems.extend(_shap_units_problems(name, outcome.output, task, kind))
    assert not problems, "\n".join(problems)


def _shap_units_problems(name: str, output, task: str, kind: str) -> list[str]:
    """The SHAP checks say the units they explain in (the target's, for a regressor; a boosted
    or linear multiclass model's softmax margins, centred over the classes in the local
    explanations), and their additivity holds in those units."""
    units = expected_units(kind, task)
    if task == "regression":
        units = "predicted interest_rate" if name == "shap_importance" else "value"
    elif name == "local_explanations" and units.startswith("margin"):
        units = "centred softmax logit"
    said = [note for note in output.notes if "units: " in note]
    problems = []
    if not said or f"units: {units}" not in said[0]:
        problems.append(f"{name}: units are not said to be {units!r}: {said[:1]}")
    additivity = output.metrics["additivity_error"].value
    if additivity is None or additivity > 1e-5:
        problems.append(f"{name}: additivity_error {additivity} in {units}")
    return problems
