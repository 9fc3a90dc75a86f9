"""The model zoo's multiclass and regression cases (#18): a random-forest three-class model and a
gradient-boosting regressor, each as ONNX and joblib. SHAP equals shap on the source estimator
(per class for the classifier), additive, in the units of the raw output; the explanation, local
and robustness checks run or skip with a reason a user accepts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from zoo_models import FEATURES, load_frames, preprocessor, to_onnx  # noqa: E402

from support import float32_ties  # noqa: E402

from auditkit.adapters.base import AdapterSpec, load_adapter  # noqa: E402
from auditkit.engine.context import AuditData  # noqa: E402
from auditkit.methods.shap_values import explain, explain_classes  # noqa: E402

TIERS = ["high", "low", "medium"]
EXPLAINED, BACKGROUND = slice(0, 40), slice(100, 160)


def rate_tier(rate: pd.Series) -> pd.Series:
    """A three-class target from the interest rate (not a model input): its terciles."""
    return pd.Series(np.where(rate < 7.5, "low", np.where(rate < 10.0, "medium", "high")), index=rate.index)


@pytest.fixture(scope="module")
def frames(samples):
    train, audit = load_frames(samples)
    train["tier"], audit["tier"] = rate_tier(train["interest_rate"]), rate_tier(audit["interest_rate"])
    return train, audit


@pytest.fixture(scope="module")
def models(frames, tmp_path_factory):
    import joblib
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier
    from sklearn.pipeline import Pipeline

    train, _ = frames
    directory = tmp_path_factory.mktemp("zoo_tasks")
    out = {}
    for name, estimator, target in [
            ("forest_multiclass", RandomForestClassifier(n_estimators=20, max_depth=5, random_state=0), "tier"),
            ("gbm_regressor", GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0), "interest_rate")]:
        pipeline = Pipeline([("prep", preprocessor(scale=False)), ("model", estimator)]).fit(train[FEATURES],
                                                                                           train[target])
        (directory / f"{name}.onnx").write_bytes(to_onnx(pipeline, name))
        joblib.dump(pipeline, directory / f"{name}.joblib")
        out[name] = (pipeline, directory)
    return out


def adapter_of(models, name: str, fmt: str):
    pipeline, directory = models[name]
    spec = AdapterSpec(format=fmt, path=str(directory / f"{name}.{fmt}"), trust_pickle=True,
                       feature_names=tuple(FEATURES))
    return load_adapter(spec), spec, pipeline


def _source_shap(pipeline, X: pd.DataFrame, background: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import shap

    prep, final = pipeline[:-1], pipeline[-1]
    # scikit-learn's trees compare float32 features (shap takes them as given)
    Xt = np.asarray(prep.transform(X[FEATURES]), dtype=np.float32).astype(np.float64)
    Bt = np.asarray(prep.transform(background[FEATURES]), dtype=np.float32).astype(np.float64)
    explainer = shap.TreeExplainer(final, data=Bt, feature_perturbation="interventional", model_output="raw")
    values = np.asarray(explainer.shap_values(Xt, check_additivity=False))
    return values, np.atleast_1d(explainer.expected_value), list(prep.get_feature_names_out(FEATURES))


def _grouped(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Sum one-hot columns back to their input (values (n, columns[, classes]))."""
    out = np.zeros((values.shape[0], len(FEATURES)) + values.shape[2:])
    for j, name in enumerate(names):
        bare = name.split("__", 1)[1]
        origin = max((f for f in FEATURES if bare == f or bare.startswith(f + "_")), key=len)
        out[:, FEATURES.index(origin)] += values[:, j]
    return out


