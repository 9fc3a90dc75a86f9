"""SHAP values in the model's raw-output units, with the exact explainer the model allows.

Choice, in order: exact TreeSHAP (scikit-learn tree ensembles, and ONNX tree-ensemble
nodes translated into shap's tree format), exact linear SHAP (coefficients x deviation from
the background mean), else shap's model-agnostic Permutation explainer through the adapter
(numeric inputs only). Values over a pipeline's transformed columns (one-hot parts) are
summed back to the original input they come from. Shared by shap_importance and the local
explanation checks.
"""
from __future__ import annotations

import warnings

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.adapters.base import ModelAdapter
from auditkit.engine.context import AuditContext
from auditkit.errors import CheckError

TREE_TYPES = ("DecisionTree", "RandomForest", "ExtraTrees", "GradientBoosting", "HistGradientBoosting", "XGB", "LGBM")


@dataclass
class ShapResult:
    values: np.ndarray  # (n, n_features) over the original inputs
    base_value: float
    features: list[str]
    explainer: str  # what was used, named in the result
    units: str  # "log-odds", "probability", "value"
    raw_output: np.ndarray  # the model's own raw output for the explained rows (additivity reference)
    notes: list[str] = field(default_factory=list)
    standard_error: float | None = None  # of an approximate explainer's values (RMS), None when exact
    # one base value per row, when rows explain different scores (a multiclass row's predicted class)
    row_base_values: np.ndarray | None = None

    def base_of(self, i: int) -> float:
        """The base value row ``i``'s SHAP values start from."""
        return float(self.base_value if self.row_base_values is None else self.row_base_values[i])

    @property
    def additivity_error(self) -> float:
        """Largest |base + sum of SHAP - raw output| over rows whose raw output is known."""
        base = self.base_value if self.row_base_values is None else self.row_base_values
        gap = np.abs(base + self.values.sum(axis=1) - self.raw_output)
        gap = gap[np.isfinite(gap)]
        return float(gap.max()) if gap.size else 0.0


