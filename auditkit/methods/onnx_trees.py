"""Exact interventional TreeSHAP for ONNX tree ensembles.

An ONNX file holds its trees in one ``ai.onnx.ml`` node: ``TreeEnsembleClassifier``,
``TreeEnsembleRegressor`` (opsets 1-3) or ``TreeEnsemble`` (opset 5). This module
translates that node into the dict model that ``shap.TreeExplainer`` accepts::

    {"trees": [{"children_left", "children_right", "children_default", "features",
                "thresholds", "values", "node_sample_weight"}, ...],
     "base_offset": ..., "tree_output": ..., "input_dtype": ..., "internal_dtype": ...}

and explains the trees' raw score with ``feature_perturbation="interventional"``. ONNX
stores no node sample counts, and the interventional algorithm needs none: it integrates
over a background data set. The values are exact Shapley values of the function the trees
compute, so any two tree ensembles that compute the same function get the same values.

What "raw score" means, per node layout (``r`` is what the SHAP values add up to):

* regressor / ``TreeEnsemble``: the prediction before ``post_transform``;
* binary classifier: the positive class's score before ``post_transform``. For skl2onnx's
  ``GradientBoostingClassifier`` (one weight column, ``LOGISTIC``) that is the log-odds,
  ``logit(P(class 1))``; for a ``RandomForestClassifier`` (``NONE``) it is ``P(class 1)``
  itself; for two weight columns under ``SOFTMAX`` it is the margin ``s1 - s0``, again
  ``logit(P(class 1))``;
* multiclass: one raw score per class (SHAP values get a trailing class axis).

Thresholds are compared exactly as onnxruntime compares them: the features are cast to the
node's input type (float32 for skl2onnx) before SHAP sees them, and every split is
rewritten as ``x <= t'`` with ``t'`` the largest float32 that keeps the ONNX comparison
(``x < t`` becomes ``x <= nextafter(t, -inf)``; ``x > t`` swaps the children). Float32 is
what shap's interventional code stores thresholds and leaf values in (C ``float``), so
thresholds survive it exactly; for double-typed tree inputs they cannot (a limitation of
shap), and SHAP values carry float32 rounding (~1e-7 relative) whatever the model.

Not translated (``NotImplementedError`` naming the feature): ``BRANCH_MEMBER`` splits of
``TreeEnsemble``, ``aggregate_function`` MIN / MAX, binary classifiers with two base
values, more than one tree-ensemble node, and ``BRANCH_EQ`` / ``BRANCH_NEQ`` splits whose
expansion into ``<=`` splits would exceed ``MAX_EXPANSION`` times the model. A chain of
``BRANCH_EQ`` splits on one feature sharing their true child (onnxmltools' LightGBM
categorical split, ``x in {c1, ..., cm}``) becomes one balanced tree over the members'
intervals (about 2m + 1 copies of the children, not 2^m).
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Union

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

__all__ = [
    "OnnxTreeExplainer",
    "TreeNodeInfo",
    "find_tree_ensemble",
    "onnxruntime_raw_scores",
    "predict_raw",
    "tensor_features",
    "transformed_features",
    "translate",
]

ML_DOMAIN: Final = "ai.onnx.ml"
TREE_OPS: Final = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble")

# nodes_modes of TreeEnsemble (opset 5) are integers; the older ops spell them out.
_MODE_NAMES: Final = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
                      "BRANCH_MEMBER", "LEAF")
_LEQ, _LT, _GTE, _GT, _EQ, _NEQ, _MEMBER, _LEAF = range(8)
_POST_TRANSFORMS: Final = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")  # opset-5 integer order
_AGGREGATES: Final = ("AVERAGE", "SUM", "MIN", "MAX")  # opset-5 integer order

# A BRANCH_EQ / BRANCH_NEQ node becomes two `<=` splits, and the subtree on its "other"
# side is copied once. Chains of equality splits (one per category) double at every
# link, so the translation refuses to grow a model beyond this factor.
MAX_EXPANSION: Final = 16

PostTransform = Literal["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"]
Feeds = Mapping[str, Any]
FloatArray = npt.NDArray[np.float64]


# --------------------------------------------------------------------------- locating
@dataclass(frozen=True)
class TreeNodeInfo:
    """The tree-ensemble node of an ONNX graph and what its attributes say.

    Attributes
    ----------
    node : onnx.NodeProto
        The node itself.
    op_type : str
        ``TreeEnsembleClassifier``, ``TreeEnsembleRegressor`` or ``TreeEnsemble``.
    ml_opset : int
        The model's ``ai.onnx.ml`` opset version.
    input_name : str
        The tensor the trees read: the (transformed) feature matrix.
    input_elem_type : int or None
        ``onnx.TensorProto`` element type of that tensor when the graph declares it.
    score_output : str
        The node's score / probability output (a classifier's second output).
    attributes : dict
        Every attribute, decoded: strings as ``str``, tensors as numpy arrays.
    post_transform : str
        ``NONE``, ``LOGISTIC``, ``SOFTMAX``, ``SOFTMAX_ZERO`` or ``PROBIT``.
    aggregate_function : str
        ``SUM`` (classifiers always), ``AVERAGE``, ``MIN`` or ``MAX``.
    class_labels : tuple or None
        A classifier's labels (int or str), ``None`` for regressors.
    base_values : tuple of float
        Added to the aggregated scores (empty when absent).
    n_targets : int
        Number of score columns the node produces (classes or targets).
    """

    node: onnx.NodeProto
    op_type: str
    ml_opset: int
    input_name: str
    input_elem_type: int | None
    score_output: str
    attributes: Mapping[str, Any]
    post_transform: PostTransform
    aggregate_function: str
    class_labels: tuple[int | str, ...] | None
    base_values: tuple[float, ...]
    n_targets: int

    @property
    def is_classifier(self) -> bool:
        return self.op_type == "TreeEnsembleClassifier"


def _attribute_value(attribute: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def find_tree_ensemble(model: onnx.ModelProto) -> TreeNodeInfo | None:
    """Locate the single tree-ensemble node of a model's main graph.

    Parameters
    ----------
    model : onnx.ModelProto

    Returns
    -------
    TreeNodeInfo or None
        ``None`` when the graph has no tree-ensemble node.

    Raises
    ------
    NotImplementedError
        When the graph holds more than one tree-ensemble node (stacked or voting models).
    """
    nodes = [n for n in model.graph.node if n.domain == ML_DOMAIN and n.op_type in TREE_OPS]
    if not nodes:
        return None
    if len(nodes) > 1:
        names = ", ".join(f"{n.op_type} {n.name!r}" for n in nodes)
        raise NotImplementedError(f"{len(nodes)} tree-ensemble nodes found ({names}); "
                                  "only a model with a single tree ensemble can be translated")
    node = nodes[0]
    attrs = {a.name: _attribute_value(a) for a in node.attribute}
    ml_opset = next((o.version for o in model.opset_import if o.domain == ML_DOMAIN), 1)
    declared = {v.name: v for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]}
    elem_type = None
    if node.input[0] in declared and declared[node.input[0]].type.HasField("tensor_type"):
        elem_type = declared[node.input[0]].type.tensor_type.elem_type or None

    if node.op_type == "TreeEnsemble":
        post = _POST_TRANSFORMS[int(attrs.get("post_transform", 0))]
        aggregate = _AGGREGATES[int(attrs.get("aggregate_function", 1))]
        labels = None
        base: tuple[float, ...] = ()
        n_targets = int(attrs["n_targets"])
    else:
        post = str(attrs.get("post_transform", "NONE"))
        aggregate = "SUM" if node.op_type == "TreeEnsembleClassifier" else str(attrs.get("aggregate_function", "SUM"))
        raw_base = attrs.get("base_values_as_tensor", attrs.get("base_values", ()))
        base = tuple(float(b) for b in np.asarray(raw_base, dtype=np.float64).ravel())
        if node.op_type == "TreeEnsembleClassifier":
            raw_labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings") or []
            labels = tuple(raw_labels)
            n_targets = len(labels)
        else:
            labels = None
            n_targets = int(attrs.get("n_targets", 1))
    if post not in _POST_TRANSFORMS:
        raise NotImplementedError(f"post_transform {post!r} of {node.op_type} is not supported "
                                  f"(known: {', '.join(_POST_TRANSFORMS)})")
    score_output = node.output[1] if node.op_type == "TreeEnsembleClassifier" else node.output[0]
    return TreeNodeInfo(node=node, op_type=node.op_type, ml_opset=ml_opset, input_name=node.input[0],
                        input_elem_type=elem_type, score_output=score_output, attributes=attrs,
                        post_transform=post, aggregate_function=aggregate,  # type: ignore[arg-type]
                        class_labels=labels, base_values=base, n_targets=n_targets)


# --------------------------------------------------------------------------- parsing
@dataclass
class _Forest:
    """All nodes of all trees, leaves included, indexed 0..n-1 across the ensemble."""

    is_leaf: npt.NDArray[np.bool_]
    feature: npt.NDArray[np.int64]
    mode: npt.NDArray[np.int64]
    threshold: FloatArray
    true_child: npt.NDArray[np.int64]
    false_child: npt.NDArray[np.int64]
    missing_true: npt.NDArray[np.bool_]
    weights: FloatArray  # (n nodes, n weight columns): leaf votes, zero elsewhere
    roots: list[int]


def _floats(attrs: Mapping[str, Any], name: str) -> FloatArray:
    """A float attribute, preferring its double-precision ``*_as_tensor`` twin."""
    value = attrs.get(f"{name}_as_tensor")
    if value is None:
        value = attrs.get(name, [])
    return np.asarray(value, dtype=np.float64).ravel()


def _legacy_forest(info: TreeNodeInfo) -> _Forest:
    attrs = info.attributes
    tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    n = len(node_ids)
    modes_text = list(attrs["nodes_modes"])
    unknown = sorted({m for m in modes_text if m not in _MODE_NAMES or m == "BRANCH_MEMBER"})
    if unknown:
        raise NotImplementedError(f"{info.op_type} nodes_modes {unknown} cannot be translated "
                                  f"(supported: {', '.join(m for m in _MODE_NAMES if m != 'BRANCH_MEMBER')})")
    mode = np.array([_MODE_NAMES.index(m) for m in modes_text], dtype=np.int64)
    index = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(tree_ids, node_ids))}
    if len(index) != n:
        raise ValueError(f"{info.op_type}: (nodes_treeids, nodes_nodeids) pairs are not unique")
    is_leaf = mode == _LEAF

    def child(name: str) -> npt.NDArray[np.int64]:
        ids = np.asarray(attrs[name], dtype=np.int64)
        out = np.full(n, -1, dtype=np.int64)
        for k in np.flatnonzero(~is_leaf):
            key = (int(tree_ids[k]), int(ids[k]))
            if key not in index:
                raise ValueError(f"{info.op_type}: {name}[{k}] = {ids[k]} is not a node of tree {tree_ids[k]}")
            out[k] = index[key]
        return out

    true_child, false_child = child("nodes_truenodeids"), child("nodes_falsenodeids")
    missing = np.asarray(attrs.get("nodes_missing_value_tracks_true") or np.zeros(n), dtype=bool)

    prefix = "class" if info.is_classifier else "target"
    w_tree = np.asarray(attrs.get(f"{prefix}_treeids", []), dtype=np.int64)
    w_node = np.asarray(attrs.get(f"{prefix}_nodeids", []), dtype=np.int64)
    w_col = np.asarray(attrs.get(f"{prefix}_ids", []), dtype=np.int64)
    w_val = _floats(attrs, f"{prefix}_weights")
    n_cols = max(info.n_targets, int(w_col.max()) + 1 if len(w_col) else 1)
    weights = np.zeros((n, n_cols))
    for t, i, c, w in zip(w_tree, w_node, w_col, w_val):
        key = (int(t), int(i))
        if key not in index:
            raise ValueError(f"{info.op_type}: a {prefix} weight refers to missing node {i} of tree {t}")
        weights[index[key], c] += w

    # A root is the one node of its tree that no branch points to (ids need not start at 0).
    referenced = np.zeros(n, dtype=bool)
    referenced[true_child[~is_leaf]] = True
    referenced[false_child[~is_leaf]] = True
    roots: list[int] = []
    for tree in np.unique(tree_ids):
        candidates = np.flatnonzero((tree_ids == tree) & ~referenced)
        if len(candidates) != 1:
            raise ValueError(f"{info.op_type}: tree {tree} has {len(candidates)} root candidates, expected 1")
        roots.append(int(candidates[0]))
    return _Forest(is_leaf=is_leaf, feature=np.asarray(attrs["nodes_featureids"], dtype=np.int64), mode=mode,
                   threshold=_floats(attrs, "nodes_values"), true_child=true_child, false_child=false_child,
                   missing_true=missing, weights=weights, roots=roots)


def _opset5_forest(info: TreeNodeInfo) -> _Forest:
    attrs = info.attributes
    mode_codes = np.asarray(attrs["nodes_modes"], dtype=np.int64).ravel()
    n_nodes = len(mode_codes)
    bad = sorted({int(m) for m in mode_codes if m < 0 or m >= _MEMBER})
    if bad:
        names = [_MODE_NAMES[m] if 0 <= m < len(_MODE_NAMES) else str(m) for m in bad]
        raise NotImplementedError(f"TreeEnsemble nodes_modes {names} cannot be translated "
                                  f"(supported: {', '.join(_MODE_NAMES[:_MEMBER])})")
    leaf_targets = np.asarray(attrs["leaf_targetids"], dtype=np.int64)
    leaf_weights = np.asarray(attrs["leaf_weights"], dtype=np.float64).ravel()
    n_leaves = len(leaf_weights)
    n = n_nodes + n_leaves

    def child(ids_name: str, leafs_name: str) -> npt.NDArray[np.int64]:
        ids = np.asarray(attrs[ids_name], dtype=np.int64)
        to_leaf = np.asarray(attrs.get(leafs_name, np.zeros(n_nodes)), dtype=bool)
        return np.concatenate([np.where(to_leaf, ids + n_nodes, ids), np.full(n_leaves, -1)])

    weights = np.zeros((n, info.n_targets))
    weights[n_nodes + np.arange(n_leaves), leaf_targets] = leaf_weights
    missing = np.asarray(attrs.get("nodes_missing_value_tracks_true") or np.zeros(n_nodes), dtype=bool)
    return _Forest(
        is_leaf=np.concatenate([np.zeros(n_nodes, dtype=bool), np.ones(n_leaves, dtype=bool)]),
        feature=np.concatenate([np.asarray(attrs["nodes_featureids"], dtype=np.int64), np.full(n_leaves, -1)]),
        mode=np.concatenate([mode_codes, np.full(n_leaves, _LEAF)]),
        threshold=np.concatenate([np.asarray(attrs["nodes_splits"], dtype=np.float64).ravel(), np.zeros(n_leaves)]),
        true_child=child("nodes_truenodeids", "nodes_trueleafs"),
        false_child=child("nodes_falsenodeids", "nodes_falseleafs"),
        missing_true=np.concatenate([missing, np.zeros(n_leaves, dtype=bool)]),
        weights=weights, roots=[int(r) for r in attrs["tree_roots"]])


# --------------------------------------------------------------------------- raw score layout
@dataclass(frozen=True)
class _Layout:
    """How the node's weight columns make the raw score(s) that SHAP explains."""

    combine: FloatArray  # (n weight columns, n outputs): raw leaf value = weights @ combine
    base: FloatArray  # (n outputs,)
    tree_output: str
    # onnxruntime's post_transform=NONE scores -> raw: raw = scores @ from_scores
    from_scores: FloatArray


