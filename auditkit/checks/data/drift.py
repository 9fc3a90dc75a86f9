"""``drift``: has the audit data moved away from the reference data? Per-feature PSI, KS /
chi-squared tests, Wasserstein distance, prediction drift and a domain classifier."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.params import IntervalParams
from auditkit.core.registry import check
from auditkit.engine.context import AuditContext, AuditData
from auditkit.errors import CheckError
from auditkit.methods.drift import (Binned, bin_categorical, bin_numeric, chi_squared, domain_classifier_scores,
                                    is_numeric, ks_test, psi, wasserstein)
from auditkit.methods.stats import BinaryMetrics, bootstrap, bootstrap_se, level_text, percentile_interval
from auditkit.policy.models import Policy
from auditkit.results.model import CheckOutput, Metric, Plot


class DriftParams(IntervalParams):
    features: Optional[list[str]] = Field(
        None, description="Columns to compare; default: every model input (data.features).")
    bins: int = Field(10, ge=2, le=100, description="PSI bins of a numeric column: edges at the reference's "
                                                    "quantiles 0, 1/bins, ..., 1 (duplicate edges dropped).")
    psi_epsilon: float = Field(1e-4, gt=0, lt=0.01, description="Share given to an empty PSI bin, so that PSI "
                                                                "stays finite.")
    predictions: bool = Field(True, description="Compare the model's scores on the reference with those on the "
                                                "audit data (prediction drift); needs a model.")
    domain_classifier: bool = Field(True, description="Cross-validate a classifier that tells reference rows "
                                                      "from audit rows (domain_auc).")
    folds: int = Field(5, ge=2, le=10, description="Cross-validation folds of the domain classifier.")
    max_rows: int = Field(5_000, ge=100, le=200_000, description="Rows of each sample (seeded) that the domain "
                                                                 "classifier sees; the per-feature figures use all.")
    plot_features: int = Field(3, ge=0, le=20, description="How many of the most drifted features get a chart of "
                                                           "their bins' shares.")


def _features(params: DriftParams, data: AuditData) -> list[str]:
    return list(params.features) if params.features is not None else list(data.features)


def _validate(params: DriftParams, data: AuditData) -> None:
    features = _features(params, data)
    if params.features is not None:
        unknown = [f for f in features if f not in data.frame.columns]
        if unknown:
            raise CheckError(f"params.features: {unknown} are not columns of the audit data")
    if data.reference is not None:
        absent = [f for f in features if f not in data.reference.columns]
        if absent:
            raise CheckError(f"params.features: {absent} are not columns of data.reference "
                             f"(its columns: {', '.join(map(str, list(data.reference.columns)[:20]))})")


def _produces(params: DriftParams, policy: Policy) -> list[str]:
    names = ["psi[*]", "ks_statistic[*]", "ks_pvalue[*]", "chi2_statistic[*]", "chi2_pvalue[*]", "wasserstein[*]",
             "max_psi"]
    if params.predictions:
        names += ["prediction_psi", "prediction_ks_pvalue"]
    if params.domain_classifier:
        names.append("domain_auc")
    return names


@check("drift", probes_inputs=True, family="data", params=DriftParams, validate=_validate,
       metrics=["psi[*]", "ks_statistic[*]", "ks_pvalue[*]", "chi2_statistic[*]", "chi2_pvalue[*]", "wasserstein[*]",
                "max_psi", "prediction_psi", "prediction_ks_pvalue", "domain_auc"],
       produces=_produces,
       example={"params": {"bins": 10, "max_rows": 5000},
                "thresholds": {"psi": {"max": 0.25}, "max_psi": {"max": 0.1, "severity": "warn"},
                               "prediction_psi": {"max": 0.1}, "domain_auc": {"max": 0.6}}})
def drift(ctx: AuditContext, params: DriftParams) -> CheckOutput:
    """Distribution drift of each feature, of the model's scores, and of the rows as a whole, from data.reference to the audit data.

    Per feature (``params.features``, default the model inputs):

    - ``psi[f]``: population stability index, sum_i (a_i - r_i) ln(a_i / r_i) over bins with
      audit shares a_i and reference shares r_i. Numeric bins: edges at the reference's
      quantiles 0, 1/k, ..., 1 (``params.bins``; duplicates dropped), bins [e_i, e_i+1) with the
      outer ones open, so out-of-range values count in the outer bins; categorical: one bin per
      value; missing values: a bin of their own. An empty bin's share is ``params.psi_epsilon``.
      >= 0, 0 = identical; < 0.1 is usually read as stable, > 0.25 as a major shift (Siddiqi 2006).
      ``max_psi`` is the largest over the features.
    - numeric: ``ks_statistic[f]`` and ``ks_pvalue[f]``, the two-sample Kolmogorov-Smirnov test
      on the non-missing values (scipy's ``ks_2samp``), and ``wasserstein[f]``, the first
      Wasserstein distance between the two empirical distributions, in the feature's units.
      Categorical: ``chi2_statistic[f]`` and ``chi2_pvalue[f]``, Pearson's chi-squared test of
      homogeneity of the 2 x k table of counts (missing a category of its own; no continuity
      correction). The p-values are per feature, not corrected for the number of features (the
      note says how many were tested); with large samples a tiny shift is significant: PSI and
      the distances say how large it is.
    - ``prediction_psi`` and ``prediction_ks_pvalue``: the same on the model's audited score
      (binary: the positive class's; regression: the value; multiclass: PSI and chi-squared of
      the predicted class), the reference's scores computed with the audited model. Needs a model.
    - ``domain_auc``: ROC AUC of a histogram gradient-boosting classifier, cross-validated
      (``params.folds``, stratified, seeded), telling reference rows from audit rows on the
      features (``params.max_rows`` of each, seeded), with a percentile-bootstrap interval over
      the out-of-fold predictions. 0.5 = the two samples cannot be told apart; 1 = entirely
      different. It sees joint shifts that no single feature shows (Rabanser et al. 2019).

    Tables: ``features`` (feature, kind, psi, test, statistic, pvalue, wasserstein, missing shares,
    reference_n, audit_n) and ``bins`` (feature, bin, reference_share, audit_share). Skipped without
    ``data.reference``.

    References: Siddiqi (2006), "Credit Risk Scorecards"; Rabanser, Günnemann & Lipton (2019),
    "Failing loudly: an empirical study of methods for detecting dataset shift".

    >>> from auditkit.methods.drift import Binned, psi
    >>> round(psi(Binned(["a", "b"], np.array([50, 50]), np.array([25, 75])), 1e-4), 6)  # 0.25·ln(1/2)·(-1) + 0.25·ln(3/2)
    0.274653
    """
    data = ctx.data
    if data.reference is None:
        return CheckOutput.skip("no data.reference: drift compares the audit data with a reference sample "
                                "(e.g. the training data)")
    reference, current = data.reference, data.frame
    features = _features(params, data)
    notes = [f"reference: {len(reference):,} rows (data.reference); audit: {len(current):,} rows"]
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    bin_records: list[dict[str, Any]] = []
    binned_of: dict[str, Binned] = {}
    tests = {"ks": 0, "chi2": 0}
    for feature in features:
        ref_col, cur_col = reference[feature], current[feature]
        numeric = is_numeric(ref_col) and is_numeric(cur_col)
        if numeric and ref_col.notna().any():
            binned = bin_numeric(ref_col, cur_col, params.bins)
        else:
            binned = bin_categorical(ref_col, cur_col)
            numeric = False
        binned_of[feature] = binned
        value = psi(binned, params.psi_epsilon)
        metrics[f"psi[{feature}]"] = Metric(value, n=int(binned.current_counts.sum()),
                                            note=f"{len(binned.labels)} bins")
        record: dict[str, Any] = {"feature": feature, "kind": "numeric" if numeric else "categorical", "psi": value}
        if numeric:
            ref_values = ref_col.to_numpy(dtype=np.float64, na_value=np.nan)
            cur_values = cur_col.to_numpy(dtype=np.float64, na_value=np.nan)
            ref_values, cur_values = ref_values[~np.isnan(ref_values)], cur_values[~np.isnan(cur_values)]
            if len(cur_values):
                statistic, pvalue = ks_test(ref_values, cur_values)
                distance = wasserstein(ref_values, cur_values)
                metrics[f"ks_statistic[{feature}]"] = Metric(statistic, n=len(cur_values))
                metrics[f"ks_pvalue[{feature}]"] = Metric(pvalue, n=len(cur_values), note="two-sample Kolmogorov-Smirnov")
                metrics[f"wasserstein[{feature}]"] = Metric(distance, n=len(cur_values), note="in the feature's units")
                record.update({"test": "kolmogorov-smirnov", "statistic": statistic, "pvalue": pvalue,
                               "wasserstein": distance})
                tests["ks"] += 1
            else:
                record.update({"test": None, "statistic": None, "pvalue": None, "wasserstein": None})
                notes.append(f"{feature}: every audit value is missing; no test")
        else:
            statistic, pvalue, dof = chi_squared(binned)
            metrics[f"chi2_statistic[{feature}]"] = Metric(statistic, n=int(binned.current_counts.sum()),
                                                           note=f"{dof} degrees of freedom")
            metrics[f"chi2_pvalue[{feature}]"] = Metric(pvalue, n=int(binned.current_counts.sum()),
                                                        note="Pearson chi-squared, no continuity correction")
            record.update({"test": "chi-squared", "statistic": statistic, "pvalue": pvalue, "wasserstein": None})
            tests["chi2"] += 1
        record.update({"reference_missing_share": float(ref_col.isna().mean()),
                       "audit_missing_share": float(cur_col.isna().mean()),
                       "reference_n": int(len(ref_col)), "audit_n": int(len(cur_col))})
        records.append(record)
        r_share, a_share = binned.shares()
        bin_records.extend({"feature": feature, "bin": label, "reference_share": float(r), "audit_share": float(a)}
                           for label, r, a in zip(binned.labels, r_share, a_share))
    if features:
        worst = max(records, key=lambda r: r["psi"])
        metrics["max_psi"] = Metric(worst["psi"], note=f"at {worst['feature']}")
    notes.append(f"{tests['ks']} Kolmogorov-Smirnov and {tests['chi2']} chi-squared tests, one per feature; their "
                 "p-values are not corrected for the number of tests")
    notes.append(f"PSI bins: numeric edges at the reference's quantiles (up to {params.bins} bins), missing values a "
                 f"bin of their own; empty bins count as a share of {params.psi_epsilon:g}")

    plots: list[Plot] = []
    tables: dict[str, list[dict[str, Any]]] = {"features": records, "bins": bin_records}
    ranked = sorted(records, key=lambda r: -r["psi"])
    if ranked:
        plots.append(Plot("bar", "Population stability index by feature", {
            "labels": [r["feature"] for r in ranked], "values": [r["psi"] for r in ranked],
            "x_label": "feature", "y_label": "PSI", "horizontal": True, "n": int(len(current))}))
    for r in ranked[:params.plot_features]:
        binned = binned_of[r["feature"]]
        r_share, a_share = binned.shares()
        positions = list(range(len(binned.labels)))
        plots.append(Plot("line", f"{r['feature']}: share of rows per bin (PSI {r['psi']:.3f})", {
            "series": [{"name": "reference", "x": positions, "y": [float(v) for v in r_share]},
                       {"name": "audit", "x": positions, "y": [float(v) for v in a_share], "style": "bold"}],
            "x_ticks": list(binned.labels), "x_label": r["feature"], "y_label": "share of rows",
            "n": int(len(current))}))

    if params.predictions:
        _prediction_drift(ctx, features, metrics, tables, plots, notes)
    if params.domain_classifier:
        _domain_auc(ctx, params, features, metrics, notes)
    return CheckOutput(metrics=metrics, tables=tables, plots=plots, notes=notes)


def _prediction_drift(ctx: AuditContext, features: list[str], metrics: dict[str, Metric],
                      tables: dict[str, list[dict[str, Any]]], plots: list[Plot], notes: list[str]) -> None:
    data = ctx.data
    if data.predictions_mode:
        notes.append("no prediction drift: recorded predictions (no model to score the reference with)")
        return
    missing = [f for f in data.features if f not in data.reference.columns]  # type: ignore[union-attr]
    if missing:
        notes.append(f"no prediction drift: data.reference lacks model inputs {missing}")
        return
    reference_scores = ctx.model.predict(data.reference[data.features])  # type: ignore[index]
    if data.task == "multiclass":
        classes = np.asarray(data.classes or list(range(reference_scores.shape[1])), dtype=object)
        binned = bin_categorical(pd.Series(classes[reference_scores.argmax(axis=1)]),
                                 pd.Series(classes[np.asarray(data.scores).argmax(axis=1)]))
        statistic, pvalue, _ = chi_squared(binned)
        what = "predicted class"
        notes.append("prediction drift of a multiclass model: PSI and chi-squared test of the predicted class")
    else:
        binned = bin_numeric(pd.Series(reference_scores), pd.Series(np.asarray(data.scores, dtype=np.float64)), 10)
        statistic, pvalue = ks_test(np.asarray(reference_scores, dtype=np.float64),
                                    np.asarray(data.scores, dtype=np.float64))
        what = "score"
    value = psi(binned, 1e-4)
    metrics["prediction_psi"] = Metric(value, n=len(data.scores), note=f"PSI of the model's {what}, "
                                                                       f"{len(binned.labels)} bins at the reference's deciles")
    metrics["prediction_ks_pvalue"] = Metric(pvalue, n=len(data.scores),
                                             note=("chi-squared" if data.task == "multiclass" else
                                                   "two-sample Kolmogorov-Smirnov") + f", statistic {statistic:.4g}")
    r_share, a_share = binned.shares()
    tables["prediction_bins"] = [{"bin": label, "reference_share": float(r), "audit_share": float(a)}
                                 for label, r, a in zip(binned.labels, r_share, a_share)]
    plots.append(Plot("line", f"Model {what}: share of rows per bin (PSI {value:.3f})", {
        "series": [{"name": "reference", "x": list(range(len(binned.labels))), "y": [float(v) for v in r_share]},
                   {"name": "audit", "x": list(range(len(binned.labels))), "y": [float(v) for v in a_share],
                    "style": "bold"}],
        "x_ticks": list(binned.labels), "x_label": what, "y_label": "share of rows", "n": len(data.scores)}))


def _domain_auc(ctx: AuditContext, params: DriftParams, features: list[str], metrics: dict[str, Metric],
                notes: list[str]) -> None:
    data = ctx.data
    reference, current = data.reference[features], data.frame[features]  # type: ignore[index]
    sizes = []
    samples = []
    for frame in (reference, current):
        if len(frame) > params.max_rows:
            frame = frame.iloc[np.sort(ctx.rng.choice(len(frame), params.max_rows, replace=False))]
        samples.append(frame.reset_index(drop=True))
        sizes.append(len(frame))
    if min(sizes) < params.folds:
        metrics["domain_auc"] = Metric(None, note=f"too few rows for {params.folds}-fold cross-validation")
        return
    seed = int(ctx.rng.integers(2**31 - 1))
    y, proba = domain_classifier_scores(samples[0], samples[1], folds=params.folds, seed=seed,
                                        threads=ctx.threads)
    computer = BinaryMetrics(y, (proba >= 0.5).astype(np.float64), proba)
    value = float(computer.compute("roc_auc", np.ones((1, len(y))))[0])
    ci = se = None
    method = None
    if params.bootstrap:
        draws = bootstrap(lambda C: computer.compute("roc_auc", C), len(y), resamples=params.bootstrap, rng=ctx.rng)
        ci, se = percentile_interval(draws, params.confidence), bootstrap_se(draws)
        method = (f"percentile bootstrap over the out-of-fold predictions, {params.bootstrap:,} resamples, "
                  f"{level_text(params.confidence)} level")
    metrics["domain_auc"] = Metric(value, ci=ci, n=len(y), method=method if ci else None,
                                   level=params.confidence if ci else None, se=se if ci else None)
    notes.append(f"domain classifier: histogram gradient boosting, {params.folds}-fold cross-validated, on "
                 f"{sizes[0]:,} reference and {sizes[1]:,} audit rows (seeded samples of at most {params.max_rows:,})")
