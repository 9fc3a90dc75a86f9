"""The models users bring, as they save them: every kind x {ONNX, joblib, skops} (binary tasks).

Each model loads and predicts as its source does; SHAP is exact where the model is a tree
ensemble or linear (equal to shap on the source model, additive, in the units the model's raw
output has), else model-agnostic with its sample size; every check family runs or skips with
a reason (#18). Multiclass and regression through this matrix are not here yet.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

pytest.importorskip("xgboost", reason="the model zoo needs the zoo extra (pip install -e '.[zoo]')")
pytest.importorskip("lightgbm", reason="the model zoo needs the zoo extra (pip install -e '.[zoo]')")
pytest.importorskip("onnxmltools", reason="the model zoo needs the zoo extra (pip install -e '.[zoo]')")

from zoo_models import CATEGORICAL, FEATURES, KINDS, NUMERIC, TREE_KINDS, UNITS, build, grouped_reference, load_frames  # noqa: E402

from support import float32_ties  # noqa: E402

from auditkit.adapters.base import AdapterSpec, load_adapter  # noqa: E402
from auditkit.engine.context import AuditData  # noqa: E402
from auditkit.methods.shap_values import explain  # noqa: E402

FORMATS = ["onnx", "joblib", "skops"]
CASES = [(kind, fmt) for kind in KINDS for fmt in FORMATS if not (fmt == "skops" and kind in ("xgboost", "lightgbm"))]
EXPLAINED, BACKGROUND = slice(0, 40), slice(100, 160)


@pytest.fixture(scope="module")
def frames(samples):
    return load_frames(samples)


@pytest.fixture(scope="module")
def zoo(frames, tmp_path_factory):
    train, _ = frames
    directory = tmp_path_factory.mktemp("zoo")
    built = {}

    def get(kind):
        if kind not in built:
            built[kind] = build(kind, train, directory)
        return built[kind]
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


@pytest.mark.parametrize("kind,fmt", CASES)
def test_model_loads_and_scores_as_its_source(zoo, frames, kind, fmt):
    _, audit = frames
    model = zoo(kind)
    adapter, _ = adapter_of(model, fmt)
    assert adapter.task == "binary" and adapter.score_kind == "probability"
    expected = model.pipeline.predict_proba(audit[FEATURES])[:, 1]
    # ONNX computes in float32: probabilities agree to float32 rounding
    assert_allclose(adapter.predict(audit[FEATURES]), expected, atol=1e-6 if fmt == "onnx" else 1e-12)


def reference_shap(model, X: pd.DataFrame, background: pd.DataFrame) -> tuple[np.ndarray, float, np.ndarray]:
    """shap on the source model: TreeExplainer or LinearExplainer (interventional) on the final
    estimator over the transformed columns, summed back to the inputs; and the rows where shap
    itself is additive (shap rounds float64 thresholds to float32, so a value on a threshold
    takes the other branch there: auditkit keeps them exact)."""
    import shap

    prep, final = model.pipeline[:-1], model.pipeline[-1]
    Xt = np.asarray(prep.transform(X[FEATURES]), dtype=np.float64)
    Bt = np.asarray(prep.transform(background[FEATURES]), dtype=np.float64)
    if model.kind in ("random_forest", "extra_trees", "gradient_boosting"):
        # scikit-learn's classic trees compare float32 features (shap takes them as given)
        Xt, Bt = Xt.astype(np.float32).astype(np.float64), Bt.astype(np.float32).astype(np.float64)
    if model.kind in TREE_KINDS:
        explainer = shap.TreeExplainer(final, data=Bt, feature_perturbation="interventional", model_output="raw")
    else:
        explainer = shap.LinearExplainer(final, shap.maskers.Independent(Bt, max_samples=len(Bt)))
    values = np.asarray(explainer.shap_values(Xt, **({"check_additivity": False} if model.kind in TREE_KINDS else {})))
    base = np.atleast_1d(explainer.expected_value)
    if values.ndim == 3:  # a column per class: the positive class is classes_[1]
        values, base = values[:, :, 1], base[1:]
    names = list(prep.get_feature_names_out(FEATURES))
    raw = _raw(model, X)
    shap_additive = np.abs(float(base[-1]) + values.sum(axis=1) - raw) < 1e-6
    return grouped_reference(values, names), float(base[-1]), shap_additive


def _raw(model, X: pd.DataFrame) -> np.ndarray:
    p = model.pipeline.predict_proba(X[FEATURES])[:, 1]
    return np.log(p) - np.log1p(-p) if UNITS[model.kind] == "log-odds" else p


@pytest.mark.parametrize("kind,fmt", [c for c in CASES if c[0] != "mlp"])
def test_shap_is_exact_additive_and_in_the_units_of_the_raw_output(zoo, frames, kind, fmt):
    _, audit = frames
    model = zoo(kind)
    adapter, _ = adapter_of(model, fmt)
    X, background = audit.iloc[EXPLAINED][FEATURES], audit.iloc[BACKGROUND][FEATURES]
    if kind in TREE_KINDS:  # a background on which shap is itself exact, so that it can be the reference
        ties = float32_ties(model.pipeline[-1], np.asarray(model.pipeline[:-1].transform(background), dtype=float))
        background = background[~ties]
    ours = explain(adapter, X, background, FEATURES)
    assert "exact" in ours.explainer and "approximate" not in ours.explainer
    assert ours.units == UNITS[kind]
    reference, base, shap_additive = reference_shap(model, X, background)
    assert np.abs(reference).max() > 1e-2 and shap_additive.mean() > 0.9  # a non-trivial case
    # ONNX holds float32 thresholds and leaf values: the same Shapley values to float32 rounding
    assert_allclose(ours.values[shap_additive], reference[shap_additive], atol=1e-6)
    assert ours.base_value == pytest.approx(base, abs=1e-6)
    assert ours.additivity_error < 1e-5
    # the raw output SHAP adds up to is the model's own score in those units
    assert_allclose(ours.raw_output, _raw(model, X), atol=1e-5)


@pytest.mark.slow  # shap's Exact explainer, the reference, compiles with numba first (tens of seconds)
@pytest.mark.parametrize("fmt", ["onnx", "joblib", "skops"])
def test_mlp_shap_is_exact_enumeration_equal_to_shap_exact_explainer(zoo, frames, fmt):
    """10 inputs: 1,024 coalitions per row is affordable, so the values are exact Shapley values
    (shap's ExactExplainer on the source pipeline, with the same background, is the reference)."""
    import shap

    _, audit = frames
    model = zoo("mlp")
    adapter, _ = adapter_of(model, fmt)
    X, background = audit.iloc[:6][FEATURES], audit.iloc[100:120][FEATURES]
    ours = explain(adapter, X, background, FEATURES)
    assert "exact" in ours.explainer and "model-agnostic" in ours.explainer and ours.units == "log-odds"
    assert "1,024 coalitions" in ours.explainer and "20 background rows" in ours.explainer

    # shap masks numbers: each categorical column as its categories' positions
    levels = {c: sorted(set(X[c]) | set(background[c])) for c in CATEGORICAL}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        out = frame.copy()
        for c in CATEGORICAL:
            out[c] = [levels[c].index(v) for v in frame[c]]
        return out.to_numpy(dtype=np.float64)

    def log_odds(matrix: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(matrix, columns=FEATURES).astype(object)
        for c in CATEGORICAL:
            frame[c] = [levels[c][int(k)] for k in matrix[:, FEATURES.index(c)]]
        frame[NUMERIC] = frame[NUMERIC].astype(np.float64)
        p = model.pipeline.predict_proba(frame)[:, 1]
        return np.log(p) - np.log1p(-p)

    masker = shap.maskers.Independent(encode(background), max_samples=len(background))
    reference = shap.explainers.Exact(log_odds, masker)(encode(X)).values
    assert np.abs(reference).max() > 1e-2
    # ONNX's float32 MLP against scikit-learn's float64 one: the same function to ~1e-6
    assert_allclose(ours.values, np.asarray(reference, dtype=np.float64), atol=1e-4 if fmt == "onnx" else 1e-9)
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
        "counterfactual_fairness": {"max_rows": 200}}


def _one_format_per_kind() -> list[tuple[str, str]]:
    """Every kind once, the formats taken in turn: every check on all 22 cases took four
    minutes, and loading and SHAP are tested on the whole matrix above."""
    chosen = []
    for i, kind in enumerate(KINDS):
        formats = [fmt for k, fmt in CASES if k == kind]
        chosen.append((kind, formats[i % len(formats)]))
    return chosen


@pytest.mark.slow
@pytest.mark.parametrize("kind,fmt", _one_format_per_kind())
def test_every_check_family_runs_or_skips_with_a_reason(zoo, frames, kind, fmt):
    from auditkit.core.registry import get_registry
    from auditkit.engine.worker import CheckTask, execute

    train, audit = frames
    model = zoo(kind)
    adapter, spec = adapter_of(model, fmt)
    frame = audit.reset_index(drop=True).rename_axis("row")
    scores = adapter.predict(frame[FEATURES])
    data = AuditData(frame=frame, features=list(FEATURES), target="defaulted", protected=["sex", "race", "age_band"],
                     task="binary", scores=scores, decisions=(scores >= 0.5).astype(np.int64),
                     y=frame["defaulted"].to_numpy(float), score_kind=adapter.score_kind, adapter_spec=spec,
                     threshold=0.5, favorable_decision=0, classes=adapter.classes,
                     reference=train.iloc[:300].reset_index(drop=True))
    problems = []
    for name in get_registry().names():
        check_type = get_registry().get(name)
        if not check_type.func.__module__.startswith("auditkit.checks."):
            continue  # test-only checks other tests register (one kills its own process on purpose)
        if check_type.family == "data" and (kind, fmt) != CASES[0]:
            continue  # the data checks read the data alone: once is enough (proxy_detection takes ~40 s)
        params = {**check_type.example.get("params", {}), **{k: v for k, v in FAST.get(name, {}).items()
                                                            if k in check_type.params.model_fields}}
        outcome = execute(CheckTask("c", name, params, 3, 120), data)
        print(f"{name}: {outcome.duration_s:.1f} s")
        if outcome.error is not None:
            problems.append(f"{name}: {outcome.error}")
        elif outcome.output.skipped is not None and len(outcome.output.skipped) < 20:
            problems.append(f"{name}: skipped without a reason a user accepts ({outcome.output.skipped!r})")
    assert not problems, "\n".join(problems)
