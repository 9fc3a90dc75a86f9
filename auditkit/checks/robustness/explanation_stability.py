"""``explanation_stability``: do explanations hold still when the input or the sample wobbles?"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.methods.shap_values import background_rows, explain, explain_classes
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric, Plot


class ExplanationStabilityParams(CheckParams):
    max_rows: int = Field(200, ge=10, description="Rows whose explanations are compared (seeded sample).")
    noise: float = Field(0.01, gt=0, description="Noise on numeric features, in standard deviations.")
    bootstrap: int = Field(20, ge=2, le=500, description="Resamples of the explained rows for global importance.")
    background_size: int = Field(100, ge=1, le=5_000)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of two rankings (NaN when either is constant)."""
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


CAVEATS = (
    'Stability is measured under small Gaussian noise and resampling; it does not test adversarial manipulation of explanations.',
)


@check("explanation_stability", probes_inputs=True, caveats=CAVEATS, family="robustness", params=ExplanationStabilityParams, needs_model=True,
       metrics=["rank_stability", "rank_stability_lower_quartile", "global_rank_stability"],
       example={"params": {"max_rows": 200, "noise": 0.01}, "thresholds": {"rank_stability": {"min": 0.8}}})
def explanation_stability(ctx: AuditContext, params: ExplanationStabilityParams) -> CheckOutput:
    """Spearman correlation of SHAP rankings under small input noise and under resampling.

    Local: each sampled row and a copy with Gaussian noise of ``params.noise`` standard
    deviations on its numeric features are explained with the same explainer and background
    as ``shap_importance``; the Spearman correlation of their |SHAP| values over features is
    the row's stability (1 = same ranking, 0 = unrelated, negative = reversed).
    ``rank_stability`` = its median over rows, ``rank_stability_lower_quartile`` = its 25th
    percentile (a quarter of rows are less stable). Global: the mean |SHAP| ranking of
    ``params.bootstrap`` resamples of the explained rows against that of all of them;
    ``global_rank_stability`` = the median correlation. Higher is better. Multiclass: a row and
    its noisy copy are explained on the row's predicted class (SHAP per class).
    """
    data = ctx.data
    notes: list[str] = []
    positions = ctx.sample_positions(params.max_rows, notes)
    X = data.frame.iloc[positions][data.features].reset_index(drop=True)
    background, described = background_rows(ctx, params.background_size)
    notes.append(f"background: {described}")
    noisy = X.copy()
    for feature in data.features:
        column = data.frame[feature]
        if pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            sd = float(column.std())
            shift = ctx.rng.normal(0.0, params.noise * (sd if sd > 0 else 1.0), len(X))
            noisy[feature] = X[feature].astype(np.float64) + shift  # missing values stay missing
    both_rows = pd.concat([X, noisy], ignore_index=True)
    if data.task == "multiclass":
        # each row and its noisy copy are explained on the row's (unperturbed) predicted class
        predicted = np.asarray(data.scores)[positions].argmax(axis=1)
        both = explain_classes(ctx.model, both_rows, background, list(data.features)).for_rows(
            np.concatenate([predicted, predicted]))
        notes.append("multiclass: each row and its noisy copy are explained on the row's predicted class")
    else:
        both = explain(ctx.model, both_rows, background, list(data.features))
    notes.insert(0, f"explainer: {both.explainer}")
    original, perturbed = np.abs(both.values[: len(X)]), np.abs(both.values[len(X):])
    local = np.array([_spearman(original[i], perturbed[i]) for i in range(len(X))])
    defined = local[np.isfinite(local)]
    if len(defined) < len(local):
        notes.append(f"{len(local) - len(defined)} rows have constant SHAP values (no ranking) and are left out")
    n = len(defined)
    metrics: dict[str, Metric] = {
        "rank_stability": Metric(float(np.median(defined)) if n else None, n=n,
                                 method=f"median over rows; noise {params.noise:g} sd on numeric features"),
        "rank_stability_lower_quartile": Metric(float(np.quantile(defined, 0.25)) if n else None, n=n),
    }
    overall = original.mean(axis=0)
    global_corr = []
    for _ in range(params.bootstrap):
        rows = ctx.rng.integers(0, len(X), len(X))
        global_corr.append(_spearman(overall, original[rows].mean(axis=0)))
    finite = np.array([c for c in global_corr if np.isfinite(c)])
    metrics["global_rank_stability"] = Metric(float(np.median(finite)) if len(finite) else None, n=len(X),
                                              method=f"median over {params.bootstrap} bootstrap resamples of the rows")
    worst = np.argsort(np.where(np.isfinite(local), local, np.inf))[:20]
    rows_table: list[dict[str, Any]] = [{"row": int(data.frame.index[positions[i]]), "rank_stability": float(local[i]),
                                         "top_feature": data.features[int(np.argmax(original[i]))],
                                         "top_feature_after_noise": data.features[int(np.argmax(perturbed[i]))]}
                                        for i in worst if np.isfinite(local[i])]
    counts, edges = np.histogram(defined, bins=10, range=(-1.0, 1.0)) if n else (np.zeros(10), np.linspace(-1, 1, 11))
    plot = Plot("hist", "Rank stability of local explanations under input noise", {
        "edges": [float(e) for e in edges], "counts": [int(c) for c in counts], "x_label": "Spearman correlation",
        "y_label": "rows", "n": n})
    return CheckOutput(metrics=metrics, tables={"least_stable_rows": rows_table}, plots=[plot], notes=notes)
