"""``influential_instances``: which training rows move the audited scores most when left out.

In the data family: the check's findings are rows of the training data (``data.reference``),
and what it asks is a question about that data (which examples the model leans on), as the
design's catalogue files it under "data influence"; its output is a table of data rows.
"""
from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.registry import CheckParams, check
from auditkit.engine.context import AuditContext
from auditkit.methods.influence import RowInfluence, closed_form_influence, linear_fit_of, refit_influence
from auditkit.results.model import CheckOutput, Metric, Plot


class InfluentialInstancesParams(CheckParams):
    method: Literal["auto", "closed_form", "refit"] = Field(
        "auto", description="closed_form: leave-one-out in closed form (logistic, linear and ridge regression); "
                            "refit: leave-one-out refits of a sample of training rows (any scikit-learn estimator); "
                            "auto: closed_form where it applies, else refit.")
    max_rows: int = Field(2_000, ge=1, le=100_000, description="Audited rows whose scores are watched (a seeded "
                                                               "sample of the audit data).")
    max_refits: int = Field(20, ge=1, le=2_000, description="refit: how many training rows (a seeded sample) are "
                                                            "each left out in turn; one refit each.")
    max_training_rows: int = Field(5_000, ge=50, description="refit: the training data is a seeded sample of this "
                                                             "many reference rows (each refit's cost grows with it).")
    top_k: int = Field(10, ge=1, le=200, description="Most influential training rows reported.")


def _score(fitted: Any, X: pd.DataFrame, task: str, positive: str) -> np.ndarray:
    if task == "regression":
        return np.asarray(fitted.predict(X), dtype=np.float64).ravel()
    classes = [str(c) for c in fitted.classes_]
    if hasattr(fitted, "predict_proba"):
        return np.asarray(fitted.predict_proba(X), dtype=np.float64)[:, classes.index(positive)]
    raw = np.asarray(fitted.decision_function(X), dtype=np.float64)
    return raw if classes.index(positive) == 1 else -raw


@check("influential_instances", probes_inputs=True, family="data", params=InfluentialInstancesParams, needs_model=True,
       needs_target=True, metrics=["max_influence", "max_score_change", "max_decisions_flipped", "rows_assessed"],
       example={"params": {"max_rows": 2000, "top_k": 10},
                "thresholds": {"max_influence": {"max": 0.001}, "max_decisions_flipped": {"max": 0, "severity": "warn"}}})