def _logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of probabilities; NaN where a float32 probability is saturated (within 1e-6
    of 0 or 1), since its log-odds can no longer be read back from it."""
    q = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(q) - np.log1p(-q)
    return np.where((q > 1e-6) & (q < 1 - 1e-6), out, np.nan)


def origin_of(names: list[str], features: list[str]) -> list[int]:
    """For each transformed column name, the index of the input feature it comes from."""
    out = []
    for name in names:
        bare = name.split("__", 1)[1] if "__" in name else name
        best = -1
        for i, feature in enumerate(features):
            if (bare == feature or bare.startswith(feature + "_")) and (best < 0 or len(feature) > len(features[best])):
                best = i
        if best < 0:
            raise CheckError(f"cannot tell which input the transformed column '{name}' comes from")
        out.append(best)
    return out


def _group(values: np.ndarray, origins: list[int], n_features: int) -> np.ndarray:
    grouped = np.zeros((values.shape[0], n_features))
    for column, origin in enumerate(origins):
        grouped[:, origin] += values[:, column]
    return grouped


def explain(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
            *, prefer: str = "auto") -> ShapResult:
    """SHAP values of ``X`` against ``background``, exact where the model allows."""
    tried: list[str] = []
    if model.format in ("pickle", "joblib", "skops") and prefer in ("auto", "tree", "linear"):
        result = _sklearn(model, X, background, features, prefer, tried)
        if result is not None:
            return result
    if model.format == "onnx" and prefer in ("auto", "tree", "linear"):
        result = _onnx(model, X, background, features, prefer, tried)
        if result is not None:
            return result
    if prefer in ("auto", "permutation"):
        return _model_agnostic(model, X, background, features, tried)
    raise CheckError(f"no {prefer} explainer fits {model.kind}; tried: {', '.join(tried) or 'nothing'}")


def _sklearn(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str], prefer: str,
             tried: list[str]) -> ShapResult | None:
    import shap

    estimator = getattr(model, "estimator")
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    prep = estimator[:-1] if steps and len(steps) > 1 else None
    columns = model.input_features or features

    def transform(frame: pd.DataFrame) -> np.ndarray:
        if prep is None:
            return frame[columns].to_numpy(dtype=np.float64)
        out = prep.transform(frame[columns])
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

    names = ([str(n) for n in prep.get_feature_names_out(columns)] if prep is not None else list(columns))
    origins = origin_of(names, list(features))
    positive = model.positive_index() if model.classes else 0
    kind = type(final).__name__
    if prefer in ("auto", "tree") and any(kind.startswith(t) for t in TREE_TYPES):
        tried.append(f"shap TreeExplainer (interventional) on {kind}")
        explainer = _RankedTrees(final, transform(background))
        # features in the dtype the model's own trees compare them in (float32 for scikit-learn's
        # classic trees and XGBoost, float64 for HistGradientBoosting and LightGBM)
        Xt = transform(X).astype(explainer.input_dtype).astype(np.float64)
        raw_values = explainer.shap_values(Xt)
        base = np.atleast_1d(explainer.expected_value)
        values = np.asarray(raw_values)
        two_classes = bool(model.classes and len(model.classes) == 2)
        if values.ndim == 3:  # (n, features, classes)
            values, base_value = values[:, :, positive], float(base[positive])
        else:
            # one output: a binary boosted model's log-odds of classes_[1] (negated for classes_[0])
            sign = -1.0 if (two_classes and positive == 0) else 1.0
            values, base_value = sign * values, float(sign * base[0])
        raw, units = _sklearn_raw_output(final, kind, Xt, model, positive)
        return ShapResult(_group(values, origins, len(features)), base_value, list(features),
                          f"exact TreeSHAP (shap.TreeExplainer, interventional) on {kind}", units, raw)
    coef = getattr(final, "coef_", None)
    if prefer in ("auto", "linear") and coef is not None:
        tried.append(f"exact linear SHAP on {kind}")
        Xt, Bt = transform(X), transform(background)
        coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
        intercept = np.atleast_1d(np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64))
        if coef.shape[0] == 1:
            sign = -1.0 if (model.classes and positive == 0) else 1.0
            w, b = sign * coef[0], sign * intercept[0]
        else:
            w, b = coef[positive], intercept[positive]
        mean = Bt.mean(axis=0)
        values = (Xt - mean) * w  # linear SHAP with independent features: w_j (x_j - E[x_j])
        base_value = float(b + mean @ w)
        raw = Xt @ w + b
        return ShapResult(_group(values, origins, len(features)), base_value, list(features),
                          f"exact linear SHAP on {kind}", "log-odds" if model.classes else "value", raw)
    tried.append(f"no exact explainer for scikit-learn {kind}")
    return None


def _per_output(values: np.ndarray, index: int, outputs: int) -> np.ndarray:
    """A tree's leaf values with one column per model output. shap parses XGBoost's multiclass
    trees with one output each, tree i adding to class i mod k (its own layout, applied inside
    shap); a custom model must say it in the values."""
    if outputs <= 1 or values.ndim != 2 or values.shape[1] != 1:
        return values
    full = np.zeros((values.shape[0], outputs))
    full[:, index % outputs] = values[:, 0]
    return full


class _RankedTrees:
    """shap's interventional TreeExplainer on a fitted tree ensemble, exact whatever the
    precision of its thresholds.

    shap's interventional algorithm holds thresholds as C floats: a feature value between a
    float64 threshold (HistGradientBoosting, LightGBM, scikit-learn's forests) and its float32
    rounding takes the other branch than in the model itself, a whole leaf's difference. Every
    feature is therefore replaced by its rank among that feature's thresholds (the number of
    thresholds below the value; missing stays missing), and each split ``x <= t_j`` by
    ``rank <= j + 0.5``: the same function of small integers, which float32 holds exactly, so
    the Shapley values are those of the model itself.
    """

    def __init__(self, final: Any, background: np.ndarray):
        import shap

        parsed = shap.TreeExplainer(final, data=background, feature_perturbation="interventional",
                                    model_output="raw").model
        self.input_dtype = parsed.input_dtype
        base_offset = _xgboost_class_intercepts(final, parsed.base_offset)
        # what shap's own base value misses (XGBoost's per-class intercepts), added to it
        self.offset_correction = np.asarray(base_offset, dtype=np.float64) - np.asarray(parsed.base_offset,
                                                                                         dtype=np.float64)
        self.exact = not np.any(parsed.threshold_types != 0)  # categorical bitsets: leave them to shap
        if not self.exact:
            self.explainer = shap.TreeExplainer(final, data=background, feature_perturbation="interventional",
                                                model_output="raw")
            return
        n_features = background.shape[1]
        self.cuts = []
        for f in range(n_features):
            found = [t.thresholds[(t.features == f) & (t.children_left >= 0)] for t in parsed.trees]
            self.cuts.append(np.unique(np.concatenate(found)) if found else np.empty(0))
        trees = []
        outputs = int(getattr(parsed, "num_outputs", 1) or 1)
        for index, t in enumerate(parsed.trees):
            thresholds = np.asarray(t.thresholds, dtype=np.float64).copy()
            split = t.children_left >= 0
            for k in np.flatnonzero(split):
                thresholds[k] = float(np.searchsorted(self.cuts[t.features[k]], thresholds[k])) + 0.5
            thresholds[~split] = 0.0
            trees.append({"children_left": t.children_left, "children_right": t.children_right,
                          "children_default": t.children_default, "features": t.features, "thresholds": thresholds,
                          "values": _per_output(np.asarray(t.values, np.float64), index, outputs),
                          "node_sample_weight": np.asarray(t.node_sample_weight, dtype=np.float64)})
        self.offset_correction = np.zeros(())  # the custom model below carries the right offset
        custom = {"trees": trees, "base_offset": base_offset, "tree_output": parsed.tree_output,
                  "objective": parsed.objective, "input_dtype": np.float64, "internal_dtype": np.float64}
        self.explainer = shap.TreeExplainer(custom, data=self.ranks(background), feature_perturbation="interventional",
                                            model_output="raw")

    def ranks(self, X: np.ndarray) -> np.ndarray:
        """Each value's rank among its feature's thresholds, after the model's own input cast."""
        X = np.asarray(X, dtype=np.float64).astype(self.input_dtype).astype(np.float64)
        if not self.exact:
            return X
        out = np.full(X.shape, np.nan)
        for f, cuts in enumerate(self.cuts):
            present = ~np.isnan(X[:, f])
            out[present, f] = np.searchsorted(cuts, X[present, f], side="left")
        return out

    @property
    def expected_value(self) -> Any:
        if not np.any(self.offset_correction):
            return self.explainer.expected_value
        return np.asarray(self.explainer.expected_value, dtype=np.float64) + self.offset_correction

    def shap_values(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.explainer.shap_values(self.ranks(X), check_additivity=False))


