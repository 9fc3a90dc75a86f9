"""Exact interventional TreeSHAP on ONNX tree ensembles (auditkit/methods/onnx_trees/).

References: shap's own TreeExplainer on the fitted scikit-learn model (an independent
translation of the same trees), onnxruntime's outputs (additivity and predictions), and
hand-built nodes whose routing is known from the ONNX specification.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

shap = pytest.importorskip("shap")
skl2onnx = pytest.importorskip("skl2onnx")

from sklearn.decomposition import PCA  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import make_pipeline  # noqa: E402

from auditkit.methods.onnx_trees import (  # noqa: E402
    OnnxTreeExplainer,
    find_tree_ensemble,
    onnxruntime_raw_scores,
    predict_raw,
    transformed_features,
    translate,
)
from tree_shap_pool import pooled_shap_values  # noqa: E402

N_ROWS, N_FEATURES, UNUSED = 500, 6, 5
NUMERIC = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
           "n_open_accounts"]
CATEGORICAL = ["home_ownership", "purpose", "zip_region"]


# --------------------------------------------------------------------------- helpers
def _data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training rows whose last feature is constant (so no tree can split on it), and
    separate rows to explain in which it varies."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(2 * N_ROWS, N_FEATURES)).astype(np.float32)
    train, rows = X[:N_ROWS].copy(), X[N_ROWS:]
    train[:, UNUSED] = 0.0
    y_class = (train[:, 0] + train[:, 1] * train[:, 2] + 0.5 * rng.normal(size=N_ROWS) > 0).astype(int)
    y_reg = 2 * train[:, 0] + train[:, 2] - train[:, 3] * train[:, 1] + 0.1 * rng.normal(size=N_ROWS)
    return train, rows, y_class, y_reg


def _sklearn_trees(estimator: Any) -> list[Any]:
    return [e.tree_ for e in np.ravel(estimator.estimators_)]


def _shap_float32_flips(estimator: Any, X: np.ndarray) -> np.ndarray:
    """Rows on which shap's interventional code, which stores scikit-learn's double
    thresholds as C floats (rounded to nearest), routes differently from scikit-learn.

    skl2onnx rounds each threshold so the float32 comparison is unchanged; shap does not,
    so rows holding exactly float32(t) for such a t disagree. They are excluded from the
    comparison with shap-on-sklearn (our values follow onnxruntime there: see additivity)."""
    X = X.astype(np.float64)
    flips = np.zeros(len(X), dtype=bool)
    for tree in _sklearn_trees(estimator):
        split = tree.children_left >= 0
        t = tree.threshold[split]
        x = X[:, tree.feature[split]]
        flips |= np.any((x <= t) != (x <= t.astype(np.float32).astype(np.float64)), axis=1)
    return flips


def _logit(p: np.ndarray) -> np.ndarray:
    p = p.astype(np.float64)
    return np.log(p) - np.log1p(-p)


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


# --------------------------------------------------------------------------- 1. small sklearn models
CASES = {
    "gbm_classifier": lambda: GradientBoostingClassifier(n_estimators=40, max_depth=3, random_state=0),
    "gbm_regressor": lambda: GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0),
    "rf_classifier": lambda: RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
    "rf_regressor": lambda: RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_shap_equals_shap_on_the_sklearn_model(name: str, tmp_path: Path, seed: int) -> None:
    train, rows, y_class, y_reg = _data(seed)
    model = CASES[name]()
    classifier = name.endswith("classifier")
    model.fit(train, y_class if classifier else y_reg)
    options = {id(model): {"zipmap": False}} if classifier else None
    onx = skl2onnx.to_onnx(model, train[:1], options=options)
    background, explained = rows[:100], rows[100:]

    explainer = OnnxTreeExplainer(_save(onx, tmp_path / f"{name}.onnx"), {"X": background})
    values, base = explainer.shap_values({"X": explained})
    assert values.shape == (len(explained), N_FEATURES)
    assert np.abs(values).max() > 0.01  # the comparison below is not between zeros
    assert explainer.column_sources == [f"X[{j}]" for j in range(N_FEATURES)]

    # the translated trees compute what onnxruntime computes (float32 sums: 1e-5)
    np.testing.assert_allclose(predict_raw(explainer.translated, explained),
                               onnxruntime_raw_scores(onx, explained), rtol=0, atol=1e-5)

    # shap's own translation of the sklearn model, same float32 rows and background
    flips = _shap_float32_flips(model, np.vstack([background, explained]))
    assert not flips.any()  # continuous data: no row sits on a float32-rounded threshold
    reference = shap.TreeExplainer(model, data=background, feature_perturbation="interventional",
                                   model_output="raw")
    expected = np.asarray(reference.shap_values(explained))
    if expected.ndim == 3:  # shap splits a forest classifier's probability by class
        expected = expected[..., 1]
    # both sides run shap's interventional code on float32 leaf values: 1e-6 is generous
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(base, np.ravel(reference.expected_value)[-1], rtol=0, atol=1e-6)

    # additivity against the ONNX model's own output
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    out = session.run(None, {"X": explained})
    tolerance = np.full(len(explained), 1e-4)  # float32 outputs of sums of up to 40 trees
    if name == "gbm_classifier":
        p = out[1][:, 1].astype(np.float64)
        own = _logit(p)  # LOGISTIC: the raw score is the log-odds of class 1
        # a float32 probability is off by up to 6e-8, which its logit divides by p(1 - p)
        tolerance += 6e-8 / (p * (1 - p))
    elif name == "rf_classifier":
        own = out[1][:, 1].astype(np.float64)  # averaged votes: the raw score is P(class 1)
    else:
        own = out[0][:, 0].astype(np.float64)
    np.testing.assert_array_less(np.abs(base + values.sum(axis=1) - own), tolerance)

    # the constant training column is never split on: exactly zero, not merely small
    assert np.all(values[:, UNUSED] == 0.0)


def test_process_pool_gives_the_serial_values(tmp_path: Path, seed: int) -> None:
    train, rows, y_class, _ = _data(seed)
    model = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(train, y_class)
    onx = skl2onnx.to_onnx(model, train[:1], options={id(model): {"zipmap": False}})
    explainer = OnnxTreeExplainer(_save(onx, tmp_path / "gbm.onnx"), {"X": rows[:50]})
    serial, _ = explainer.shap_values({"X": rows[50:]})
    pooled = pooled_shap_values(explainer, {"X": rows[50:]}, n_jobs=2)
    assert np.abs(serial).max() > 0.01
    np.testing.assert_array_equal(pooled, serial)  # each row is computed alone: bit-identical


def _as_opset5(legacy: onnx.ModelProto, n_features: int) -> onnx.ModelProto:
    """The same regressor as one ai.onnx.ml opset-5 TreeEnsemble node."""
    info = find_tree_ensemble(legacy)
    assert info is not None and info.op_type == "TreeEnsembleRegressor"
    a = info.attributes
    tree_ids, node_ids = np.asarray(a["nodes_treeids"]), np.asarray(a["nodes_nodeids"])
    leaf = np.asarray(a["nodes_modes"]) == "LEAF"
    split_at = {(t, n): k for k, (t, n) in enumerate(zip(tree_ids[~leaf], node_ids[~leaf]))}
    leaf_at = {(t, n): k for k, (t, n) in enumerate(zip(tree_ids[leaf], node_ids[leaf]))}
    weight = {(t, n): w for t, n, w in zip(a["target_treeids"], a["target_nodeids"], a["target_weights"])}

    def child(ids: str) -> tuple[list[int], list[int]]:
        position, to_leaf = [], []
        for t, c in zip(tree_ids[~leaf], np.asarray(a[ids])[~leaf]):
            to_leaf.append(int((t, c) in leaf_at))
            position.append(leaf_at[(t, c)] if (t, c) in leaf_at else split_at[(t, c)])
        return position, to_leaf

    true_ids, true_leafs = child("nodes_truenodeids")
    false_ids, false_leafs = child("nodes_falsenodeids")
    leaves = list(zip(tree_ids[leaf], node_ids[leaf]))
    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1, aggregate_function=1,
        post_transform=0, tree_roots=[split_at[(t, 0)] for t in np.unique(tree_ids)],
        nodes_featureids=list(np.asarray(a["nodes_featureids"])[~leaf]),
        nodes_splits=numpy_helper.from_array(np.asarray(a["nodes_values"], dtype=np.float32)[~leaf]),
        nodes_modes=numpy_helper.from_array(np.zeros(int((~leaf).sum()), dtype=np.uint8)),
        nodes_truenodeids=true_ids, nodes_trueleafs=true_leafs, nodes_falsenodeids=false_ids,
        nodes_falseleafs=false_leafs, leaf_targetids=[0] * len(leaves),
        leaf_weights=numpy_helper.from_array(np.array([weight.get(k, 0.0) for k in leaves], dtype=np.float32)))
    base = helper.make_tensor("base", TensorProto.FLOAT, [1], [info.base_values[0]])
    add = helper.make_node("Add", ["Y", "base"], ["variable"])
    graph = helper.make_graph([node, add], "opset5", [helper.make_tensor_value_info("X", TensorProto.FLOAT,
                                                                                     [None, n_features])],
                              [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
                              initializer=[base])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])
    model.ir_version = 10
    return model


def test_opset5_tree_ensemble_gives_the_legacy_values(seed: int) -> None:
    train, rows, _, y_reg = _data(seed)
    model = GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0).fit(train, y_reg)
    legacy = skl2onnx.to_onnx(model, train[:1])
    modern = _as_opset5(legacy, N_FEATURES)
    onnx.checker.check_model(modern)
    run = lambda m: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(  # noqa: E731
        None, {"X": rows})[0][:, 0]
    np.testing.assert_allclose(run(modern), run(legacy), rtol=0, atol=1e-5)  # the conversion is faithful

    # the opset-5 node has no base value (it is the Add after it): compare through the sum
    old, new = translate(legacy), translate(modern)
    assert new["base_offset"] == 0.0 and old["base_offset"] != 0.0
    np.testing.assert_allclose(predict_raw(new, rows) + old["base_offset"], predict_raw(old, rows), rtol=0, atol=1e-6)
    explain = lambda t: shap.TreeExplainer(t, data=rows[:50], feature_perturbation="interventional",  # noqa: E731
                                           model_output="raw").shap_values(rows[50:150])
    values = explain(new)
    assert np.abs(values).max() > 0.01
    np.testing.assert_array_equal(values, explain(old))  # same trees, same float32 leaf values


# --------------------------------------------------------------------------- split modes
MODES = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ"]


def _two_level_regressor(root_mode: str, child_mode: str, root_tracks: int, child_tracks: int) -> onnx.ModelProto:
    """x0 <root_mode> 0.5 ? (x1 <child_mode> -1.25 ? 1 : 2) : (x1 <child_mode> 3.0 ? 4 : 8), plus a
    second tree on x2 so that sums of trees are exercised."""
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1, base_values=[0.25],
        nodes_treeids=[0] * 7 + [1] * 3, nodes_nodeids=list(range(7)) + [0, 1, 2],
        nodes_featureids=[0, 1, 0, 0, 1, 0, 0, 2, 0, 0],
        nodes_values=[0.5, -1.25, 0, 0, 3.0, 0, 0, 0.1, 0, 0],
        nodes_modes=[root_mode, child_mode, "LEAF", "LEAF", child_mode, "LEAF", "LEAF", "BRANCH_LEQ", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 2, 0, 0, 5, 0, 0, 1, 0, 0], nodes_falsenodeids=[4, 3, 0, 0, 6, 0, 0, 2, 0, 0],
        nodes_missing_value_tracks_true=[root_tracks, child_tracks, 0, 0, child_tracks, 0, 0, 1, 0, 0],
        target_treeids=[0, 0, 0, 0, 1, 1], target_nodeids=[2, 3, 5, 6, 1, 2], target_ids=[0] * 6,
        target_weights=[1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    graph = helper.make_graph([node], "modes", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 3])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model


def _edge_rows() -> np.ndarray:
    """Every combination of: each threshold, its float32 neighbours, far values and NaN."""
    values = []
    for t in (0.5, -1.25, 3.0, 0.1):
        t32 = np.float32(t)
        values += [t32, np.nextafter(t32, np.float32(-np.inf)), np.nextafter(t32, np.float32(np.inf))]
    values += [np.float32(-10), np.float32(10), np.float32(np.nan)]
    grid = np.array(values, dtype=np.float32)
    x0, x1 = np.meshgrid(grid, grid, indexing="ij")
    rows = np.column_stack([x0.ravel(), x1.ravel(), np.resize(grid, x0.size)])
    return rows.astype(np.float32)


@pytest.mark.parametrize("root_mode", MODES)
@pytest.mark.parametrize("child_mode", ["BRANCH_LEQ", "BRANCH_GT", "BRANCH_EQ"])
@pytest.mark.parametrize("tracks", [(0, 0), (1, 1), (1, 0)])
def test_every_split_mode_routes_as_onnxruntime(root_mode: str, child_mode: str, tracks: tuple[int, int]) -> None:
    model = _two_level_regressor(root_mode, child_mode, *tracks)
    rows = _edge_rows()
    ours = predict_raw(translate(model), rows)
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"X": rows})[0][:, 0]
    assert len(np.unique(theirs)) >= 4  # rows reach several leaves, ties and NaN included
    np.testing.assert_array_equal(ours, theirs)  # leaf sums of small powers of two: exact

    # and shap's interventional code routes them the same way (additivity on the edge rows)
    explainer = shap.TreeExplainer(translate(model), data=rows[::7], feature_perturbation="interventional",
                                   model_output="raw")
    values = explainer.shap_values(rows, check_additivity=False)
    np.testing.assert_allclose(explainer.expected_value + values.sum(axis=1), theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_double_inputs_and_averaged_trees_match_onnxruntime(mode: str) -> None:
    # a double-typed node: thresholds float32 cannot hold (0.1, -1.3, 1e-8), compared in
    # double; trees averaged rather than summed
    thresholds = np.array([0.1, -1.3, 0, 0, 1e-8, 0, 0, 0.1, 0, 0], dtype=np.float64)
    weights = np.array([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    model = _legacy(nodes_modes=[mode, mode, "LEAF", "LEAF", mode, "LEAF", "LEAF", "BRANCH_LT", "LEAF", "LEAF"],
                    aggregate_function="AVERAGE", nodes_values_as_tensor=numpy_helper.from_array(thresholds),
                    target_weights_as_tensor=numpy_helper.from_array(weights),
                    base_values_as_tensor=numpy_helper.from_array(np.array([0.25])))
    node = model.graph.node[0]
    for name in ("nodes_values", "target_weights", "base_values"):
        node.attribute.remove(next(a for a in node.attribute if a.name == name))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.DOUBLE
    grid = [-10.0, 10.0, np.nan]
    for t in thresholds[[0, 1, 4]]:
        grid += [t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf), float(np.float32(t))]
    x0, x1 = np.meshgrid(grid, grid, indexing="ij")
    rows = np.column_stack([x0.ravel(), x1.ravel(), np.resize(grid, x0.size)])
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"X": rows})[0][:, 0]
    assert len(np.unique(theirs)) >= 4
    translated = translate(model)
    assert translated["input_dtype"] is np.float64
    np.testing.assert_array_equal(predict_raw(translated, rows), theirs)  # sums of powers of two / 2: exact


def _binary_classifier(class_ids: list[int], post: str, base: list[float] | None) -> onnx.ModelProto:
    weights = {0: [0.3, -0.7], 1: [0.2, 0.5]}  # per class id, per leaf
    kw: dict[str, Any] = {}
    if base is not None:
        kw["base_values"] = base
    node = helper.make_node(
        "TreeEnsembleClassifier", ["X"], ["label", "scores"], domain="ai.onnx.ml",
        nodes_treeids=[0, 0, 0], nodes_nodeids=[0, 1, 2], nodes_featureids=[0, 0, 0], nodes_values=[0.0, 0, 0],
        nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_truenodeids=[1, 0, 0], nodes_falsenodeids=[2, 0, 0],
        class_treeids=[0] * (2 * len(class_ids)), class_nodeids=[leaf for c in class_ids for leaf in (1, 2)],
        class_ids=[c for c in class_ids for _ in (1, 2)],
        class_weights=[w for c in class_ids for w in weights[c]], classlabels_int64s=[0, 1], post_transform=post, **kw)
    graph = helper.make_graph([node], "binary", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
                              [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
                               helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("class_ids", [[0], [1], [0, 1]])
@pytest.mark.parametrize("post", ["NONE", "LOGISTIC", "SOFTMAX"])
@pytest.mark.parametrize("base", [None, [0.1]])
def test_binary_layouts_explain_the_positive_score(class_ids: list[int], post: str, base: list[float] | None) -> None:
    model = _binary_classifier(class_ids, post, base)
    rows = np.array([[-1.0], [1.0]], dtype=np.float32)
    p1 = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"X": rows})[1][:, 1].astype(np.float64)
    translated = translate(model)
    raw = predict_raw(translated, rows)
    assert raw[0] != raw[1]
    # the raw score is onnxruntime's P(class 1) itself, or its logit
    link = (lambda r: 1 / (1 + np.exp(-r))) if translated["tree_output"] == "log_odds" else (lambda r: r)
    np.testing.assert_allclose(link(raw), p1, rtol=0, atol=1e-6)  # float32 probabilities
    np.testing.assert_allclose(onnxruntime_raw_scores(model, rows), raw, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- unsupported variants
def _opset5_member() -> onnx.ModelProto:
    node = helper.make_node(
        "TreeEnsemble", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1, tree_roots=[0],
        nodes_featureids=[0], nodes_splits=numpy_helper.from_array(np.array([0.0], np.float32)),
        nodes_modes=numpy_helper.from_array(np.array([6], np.uint8)), nodes_truenodeids=[0], nodes_trueleafs=[1],
        nodes_falsenodeids=[1], nodes_falseleafs=[1], leaf_targetids=[0, 0],
        leaf_weights=numpy_helper.from_array(np.array([1.0, 2.0], np.float32)),
        membership_values=numpy_helper.from_array(np.array([1.0, 3.0, np.nan], np.float32)))
    graph = helper.make_graph([node], "member", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)])


def _legacy(**changes: Any) -> onnx.ModelProto:
    model = _two_level_regressor("BRANCH_LEQ", "BRANCH_LEQ", 0, 0)
    node = model.graph.node[0]
    for name, value in changes.items():
        for attribute in list(node.attribute):
            if attribute.name == name:
                node.attribute.remove(attribute)
        node.attribute.append(helper.make_attribute(name, value))
    return model


def _equality_chain(length: int) -> onnx.ModelProto:
    """x == 0 ? 1 : (x == 1 ? 1 : (... ? 1 : 0)): one equality split per category."""
    n = 2 * length + 1
    modes, true_ids, false_ids = [], [], []
    for k in range(length):
        modes += ["BRANCH_EQ", "LEAF"]
        true_ids += [2 * k + 1, 0]
        false_ids += [2 * k + 2, 0]
    modes.append("LEAF")
    true_ids.append(0)
    false_ids.append(0)
    node = helper.make_node(
        "TreeEnsembleRegressor", ["X"], ["Y"], domain="ai.onnx.ml", n_targets=1, nodes_treeids=[0] * n,
        nodes_nodeids=list(range(n)), nodes_featureids=[0] * n,
        nodes_values=[float(k // 2) for k in range(n)], nodes_modes=modes, nodes_truenodeids=true_ids,
        nodes_falsenodeids=false_ids, target_treeids=[0] * (length + 1),
        target_nodeids=[2 * k + 1 for k in range(length)] + [n - 1], target_ids=[0] * (length + 1),
        target_weights=[1.0] * length + [0.0])
    graph = helper.make_graph([node], "chain", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, 1])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])


@pytest.mark.parametrize(("model", "message"), [
    (_opset5_member, "BRANCH_MEMBER"),
    (lambda: _legacy(nodes_modes=["BRANCH_LEQ", "BRANCH_CONTAINS"] + ["LEAF"] * 2 + ["BRANCH_LEQ"] + ["LEAF"] * 2
                     + ["BRANCH_LEQ", "LEAF", "LEAF"]), "BRANCH_CONTAINS"),
    (lambda: _legacy(aggregate_function="MAX"), "aggregate_function MAX"),
    (lambda: _binary_classifier([0, 1], "LOGISTIC", [0.1, 0.4]), "two base_values"),
    (lambda: _equality_chain(20), "BRANCH_EQ"),
], ids=["opset5-member", "unknown-mode", "max-aggregate", "binary-two-bases", "equality-chain"])
def test_untranslatable_nodes_raise_not_implemented_naming_the_feature(model: Any, message: str) -> None:
    with pytest.raises(NotImplementedError, match=message):
        translate(model())


def test_short_equality_chain_is_expanded_exactly() -> None:
    model = _equality_chain(4)
    rows = np.array([[-1], [0], [1], [2], [3], [4], [0.5], [np.nan]], dtype=np.float32)
    theirs = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"X": rows})[0][:, 0]
    np.testing.assert_array_equal(theirs, [0, 1, 1, 1, 1, 0, 0, 0])  # the case is what the docstring says
    np.testing.assert_array_equal(predict_raw(translate(model), rows), theirs)


# --------------------------------------------------------------------------- graph following
def test_columns_that_mix_inputs_cannot_be_grouped(tmp_path: Path, seed: int) -> None:
    train, rows, _, y_reg = _data(seed)
    pipe = make_pipeline(PCA(n_components=3, random_state=0),
                         GradientBoostingRegressor(n_estimators=10, max_depth=2, random_state=0)).fit(train, y_reg)
    onx = skl2onnx.to_onnx(pipe, train[:1])
    matrix, sources = transformed_features(onx.SerializeToString(), {"X": rows[:20]})
    np.testing.assert_allclose(matrix, pipe[:-1].transform(rows[:20]), rtol=0, atol=1e-5)  # float32 MatMul
    assert sources is None  # every principal component mixes all inputs
    explainer = OnnxTreeExplainer(_save(onx, tmp_path / "pca.onnx"), {"X": rows[:30]})
    values, _ = explainer.shap_values({"X": rows[30:40]})
    with pytest.raises(ValueError, match="could not be inferred"):
        explainer.grouped(values)


# --------------------------------------------------------------------------- 2. the sample GBM pipeline
def _feeds(frame: Any) -> dict[str, np.ndarray]:
    feeds = {c: frame[c].to_numpy(dtype=np.float32).reshape(-1, 1) for c in NUMERIC}
    feeds.update({c: frame[c].to_numpy(dtype=object).reshape(-1, 1) for c in CATEGORICAL})
    return feeds


def test_sample_gbm_pipeline_is_explained_exactly(samples: Path) -> None:
    joblib = pytest.importorskip("joblib")
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(samples / "credit_test.csv")
    background, explained = frame.iloc[:100], frame.iloc[100:700]
    explainer = OnnxTreeExplainer(samples / "credit_gbm.onnx", _feeds(background))
    values, base = explainer.shap_values(_feeds(explained))

    pipe = joblib.load(samples / "credit_gbm.joblib")
    gbm = pipe[-1]
    X_bg = np.asarray(pipe[:-1].transform(background[NUMERIC + CATEGORICAL]), dtype=np.float32)
    X_ex = np.asarray(pipe[:-1].transform(explained[NUMERIC + CATEGORICAL]), dtype=np.float32)
    np.testing.assert_array_equal(explainer.features(_feeds(explained)), X_ex)  # onnxruntime's preprocessing
    names = pipe[:-1].get_feature_names_out()
    assert explainer.column_sources == [next(c for c in NUMERIC + CATEGORICAL if n.split("__", 1)[1].startswith(c))
                                        for n in names]

    # shap on the final estimator, same transformed background. Rows on a threshold that
    # shap rounds up to float32 are left out (see _shap_float32_flips); a background row
    # among them would shift every explanation, so it is dropped from both sides.
    flips_bg, flips_ex = _shap_float32_flips(gbm, X_bg), _shap_float32_flips(gbm, X_ex)
    assert flips_bg.sum() + flips_ex.sum() <= 0.02 * (len(X_bg) + len(X_ex))
    clean = OnnxTreeExplainer(samples / "credit_gbm.onnx", _feeds(background[~flips_bg]))
    ours = clean.shap_values_matrix(X_ex[~flips_ex])
    reference = shap.TreeExplainer(gbm, data=X_bg[~flips_bg], feature_perturbation="interventional",
                                   model_output="raw")
    theirs = reference.shap_values(X_ex[~flips_ex])
    assert np.abs(theirs).max() > 0.1
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)  # float32 leaf values on both sides

    # additivity against the ONNX model's probability of default (a ZipMap)
    session = ort.InferenceSession(str(samples / "credit_gbm.onnx"), providers=["CPUExecutionProvider"])
    zipmap = session.run(["output_probability"], _feeds(explained))[0]
    p_default = np.array([row[1] for row in zipmap])
    assert 0.005 < p_default.min() and p_default.max() < 0.995  # so float32 logits are good to ~1e-5
    np.testing.assert_allclose(base + values.sum(axis=1), _logit(p_default), rtol=0, atol=1e-4)

    # per original input: the planted ground truth of sample_models/README.md
    grouped = explainer.grouped(values)
    np.testing.assert_allclose(grouped.sum(axis=1), values.sum(axis=1), rtol=0, atol=1e-9)
    assert explainer.groups == NUMERIC + CATEGORICAL
    assert not {"sex", "race", "age_band"} & set(explainer.groups)  # not model inputs
    importance = dict(zip(explainer.groups, np.abs(grouped).mean(axis=0)))
    numeric_rank = sorted(NUMERIC, key=importance.__getitem__)
    assert "n_open_accounts" in numeric_rank[:3]  # independent of everything by construction
    share = importance["zip_region"] / sum(importance.values())
    assert share > 0.05  # the planted proxy for race carries real weight


def test_multiclass_models_explain_one_raw_score_per_class(tmp_path: Path, seed: int) -> None:
    train, rows, _, y_reg = _data(seed)
    y3 = np.digitize(y_reg, np.quantile(y_reg, [1 / 3, 2 / 3]))
    background, explained = rows[:60], rows[60:260]
    forest = RandomForestClassifier(n_estimators=10, max_depth=5, random_state=0).fit(train, y3)
    boosted = GradientBoostingClassifier(n_estimators=15, max_depth=2, random_state=0).fit(train, y3)
    outputs = {}
    for name, model in (("forest", forest), ("boosted", boosted)):
        onx = skl2onnx.to_onnx(model, train[:1], options={id(model): {"zipmap": False}})
        explainer = OnnxTreeExplainer(_save(onx, tmp_path / f"{name}.onnx"), {"X": background})
        values, base = explainer.shap_values({"X": explained})
        assert values.shape == (len(explained), N_FEATURES, 3) and np.shape(base) == (3,)
        assert np.abs(values).max() > 0.01
        p = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"X": explained})[1].astype(np.float64)
        outputs[name] = (values, base, p)

    values, base, p = outputs["forest"]  # averaged votes: raw scores are the probabilities
    np.testing.assert_allclose(base + values.sum(axis=1), p, rtol=0, atol=1e-5)  # float32 outputs
    reference = shap.TreeExplainer(forest, data=background, feature_perturbation="interventional",
                                   model_output="raw")
    np.testing.assert_allclose(values, reference.shap_values(explained), rtol=0, atol=1e-6)

    values, base, p = outputs["boosted"]  # SOFTMAX over one boosted score per class
    raw = base + values.sum(axis=1)
    softmax = np.exp(raw - raw.max(axis=1, keepdims=True))
    np.testing.assert_allclose(softmax / softmax.sum(axis=1, keepdims=True), p, rtol=0, atol=1e-5)
    assert np.all(values[:, UNUSED, :] == 0.0)
