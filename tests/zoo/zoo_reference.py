"""The independent reference for the zoo's SHAP values: shap on the source model (scikit-learn,
XGBoost, LightGBM), per task, and what those values add up to (the source model's own raw
output). Values over the transformed columns are summed back to the 10 inputs.

Where shap is itself no reference, it is not used as one:

* shap's interventional code holds thresholds as C floats: a value between a float64
  threshold and its float32 rounding takes the other branch than in the model. Such rows are
  left out of the background (:func:`tree_ties`) and of the comparison (the test compares
  the rows where shap itself is additive).
* shap 0.51 reads XGBoost 3's per-class base scores (a multiclass model's intercept vector)
  as the first class's alone, so its ``expected_value`` is off for the other classes; the
  interventional base value is by definition the mean raw output over the background, which
  the reference takes from the model itself.
* shap reads scikit-learn's multiclass GradientBoostingClassifier as binary: its class-c
  margin is the init score plus ``learning_rate`` times the sum of the class-c regression
  trees, and Shapley values are linear in the function, so the reference sums shap's values
  of each tree (a DecisionTreeRegressor shap reads itself).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from zoo_models import CATEGORICAL, FEATURES, NUMERIC, TREE_KINDS

from support import float32_ties

BOOSTED = {"xgboost", "lightgbm", "hist_gradient_boosting", "gradient_boosting"}
FORESTS = {"random_forest", "extra_trees"}
LINEAR = "logistic_regression"


def expected_units(kind: str, task: str) -> str:
    """What exact SHAP explains for each kind and task (DESIGN.md: the model's raw output)."""
    if task == "regression":
        return "value"  # the target's units; the checks name the target
    if task == "binary":
        return "probability" if kind in FORESTS else "log-odds"
    if kind in BOOSTED or kind == LINEAR:
        return "margin (softmax logit)"
    return "probability"  # forests' votes; the MLP's model-agnostic values of each class probability


def exact_kind(kind: str) -> bool:
    """Tree ensembles and linear models get exact TreeSHAP / linear SHAP."""
    return kind in TREE_KINDS or kind == LINEAR


@dataclass
class Reference:
    values: np.ndarray  # (n, 10[, classes]) over the inputs (the positive class for a binary task)
    base: np.ndarray  # (1,) or (classes,)
    raw: np.ndarray  # (n,) or (n, classes): the source model's raw output
    additive: np.ndarray  # (n,) rows on which shap itself adds up to the raw output (float rounding)


def _trees_of(final: Any) -> list[Any]:
    """The estimators shap reads one by one (scikit-learn's multiclass gradient boosting)."""
    return list(np.asarray(final.estimators_).ravel())


def multiclass_gbm(final: Any) -> bool:
    return type(final).__name__ == "GradientBoostingClassifier" and final.n_trees_per_iteration_ > 1


def tree_ties(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """Rows of ``frame`` on which shap is no reference for ``model``'s trees (see the module)."""
    prep, final = model.pipeline[:-1], model.pipeline[-1]
    Xt = np.asarray(prep.transform(frame[FEATURES]), dtype=float)
    if multiclass_gbm(final):
        ties = np.zeros(len(frame), dtype=bool)
        for tree in _trees_of(final):
            ties |= float32_ties(tree, Xt)
        return ties
    return float32_ties(final, Xt)


def raw_output(model: Any, task: str, kind: str, frame: pd.DataFrame) -> np.ndarray:
    """The source model's own raw output: log-odds or P(class 1) (binary), class margins or
    probabilities (multiclass), the prediction (regression)."""
    pipeline = model.pipeline
    X = frame[FEATURES]
    if task == "regression":
        return np.asarray(pipeline.predict(X), dtype=np.float64)
    if task == "binary":
        p = pipeline.predict_proba(X)[:, 1]
        return p if expected_units(kind, task) == "probability" else np.log(p) - np.log1p(-p)
    if expected_units(kind, task) == "probability":
        return np.asarray(pipeline.predict_proba(X), dtype=np.float64)
    prep, final = pipeline[:-1], pipeline[-1]
    Xt = np.asarray(prep.transform(X), dtype=np.float64)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if kind == "xgboost":
            return np.asarray(final.predict(Xt.astype(np.float32), output_margin=True), dtype=np.float64)
        if kind == "lightgbm":
            return np.asarray(final.predict(Xt, raw_score=True), dtype=np.float64)
        return np.asarray(final.decision_function(Xt), dtype=np.float64)


def _grouped(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Sum one-hot columns back to their input (values (n, columns[, classes]))."""
    out = np.zeros((values.shape[0], len(FEATURES)) + values.shape[2:])
    for j, name in enumerate(names):
        bare = name.split("__", 1)[1]
        origin = max((f for f in FEATURES if bare == f or bare.startswith(f + "_")), key=len)
        out[:, FEATURES.index(origin)] += values[:, j]
    return out


def reference_shap(model: Any, task: str, X: pd.DataFrame, background: pd.DataFrame) -> Reference:
    """shap's TreeExplainer or LinearExplainer (interventional) on the source model's final
    estimator over the transformed columns, or shap's Exact explainer on the whole pipeline
    (the MLP, its categoricals as codes)."""
    import shap

    kind = model.kind
    raw = raw_output(model, task, kind, X)
    raw_background = raw_output(model, task, kind, background)
    if not exact_kind(kind):
        values = _exact_model_agnostic(model, task, X, background)
        base = np.atleast_1d(raw_background.mean(axis=0))
    else:
        prep, final = model.pipeline[:-1], model.pipeline[-1]
        Xt = np.asarray(prep.transform(X[FEATURES]), dtype=np.float64)
        Bt = np.asarray(prep.transform(background[FEATURES]), dtype=np.float64)
        if kind in ("random_forest", "extra_trees", "gradient_boosting", "xgboost"):
            # scikit-learn's classic trees and XGBoost compare float32 features (shap takes them as given)
            Xt, Bt = Xt.astype(np.float32).astype(np.float64), Bt.astype(np.float32).astype(np.float64)
        if multiclass_gbm(final):
            values = np.zeros(Xt.shape + (final.n_trees_per_iteration_,))
            for stage in final.estimators_:
                for c, tree in enumerate(stage):
                    explainer = shap.TreeExplainer(tree, data=Bt, feature_perturbation="interventional")
                    values[:, :, c] += final.learning_rate * np.asarray(explainer.shap_values(Xt, check_additivity=False))
        elif kind in TREE_KINDS:
            explainer = shap.TreeExplainer(final, data=Bt, feature_perturbation="interventional", model_output="raw")
            values = np.asarray(explainer.shap_values(Xt, check_additivity=False))
        else:
            explainer = shap.LinearExplainer(final, shap.maskers.Independent(Bt, max_samples=len(Bt)))
            values = np.asarray(explainer.shap_values(Xt))
        if task == "binary" and values.ndim == 3:  # a column per class: the positive class is classes_[1]
            values = values[:, :, 1]
        values = _grouped(values, list(prep.get_feature_names_out(FEATURES)))
        # the interventional base value is the mean raw output over the background (see the module)
        base = np.atleast_1d(raw_background.mean(axis=0))
    gap = np.abs(base + values.sum(axis=1) - raw) / np.maximum(1.0, np.abs(raw))
    # XGBoost sums its trees in float32 (about one float32 rounding per tree), the others in float64
    tolerance = model.pipeline[-1].n_estimators * 2.0 ** -23 if kind == "xgboost" else 1e-6
    additive = (gap if gap.ndim == 1 else gap.max(axis=1)) < tolerance
    return Reference(values, base, raw, additive)


def _exact_model_agnostic(model: Any, task: str, X: pd.DataFrame, background: pd.DataFrame) -> np.ndarray:
    """shap's Exact explainer on the pipeline's raw output, each categorical column as its
    categories' positions (shap masks numbers)."""
    import shap

    levels = {c: sorted(set(X[c]) | set(background[c])) for c in CATEGORICAL}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        out = frame[FEATURES].copy()
        for c in CATEGORICAL:
            out[c] = [levels[c].index(v) for v in frame[c]]
        return out.to_numpy(dtype=np.float64)

    def f(matrix: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(matrix, columns=FEATURES).astype(object)
        for c in CATEGORICAL:
            frame[c] = [levels[c][int(k)] for k in matrix[:, FEATURES.index(c)]]
        frame[NUMERIC] = frame[NUMERIC].astype(np.float64)
        return raw_output(model, task, model.kind, frame)

    masker = shap.maskers.Independent(encode(background), max_samples=len(background))
    return np.asarray(shap.explainers.Exact(f, masker)(encode(X)).values, dtype=np.float64)