def _layout(info: TreeNodeInfo, n_cols: int, used: set[int], nonnegative: bool) -> _Layout:
    post = info.post_transform
    if not info.is_classifier:
        k = info.n_targets
        base = np.zeros(k)
        if len(info.base_values) == k:
            base = np.asarray(info.base_values, dtype=np.float64)
        return _Layout(np.eye(n_cols, k), base, "raw_value", np.eye(k))
    k = info.n_targets
    if k < 2:
        raise NotImplementedError(f"TreeEnsembleClassifier with {k} class label(s) cannot be translated")
    if k > 2:
        base = np.zeros(k)
        base[: len(info.base_values)] = info.base_values[:k]
        tree_output = "log_odds" if post == "LOGISTIC" else "raw_value"
        return _Layout(np.eye(n_cols, k), base, tree_output, np.eye(k))
    # Binary: onnxruntime follows the layout below (checked against it in the tests).
    if len(info.base_values) == 2:
        raise NotImplementedError(
            "binary TreeEnsembleClassifier with two base_values: the ONNX specification leaves its output "
            "undefined and onnxruntime ignores base_values[0]; re-export the model with one base value")
    b = info.base_values[0] if info.base_values else 0.0
    combine = np.zeros((n_cols, 1))
    from_scores = np.zeros((2, 1))
    from_scores[1, 0] = 1.0  # onnxruntime's NONE output puts the positive score in column 1
    if used <= {0}:
        # one weight column = the positive class's score (skl2onnx's GBM and random forest)
        combine[0, 0] = 1.0
        base = np.array([b])
        logit = post == "LOGISTIC"
    elif used == {1}:
        combine[1, 0] = 1.0
        base = np.array([0.0])  # onnxruntime adds a single base value to class 0, then drops class 0
        logit = post in ("LOGISTIC", "SOFTMAX")
    else:
        combine[1, 0] = 1.0
        base = np.array([0.0])
        logit = post == "LOGISTIC"
        if post == "SOFTMAX":
            # softmax([s0 + b, s1])[1] = sigmoid(s1 - s0 - b): explain the margin, a log-odds
            combine[0, 0] = -1.0
            base = np.array([-b])
            from_scores[0, 0] = -1.0
            logit = True
    tree_output = "log_odds" if logit else ("probability" if post == "NONE" and nonnegative else "raw_value")
    return _Layout(combine, base, tree_output, from_scores)