@pytest.mark.parametrize("fmt", ["onnx", "joblib"])
def test_multiclass_forest_shap_per_class_equals_shap_on_the_source_model(models, frames, fmt):
    _, audit = frames
    adapter, _, pipeline = adapter_of(models, "forest_multiclass", fmt)
    assert adapter.task == "multiclass" and list(adapter.classes) == TIERS
    X, background = audit.iloc[EXPLAINED][FEATURES], audit.iloc[BACKGROUND][FEATURES]
    ties = float32_ties(pipeline[-1], np.asarray(pipeline[:-1].transform(background), dtype=float))
    background = background[~ties]  # a background on which shap is itself exact: the reference
    ours = explain_classes(adapter, X, background, FEATURES)
    values, base, names = _source_shap(pipeline, X, background)
    reference = _grouped(values, names)
    assert reference.shape == ours.values.shape and np.abs(reference).max() > 1e-2
    fair = ~float32_ties(pipeline[-1], np.asarray(pipeline[:-1].transform(X), dtype=float))
    assert fair.mean() > 0.9
    # ONNX holds float32 thresholds and leaf values: the same Shapley values to float32 rounding
    assert_allclose(ours.values[fair], reference[fair], atol=1e-6)
    assert_allclose(ours.base_values, base, atol=1e-6)
    assert ours.units == "probability" and ours.additivity_error < 1e-5
    assert_allclose(ours.raw_output, pipeline.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("fmt", ["onnx", "joblib"])
def test_regressor_shap_equals_shap_on_the_source_model_in_target_units(models, frames, fmt):
    _, audit = frames
    adapter, _, pipeline = adapter_of(models, "gbm_regressor", fmt)
    assert adapter.task == "regression"
    X, background = audit.iloc[EXPLAINED][FEATURES], audit.iloc[BACKGROUND][FEATURES]
    ties = float32_ties(pipeline[-1], np.asarray(pipeline[:-1].transform(background), dtype=float))
    background = background[~ties]
    ours = explain(adapter, X, background, FEATURES)
    values, base, names = _source_shap(pipeline, X, background)
    reference = _grouped(values, names)
    fair = ~float32_ties(pipeline[-1], np.asarray(pipeline[:-1].transform(X), dtype=float))
    assert np.abs(reference).max() > 0.1 and fair.mean() > 0.9
    assert_allclose(ours.values[fair], reference[fair], atol=1e-5)  # percentage points; float32 leaves in ONNX
    assert ours.base_value == pytest.approx(float(base[0]), abs=1e-5)
    assert ours.units == "value" and ours.additivity_error < 1e-4  # onnxruntime sums float32
    assert_allclose(ours.raw_output, pipeline.predict(X[FEATURES]), atol=1e-4)


# fast settings, as the binary zoo test keeps them; only the families this work covers (#18)
FAST = {"interaction_strength": {"max_rows": 20, "top_k": 2},
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
        "invariance": {"max_rows": 100}, "out_of_range": {"max_rows": 100}, "missing_values": {"max_rows": 100}}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["forest_multiclass", "gbm_regressor"])
