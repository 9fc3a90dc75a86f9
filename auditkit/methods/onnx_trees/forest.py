"""Read a tree-ensemble node's trees into flat arrays, and how its weight columns make the raw
score that SHAP explains (one layout per classifier export, checked against onnxruntime)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from auditkit.methods.onnx_trees.node import FloatArray, TreeNodeInfo

# nodes_modes of TreeEnsemble (opset 5) are integers; the older ops spell them out.
MODE_NAMES: Final = ("BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ",
                     "BRANCH_MEMBER", "LEAF")
LEQ, LT, GTE, GT, EQ, NEQ, MEMBER, LEAF = range(8)


@dataclass
class Forest:
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


def _legacy_forest(info: TreeNodeInfo) -> Forest:
    attrs = info.attributes
    tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
    node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    n = len(node_ids)
    modes_text = list(attrs["nodes_modes"])
    unknown = sorted({m for m in modes_text if m not in MODE_NAMES or m == "BRANCH_MEMBER"})
    if unknown:
        raise NotImplementedError(f"{info.op_type} nodes_modes {unknown} cannot be translated "
                                  f"(supported: {', '.join(m for m in MODE_NAMES if m != 'BRANCH_MEMBER')})")
    mode = np.array([MODE_NAMES.index(m) for m in modes_text], dtype=np.int64)
    index = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(tree_ids, node_ids))}
    if len(index) != n:
        raise ValueError(f"{info.op_type}: (nodes_treeids, nodes_nodeids) pairs are not unique")
    is_leaf = mode == LEAF

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
    return Forest(is_leaf=is_leaf, feature=np.asarray(attrs["nodes_featureids"], dtype=np.int64), mode=mode,
                   threshold=_floats(attrs, "nodes_values"), true_child=true_child, false_child=false_child,
                   missing_true=missing, weights=weights, roots=roots)


def _opset5_forest(info: TreeNodeInfo) -> Forest:
    attrs = info.attributes
    mode_codes = np.asarray(attrs["nodes_modes"], dtype=np.int64).ravel()
    n_nodes = len(mode_codes)
    bad = sorted({int(m) for m in mode_codes if m < 0 or m >= MEMBER})
    if bad:
        names = [MODE_NAMES[m] if 0 <= m < len(MODE_NAMES) else str(m) for m in bad]
        raise NotImplementedError(f"TreeEnsemble nodes_modes {names} cannot be translated "
                                  f"(supported: {', '.join(MODE_NAMES[:MEMBER])})")
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
    return Forest(
        is_leaf=np.concatenate([np.zeros(n_nodes, dtype=bool), np.ones(n_leaves, dtype=bool)]),
        feature=np.concatenate([np.asarray(attrs["nodes_featureids"], dtype=np.int64), np.full(n_leaves, -1)]),
        mode=np.concatenate([mode_codes, np.full(n_leaves, LEAF)]),
        threshold=np.concatenate([np.asarray(attrs["nodes_splits"], dtype=np.float64).ravel(), np.zeros(n_leaves)]),
        true_child=child("nodes_truenodeids", "nodes_trueleafs"),
        false_child=child("nodes_falsenodeids", "nodes_falseleafs"),
        missing_true=np.concatenate([missing, np.zeros(n_leaves, dtype=bool)]),
        weights=weights, roots=[int(r) for r in attrs["tree_roots"]])


@dataclass(frozen=True)
class Layout:
    """How the node's weight columns make the raw score(s) that SHAP explains."""

    combine: FloatArray  # (n weight columns, n outputs): raw leaf value = weights @ combine
    base: FloatArray  # (n outputs,)
    tree_output: str
    # onnxruntime's post_transform=NONE scores -> raw: raw = scores @ from_scores
    from_scores: FloatArray


def _layout(info: TreeNodeInfo, n_cols: int, used: set[int], nonnegative: bool) -> Layout:
    post = info.post_transform
    if not info.is_classifier:
        k = info.n_targets
        base = np.zeros(k)
        if len(info.base_values) == k:
            base = np.asarray(info.base_values, dtype=np.float64)
        return Layout(np.eye(n_cols, k), base, "raw_value", np.eye(k))
    k = info.n_targets
    if k < 2:
        raise NotImplementedError(f"TreeEnsembleClassifier with {k} class label(s) cannot be translated")
    if k > 2:
        base = np.zeros(k)
        base[: len(info.base_values)] = info.base_values[:k]
        tree_output = "log_odds" if post == "LOGISTIC" else "raw_value"
        return Layout(np.eye(n_cols, k), base, tree_output, np.eye(k))
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
    return Layout(combine, base, tree_output, from_scores)


def parse(info: TreeNodeInfo) -> tuple[Forest, Layout]:
    forest = _opset5_forest(info) if info.op_type == "TreeEnsemble" else _legacy_forest(info)
    if info.aggregate_function not in ("SUM", "AVERAGE"):
        raise NotImplementedError(f"aggregate_function {info.aggregate_function} of {info.op_type}: TreeSHAP "
                                  "explains sums of trees; only SUM and AVERAGE can be translated")
    # the weight columns a classifier's leaves vote for (zero votes count: they fix the layout)
    used = {int(c) for c in info.attributes.get("class_ids", [])} if info.is_classifier else set()
    nonnegative = bool(np.all(forest.weights >= 0))
    return forest, _layout(info, forest.weights.shape[1], used, nonnegative)