def influential_instances(ctx: AuditContext, params: InfluentialInstancesParams) -> CheckOutput:
    """The training rows whose removal moves the audited scores most (leave-one-out influence).

    The training rows are ``data.reference`` (with the target); the audited rows a seeded sample
    of ``params.max_rows`` audit rows. For each training row j, the model is refitted without it
    and the audited scores s_a compared: influence_j = mean over audited rows of
    |s_a(without j) - s_a| (in the score's units: probability for a classifier), with
    ``max_score_change`` the largest single |change| and ``decisions_flipped`` how many audited
    decisions cross the threshold. 0 = the row changes nothing; higher = the model leans on it.

    - Closed form (a logistic regression with an L2 penalty or none, a linear or ridge
      regression, alone or as a Pipeline's last step): the model is refitted once on the
      reference (its own hyper-parameters, then polished by Newton steps to the exact optimum)
      and theta_-j - theta = c r_j H^-1 z_j / (1 - c w_j z_j' H^-1 z_j) for every training row, with
      H the Hessian of the penalised objective of the refitted model; exact for least squares
      (the PRESS identity), Pregibon's (1981) one-step Newton approximation for logistic loss.
      A Pipeline's preprocessing is held as fitted on all the reference rows.
    - Refits (any other refittable scikit-learn estimator): ``params.max_refits`` training rows,
      a seeded sample of a seeded sample of ``params.max_training_rows`` reference rows, are each
      left out and the estimator refitted (same hyper-parameters and random_state). The note gives
      ``refit noise``: the same figure between two full refits with another random_state, below
      which an influence cannot be told from the estimator's randomness.

    Metrics: ``max_influence`` (the largest influence_j), ``max_score_change``,
    ``max_decisions_flipped``, ``rows_assessed`` (training rows assessed). Table ``influential``:
    the ``params.top_k`` most influential training rows (``row`` = position in the reference file,
    its target, influence, max_score_change, decisions_flipped, and its feature values).
    Skipped for models that cannot be refitted (ONNX, recorded predictions), multiclass models,
    and without a reference that has the target.

    References: Cook (1977), "Detection of influential observation in linear regression";
    Pregibon (1981), "Logistic regression diagnostics"; Koh & Liang (2017), "Understanding
    black-box predictions via influence functions".

    >>> from auditkit.methods.influence import LinearFit, leave_one_out_steps
    >>> fit = LinearFit(np.array([2.0]), True, False, 1.0, 0.0)  # least squares on a constant: the mean
    >>> [float(v) for v in leave_one_out_steps(fit, np.zeros((4, 0)), np.array([1.0, 1.0, 1.0, 5.0]))[:, 0]]
    [0.3333333333333333, 0.3333333333333333, 0.3333333333333333, -1.0]
    """
    from sklearn.base import clone

    data = ctx.data
    model = ctx.model
    estimator = getattr(model, "estimator", None)
    if estimator is None:
        return CheckOutput.skip(f"influential_instances refits the model; a {model.format} model cannot be refitted "
                                "(only scikit-learn estimators from pickle, joblib or skops)")
    if data.task == "multiclass":
        return CheckOutput.skip("multiclass models are not covered yet (binary and regression only)")
    reference = data.reference
    if reference is None or data.target is None or data.target not in reference.columns:
        return CheckOutput.skip("the training rows are data.reference with the target column; none was given")
    columns = list(model.input_features or data.features)
    missing = [c for c in columns if c not in reference.columns]
    if missing:
        return CheckOutput.skip(f"data.reference lacks model inputs {missing}")
    notes: list[str] = []
    labelled = reference[data.target].notna().to_numpy()
    train_rows = np.flatnonzero(labelled)  # positions in the reference file: the table's `row`
    X_train = reference[columns].iloc[train_rows].reset_index(drop=True)
    y_raw = reference[data.target].iloc[train_rows].reset_index(drop=True)
    if len(train_rows) < len(reference):
        notes.append(f"{len(reference) - len(train_rows):,} reference rows without a target are left out")
    positions = ctx.sample_positions(params.max_rows, notes, what="audited scores: a seeded sample of")
    X_audit = data.frame[columns].iloc[positions]
    threshold = data.threshold if data.task == "binary" else None
    positive = str(data.positive_class)

    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps else estimator
    linear, why = linear_fit_of(final, 1)
    if params.method == "closed_form" and linear is None:
        return CheckOutput.skip(f"no closed form for this model ({why}); use method: refit")
    use_closed_form = linear is not None and params.method != "refit"

    if use_closed_form:
        influence, rows_assessed = _closed_form(estimator, X_train, y_raw, X_audit, data, positive, threshold,
                                                positions, notes)
        method_text = why
    else:
        if linear is None and params.method == "auto":
            notes.append(f"no closed form ({why}): leave-one-out refits")
        influence, rows_assessed, train_sample = _refits(clone, estimator, X_train, y_raw, X_audit, data.task,
                                                         positive, threshold, params, ctx, notes)
        train_rows = train_rows[train_sample]
        X_train = X_train.iloc[train_sample].reset_index(drop=True)
        y_raw = y_raw.iloc[train_sample].reset_index(drop=True)
        method_text = f"leave-one-out refits of {len(train_sample):,} sampled training rows"

    order = np.argsort(-influence.mean_abs_change, kind="stable")[:params.top_k]
    records = []
    for rank, i in enumerate(order, start=1):
        record: dict[str, Any] = {"rank": rank, "row": int(train_rows[i]), "target": _plain(y_raw.iloc[i]),
                                  "influence": float(influence.mean_abs_change[i]),
                                  "max_score_change": float(influence.max_abs_change[i]),
                                  "decisions_flipped": int(influence.decisions_flipped[i])}
        record.update({c: _plain(X_train[c].iloc[i]) for c in columns})
        records.append(record)
    n_audit = len(positions)
    metrics = {
        "max_influence": Metric(float(influence.mean_abs_change.max()), n=n_audit,
                                note=f"row {int(train_rows[order[0]])}; {method_text}"),
        "max_score_change": Metric(float(influence.max_abs_change.max()), n=n_audit),
        "max_decisions_flipped": Metric(float(influence.decisions_flipped.max()), n=n_audit,
                                        note=None if threshold is not None else "no decisions (regression)"),
        "rows_assessed": Metric(float(rows_assessed)),
    }
    notes.append(f"{method_text}; {rows_assessed:,} training rows assessed against {n_audit:,} audited scores")
    plot = Plot("bar", "Most influential training rows: mean change of the audited scores when left out", {
        "labels": [f"row {r['row']}" for r in records], "values": [r["influence"] for r in records],
        "x_label": "training row (data.reference)", "y_label": "mean |score change|", "horizontal": True,
        "n": n_audit})
    return CheckOutput(metrics=metrics, tables={"influential": records}, plots=[plot], notes=notes)