def _parse(info: TreeNodeInfo) -> tuple[_Forest, _Layout]:
    forest = _opset5_forest(info) if info.op_type == "TreeEnsemble" else _legacy_forest(info)
    if info.aggregate_function not in ("SUM", "AVERAGE"):
        raise NotImplementedError(f"aggregate_function {info.aggregate_function} of {info.op_type}: TreeSHAP "
                                  "explains sums of trees; only SUM and AVERAGE can be translated")
    # the weight columns a classifier's leaves vote for (zero votes count: they fix the layout)
    used = {int(c) for c in info.attributes.get("class_ids", [])} if info.is_classifier else set()
    nonnegative = bool(np.all(forest.weights >= 0))
    return forest, _layout(info, forest.weights.shape[1], used, nonnegative)


# --------------------------------------------------------------------------- translation
def _input_dtype(info: TreeNodeInfo) -> type[np.floating[Any]]:
    # onnxruntime compares float inputs in float32 (against float thresholds) and double
    # inputs in double; integer inputs are converted to float by the comparison.
    return np.float64 if info.input_elem_type == onnx.TensorProto.DOUBLE else np.float32


class _TreeBuilder:
    """Emits one shap tree (preorder) from one ONNX tree, rewriting every split as ``x <= t``."""

    def __init__(self, forest: _Forest, leaf_values: FloatArray, budget: int, input_dtype: type[np.floating[Any]]):
        self.forest = forest
        self.dtype = input_dtype
        self.leaf_values = leaf_values
        self.budget = budget
        self.left: list[int] = []
        self.right: list[int] = []
        self.default: list[int] = []
        self.feature: list[int] = []
        self.threshold: list[float] = []
        self.value_of: list[int] = []  # ONNX leaf index per shap node (-1 for splits)

    def at_or_below(self, t: float) -> float:
        """The largest input-dtype value <= t (for float32 inputs: a float32, which shap's
        interventional code, storing thresholds as C floats, keeps exactly)."""
        if self.dtype is np.float64:
            return t
        f = np.float32(t)
        return float(np.nextafter(f, np.float32(-np.inf)) if f > t else f)

    def below(self, t: float) -> float:
        """The largest input-dtype value < t."""
        if self.dtype is np.float64:
            return float(np.nextafter(t, -np.inf))
        f = np.float32(t)
        return float(np.nextafter(f, np.float32(-np.inf)) if f >= t else f)

    def _new(self) -> int:
        if len(self.left) >= self.budget:
            raise NotImplementedError(
                f"BRANCH_EQ/BRANCH_NEQ splits expand this model beyond {MAX_EXPANSION}x its size "
                "(chains of equality splits, one per category, double at every link); use an export "
                "with threshold splits")
        self.left.append(-1)
        self.right.append(-1)
        self.default.append(-1)
        self.feature.append(-1)
        self.threshold.append(0.0)
        self.value_of.append(-1)
        return len(self.left) - 1

    def _split(self, feature: int, threshold: float, below: int, above: int, missing_below: bool) -> int:
        """A shap split node: ``x <= threshold`` goes to ONNX node ``below``, else to ``above``;
        NaN goes to ``below`` if ``missing_below``."""
        me = self._new()
        self.feature[me] = feature
        self.threshold[me] = threshold
        self.left[me] = self.emit(below)
        self.right[me] = self.emit(above)
        self.default[me] = self.left[me] if missing_below else self.right[me]
        return me

    def emit(self, k: int) -> int:
        """Emit ONNX node ``k`` and its subtree; return its shap index."""
        f = self.forest
        if f.is_leaf[k]:
            me = self._new()
            self.value_of[me] = k
            return me
        mode, feat, t = int(f.mode[k]), int(f.feature[k]), float(f.threshold[k])
        yes, no, nan_yes = int(f.true_child[k]), int(f.false_child[k]), bool(f.missing_true[k])
        at_t, below_t = self.at_or_below(t), self.below(t)  # x <= t  <=>  x <= at_t;  x < t  <=>  x <= below_t
        if mode == _LEQ:
            return self._split(feat, at_t, yes, no, nan_yes)
        if mode == _LT:
            return self._split(feat, below_t, yes, no, nan_yes)
        if mode == _GT:  # x > t  <=>  not x <= t
            return self._split(feat, at_t, no, yes, not nan_yes)
        if mode == _GTE:  # x >= t  <=>  not x < t
            return self._split(feat, below_t, no, yes, not nan_yes)
        if mode == _EQ:
            members, outside, nan_in = self._chain(k)
            if len(members) > 1:
                return self._membership(feat, members, yes, outside, nan_in)
        # x == t  <=>  not x <= below_t  and  x <= t; the "not equal" side is needed twice.
        # NaN == t is false (true branch only when tracked); NaN != t is true.
        equal, unequal = (yes, no) if mode == _EQ else (no, yes)
        nan_equal = nan_yes if mode == _EQ else False
        me = self._new()
        self.feature[me] = feat
        self.threshold[me] = below_t
        self.left[me] = self.emit(unequal)
        inner = self._new()
        self.feature[inner] = feat
        self.threshold[inner] = at_t
        self.left[inner] = self.emit(equal)
        self.right[inner] = self.emit(unequal)
        self.default[inner] = self.left[inner] if nan_equal else self.right[inner]
        self.right[me] = inner
        self.default[me] = inner if nan_equal else self.left[me]
        return me

    # ---- #18 (w-shapzoo): a chain of BRANCH_EQ splits is one set-membership split ----
    def _chain(self, k: int) -> tuple[list[float], int, bool]:
        """A chain of BRANCH_EQ splits on one feature sharing their true child (how onnxmltools
        writes LightGBM's categorical split "x in {c1, c2, ...}"): its values, the node reached
        when x is none of them, and whether NaN takes the true child (when any link tracks it)."""
        f = self.forest
        feat, yes = int(f.feature[k]), int(f.true_child[k])
        members, nan_in, node = [], False, k
        while (not f.is_leaf[node] and int(f.mode[node]) == _EQ and int(f.feature[node]) == feat
               and int(f.true_child[node]) == yes):
            members.append(float(f.threshold[node]))
            nan_in = nan_in or bool(f.missing_true[node])
            node = int(f.false_child[node])
        return members, node, nan_in

    def _membership(self, feat: int, members: list[float], inside: int, outside: int, nan_in: bool) -> int:
        """``x in members`` as a balanced tree of ``x <= t`` splits over the intervals the members
        make: each member c is the interval (below(c), at_or_below(c)], and the children are copied
        once per interval (about 2m + 1 copies for m members, where a chain of single equality
        splits doubles at every link: 2^m)."""
        cuts: list[float] = []
        labels: list[bool] = []  # True: the interval ending at the cut holds members
        for value in sorted(set(members)):
            low, high = self.below(value), self.at_or_below(value)
            if high <= low:
                continue  # no value of the input dtype equals it: never inside
            if cuts and low <= cuts[-1]:
                cuts[-1] = high  # adjacent members: one interval
            else:
                cuts.extend([low, high])
                labels.extend([False, True])
        labels.append(False)  # above the last member
        if not cuts:
            return self.emit(outside)
        nan_segment = labels.index(nan_in)

        def build(i: int, j: int) -> int:
            if i == j:
                return self.emit(inside if labels[i] else outside)
            mid = (i + j) // 2
            me = self._new()
            self.feature[me] = feat
            self.threshold[me] = cuts[mid]
            self.left[me] = build(i, mid)
            self.right[me] = build(mid + 1, j)
            self.default[me] = self.left[me] if nan_segment <= mid else self.right[me]
            return me

        return build(0, len(labels) - 1)
    # ---- end #18 ----

    def tree(self, n_outputs: int) -> dict[str, Any]:
        value_of = np.asarray(self.value_of, dtype=np.int64)
        values = np.zeros((len(value_of), n_outputs))
        is_leaf = value_of >= 0
        values[is_leaf] = self.leaf_values[value_of[is_leaf]]
        return {
            "children_left": np.asarray(self.left, dtype=np.int32),
            "children_right": np.asarray(self.right, dtype=np.int32),
            "children_default": np.asarray(self.default, dtype=np.int32),
            "features": np.asarray(self.feature, dtype=np.int32),
            "thresholds": np.asarray(self.threshold, dtype=np.float64),
            "values": values,
            # interventional SHAP re-derives weights from the background; ONNX has no counts
            "node_sample_weight": np.ones(len(value_of), dtype=np.float64),
        }


