"""``surrogate_tree``: a shallow decision tree that imitates the model, and how faithfully."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.decisions import decide
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric


class SurrogateTreeParams(CheckParams):
    max_depth: int = Field(3, ge=1, le=8, description="Depth of the surrogate (deeper: more faithful, less readable).")
    test_share: float = Field(0.3, gt=0, lt=1, description="Share of rows held out to measure fidelity.")
    min_leaf_share: float = Field(0.01, gt=0, lt=0.5, description="Smallest leaf, as a share of the training rows.")
    max_rows: int = Field(50_000, ge=100)


def _encode(frame: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Numbers as they are; categories one-hot, so that rules read 'purpose = car'."""
    parts = []
    for name in features:
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            parts.append(column.astype(np.float64).rename(name))
        else:
            text = column.astype(object).where(column.notna(), "(missing)").astype(str)
            dummies = pd.get_dummies(text, prefix=name, prefix_sep=" = ", dtype=np.float64)
            parts.append(dummies)
    return pd.concat(parts, axis=1)


def _rules(tree: Any, names: list[str], classes: list[str] | None = None) -> list[dict[str, Any]]:
    """One record per leaf: its conditions, rows and mean score (multiclass: the class it rates
    highest, that class's mean probability as ``mean_score``, and each class's as ``P(class)``)."""
    t = tree.tree_
    out: list[dict[str, Any]] = []

    def walk(node: int, conditions: list[str]) -> None:
        if t.children_left[node] == -1:
            record: dict[str, Any] = {"rule": " AND ".join(conditions) or "(all rows)",
                                      "n": int(t.n_node_samples[node])}
            if classes:
                means = [float(v) for v in np.ravel(t.value[node])]
                top = int(np.argmax(means))
                record.update({"class": classes[top], "mean_score": means[top]},
                              **{f"P({c})": m for c, m in zip(classes, means)})
            else:
                record["mean_score"] = float(t.value[node][0][0])
            out.append(record)
            return
        name, threshold = names[t.feature[node]], float(t.threshold[node])
        if " = " in name:  # a one-hot column: <= 0.5 means "not this category"
            left, right = f"{name.replace(' = ', ' != ')}", name
        else:
            left, right = f"{name} <= {threshold:.4g}", f"{name} > {threshold:.4g}"
        walk(t.children_left[node], conditions + [left])
        walk(t.children_right[node], conditions + [right])

    walk(0, [])
    return sorted(out, key=lambda r: -r["mean_score"])


CAVEATS = (
    'A surrogate explains the model only as far as its fidelity goes; read its rules with the fidelity figure.',
)


@check("surrogate_tree", probes_inputs=True, caveats=CAVEATS, family="explanations", params=SurrogateTreeParams,
       metrics=["fidelity_r2", "fidelity_accuracy", "leaves"],
       example={"params": {"max_depth": 3}, "thresholds": {"fidelity_r2": {"min": 0.7}}})
def surrogate_tree(ctx: AuditContext, params: SurrogateTreeParams) -> CheckOutput:
    """A shallow regression tree trained on the model's own scores, and its fidelity.

    ``fidelity_r2`` = R^2 of the surrogate's scores against the model's on held-out rows (1 =
    the tree reproduces the model; higher is better); ``fidelity_accuracy`` = share of
    held-out rows where the surrogate's decision (its score against the model's threshold)
    equals the model's decision. Table ``rules``: each leaf as a rule with its rows and mean
    score; the tree is trained on the base predictions only (works in predictions mode). A
    multiclass model is imitated by one multi-output tree on its class probabilities
    (``fidelity_r2`` averaged over classes; ``fidelity_accuracy`` on the predicted class).
    """
    from sklearn.metrics import r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.tree import DecisionTreeRegressor

    data = ctx.data
    frame = data.frame
    notes: list[str] = []
    positions = ctx.sample_positions(params.max_rows, notes)
    X = _encode(frame.iloc[positions], data.features)
    scores = data.scores[positions]
    seed = int(ctx.rng.integers(2**31 - 1))
    X_train, X_test, s_train, s_test = train_test_split(X, scores, test_size=params.test_share, random_state=seed)
    tree = DecisionTreeRegressor(max_depth=params.max_depth, random_state=seed,
                                 min_samples_leaf=max(1, int(params.min_leaf_share * len(X_train))))
    tree.fit(X_train, s_train)
    predicted = tree.predict(X_test)
    metrics = {"fidelity_r2": Metric(float(r2_score(s_test, predicted)), n=len(s_test),
                                     method=f"held-out {params.test_share:.0%} of rows"),
               "leaves": Metric(float(tree.get_n_leaves()))}
    if data.task == "multiclass":
        # one multi-output tree imitates every class probability; its decision is the class it rates highest
        agree = predicted.argmax(axis=1) == s_test.argmax(axis=1)
        metrics["fidelity_accuracy"] = Metric(float(agree.mean()), n=len(s_test),
                                              method=f"held-out {params.test_share:.0%} of rows; predicted classes")
        notes.append("multiclass: one multi-output tree fitted to every class probability; fidelity_r2 is R^2 "
                     "averaged over the classes, fidelity_accuracy the share of rows given the model's predicted class")
    elif data.task == "binary" and data.threshold is not None:
        agree = decide(predicted, data.threshold) == decide(s_test, data.threshold)
        metrics["fidelity_accuracy"] = Metric(float(agree.mean()), n=len(s_test),
                                              method=f"held-out {params.test_share:.0%} of rows")
    from sklearn.tree import export_text

    text = export_text(tree, feature_names=list(X.columns), decimals=4)
    notes.append(f"surrogate: regression tree of depth {params.max_depth}, trained on {len(X_train):,} rows")
    importance = sorted(zip(X.columns, tree.feature_importances_), key=lambda p: -p[1])
    return CheckOutput(metrics=metrics,
                       tables={"rules": _rules(tree, list(X.columns), [str(c) for c in data.classes or []]
                                               if data.task == "multiclass" else None),
                               "splits_importance": [{"feature": f, "importance": float(v)}
                                                     for f, v in importance if v > 0]},
                       notes=notes + ["tree as text:\n" + text])