def _xgboost_class_intercepts(final: Any, parsed_offset: Any) -> Any:
    """The base offset of a fitted model's margins: shap's, except for an XGBoost (>= 3)
    multiclass model, whose ``base_score`` is one intercept per class (in margin units under
    the softmax objectives) of which shap 0.51 keeps the first alone, shifting every other
    class's base value and breaking additivity (0.40 log-odds on the zoo's rate-tier model)."""
    import ast
    import json

    get_booster = getattr(final, "get_booster", None)
    if get_booster is None:
        return parsed_offset
    params = json.loads(get_booster().save_config())["learner"]
    objective = str(params.get("objective", {}).get("name", ""))
    base = params.get("learner_model_param", {}).get("base_score")
    if not objective.startswith("multi:") or not isinstance(base, str) or not base.strip().startswith("["):
        return parsed_offset
    intercepts = np.asarray(ast.literal_eval(base), dtype=np.float64).ravel()
    n_classes = int(params["learner_model_param"].get("num_class", 0) or 0)
    if len(intercepts) != n_classes:
        return parsed_offset
    return intercepts


def _sklearn_raw_output(final: Any, kind: str, Xt: np.ndarray, model: ModelAdapter,
                        positive: int) -> tuple[np.ndarray, str]:
    """What TreeSHAP's values add up to, from the model itself, and its units.

    Boosted classifiers (scikit-learn's, XGBoost, LightGBM) explain their margin, the log-odds
    for a binary task; forests explain the probability; regressors the value.
    """
    with warnings.catch_warnings():  # Xt is the transformed array on purpose, without names
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        if not model.classes:
            return np.asarray(final.predict(Xt), dtype=np.float64), "value"
        if kind.startswith("XGB"):
            raw = np.asarray(final.predict(Xt, output_margin=True), dtype=np.float64)
        elif kind.startswith("LGBM"):
            raw = np.asarray(final.predict(Xt, raw_score=True), dtype=np.float64)
        elif kind.startswith(("GradientBoosting", "HistGradientBoosting")):
            raw = np.asarray(final.decision_function(Xt), dtype=np.float64)
        else:
            return np.asarray(final.predict_proba(Xt), dtype=np.float64)[:, positive], "probability"
    if raw.ndim == 2:
        return raw[:, positive], "log-odds" if len(model.classes) == 2 else "margin (softmax logit)"
    # one margin: the log-odds of classes_[1]
    return (-raw if positive == 0 else raw), "log-odds"


def _onnx(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str], prefer: str,
          tried: list[str]) -> ShapResult | None:
    model_bytes = Path(model.path or "").read_bytes()
    if prefer in ("auto", "tree"):
        result = _onnx_trees(model, model_bytes, X, background, features, tried)
        if result is not None:
            return result
    if prefer in ("auto", "linear"):
        from auditkit.methods.linear_models import from_onnx

        positive = model.positive_index() if model.classes else 0
        linear = from_onnx(model_bytes, list(features), positive) if getattr(model, "matrix_input", False) else None
        if linear is not None:
            tried.append("exact linear SHAP on the ONNX linear node")
            fill = _onnx_imputer_values(model_bytes, len(features))
            Xn = X[features].to_numpy(dtype=np.float64)
            Bn = background[features].to_numpy(dtype=np.float64)
            if fill is not None:
                Xn = np.where(np.isnan(Xn), fill, Xn)
                Bn = np.where(np.isnan(Bn), fill, Bn)
            mean = Bn.mean(axis=0)
            values = (Xn - mean) * linear.coef
            base_value = float(linear.intercept + mean @ linear.coef)
            scores = model.predict(X)
            raw = _logit(scores) if linear.logistic else scores
            return ShapResult(values, base_value, list(features), f"exact linear SHAP ({linear.source})",
                              "log-odds" if linear.logistic else "value", raw)
        if not getattr(model, "matrix_input", False):
            result = _onnx_linear_columns(model, model_bytes, X, background, features, tried)
            if result is not None:
                return result
        tried.append("ONNX linear node (none found, or its columns mix several inputs)")
    return None


def _onnx_linear_columns(model: ModelAdapter, model_bytes: bytes, X: pd.DataFrame, background: pd.DataFrame,
                         features: list[str], tried: list[str]) -> ShapResult | None:
    """Exact linear SHAP on an ONNX linear node behind per-column preprocessing (skl2onnx's
    mixed-type pipelines: imputers, scalers, one-hot encoders, one named input per column):
    w_j (x_j - E[x_j]) over the columns the node reads, summed over the columns of each input."""
    from auditkit.methods.linear_models import from_onnx_columns
    from auditkit.methods.onnx_trees import tensor_features

    positive = model.positive_index() if model.classes else 0
    found = from_onnx_columns(model_bytes, model.feeds(X), positive)  # type: ignore[attr-defined]
    if found is None:
        return None
    linear, Xt = found
    tried.append("exact linear SHAP on the ONNX linear node, over the columns its preprocessing makes")
    Bt, _ = tensor_features(model_bytes, _linear_input(model_bytes), model.feeds(background))  # type: ignore[attr-defined]
    mean = Bt.mean(axis=0)
    columns = (Xt - mean) * linear.coef
    grouped = np.zeros((len(X), len(features)))
    for j, origin in enumerate(linear.origins or []):
        if origin in features:
            grouped[:, features.index(origin)] += columns[:, j]
        elif np.any(columns[:, j] != 0):
            raise CheckError(f"the ONNX linear node reads a column made from '{origin}', which is not a feature")
    # the node's own margin, from the columns onnxruntime made (log-odds read back from float32
    # probabilities lose ~1e-5 near 0 and 1)
    raw = Xt @ linear.coef + linear.intercept
    return ShapResult(grouped, float(linear.intercept + mean @ linear.coef), list(features),
                      f"exact linear SHAP ({linear.source}, over the {Xt.shape[1]} columns its preprocessing makes)",
                      "log-odds" if linear.logistic else "value", raw)


def _linear_input(model_bytes: bytes) -> str:
    from auditkit.methods.linear_models import onnx_linear_node

    return str(onnx_linear_node(model_bytes).input[0])


