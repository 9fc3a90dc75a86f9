"""Rewrite a tree-ensemble node's trees as shap's custom tree dict, every split as ``x <= t``.

The dict is what ``shap.TreeExplainer`` accepts::

    {"trees": [{"children_left", "children_right", "children_default", "features",
                "thresholds", "values", "node_sample_weight"}, ...],
     "base_offset": ..., "tree_output": ..., "input_dtype": ..., "internal_dtype": ...}

ONNX stores no node sample counts, and the interventional algorithm needs none: it integrates
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
values, more than one tree-ensemble node, and chains of ``BRANCH_EQ`` / ``BRANCH_NEQ``
splits whose expansion into ``<=`` splits would exceed ``MAX_EXPANSION`` times the model.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnx

from auditkit.methods.onnx_trees.forest import EQ, GT, GTE, LEQ, LT, Forest, parse
from auditkit.methods.onnx_trees.node import FloatArray, find_tree_ensemble, input_dtype

# A BRANCH_EQ / BRANCH_NEQ node becomes two `<=` splits, and the subtree on its "other"
# side is copied once. Chains of equality splits (one per category) double at every
# link, so the translation refuses to grow a model beyond this factor.
MAX_EXPANSION: Final = 16


class _TreeBuilder:
    """Emits one shap tree (preorder) from one ONNX tree, rewriting every split as ``x <= t``."""

    def __init__(self, forest: Forest, leaf_values: FloatArray, budget: int, input_dtype: type[np.floating[Any]]):
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
        if mode == LEQ:
            return self._split(feat, at_t, yes, no, nan_yes)
        if mode == LT:
            return self._split(feat, below_t, yes, no, nan_yes)
        if mode == GT:  # x > t  <=>  not x <= t
            return self._split(feat, at_t, no, yes, not nan_yes)
        if mode == GTE:  # x >= t  <=>  not x < t
            return self._split(feat, below_t, no, yes, not nan_yes)
        if mode == EQ:
            members, outside, nan_in = self._chain(k)
            if len(members) > 1:
                return self._membership(feat, members, yes, outside, nan_in)
        # x == t  <=>  not x <= below_t  and  x <= t; the "not equal" side is needed twice.
        # NaN == t is false (true branch only when tracked); NaN != t is true.
        equal, unequal = (yes, no) if mode == EQ else (no, yes)
        nan_equal = nan_yes if mode == EQ else False
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

    def _chain(self, k: int) -> tuple[list[float], int, bool]:
        """A chain of BRANCH_EQ splits on one feature sharing their true child (how onnxmltools
        writes LightGBM's categorical split "x in {c1, c2, ...}"): its values, the node reached
        when x is none of them, and whether NaN takes the true child (when any link tracks it)."""
        f = self.forest
        feat, yes = int(f.feature[k]), int(f.true_child[k])
        members, nan_in, node = [], False, k
        while (not f.is_leaf[node] and int(f.mode[node]) == EQ and int(f.feature[node]) == feat
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
    forest, layout = parse(info)
    leaf_values = forest.weights @ layout.combine
    if info.aggregate_function == "AVERAGE":
        leaf_values = leaf_values / len(forest.roots)
    n_outputs = layout.combine.shape[1]
    budget = MAX_EXPANSION * max(len(forest.is_leaf), 1)
    trees = []
    used_nodes = 0
    for root in forest.roots:
        builder = _TreeBuilder(forest, leaf_values, budget - used_nodes, input_dtype(info))
        builder.emit(root)
        used_nodes += len(builder.left)
        trees.append(builder.tree(n_outputs))
    base: float | FloatArray = float(layout.base[0]) if n_outputs == 1 else layout.base.copy()
    return {
        "trees": trees,
        "base_offset": base,
        "tree_output": layout.tree_output,
        "objective": "binary_crossentropy" if layout.tree_output == "log_odds" and n_outputs == 1 else None,
        "input_dtype": input_dtype(info),
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