def test_explanation_local_and_robustness_checks_run_or_skip_with_a_reason(models, frames, name):
    from auditkit.core.registry import get_registry
    from auditkit.engine.worker import CheckTask, execute

    train, audit = frames
    adapter, spec, _ = adapter_of(models, name, "onnx")
    frame = audit.reset_index(drop=True).rename_axis("row")
    scores = adapter.predict(frame[FEATURES])
    multiclass = adapter.task == "multiclass"
    target = "tier" if multiclass else "interest_rate"
    data = AuditData(frame=frame, features=list(FEATURES), target=target, protected=["sex", "race", "age_band"],
                     task=adapter.task, scores=scores,
                     decisions=np.asarray(adapter.classes, dtype=object)[scores.argmax(axis=1)] if multiclass else None,
                     y=frame[target].astype(str).to_numpy(dtype=object) if multiclass else frame[target].to_numpy(float),
                     score_kind=adapter.score_kind, adapter_spec=spec, threshold=None, classes=adapter.classes,
                     reference=train.iloc[:300].reset_index(drop=True))
    problems = []
    for check_name in get_registry().names():
        check_type = get_registry().get(check_name)
        if check_type.family not in ("explanations", "local", "robustness"):
            continue
        if not check_type.func.__module__.startswith("auditkit.checks."):
            continue
        params = {**check_type.example.get("params", {}), **{k: v for k, v in FAST.get(check_name, {}).items()
                                                             if k in check_type.params.model_fields}}
        # the examples are written for a binary model: its 0/1 decisions and its metric roc_auc
        params.pop("query", None)
        params.pop("metric", None)
        if multiclass and "target_class" in check_type.params.model_fields and "monotone" in params:
            params["target_class"] = "high"  # a monotone direction follows one class's probability
        if not multiclass and check_name in ("noise_robustness", "adversarial"):
            params["tolerance"] = 0.5  # percentage points of interest_rate
        outcome = execute(CheckTask("c", check_name, params, 3, 120), data)
        print(f"{check_name}: {outcome.duration_s:.1f} s", outcome.output.skipped if outcome.output else outcome.error)
        if outcome.error is not None:
            problems.append(f"{check_name}: {outcome.error}")
        elif outcome.output.skipped is not None and len(outcome.output.skipped) < 20:
            problems.append(f"{check_name}: skipped without a reason a user accepts ({outcome.output.skipped!r})")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", ["xgboost", "lightgbm"])
def test_boosted_multiclass_shap_equals_shap_on_the_source_model_from_onnx_and_joblib(frames, tmp_path, kind):
    """XGBoost's multiclass trees add to class (tree index mod k): auditkit's re-ranked copy of them
    keeps that layout (it failed before), and the ONNX translation gives the same values."""
    import joblib
    import shap
    from sklearn.pipeline import Pipeline

    from zoo_models import _estimators, register_converters

    train, audit = frames
    register_converters()
    codes = train["tier"].map({c: i for i, c in enumerate(TIERS)})
    pipeline = Pipeline([("prep", preprocessor(scale=False)), ("model", _estimators()[kind]())]).fit(
        train[FEATURES], codes)
    (tmp_path / f"{kind}.onnx").write_bytes(to_onnx(pipeline, kind))
    joblib.dump(pipeline, tmp_path / f"{kind}.joblib")
    X, background = audit.iloc[EXPLAINED][FEATURES], audit.iloc[BACKGROUND][FEATURES]
    ours = {}
    for fmt in ("onnx", "joblib"):
        adapter = load_adapter(AdapterSpec(format=fmt, path=str(tmp_path / f"{kind}.{fmt}"), trust_pickle=True,
                                           feature_names=tuple(FEATURES)))
        ours[fmt] = explain_classes(adapter, X, background, FEATURES)
        assert ours[fmt].units == "margin (softmax logit)" and ours[fmt].additivity_error < 1e-5
    prep, final = pipeline[:-1], pipeline[-1]
    dtype = np.float32 if kind == "xgboost" else np.float64  # the precision each library compares in
    Xt = np.asarray(prep.transform(X), dtype=dtype).astype(np.float64)
    Bt = np.asarray(prep.transform(background), dtype=dtype).astype(np.float64)
    explainer = shap.TreeExplainer(final, data=Bt, feature_perturbation="interventional", model_output="raw")
    reference = _grouped(np.asarray(explainer.shap_values(Xt, check_additivity=False)),
                         list(prep.get_feature_names_out(FEATURES)))
    shap_additive = np.abs(np.asarray(explainer.expected_value)[None, :] + reference.sum(axis=1)
                           - ours["joblib"].raw_output).max(axis=1) < 1e-5
    assert np.abs(reference).max() > 1e-2 and shap_additive.mean() > 0.9  # non-trivial; shap itself exact there
    assert_allclose(ours["joblib"].values[shap_additive], reference[shap_additive], atol=1e-6)
    # the ONNX graph holds the same trees in float32: the same values to float32 rounding
    assert_allclose(ours["onnx"].values, ours["joblib"].values, atol=1e-5)