def translate(model: onnx.ModelProto) -> dict[str, Any]:
    """Translate a model's tree-ensemble node into shap's custom tree dict.

    Parameters
    ----------
    model : onnx.ModelProto
        A model with exactly one ``TreeEnsembleClassifier``, ``TreeEnsembleRegressor`` or
        ``TreeEnsemble`` node.

    Returns
    -------
    dict
        ``{"trees": [...], "base_offset", "tree_output", "objective", "input_dtype",
        "internal_dtype"}``, ready for ``shap.TreeExplainer(dict, data=...,
        feature_perturbation="interventional", model_output="raw")``. Its raw output is the
        node's raw score (see the module docstring); feed it features cast to
        ``dict["input_dtype"]``.

    Raises
    ------
    NotImplementedError
        A split mode (``BRANCH_MEMBER``, unknown strings), ``aggregate_function`` (``MIN``,
        ``MAX``) or class layout that has no exact additive translation; the message names it.
    ValueError
        When the graph has no tree-ensemble node or the node is malformed.
    """
    info = find_tree_ensemble(model)
    if info is None:
        raise ValueError("the model has no TreeEnsembleClassifier / TreeEnsembleRegressor / TreeEnsemble node")
    forest, layout = _parse(info)
    leaf_values = forest.weights @ layout.combine
    if info.aggregate_function == "AVERAGE":
        leaf_values = leaf_values / len(forest.roots)
    n_outputs = layout.combine.shape[1]
    budget = MAX_EXPANSION * max(len(forest.is_leaf), 1)
    trees = []
    used_nodes = 0
    for root in forest.roots:
        builder = _TreeBuilder(forest, leaf_values, budget - used_nodes, _input_dtype(info))
        builder.emit(root)
        used_nodes += len(builder.left)
        trees.append(builder.tree(n_outputs))
    base: float | FloatArray = float(layout.base[0]) if n_outputs == 1 else layout.base.copy()
    return {
        "trees": trees,
        "base_offset": base,
        "tree_output": layout.tree_output,
        "objective": "binary_crossentropy" if layout.tree_output == "log_odds" and n_outputs == 1 else None,
        "input_dtype": _input_dtype(info),
        "internal_dtype": np.float64,
    }


