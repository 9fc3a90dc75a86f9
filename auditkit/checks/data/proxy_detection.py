"""``proxy_detection``: which features stand in for a protected attribute?"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.methods.groups import make_grouping
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot


class ProxyDetectionParams(CheckParams):
    attributes: Optional[list[str]] = Field(None, description="Protected attributes; default: data.protected.")
    features: Optional[list[str]] = Field(None, description="Candidate proxies; default: the model's features.")
    folds: int = Field(5, ge=2, le=20, description="Cross-validation folds.")
    max_rows: int = Field(10_000, ge=100, description="Seeded stratified sample of rows used (cost grows with it).")
    max_depth: int = Field(4, ge=1, le=12, description="Depth of the per-feature trees.")
    mi_bins: int = Field(20, ge=2, le=200, description="Quantile bins of a numeric feature for mutual information.")


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    metric = finding["metric"]
    if "[" not in metric or finding.get("value") is None:
        return None
    attribute = metric[:-1].split("[", 1)[1]
    rows = [r for r in result.get("tables", {}).get("proxies", []) if r["attribute"] == attribute]
    if not rows:
        return None
    top = rows[0]
    return (f"'{top['feature']}' alone predicts {attribute} (group '{top['group']}' against the rest) with a "
            f"cross-validated AUC of {top['auc']:.2f}; the policy allows at most {finding.get('max', 1):.2f}.")


def _oof_scores(x: pd.Series, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]], n_classes: int,
                max_depth: int, seed: int) -> np.ndarray:
    """Out-of-fold class probabilities from one feature alone."""
    from sklearn.tree import DecisionTreeClassifier

    out = np.zeros((len(y), n_classes))
    categorical = not (pd.api.types.is_numeric_dtype(x.dtype) and not pd.api.types.is_bool_dtype(x.dtype))
    values = x.astype(object).where(x.notna(), "(missing)").astype(str).to_numpy() if categorical else \
        x.to_numpy(dtype=np.float64, na_value=np.nan)
    for train, test in folds:
        if categorical:
            # each category's group shares on the training folds (smoothed towards the overall share)
            prior = np.bincount(y[train], minlength=n_classes) / len(train)
            frame = pd.DataFrame({"v": values[train], "y": y[train]})
            counts = pd.crosstab(frame["v"], frame["y"]).reindex(columns=range(n_classes), fill_value=0)
            shares = (counts.to_numpy() + 10 * prior) / (counts.to_numpy().sum(axis=1, keepdims=True) + 10)
            lookup = dict(zip(counts.index, shares))
            out[test] = np.array([lookup.get(v, prior) for v in values[test]])
        else:
            column = values.copy()
            fill = np.nanmedian(column[train]) if np.isfinite(column[train]).any() else 0.0
            column = np.where(np.isnan(column), fill, column)
            tree = DecisionTreeClassifier(max_depth=max_depth, min_samples_leaf=max(5, len(train) // 200),
                                          random_state=seed).fit(column[train, None], y[train])
            proba = tree.predict_proba(column[test, None])
            out[np.ix_(test, tree.classes_)] = proba
    return out


def _discrete(x: pd.Series, categorical: bool, bins: int) -> np.ndarray:
    """Codes for mutual information: categories as they are, numbers in quantile bins, missing apart."""
    if categorical:
        return pd.factorize(x.astype(object).where(x.notna(), "(missing)"))[0]
    codes = pd.qcut(x, q=bins, labels=False, duplicates="drop")
    return np.where(codes.isna(), -1, codes).astype(np.int64)


def _auc_by_group(y: np.ndarray, scores: np.ndarray, labels: list[str]) -> tuple[float, str, float]:
    """(best one-vs-rest AUC, its group, macro AUC) — a feature that singles out any group is a proxy."""
    from sklearn.metrics import roc_auc_score

    aucs = []
    for k in range(scores.shape[1]):
        target = y == k
        aucs.append(roc_auc_score(target, scores[:, k]) if 0 < target.sum() < len(y) else np.nan)
    aucs_arr = np.array(aucs)
    if len(labels) == 2:  # one curve: both one-vs-rest AUCs are the same figure
        aucs_arr = aucs_arr[1:]
        labels = labels[1:]
    best = int(np.nanargmax(aucs_arr))
    return float(aucs_arr[best]), labels[best], float(np.nanmean(aucs_arr))


CAVEATS = (
    'A low single-feature AUC does not rule out proxies formed by combinations of features; the all-features AUC bounds that only for the classifier used.',
)


@check("proxy_detection", probes_inputs=True, caveats=CAVEATS, family="data", params=ProxyDetectionParams, reading=_reading,
       metrics=["max_single_feature_auc[*]", "all_features_auc[*]", "max_mutual_information[*]",
                "max_mutual_information_share[*]"],
       example={"params": {"attributes": ["race", "sex"]}, "thresholds": {"max_single_feature_auc": {"max": 0.7}}})
def proxy_detection(ctx: AuditContext, params: ProxyDetectionParams) -> CheckOutput:
    """How well each feature alone, and all features together, predict each protected attribute.

    For each attribute and feature: the cross-validated (``params.folds``, stratified,
    seeded) one-vs-rest ROC AUC of a small model on that feature alone — a shallow tree for
    numeric features, smoothed per-category group shares for categorical ones — for the group
    it singles out best (``auc``, with ``group``), the macro average over groups, and the
    mutual information between feature and attribute (nats, with numeric features in
    ``params.mi_bins`` quantile bins; ``mi_share`` = MI / entropy of the attribute, in [0, 1]). All features together: the same AUC from a gradient-boosted
    model. AUC 0.5 = no information, 1 = the feature reveals the group; lower is better.
    Metrics per attribute: ``max_single_feature_auc``, ``all_features_auc``,
    ``max_mutual_information``, ``max_mutual_information_share``. Works in predictions mode
    (it reads data only).
    """
    from sklearn.metrics import mutual_info_score
    from sklearn.model_selection import StratifiedKFold

    data = ctx.data
    attributes = params.attributes if params.attributes is not None else list(data.protected)
    if not attributes:
        raise CheckError("no protected attribute: set data.protected or params.attributes")
    features = params.features if params.features is not None else [f for f in data.features if f not in attributes]
    missing = [c for c in features + attributes if c not in data.frame.columns]
    if missing:
        raise CheckError(f"columns not in the data: {missing}")
    if not features:
        raise CheckError("no candidate feature to test")
    frame = data.frame
    notes: list[str] = []
    frame = frame.iloc[ctx.sample_positions(params.max_rows, notes)]
    seed = int(ctx.rng.integers(2**31 - 1))
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    overall: list[dict[str, Any]] = []
    plots: list[Plot] = []
    for attribute in attributes:
        grouping = make_grouping(frame, [attribute], {})
        y = grouping.codes
        counts = np.bincount(y)
        if len(grouping.labels) < 2:
            raise CheckError(f"attribute '{attribute}' has a single group: nothing to predict")
        keep_groups = counts >= params.folds  # a group needs a row in every fold
        if not keep_groups.all():
            notes.append(f"{attribute}: groups with fewer than {params.folds} rows are left out: "
                         + ", ".join(l for l, k in zip(grouping.labels, keep_groups) if not k))
        mask = keep_groups[y]
        labels = [l for l, k in zip(grouping.labels, keep_groups) if k]
        remap = np.cumsum(keep_groups) - 1
        y_kept = remap[y[mask]]
        sub = frame[mask]
        splitter = StratifiedKFold(n_splits=params.folds, shuffle=True, random_state=seed)
        folds = list(splitter.split(np.zeros(len(y_kept)), y_kept))
        p = np.bincount(y_kept) / len(y_kept)
        entropy = float(-(p[p > 0] * np.log(p[p > 0])).sum())
        attribute_records = []
        for feature in features:
            scores = _oof_scores(sub[feature], y_kept, folds, len(labels), params.max_depth, seed)
            auc, group, macro = _auc_by_group(y_kept, scores, labels)
            x = sub[feature]
            categorical = not (pd.api.types.is_numeric_dtype(x.dtype) and not pd.api.types.is_bool_dtype(x.dtype))
            mi = float(mutual_info_score(_discrete(x, categorical, params.mi_bins), y_kept))
            attribute_records.append({"attribute": attribute, "feature": feature, "auc": auc, "group": group,
                                      "macro_auc": macro, "mutual_information": mi,
                                      "mi_share": mi / entropy if entropy > 0 else None,
                                      "kind": "categorical" if categorical else "numeric"})
        attribute_records.sort(key=lambda r: -r["auc"])
        for rank, record in enumerate(attribute_records, start=1):
            record["rank"] = rank
        records.extend(attribute_records)
        together = _all_features_auc(sub[features], y_kept, folds, labels, seed)
        overall.append({"attribute": attribute, "auc": together[0], "group": together[1], "macro_auc": together[2],
                        "n": int(len(y_kept)), "features": len(features)})
        n = int(len(y_kept))
        metrics[f"max_single_feature_auc[{attribute}]"] = Metric(attribute_records[0]["auc"], n=n,
                                                                  method=f"{params.folds}-fold cross-validated")
        metrics[f"all_features_auc[{attribute}]"] = Metric(together[0], n=n, method=f"{params.folds}-fold cross-validated")
        best_mi = max(attribute_records, key=lambda r: r["mutual_information"])
        metrics[f"max_mutual_information[{attribute}]"] = Metric(best_mi["mutual_information"], n=n)
        metrics[f"max_mutual_information_share[{attribute}]"] = Metric(best_mi["mi_share"], n=n)
        plots.append(Plot("bar", f"How well each feature alone predicts {attribute} (AUC)", {
            "labels": [r["feature"] for r in attribute_records], "values": [r["auc"] for r in attribute_records],
            "y_label": "cross-validated AUC", "attribute": attribute, "n": n, "horizontal": True}))
    return CheckOutput(metrics=metrics, tables={"proxies": records, "all_features": overall}, plots=plots,
                       notes=notes)


def _all_features_auc(X: pd.DataFrame, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                      labels: list[str], seed: int) -> tuple[float, str, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    encoded = pd.DataFrame(index=X.index)
    categorical = []
    for name in X.columns:
        x = X[name]
        if pd.api.types.is_numeric_dtype(x.dtype) and not pd.api.types.is_bool_dtype(x.dtype):
            encoded[name] = x.astype(np.float64)
            categorical.append(False)
        else:
            encoded[name] = pd.factorize(x.astype(object).where(x.notna(), "(missing)"))[0].astype(np.float64)
            categorical.append(True)
    values = encoded.to_numpy()
    scores = np.zeros((len(y), len(labels)))
    for train, test in folds:
        model = HistGradientBoostingClassifier(max_iter=60, max_depth=4, categorical_features=np.array(categorical),
                                               random_state=seed).fit(values[train], y[train])
        scores[np.ix_(test, model.classes_)] = model.predict_proba(values[test])
    return _auc_by_group(y, scores, labels)