@dataclass
class _OnnxTreeValues:
    """The translated ONNX trees' SHAP values, summed onto the inputs: ``values`` (n, p) for one
    raw output or (n, p, outputs), ``base`` (outputs,); ``raw`` the node's own scores before its
    post-transform (onnxruntime), (n, node outputs): a class's margin or probability each when
    there is one SHAP output per class (a binary node's two columns are not what one output adds
    up to: that is their difference, or the second alone)."""

    info: Any  # onnx_trees.TreeNodeInfo
    translated: dict[str, Any]
    values: np.ndarray
    base: np.ndarray
    raw: np.ndarray


def _onnx_tree_values(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
                      tried: list[str]) -> _OnnxTreeValues | None:
    """Exact TreeSHAP on an ONNX model's tree-ensemble node, translated into shap's tree format,
    over the inputs (one-hot columns summed back to their input); None, with the reason in
    ``tried``, when there is no such node or it cannot be translated. Shared by one-score
    (:func:`explain`) and per-class (:func:`explain_classes`) explanations."""
    import onnx

    from auditkit.methods.onnx_trees import OnnxTreeExplainer, find_tree_ensemble
    from auditkit.methods.onnx_trees.runtime import onnxruntime_raw_scores

    model_bytes = Path(model.path or "").read_bytes()
    info = find_tree_ensemble(onnx.load_from_string(model_bytes))
    if info is None:
        tried.append("ONNX tree-ensemble translation (the graph has no tree-ensemble node)")
        return None
    tried.append(f"exact TreeSHAP on the ONNX {info.op_type} node")
    try:
        explainer = OnnxTreeExplainer(model.path or "", model.feeds(background))  # type: ignore[attr-defined]
    except NotImplementedError as exc:
        tried.append(f"(not translatable: {exc})")
        return None
    feeds = model.feeds(X)  # type: ignore[attr-defined]
    values, base = explainer.shap_values(feeds)
    values = np.asarray(values, dtype=np.float64)
    if getattr(model, "matrix_input", False):
        if values.shape[1] != len(features):
            raise CheckError(f"the ONNX trees read {values.shape[1]} columns made from the {len(features)} inputs; "
                             "they cannot be attributed back to the inputs")
        grouped = values
    else:
        if explainer.groups is None:
            raise CheckError("which input each column the ONNX trees read comes from cannot be told from the graph")
        by_input = np.asarray(explainer.grouped(values))
        grouped = np.zeros((len(values), len(features)) + values.shape[2:])
        for k, name in enumerate(explainer.groups):
            if name in features:
                grouped[:, features.index(name)] = by_input[:, k]
    raw = np.asarray(onnxruntime_raw_scores(explainer.model, explainer.features(feeds)), dtype=np.float64)
    return _OnnxTreeValues(info, explainer.translated, grouped, np.atleast_1d(np.asarray(base, dtype=np.float64)),
                           raw.reshape(len(X), -1))


def _onnx_trees(model: ModelAdapter, model_bytes: bytes, X: pd.DataFrame, background: pd.DataFrame,
                features: list[str], tried: list[str]) -> ShapResult | None:
    """Exact TreeSHAP on an ONNX tree-ensemble node, translated into shap's tree format."""
    found = _onnx_tree_values(model, X, background, features, tried)
    if found is None:
        return None
    values, base_arr = found.values, found.base
    positive = model.positive_index() if model.classes else 0
    # what the translated trees add up to (onnx_trees._layout): log-odds under a logistic or
    # two-column softmax link, else the score itself (a forest's probability)
    log_odds = found.translated.get("tree_output") == "log_odds"
    probability = model.task != "regression" and not log_odds
    if values.ndim == 3:  # one score per class
        values, base_value = values[:, :, positive], float(base_arr[positive])
    elif model.classes and len(model.classes) == 2 and positive == 0:
        # one raw output, the score of classes_[1]: the first class's log-odds are its negation,
        # its probability is 1 - P(class 1) (the base value 1 - E[P(class 1)], not -E[P(class 1)])
        values = -values
        base_value = float(1.0 - base_arr[0]) if probability else float(-base_arr[0])
    else:
        base_value = float(base_arr[0])
    scores = model.predict(X)
    if model.task == "regression":
        units, raw = "value", scores
    elif log_odds:
        units, raw = "log-odds", _logit(scores)
    else:
        units, raw = "probability", scores
    return ShapResult(values, base_value, list(features),
                      f"exact TreeSHAP (interventional) on the ONNX {found.info.op_type} node, translated for shap",
                      units, raw)


def _onnx_imputer_values(model_bytes: bytes, k: int) -> np.ndarray | None:
    import onnx

    for node in onnx.load_from_string(model_bytes).graph.node:
        if node.op_type == "Imputer":
            for attr in node.attribute:
                if attr.name == "imputed_value_floats" and len(attr.floats) in (1, k):
                    return np.broadcast_to(np.asarray(attr.floats, dtype=np.float64), (k,)).copy()
    return None


# Exact Shapley enumeration evaluates the model on 2^p coalitions x background rows for each
# explained row; within these bounds it is affordable (about 6e7 model rows: tens of seconds
# for a small network through onnxruntime), beyond them the permutation estimator is used.
MAX_EXACT_FEATURES = 12
EXACT_BUDGET = 60_000_000