def predict_raw(translated: Mapping[str, Any], X: npt.ArrayLike) -> FloatArray:
    """The raw score of a translated model, by walking its trees (independent of shap).

    Returns shape ``(n,)`` for one output, ``(n, n_outputs)`` otherwise.
    """
    X = np.asarray(X).astype(translated.get("input_dtype", np.float64)).astype(np.float64)
    trees = translated["trees"]
    n_outputs = trees[0]["values"].shape[1]
    out = np.zeros((X.shape[0], n_outputs)) + np.asarray(translated.get("base_offset", 0.0), dtype=np.float64)
    rows = np.arange(X.shape[0])
    for tree in trees:
        node = np.zeros(X.shape[0], dtype=np.int64)
        left, right, default = tree["children_left"], tree["children_right"], tree["children_default"]
        while True:
            active = left[node] >= 0
            if not active.any():
                break
            at = node[active]
            x = X[rows[active], tree["features"][at]]
            step = np.where(x <= tree["thresholds"][at], left[at], right[at])
            node[active] = np.where(np.isnan(x), default[at], step)
        out += tree["values"][node]
    return out[:, 0] if n_outputs == 1 else out


# --------------------------------------------------------------------------- onnxruntime
def _session(model: onnx.ModelProto | bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def onnxruntime_raw_scores(model: onnx.ModelProto, X: npt.ArrayLike) -> FloatArray:
    """The tree node's raw score as onnxruntime computes it, for the tree-input matrix ``X``.

    Runs a copy of the node alone with ``post_transform`` set to ``NONE`` and reads the raw
    score(s) that :func:`translate` explains from its output, so the two can be compared.
    Returns shape ``(n,)`` for one output, ``(n, n_outputs)`` otherwise.
    """
    info = find_tree_ensemble(model)
    if info is None:
        raise ValueError("the model has no tree-ensemble node")
    _, layout = _parse(info)
    node = onnx.NodeProto()
    node.CopyFrom(info.node)
    for attribute in node.attribute:
        if attribute.name == "post_transform":
            if attribute.type == onnx.AttributeProto.INT:
                attribute.i = 0
            else:
                attribute.s = b"NONE"
    elem = onnx.TensorProto.DOUBLE if _input_dtype(info) is np.float64 else onnx.TensorProto.FLOAT
    X = np.asarray(X).astype(np.float64 if elem == onnx.TensorProto.DOUBLE else np.float32)
    # TreeEnsemble (opset 5) returns its input's type; the older ops always return float
    score_type = elem if info.op_type == "TreeEnsemble" else onnx.TensorProto.FLOAT
    outputs = []
    for name in node.output:
        if name == info.score_output:
            outputs.append(helper.make_tensor_value_info(name, score_type, None))
        else:  # a classifier's label
            label_type = onnx.TensorProto.STRING if "classlabels_strings" in info.attributes else onnx.TensorProto.INT64
            outputs.append(helper.make_tensor_value_info(name, label_type, None))
    inputs = [helper.make_tensor_value_info(info.input_name, elem, [None, X.shape[1]])]
    graph = helper.make_graph([node], "tree_only", inputs, outputs)
    single = helper.make_model(graph, opset_imports=list(model.opset_import))
    single.ir_version = model.ir_version
    scores = np.asarray(_session(single).run([info.score_output], {info.input_name: X})[0], dtype=np.float64)
    scores = scores.reshape(X.shape[0], -1)
    raw = scores @ layout.from_scores[: scores.shape[1]]
    return raw[:, 0] if raw.shape[1] == 1 else raw


# --------------------------------------------------------------------------- tree input
_ROW_WISE: Final = {  # ops whose output column j depends on input column j (with broadcasting)
    "": {"Abs", "Add", "And", "Cast", "CastLike", "Ceil", "Clip", "Div", "Equal", "Exp", "Floor", "Greater",
         "GreaterOrEqual", "Identity", "IsInf", "IsNaN", "Less", "LessOrEqual", "Log", "Max", "Mean", "Min",
         "Mod", "Mul", "Neg", "Not", "Or", "Pow", "Reciprocal", "Relu", "Round", "Sigmoid", "Sign", "Sqrt",
         "Sub", "Sum", "Tanh", "Where", "Xor"},
    ML_DOMAIN: {"Binarizer", "Imputer", "Scaler"},
}
_RESHAPING: Final = {"Flatten", "Reshape", "Squeeze", "Unsqueeze"}  # keep the row-major element order

Sources = list[frozenset[str]]  # per column (last axis) of a tensor: the graph inputs it depends on


def _ancestors(graph: onnx.GraphProto, target: str) -> list[onnx.NodeProto]:
    producer = {out: node for node in graph.node for out in node.output if out}
    keep: set[int] = set()
    stack = [target]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in producer:
            continue
        seen.add(name)
        node = producer[name]
        keep.add(id(node))
        stack.extend(i for i in node.input if i)
    return [n for n in graph.node if id(n) in keep]


class _TreeInputRunner:
    """Runs the part of a graph that computes the tree node's input matrix."""

    def __init__(self, model: onnx.ModelProto, info: TreeNodeInfo):
        self.model = model
        self.info = info
        self.nodes = _ancestors(model.graph, info.input_name)
        initializers = {i.name for i in model.graph.initializer}
        produced = {o for n in self.nodes for o in n.output}
        needed = {i for n in self.nodes for i in n.input} | {info.input_name}
        self.inputs = [i for i in model.graph.input
                       if i.name in needed and i.name not in initializers and i.name not in produced]
        self.dtype = _input_dtype(info)
        self._matrix_session: Any = None

    def _submodel(self, outputs: Sequence[str]) -> onnx.ModelProto:
        declared = {v.name: v for v in [*self.model.graph.value_info, *self.model.graph.output]}
        graph = helper.make_graph(
            list(self.nodes), "tree_input", list(self.inputs),
            [declared[o] if o in declared else onnx.ValueInfoProto(name=o) for o in outputs],
            initializer=list(self.model.graph.initializer))
        sub = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        sub.ir_version = self.model.ir_version
        return sub

    def _feeds(self, feeds: Feeds) -> dict[str, Any]:
        missing = [i.name for i in self.inputs if i.name not in feeds]
        if missing:
            raise ValueError(f"feeds lack the graph input(s) {missing}; the trees need "
                             f"{[i.name for i in self.inputs]}")
        return {i.name: feeds[i.name] for i in self.inputs}

    def matrix(self, feeds: Feeds) -> npt.NDArray[Any]:
        """The tree-input matrix for ``feeds``, cast to the node's comparison dtype."""
        if not self.nodes:  # the trees read a graph input directly
            value = np.asarray(self._feeds(feeds)[self.info.input_name])
        else:
            if self._matrix_session is None:
                self._matrix_session = _session(self._submodel([self.info.input_name]))
            value = self._matrix_session.run([self.info.input_name], self._feeds(feeds))[0]
        value = np.asarray(value)
        return value.reshape(value.shape[0], -1).astype(self.dtype)

    def sources(self, feeds: Feeds) -> list[str] | None:
        """Which graph input each tree-input column derives from, or ``None`` if mixed/unknown.

        Propagates per-column provenance through the graph; tensor widths come from running
        every intermediate tensor on two rows of ``feeds``.
        """
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for n in self.nodes for a in n.attribute):
            return None  # control flow (If, Loop, Scan): subgraphs read tensors not listed as inputs
        probe = {}
        for name, value in self._feeds(feeds).items():
            value = np.asarray(value)
            probe[name] = np.repeat(value[:1], 2, axis=0) if value.ndim else value
        try:
            produced = [o for n in self.nodes for o in n.output if o]
            values = dict(zip(produced, _session(self._submodel(produced)).run(produced, probe))) if produced else {}
        except Exception:  # a tensor that is not a plain tensor (sequence, map): no inference
            return None
        shapes: dict[str, tuple[int, ...]] = {k: np.asarray(v).shape for k, v in values.items()}
        constants = {i.name: numpy_helper.to_array(i) for i in self.model.graph.initializer}
        sources: dict[str, Sources] = {}
        for name, value in probe.items():
            width = int(np.asarray(value).shape[-1]) if np.asarray(value).ndim > 1 else 1
            label = [name] if width == 1 else [f"{name}[{j}]" for j in range(width)]
            sources[name] = [frozenset([s]) for s in label]
            shapes[name] = np.asarray(value).shape
        for name, array in constants.items():
            shapes.setdefault(name, array.shape)
            sources.setdefault(name, [frozenset()] * (array.shape[-1] if array.ndim else 1))
        for node in self.nodes:
            if node.op_type == "Constant" and node.domain == "":
                constants[node.output[0]] = np.asarray(values[node.output[0]])
            result = _propagate(node, sources, shapes, constants)
            for out in node.output:
                if out:
                    sources[out] = result(shapes[out])
        columns = sources[self.info.input_name]
        if len(columns) != int(np.prod(shapes[self.info.input_name][1:], dtype=np.int64)) or \
                any(len(s) != 1 for s in columns):
            return None
        return [next(iter(s)) for s in columns]