def _plain(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if np.isnan(value) else float(value)
    return None if (pd.api.types.is_scalar(value) and pd.isna(value)) else (value if isinstance(value, (int, str))
                                                                             else str(value))


def _closed_form(estimator: Any, X_train: pd.DataFrame, y_raw: pd.Series, X_audit: pd.DataFrame, data: Any,
                 positive: str, threshold: float | None, positions: np.ndarray, notes: list[str]
                 ) -> tuple[RowInfluence, int]:
    from sklearn.base import clone

    refitted = clone(estimator).fit(X_train, y_raw.to_numpy())
    steps = getattr(refitted, "steps", None)
    final = steps[-1][1] if steps else refitted
    transform = (lambda X: np.asarray(refitted[:-1].transform(X), dtype=np.float64)) if steps else \
        (lambda X: X.to_numpy(dtype=np.float64))
    Z_train, Z_audit = transform(X_train), transform(X_audit)
    if steps:
        notes.append("the pipeline's preprocessing is held as fitted on every reference row; the influence is that "
                     "of each row on the final model's parameters")
    fit, _ = linear_fit_of(final, 1)
    assert fit is not None
    if fit.logistic:
        classes = [str(c) for c in final.classes_]
        y = (y_raw.astype(str).to_numpy() == classes[1]).astype(np.float64)  # the log-odds are of classes_[1]
        positive_first = classes.index(positive) == 0
    else:
        y, positive_first = y_raw.to_numpy(dtype=np.float64), False
    fit, gradient_norm = fit.polished(Z_train, y)
    notes.append(f"refitted on {len(Z_train):,} reference rows and polished by Newton steps (gradient norm left "
                 f"{gradient_norm:.1e})")
    audited_now = np.asarray(data.scores, dtype=np.float64)[positions]
    refit_scores = fit.predict(fit.design(Z_audit))
    refit_scores = 1.0 - refit_scores if positive_first else refit_scores
    notes.append(f"the refitted model's audited scores differ from the audited model's by at most "
                 f"{float(np.max(np.abs(refit_scores - audited_now))):.2g} (large when data.reference is not the "
                 "data the model was trained on)")
    influence = closed_form_influence(fit, Z_train, y, Z_audit, threshold=threshold, positive_first=positive_first)
    return influence, len(Z_train)


def _refits(clone: Any, estimator: Any, X_train: pd.DataFrame, y_raw: pd.Series, X_audit: pd.DataFrame, task: str,
            positive: str, threshold: float | None, params: InfluentialInstancesParams, ctx: AuditContext,
            notes: list[str]) -> tuple[RowInfluence, int, np.ndarray]:
    sample = np.arange(len(X_train))
    if len(sample) > params.max_training_rows:
        sample = np.sort(ctx.rng.choice(len(sample), params.max_training_rows, replace=False))
        notes.append(f"refits on a seeded sample of {params.max_training_rows:,} of {len(X_train):,} reference rows "
                     "(the influence is that of a row on a model trained on that sample)")
    X, y = X_train.iloc[sample].reset_index(drop=True), y_raw.iloc[sample].to_numpy()
    left_out = np.sort(ctx.rng.choice(len(X), min(params.max_refits, len(X)), replace=False))

    def fit_and_score(drop: np.ndarray | None, model: Any = estimator) -> np.ndarray:
        keep = np.ones(len(X), dtype=bool)
        if drop is not None:
            keep[drop] = False
        fitted = clone(model).fit(X[keep], y[keep])
        return _score(fitted, X_audit, task, positive)

    influence, base = refit_influence(fit_and_score, left_out, threshold=threshold)
    seeds = {k: v for k, v in estimator.get_params().items() if k == "random_state" or k.endswith("__random_state")}
    if seeds:
        other = clone(estimator).set_params(**{k: (0 if v is None else int(v)) + 1 for k, v in seeds.items()})
        noise = float(np.mean(np.abs(fit_and_score(None, other) - base)))
        notes.append(f"refit noise: {noise:.3g} mean |score change| between two full refits with another "
                     "random_state; an influence below it cannot be told from the estimator's randomness")
    else:
        notes.append("refit noise: none (the estimator has no random_state: refits are deterministic)")
    return influence, len(left_out), sample[left_out]  # positions in X_train of the rows left out
