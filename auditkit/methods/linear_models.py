"""Reading coefficients out of linear models: scikit-learn estimators and ONNX linear nodes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass
class LinearModel:
    names: list[str]  # one per coefficient (the model's own input space)
    coef: np.ndarray  # (k,) for the audited output (the positive class's log-odds, or the value)
    intercept: float
    logistic: bool  # the output is log-odds
    space: str  # "raw inputs" or "scaled inputs" (what a coefficient multiplies)
    source: str
    # for a model whose coefficients multiply columns made from several inputs: the input each
    # column comes from (None: one column per input, in ``names`` order)
    origins: list[str] | None = field(default=None)
    column_stds: list[float] | None = field(default=None)  # of those columns on the audit data, when known


def from_sklearn(estimator: Any, feature_names: list[str], positive_index: int) -> LinearModel | None:
    """From a fitted estimator or a Pipeline whose last step is linear (None when it is not)."""
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    coef = getattr(final, "coef_", None)
    if coef is None:
        return None
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(getattr(final, "intercept_", 0.0), dtype=np.float64))
    classes = getattr(final, "classes_", None)
    logistic = classes is not None
    row = 0 if coef.shape[0] == 1 else positive_index
    sign = 1.0
    if logistic and coef.shape[0] == 1 and positive_index == 0:
        sign = -1.0  # a binary model's single row is the log-odds of classes_[1]
    names = list(feature_names)
    space = "raw inputs"
    if steps and len(steps) > 1:
        prep = estimator[:-1]
        try:
            names = [str(n) for n in prep.get_feature_names_out(feature_names)]
        except Exception:  # preprocessing without names: positions only
            names = [f"x{i}" for i in range(coef.shape[1])]
        kinds = {type(step).__name__ for _, step in steps[:-1]}
        space = "scaled inputs" if kinds & {"StandardScaler", "MinMaxScaler", "RobustScaler"} else "transformed inputs"
    return LinearModel(names=names, coef=sign * coef[row], intercept=float(sign * intercept[min(row, len(intercept) - 1)]),
                       logistic=logistic, space=space, source=f"scikit-learn {type(final).__name__}")


def from_onnx(model_bytes: bytes, feature_names: list[str], positive_index: int) -> LinearModel | None:
    """From an ONNX LinearClassifier / LinearRegressor, folding a Scaler in front of it into
    raw-unit coefficients (an Imputer does not change them)."""
    import onnx

    model = onnx.load_from_string(model_bytes)
    nodes = {n.op_type: n for n in model.graph.node}
    node = nodes.get("LinearClassifier") or nodes.get("LinearRegressor")
    if node is None:
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    coefficients = np.asarray(attrs.get("coefficients", []), dtype=np.float64)
    intercepts = np.asarray(attrs.get("intercepts", [0.0]), dtype=np.float64)
    k = len(feature_names)
    if k == 0 or coefficients.size % k:
        return None
    rows = coefficients.reshape(-1, k)
    logistic = node.op_type == "LinearClassifier"
    post = attrs.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else str(post)
    if rows.shape[0] == 1:
        row, sign = rows[0], (-1.0 if (logistic and positive_index == 0) else 1.0)
        intercept = intercepts[0]
    else:
        row, sign = rows[positive_index], 1.0
        intercept = intercepts[positive_index]
        if logistic and rows.shape[0] == 2 and post == "LOGISTIC":
            # two rows with a logistic link: skl2onnx writes -w, w; the log-odds are the positive row
            row = rows[positive_index]
    coef, icpt = sign * row, sign * float(intercept)
    space = "raw inputs"
    scaler = nodes.get("Scaler")
    # folded only when it feeds the linear node directly (behind per-column preprocessing the
    # coefficients multiply the scaled columns, and say so)
    scaler = scaler if scaler is not None and scaler.output[0] == node.input[0] else None
    if scaler is not None:
        s_attrs = {a.name: onnx.helper.get_attribute_value(a) for a in scaler.attribute}
        offset = np.broadcast_to(np.asarray(s_attrs.get("offset", [0.0]), dtype=np.float64), (k,))
        scale = np.broadcast_to(np.asarray(s_attrs.get("scale", [1.0]), dtype=np.float64), (k,))
        # w . ((x - offset) * scale) + b  ==  (w * scale) . x + (b - sum(w * scale * offset))
        icpt = icpt - float(np.sum(coef * scale * offset))
        coef = coef * scale
    return LinearModel(names=list(feature_names), coef=coef, intercept=icpt, logistic=logistic and post == "LOGISTIC",
                       space=space, source=f"ONNX {node.op_type}" + (" after a Scaler (folded)" if scaler is not None else ""))


def onnx_linear_node(model_bytes: bytes) -> Any:
    import onnx

    model = onnx.load_from_string(model_bytes)
    return next((n for n in model.graph.node if n.op_type in ("LinearClassifier", "LinearRegressor")), None)


@dataclass
class LinearRows:
    """An ONNX linear node's scores, one row per output: ``margins = columns @ coef.T + intercept``
    over the columns the node reads, before its ``post_transform``."""

    coef: np.ndarray  # (outputs, columns)
    intercept: np.ndarray  # (outputs,)
    post_transform: str  # NONE, SOFTMAX, LOGISTIC, ...
    op_type: str  # LinearClassifier or LinearRegressor
    input_name: str  # the tensor the node reads


def onnx_linear_rows(model_bytes: bytes) -> LinearRows | None:
    """The coefficient rows of a model's ONNX linear node (None without one, or when its
    coefficients do not divide into rows of one width per output)."""
    import onnx

    node = onnx_linear_node(model_bytes)
    if node is None:
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    coefficients = np.asarray(attrs.get("coefficients", []), dtype=np.float64)
    intercepts = np.atleast_1d(np.asarray(attrs.get("intercepts", [0.0]), dtype=np.float64))
    if node.op_type == "LinearRegressor":
        outputs = int(attrs.get("targets", 1))
    else:
        labels = attrs.get("classlabels_strings") or attrs.get("classlabels_ints") or []
        outputs = len(intercepts) if len(intercepts) > 1 else 1
        outputs = outputs if outputs > 1 or len(labels) <= 2 else len(labels)
    if outputs < 1 or coefficients.size == 0 or coefficients.size % outputs or len(intercepts) not in (1, outputs):
        return None
    post = attrs.get("post_transform", b"NONE")
    post = post.decode() if isinstance(post, bytes) else str(post)
    return LinearRows(coef=coefficients.reshape(outputs, -1), intercept=np.broadcast_to(intercepts, (outputs,)).copy(),
                      post_transform=post, op_type=node.op_type, input_name=str(node.input[0]))


def from_onnx_columns(model_bytes: bytes, feeds: Mapping[str, Any],
                      positive_index: int) -> tuple[LinearModel, np.ndarray] | None:
    """From an ONNX linear node fed by preprocessing over one named input per column (skl2onnx's
    mixed-type pipelines): the coefficients over the columns the node reads, each named after the
    input it comes from (``purpose_car`` for a one-hot column, as scikit-learn names it), and
    those columns computed for ``feeds``. None when there is no linear node, or when a column
    mixes several inputs."""
    import onnx

    from auditkit.methods.onnx_trees import tensor_features

    node = onnx_linear_node(model_bytes)
    if node is None:
        return None
    matrix, sources = tensor_features(model_bytes, node.input[0], feeds)
    if sources is None:
        return None
    names = _column_names(onnx.load_from_string(model_bytes), sources)
    linear = from_onnx(model_bytes, names, positive_index)
    if linear is None:
        return None
    linear.space = "transformed inputs"
    linear.origins = list(sources)
    return linear, matrix


def _column_names(model: Any, sources: list[str]) -> list[str]:
    """A name per column: the input's own name when it makes one column, ``input_category``
    for a OneHotEncoder's columns (its categories in order), else ``input[k]``."""
    import onnx

    categories: dict[str, list[str]] = {}
    for node in model.graph.node:
        if node.op_type == "OneHotEncoder":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            cats = attrs.get("cats_strings") or attrs.get("cats_int64s") or []
            categories[node.input[0]] = [c.decode() if isinstance(c, bytes) else str(c) for c in cats]
    counts = {s: sources.count(s) for s in sources}
    seen: dict[str, int] = {}
    names = []
    for source in sources:
        k = seen.get(source, 0)
        seen[source] = k + 1
        if counts[source] == 1:
            names.append(source)
        elif len(categories.get(source, [])) == counts[source]:
            names.append(f"{source}_{categories[source][k]}")
        else:
            names.append(f"{source}[{k}]")
    return names