def _width(shape: tuple[int, ...]) -> int:
    return int(shape[-1]) if shape else 1


def _union(columns: Sources) -> frozenset[str]:
    return frozenset().union(*columns) if columns else frozenset()


def _propagate(node: onnx.NodeProto, sources: dict[str, Sources], shapes: dict[str, tuple[int, ...]],
               constants: dict[str, npt.NDArray[Any]]) -> Any:
    """A function from an output's shape to its per-column sources."""
    inputs = [i for i in node.input if i]
    ins = [sources[i] for i in inputs]
    everything = _union([_union(s) for s in ins])
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type

    def fallback(shape: tuple[int, ...]) -> Sources:
        return [everything] * _width(shape)

    if node.domain == "" and op == "Concat":
        rank = len(shapes[inputs[0]])
        axis = int(attrs.get("axis", 0))
        if rank and axis % rank == rank - 1:
            return lambda shape: [s for cols in ins for s in cols]
        if len({len(s) for s in ins}) == 1:
            return lambda shape: [_union(list(col)) for col in zip(*ins)]
        return fallback
    if node.domain == "" and op in _RESHAPING:
        data = ins[0]
        size = int(np.prod(shapes[inputs[0]], dtype=np.int64))
        k_in = len(data)

        def reshaped(shape: tuple[int, ...]) -> Sources:
            k_out = _width(shape)
            flat = np.arange(size)
            return [_union([data[j] for j in np.unique(flat[c::k_out] % k_in)]) for c in range(k_out)]
        return reshaped
    if op in _ROW_WISE.get(node.domain, set()):
        def row_wise(shape: tuple[int, ...]) -> Sources:
            k = _width(shape)
            out: Sources = []
            for c in range(k):
                parts = [cols[c] if len(cols) == k else (cols[0] if len(cols) == 1 else _union(cols))
                         for cols in ins]
                out.append(_union(parts))
            return out
        return row_wise
    selector = (node.domain == ML_DOMAIN and op == "ArrayFeatureExtractor") or \
        (node.domain == "" and op == "Gather" and len(shapes[inputs[0]]) > 0 and
         int(attrs.get("axis", 0)) % len(shapes[inputs[0]]) == len(shapes[inputs[0]]) - 1)
    if selector and len(inputs) == 2 and inputs[1] in constants:
        picked = [ins[0][int(j)] for j in np.asarray(constants[inputs[1]]).ravel()]
        return lambda shape: picked if len(picked) == _width(shape) else fallback(shape)
    return fallback