class _Codes:
    """The model-agnostic explainers mask numbers: categories become codes, decoded again
    before the model sees them (missing stays missing)."""

    def __init__(self, frames: list[pd.DataFrame], features: list[str]):
        self.features = features
        self.categories: dict[int, np.ndarray] = {}
        for i, f in enumerate(features):
            column = pd.concat([frame[f] for frame in frames])
            if not pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
                self.categories[i] = np.asarray(sorted(column.dropna().unique(), key=str), dtype=object)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.features)))
        for i, f in enumerate(self.features):
            if i in self.categories:
                lookup = {v: k for k, v in enumerate(self.categories[i])}
                out[:, i] = [np.nan if pd.isna(v) else lookup[v] for v in frame[f]]
            else:
                out[:, i] = frame[f].to_numpy(dtype=np.float64, na_value=np.nan)
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame(matrix, columns=self.features)
        for i, values in self.categories.items():
            codes = matrix[:, i]
            column = np.full(len(codes), np.nan, dtype=object)
            present = ~np.isnan(codes)
            column[present] = values[codes[present].astype(int)]
            frame[self.features[i]] = column
        return frame


def enumerate_shapley(f: Any, X: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact interventional Shapley values of ``f`` at each row of ``X``: the value of a
    coalition S is the mean over background rows b of f(x_S, b_rest), and
    phi_i = sum over S without i of |S|! (p - |S| - 1)! / p! (v(S + i) - v(S)).

    Plain numpy, with no JIT compilation to pay in every worker process (shap's Exact explainer
    compiles with numba first, tens of seconds on a loaded machine).
    """
    from math import factorial

    n, p = X.shape
    masks = ((np.arange(2 ** p)[:, None] >> np.arange(p)[None, :]) & 1).astype(bool)  # (2^p, p): bit j = feature j
    size = masks.sum(axis=1)
    weight = np.array([factorial(k) * factorial(p - k - 1) / factorial(p) for k in range(p)])
    nb = len(background)
    values = np.zeros((n, p))
    base = float(np.mean(f(background)))
    for r in range(n):
        hybrid = np.where(masks[:, None, :], X[r][None, None, :], background[None, :, :]).reshape(-1, p)
        v = np.asarray(f(hybrid), dtype=np.float64).reshape(2 ** p, nb).mean(axis=1)
        for j in range(p):
            without = np.flatnonzero(~masks[:, j])
            values[r, j] = np.sum(weight[size[without]] * (v[without | (1 << j)] - v[without]))
    return values, base


def _model_agnostic(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
                    tried: list[str]) -> ShapResult:
    """Shapley values through the adapter, with the background as the distribution of absent
    features (interventional, as the exact explainers): exact enumeration of every coalition
    (shap's Exact explainer) when affordable, else shap's Permutation explainer run twice with
    independent seeds, averaged, with the standard error the two runs estimate."""
    import shap

    logistic = model.task == "binary" and model.score_kind == "probability"
    codes = _Codes([X, background], features)

    def f(matrix: np.ndarray) -> np.ndarray:
        scores = model.predict(codes.decode(matrix))
        if not logistic:
            return scores
        q = np.clip(scores, 1e-12, 1 - 1e-12)
        return np.log(q) - np.log1p(-q)

    Xn, Bn = codes.encode(X), codes.encode(background)
    masker = shap.maskers.Independent(Bn, max_samples=len(Bn))
    p = len(features)
    units = "log-odds" if logistic else "value"
    raw = f(Xn)
    notes = [] if not tried else ["exact TreeSHAP or linear SHAP does not apply: " + "; ".join(tried)]
    cost = (2 ** p) * len(Bn) * len(Xn)
    if p <= MAX_EXACT_FEATURES and cost <= EXACT_BUDGET:
        values, base_value = enumerate_shapley(f, Xn, Bn)
        return ShapResult(values, base_value, list(features),
                          f"exact Shapley values by enumeration (model-agnostic: {2 ** p:,} coalitions x "
                          f"{len(Bn):,} background rows per explained row)", units, raw, notes=notes)
    max_evals = max(2 * p + 1, 10 * p)
    runs = []
    for seed in (0, 1):
        explanation = shap.explainers.Permutation(f, masker, seed=seed)(Xn, max_evals=max_evals, silent=True)
        runs.append(np.asarray(explanation.values, dtype=np.float64))
        base = np.atleast_1d(explanation.base_values).astype(np.float64)
    values = (runs[0] + runs[1]) / 2
    # two independent estimates a, b of the same value: (a - b)^2 / 4 estimates the variance of their mean
    standard_error = float(np.sqrt(np.mean((runs[0] - runs[1]) ** 2) / 4))
    reason = (f"{p} features" if p > MAX_EXACT_FEATURES
              else f"{cost:,} model evaluations, over the {EXACT_BUDGET:,} budget")
    notes.append(f"approximate: exact enumeration would cost {2 ** p:,} coalitions per row ({reason}); "
                 f"estimated standard error of a SHAP value {standard_error:.3g} {units} (root mean square over "
                 "values, from two independent runs); additivity holds by construction and says nothing of it")
    return ShapResult(values, float(base.mean()), list(features),
                      f"shap Permutation explainer (model-agnostic, approximate: 2 runs x {max_evals:,} evaluations "
                      f"per row, {len(Bn):,} background rows)", units, raw, notes=notes,
                      standard_error=standard_error)


def background_rows(ctx: AuditContext, size: int) -> tuple[pd.DataFrame, str]:
    """DESIGN.md: data.reference when given, else the audit data; all rows up to ``size``, else
    a seeded sample of ``size``."""
    data = ctx.data
    source, name = (data.reference, "data.reference") if data.reference is not None else (data.frame, "the audit data")
    missing = [f for f in data.features if f not in source.columns]
    if missing:
        source, name = data.frame, "the audit data (data.reference lacks " + ", ".join(missing) + ")"
    if len(source) > size:
        rows = np.sort(ctx.rng.choice(len(source), size, replace=False))
        return source.iloc[rows][data.features], f"a seeded sample of {size:,} rows of {name}"
    return source[data.features], f"all {len(source):,} rows of {name}"


# --------------------------------------------------------------------------------------
# Multiclass: one set of SHAP values per class
# --------------------------------------------------------------------------------------
@dataclass
class ClassShapResult:
    """SHAP values of every class's score: ``values[i, j, c]`` is feature j's share of class c's
    score at row i, ``base_values[c] + values[i, :, c].sum()`` that score."""

    values: np.ndarray  # (n, n_features, n_classes) over the original inputs
    base_values: np.ndarray  # (n_classes,)
    classes: list[Any]
    features: list[str]
    explainer: str
    units: str  # "margin (softmax logit)" or "probability"
    raw_output: np.ndarray  # (n, n_classes): what the values add up to, from the model itself
    notes: list[str] = field(default_factory=list)
    standard_error: float | None = None

    @property
    def additivity_error(self) -> float:
        """Largest |base + sum of SHAP - raw output| over rows and classes (the raw output is the
        model's own: margins before the softmax, or probabilities)."""
        gap = np.abs(self.base_values[None, :] + self.values.sum(axis=1) - self.raw_output)
        gap = gap[np.isfinite(gap)]
        return float(gap.max()) if gap.size else 0.0

    def centred(self) -> "ClassShapResult":
        """Softmax margins centred over the classes: class c's score becomes
        m_c - mean_k m_k = log p_c - mean_k log p_k, which the probabilities alone determine (a
        softmax ignores a constant added to every margin). Shapley values are linear in the
        explained function, so its values are phi_c - mean_k phi_k, exactly. Probabilities are
        returned as they are."""
        if not self.units.startswith("margin"):
            return self
        return ClassShapResult(self.values - self.values.mean(axis=2, keepdims=True),
                               self.base_values - self.base_values.mean(),
                               self.classes, self.features, self.explainer,
                               "centred softmax logit (log-probability minus its mean over the classes)",
                               self.raw_output - self.raw_output.mean(axis=1, keepdims=True), list(self.notes),
                               self.standard_error)

    def for_class(self, c: int) -> ShapResult:
        """Class ``c``'s values as a one-score result."""
        values, base, raw = self.values[:, :, c], float(self.base_values[c]), self.raw_output[:, c]
        return ShapResult(values, base, self.features, self.explainer, self.units, raw, list(self.notes),
                          self.standard_error)

    def for_rows(self, chosen: np.ndarray) -> ShapResult:
        """Each row's values for its own class ``chosen[i]`` (e.g. the predicted one)."""
        chosen = np.asarray(chosen, dtype=int)
        rows = np.arange(len(chosen))
        parts = [self.for_class(c) for c in range(len(self.classes))]
        values = np.stack([p.values for p in parts], axis=2)[rows, :, chosen]
        raw = np.stack([p.raw_output for p in parts], axis=1)[rows, chosen]
        chosen = np.asarray(chosen, dtype=int)
        return ShapResult(values, float(np.mean(self.base_values[chosen])) if len(chosen) else 0.0, self.features,
                          self.explainer, self.units, raw, list(self.notes), self.standard_error,
                          row_base_values=self.base_values[chosen])


def _group3(values: np.ndarray, origins: list[int], n_features: int) -> np.ndarray:
    return np.stack([_group(values[:, :, c], origins, n_features) for c in range(values.shape[2])], axis=2)


def explain_classes(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
                    *, prefer: str = "auto") -> ClassShapResult:
    """SHAP values of every class's score of a multiclass model, exact where the model allows:
    TreeSHAP on the class margins (boosted trees: softmax logits) or probabilities (forests),
    linear SHAP on a multinomial linear model's margins, else model-agnostic Shapley values of
    the class probabilities (exact enumeration when affordable, as :func:`explain`)."""
    tried: list[str] = []
    classes = list(model.classes or [])
    if model.format in ("pickle", "joblib", "skops") and prefer in ("auto", "tree", "linear"):
        result = _sklearn_classes(model, X, background, features, prefer, tried)
        if result is not None:
            return result
    if model.format == "onnx" and prefer in ("auto", "tree"):
        result = _onnx_tree_classes(model, X, background, features, tried)
        if result is not None:
            return result
    if model.format == "onnx" and prefer in ("auto", "linear"):
        result = _onnx_linear_classes(model, X, background, features, tried)
        if result is not None:
            return result
    if prefer in ("auto", "permutation"):
        return _model_agnostic_classes(model, X, background, features, classes, tried)
    raise CheckError(f"no {prefer} explainer fits {model.kind} (multiclass); tried: {', '.join(tried) or 'nothing'}")


def _sklearn_classes(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
                     prefer: str, tried: list[str]) -> ClassShapResult | None:
    estimator = getattr(model, "estimator")
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    prep = estimator[:-1] if steps and len(steps) > 1 else None
    columns = model.input_features or features
    classes = list(model.classes or [])

    def transform(frame: pd.DataFrame) -> np.ndarray:
        if prep is None:
            return frame[columns].to_numpy(dtype=np.float64)
        out = prep.transform(frame[columns])
        return np.asarray(out.toarray() if hasattr(out, "toarray") else out, dtype=np.float64)

    names = ([str(n) for n in prep.get_feature_names_out(columns)] if prep is not None else list(columns))
    origins = origin_of(names, list(features))
    kind = type(final).__name__
    if prefer in ("auto", "tree") and any(kind.startswith(t) for t in TREE_TYPES):
        tried.append(f"shap TreeExplainer (interventional) on {kind}")
        Bt = transform(background)
        # shap reads scikit-learn's multiclass GradientBoostingClassifier as binary only: its
        # trees (one per stage and class) are handed over as a model with one output per class
        trees = _sklearn_multiclass_gbm(final, Bt) if kind == "GradientBoostingClassifier" else final
        explainer = _RankedTrees(trees, Bt)
        Xt = transform(X).astype(explainer.input_dtype).astype(np.float64)
        values = np.asarray(explainer.shap_values(Xt))
        base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
        if values.ndim != 3 or values.shape[2] != len(classes):
            tried.append(f"(TreeExplainer gave values of shape {values.shape}, not one set per class)")
            return None
        with warnings.catch_warnings():  # Xt is the transformed array on purpose, without names
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            if kind.startswith("XGB"):
                raw, units = np.asarray(final.predict(Xt, output_margin=True), dtype=np.float64), "margin (softmax logit)"
            elif kind.startswith("LGBM"):
                raw, units = np.asarray(final.predict(Xt, raw_score=True), dtype=np.float64), "margin (softmax logit)"
            elif kind.startswith(("GradientBoosting", "HistGradientBoosting")):
                raw, units = np.asarray(final.decision_function(Xt), dtype=np.float64), "margin (softmax logit)"
            else:
                raw, units = np.asarray(final.predict_proba(Xt), dtype=np.float64), "probability"
        return ClassShapResult(_group3(values, origins, len(features)), base, classes, list(features),
                               f"exact TreeSHAP (shap.TreeExplainer, interventional) on {kind}, one set per class",
                               units, raw)
    coef = getattr(final, "coef_", None)
    if prefer in ("auto", "linear") and coef is not None and np.ndim(coef) == 2 and np.shape(coef)[0] == len(classes):
        tried.append(f"exact linear SHAP on {kind}")
        Xt, Bt = transform(X), transform(background)
        W = np.asarray(coef, dtype=np.float64)
        b = np.atleast_1d(np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64))
        mean = Bt.mean(axis=0)
        values = (Xt - mean)[:, :, None] * W.T[None, :, :]  # w_cj (x_j - E[x_j]) per class c
        return ClassShapResult(_group3(values, origins, len(features)), b + mean @ W.T, classes, list(features),
                               f"exact linear SHAP on {kind}, one set per class", "margin (softmax logit)",
                               Xt @ W.T + b)
    tried.append(f"no exact multiclass explainer for scikit-learn {kind}")
    return None


def _onnx_tree_classes(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
                       tried: list[str]) -> ClassShapResult | None:
    found = _onnx_tree_values(model, X, background, features, tried)
    if found is None:
        return None
    classes = list(model.classes or [])
    if found.values.ndim != 3 or found.values.shape[2] != len(classes):
        tried.append(f"(the translated trees give values of shape {found.values.shape}, not one set per class)")
        return None
    info = found.info
    if info.class_labels is not None and [str(c) for c in info.class_labels] != [str(c) for c in classes]:
        raise CheckError(f"the ONNX tree node's classes {list(info.class_labels)} are not the model's output "
                         f"classes {classes} in the same order")
    # the node's own scores before its post-transform (onnxruntime, post_transform NONE): exact margins
    units = "margin (softmax logit)" if info.post_transform.startswith("SOFTMAX") else (
        "probability" if info.post_transform == "NONE" else f"raw score ({info.post_transform} applied after)")
    return ClassShapResult(found.values, found.base, classes, list(features),
                           f"exact TreeSHAP (interventional) on the ONNX {info.op_type} node, translated for shap, "
                           "one set per class", units, found.raw)


def _onnx_linear_classes(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
                         tried: list[str]) -> ClassShapResult | None:
    """Exact linear SHAP of each class's margin of an ONNX linear classifier (skl2onnx's
    multinomial LogisticRegression: a LinearClassifier with one coefficient row per class and a
    softmax): w_cj (z_j - E[z_j]) over the columns z the node reads, whatever preprocessing makes
    them, summed over the columns of each input."""
    from auditkit.methods.linear_models import onnx_linear_rows
    from auditkit.methods.onnx_trees import tensor_features

    model_bytes = Path(model.path or "").read_bytes()
    rows = onnx_linear_rows(model_bytes)
    classes = list(model.classes or [])
    if rows is None:
        tried.append("exact linear SHAP (the graph has no ONNX linear node)")
        return None
    what = f"exact linear SHAP on the ONNX {rows.op_type} node"
    if rows.op_type != "LinearClassifier" or rows.coef.shape[0] != len(classes):
        tried.append(f"{what} ({rows.coef.shape[0]} score rows for {len(classes)} classes)")
        return None
    Xt, sources = tensor_features(model_bytes, rows.input_name, model.feeds(X))  # type: ignore[attr-defined]
    Bt, _ = tensor_features(model_bytes, rows.input_name, model.feeds(background))  # type: ignore[attr-defined]
    origins = _column_origins(sources, features, rows.coef.shape[1])
    if origins is None:
        tried.append(f"{what} (a column it reads mixes several inputs, or its origin cannot be told)")
        return None
    tried.append(what)
    mean = Bt.mean(axis=0)
    columns = (Xt - mean)[:, :, None] * rows.coef.T[None, :, :]  # w_cj (z_j - E[z_j]) per class c
    outside = [j for j, origin in enumerate(origins) if origin < 0 and np.any(columns[:, j] != 0)]
    if outside:
        raise CheckError(f"the ONNX linear node reads a column made from '{sources[outside[0]] if sources else '?'}', "
                         "which is not a feature")
    values = _group3(columns[:, [j for j, o in enumerate(origins) if o >= 0]],
                     [o for o in origins if o >= 0], len(features))
    post = rows.post_transform
    units = ("margin (softmax logit)" if post.startswith("SOFTMAX") else
             "log-odds (one-vs-rest, before the probabilities are normalised)" if post == "LOGISTIC" else
             f"raw score ({post} applied after)" if post != "NONE" else "score")
    return ClassShapResult(values, rows.intercept + mean @ rows.coef.T, classes, list(features),
                           f"{what}, over the {Xt.shape[1]} columns its preprocessing makes, one set per class",
                           units, Xt @ rows.coef.T + rows.intercept)


def _column_origins(sources: list[str] | None, features: list[str], width: int) -> list[int] | None:
    """The feature each column of a node's input comes from (-1: none of the features): a named
    graph input per column (skl2onnx's mixed-type pipelines), or column j of one matrix input
    (``X[j]``, the j-th feature). None when the graph does not tell."""
    import re

    if sources is None or len(sources) != width:
        return None
    out = []
    for source in sources:
        if source in features:
            out.append(features.index(source))
            continue
        match = re.fullmatch(r".*\[(\d+)\]", source)
        out.append(int(match.group(1)) if match and int(match.group(1)) < len(features) else -1)
    return out


def enumerate_shapley_multi(f: Any, X: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`enumerate_shapley` for a function with k outputs per row: values (n, p, k), base (k,)."""
    from math import factorial

    n, p = X.shape
    masks = ((np.arange(2 ** p)[:, None] >> np.arange(p)[None, :]) & 1).astype(bool)
    size = masks.sum(axis=1)
    weight = np.array([factorial(k) * factorial(p - k - 1) / factorial(p) for k in range(p)])
    nb = len(background)
    base = np.asarray(f(background), dtype=np.float64).mean(axis=0)
    values = np.zeros((n, p, base.shape[0]))
    for r in range(n):
        hybrid = np.where(masks[:, None, :], X[r][None, None, :], background[None, :, :]).reshape(-1, p)
        v = np.asarray(f(hybrid), dtype=np.float64).reshape(2 ** p, nb, -1).mean(axis=1)
        for j in range(p):
            without = np.flatnonzero(~masks[:, j])
            values[r, j] = (weight[size[without]][:, None] * (v[without | (1 << j)] - v[without])).sum(axis=0)
    return values, base


def _sklearn_multiclass_gbm(final: Any, background: np.ndarray) -> dict[str, Any]:
    """scikit-learn's multiclass gradient boosting as shap's custom tree model: stage i's tree
    for class c adds learning_rate x its leaf value to output c alone; the base offset is the
    init estimator's raw prediction (the class log-priors), the same for every row."""
    k = final.n_trees_per_iteration_
    trees = []
    for stage in final.estimators_:
        for c in range(k):
            t = stage[c].tree_
            values = np.zeros((t.node_count, k))
            values[:, c] = final.learning_rate * t.value[:, 0, 0]
            trees.append({"children_left": t.children_left.copy(), "children_right": t.children_right.copy(),
                          "children_default": t.children_left.copy(), "features": t.feature.copy(),
                          "thresholds": t.threshold.copy(), "values": values,
                          "node_sample_weight": t.weighted_n_node_samples.copy()})
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        offset = np.asarray(final._raw_predict_init(background[:1].astype(np.float32)), dtype=np.float64)[0]
    return {"trees": trees, "base_offset": offset, "tree_output": "raw_value", "objective": "squared_error",
            "input_dtype": np.float32, "internal_dtype": np.float64}


def _model_agnostic_classes(model: ModelAdapter, X: pd.DataFrame, background: pd.DataFrame, features: list[str],
                            classes: list[Any], tried: list[str]) -> ClassShapResult:
    """Shapley values of each class probability through the adapter (interventional, as above)."""
    import shap

    codes = _Codes([X, background], features)

    def f(matrix: np.ndarray) -> np.ndarray:
        return np.asarray(model.predict(codes.decode(matrix)), dtype=np.float64)

    Xn, Bn = codes.encode(X), codes.encode(background)
    p = len(features)
    raw = f(Xn)
    notes = [] if not tried else ["exact TreeSHAP or linear SHAP does not apply: " + "; ".join(tried)]
    cost = (2 ** p) * len(Bn) * len(Xn)
    if p <= MAX_EXACT_FEATURES and cost <= EXACT_BUDGET:
        values, base = enumerate_shapley_multi(f, Xn, Bn)
        return ClassShapResult(values, base, classes, list(features),
                               f"exact Shapley values by enumeration (model-agnostic: {2 ** p:,} coalitions x "
                               f"{len(Bn):,} background rows per explained row), one set per class", "probability",
                               raw, notes=notes)
    masker = shap.maskers.Independent(Bn, max_samples=len(Bn))
    max_evals = max(2 * p + 1, 10 * p)
    runs = []
    for seed in (0, 1):
        explanation = shap.explainers.Permutation(f, masker, seed=seed)(Xn, max_evals=max_evals, silent=True)
        runs.append(np.asarray(explanation.values, dtype=np.float64))
        base = np.asarray(explanation.base_values, dtype=np.float64).reshape(len(Xn), -1).mean(axis=0)
    values = (runs[0] + runs[1]) / 2
    standard_error = float(np.sqrt(np.mean((runs[0] - runs[1]) ** 2) / 4))
    notes.append(f"approximate: exact enumeration would cost {2 ** p:,} coalitions per row; estimated standard error "
                 f"of a SHAP value {standard_error:.3g} probability (root mean square over values and classes, from two "
                 "independent runs); additivity holds by construction and says nothing of it")
    return ClassShapResult(values, base, classes, list(features),
                           f"shap Permutation explainer (model-agnostic, approximate: 2 runs x {max_evals:,} evaluations "
                           f"per row, {len(Bn):,} background rows), one set per class", "probability", raw,
                           notes=notes, standard_error=standard_error)