def transformed_features(model_bytes: bytes, feeds: Feeds) -> tuple[npt.NDArray[Any], list[str] | None]:
    """The matrix the tree node reads, and which graph input each of its columns comes from.

    The node's input tensor is made a graph output of the part of the graph that computes
    it, and that part is run by onnxruntime on ``feeds`` (e.g. skl2onnx's imputer and
    one-hot encoder branches, one named input per column).

    Parameters
    ----------
    model_bytes : bytes
        A serialised ONNX model with one tree-ensemble node.
    feeds : mapping
        Graph input name -> array, as for ``InferenceSession.run``; inputs the trees do
        not depend on may be left out.

    Returns
    -------
    matrix : ndarray of shape (n, n_transformed)
        Cast to the node's comparison dtype (float32 for float inputs).
    sources : list of str or None
        For each column the graph input it derives from (``name`` for an ``[N, 1]`` input,
        ``name[j]`` for column j of a wider one), found by following each input through the
        graph to the tree node (skl2onnx's ``Concat`` of per-input branches). ``None`` when
        a column mixes inputs (e.g. PCA) or the graph cannot be followed.
    """
    model = onnx.load_from_string(model_bytes)
    info = find_tree_ensemble(model)
    if info is None:
        raise ValueError("the model has no tree-ensemble node")
    runner = _TreeInputRunner(model, info)
    return runner.matrix(feeds), runner.sources(feeds)


# ---- #18 (w-shapzoo): the same for any tensor, e.g. a linear node's input ----
def tensor_features(model_bytes: bytes, tensor_name: str, feeds: Feeds) -> tuple[FloatArray, list[str] | None]:
    """The matrix a graph computes as ``tensor_name`` (in float64), and which graph input each
    of its columns comes from: :func:`transformed_features` for any node's input, such as the
    ``LinearClassifier`` of a skl2onnx pipeline with one named input per column."""
    from types import SimpleNamespace

    model = onnx.load_from_string(model_bytes)
    # the runner reads only the tensor's name and its element type (DOUBLE: keep float64)
    target = SimpleNamespace(input_name=tensor_name, input_elem_type=onnx.TensorProto.DOUBLE)
    runner = _TreeInputRunner(model, target)  # type: ignore[arg-type]
    return runner.matrix(feeds).astype(np.float64), runner.sources(feeds)
# ---- end #18 ----


# --------------------------------------------------------------------------- explainer
_SHAP_MAX_NODES: Final = 32767  # shap/cext/tree_shap.h: `struct Node { short cl, cr, cd, ... }`
_WORKER: dict[str, Any] = {}


def _worker_init(translated: dict[str, Any], background: npt.NDArray[Any]) -> None:
    _WORKER["explainer"] = _tree_explainer(translated, background)


def _worker_shap(X: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    return np.asarray(_WORKER["explainer"].shap_values(X))


def _tree_explainer(translated: dict[str, Any], background: npt.NDArray[Any]) -> Any:
    import shap

    return shap.TreeExplainer(translated, data=background, feature_perturbation="interventional",
                              model_output="raw")


def _mp_context() -> Any:
    # fork reuses the parent's imported shap and the built trees (no pickling, no re-import);
    # the children never touch onnxruntime, whose threads do not survive a fork.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class OnnxTreeExplainer:
    """Exact interventional TreeSHAP for an ONNX tree-ensemble model.

    Parameters
    ----------
    model_path : str or os.PathLike
        An ONNX file with one tree-ensemble node (possibly behind preprocessing).
    background_feeds : mapping
        Graph input name -> array: the background rows that absent features are drawn
        from (100-1000 rows is typical; time grows linearly with it).
    check_tolerance : float, default 1e-4
        The translated trees' raw scores must equal onnxruntime's on the background within
        this (absolute, scaled by ``max(1, |score|)``: onnxruntime sums in float32).

    Attributes
    ----------
    info : TreeNodeInfo
    translated : dict
        The shap model dict (see :func:`translate`).
    background : ndarray of shape (n_background, n_transformed)
    column_sources : list of str or None
        The graph input behind each transformed column (see :func:`transformed_features`).
    groups : list of str or None
        The distinct sources in column order: the columns of :meth:`grouped`.
    expected_value : float or ndarray
        Mean raw score over the background: the base value of every explanation.

    Raises
    ------
    NotImplementedError
        Untranslatable node (see :func:`translate`), or translated trees that disagree with
        onnxruntime on the background.
    """

    def __init__(self, model_path: Union[str, os.PathLike[str]], background_feeds: Feeds, *,
                 check_tolerance: float = 1e-4):
        model_bytes = Path(model_path).read_bytes()
        self.model = onnx.load_from_string(model_bytes)
        info = find_tree_ensemble(self.model)
        if info is None:
            raise ValueError(f"{model_path} has no tree-ensemble node")
        self.info = info
        self.translated = translate(self.model)
        self._runner = _TreeInputRunner(self.model, info)
        self.background = self._runner.matrix(background_feeds)
        self.column_sources = self._runner.sources(background_feeds)
        self.groups = None if self.column_sources is None else list(dict.fromkeys(self.column_sources))

        ours = predict_raw(self.translated, self.background)
        theirs = onnxruntime_raw_scores(self.model, self.background)
        gap = np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))
        if gap.size and float(gap.max()) > check_tolerance:
            raise NotImplementedError(
                f"{model_path}: the translated trees disagree with onnxruntime on the background "
                f"(max scaled difference {float(gap.max()):.3g} > {check_tolerance}); this layout of "
                f"{info.op_type} (post_transform {info.post_transform}) is not supported")
        largest = max(len(t["children_left"]) for t in self.translated["trees"])
        if largest > _SHAP_MAX_NODES:
            raise NotImplementedError(
                f"{model_path}: a tree has {largest} nodes; shap's interventional TreeSHAP indexes "
                f"nodes with 16-bit integers (at most {_SHAP_MAX_NODES})")
        self._explainer = _tree_explainer(self.translated, self.background)
        self.expected_value = self._explainer.expected_value

    def features(self, feeds: Feeds) -> npt.NDArray[Any]:
        """The tree-input matrix for ``feeds`` (cast to the node's comparison dtype)."""
        return self._runner.matrix(feeds)

    def shap_values(self, feeds: Feeds, *, n_jobs: int = 1) -> tuple[FloatArray, Any]:
        """SHAP values of the raw score for the rows of ``feeds``.

        Parameters
        ----------
        feeds : mapping
            Graph input name -> array, one row per explained sample.
        n_jobs : int, default 1
            Worker processes; rows are split into contiguous blocks. Every row's values are
            computed alone, so the result does not depend on ``n_jobs``.

        Returns
        -------
        values : ndarray of shape (n, n_transformed), or (n, n_transformed, n_outputs)
            ``base_value + values.sum(axis=1)`` is the raw score of each row.
        base_value : float or ndarray of shape (n_outputs,)
        """
        return self.shap_values_matrix(self.features(feeds), n_jobs=n_jobs), self.expected_value

    def shap_values_matrix(self, X: npt.ArrayLike, *, n_jobs: int = 1) -> FloatArray:
        """SHAP values for rows already in tree-input form (see :meth:`features`)."""
        X = np.asarray(X).astype(self.translated["input_dtype"])
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
        if n_jobs == 1 or len(X) < 2 * n_jobs:
            return np.asarray(self._explainer.shap_values(X))
        blocks = np.array_split(X, n_jobs)
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=_mp_context(), initializer=_worker_init,
                                 initargs=(self.translated, self.background)) as pool:
            parts = list(pool.map(_worker_shap, blocks))
        return np.concatenate(parts, axis=0)

    def grouped(self, values: npt.ArrayLike) -> FloatArray:
        """Sum SHAP values over the columns of each original graph input.

        Parameters
        ----------
        values : ndarray of shape (n, n_transformed[, n_outputs])

        Returns
        -------
        ndarray of shape (n, n_groups[, n_outputs])
            Columns in the order of :attr:`groups`. Shapley values are additive, so each
            entry is the exact attribution of that input (e.g. all its one-hot columns).
        """
        if self.column_sources is None or self.groups is None:
            raise ValueError("which graph input each tree-input column comes from could not be inferred "
                             "from this graph, so values cannot be grouped")
        values = np.asarray(values, dtype=np.float64)
        if values.shape[1] != len(self.column_sources):
            raise ValueError(f"values have {values.shape[1]} columns, the trees read {len(self.column_sources)}")
        member = np.zeros((len(self.column_sources), len(self.groups)))
        for j, source in enumerate(self.column_sources):
            member[j, self.groups.index(source)] = 1.0
        return np.moveaxis(np.tensordot(values, member, axes=([1], [0])), -1, 1)
