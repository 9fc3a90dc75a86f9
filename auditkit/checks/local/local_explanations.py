"""``local_explanations``: why was THIS decision made — SHAP and LIME per row, their agreement, reason codes."""
from __future__ import annotations

import math
from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.methods.shap_values import background_rows, explain, explain_classes
from auditkit.core.params import RowSelectionParams
from auditkit.methods.rows import select_positions, validate_selection
from auditkit.methods.values import finite_or_none, plain_value
from auditkit.methods.probes import is_numeric
from auditkit.methods.sensitive import (EXCLUDE_DESCRIPTION, ExcludeFromReasons, excluded_features, exclusion_note,
                                        validate_excluded)
from auditkit.engine.context import AuditContext
from auditkit.core.registry import check
from auditkit.methods.lime_tabular import explain_rows, lime_explainer
from auditkit.results.model import CheckOutput, Metric, Plot


class LocalExplanationsParams(RowSelectionParams):
    top_k: int = Field(4, ge=1, le=20, description="Reason codes per row, and the k of the top-k agreement.")
    lime_samples: int = Field(5_000, ge=100, le=100_000, description="LIME's perturbed samples per row.")
    background_size: int = Field(200, ge=1, le=5_000, description="Rows behind SHAP's expectation and LIME's "
                                                                  "sampling statistics (as shap_importance).")
    waterfalls: int = Field(10, ge=0, le=200, description="Rows drawn as a waterfall chart (all rows are in the "
                                                          "tables and the case files).")
    exclude_from_reasons: ExcludeFromReasons = Field(False, description=EXCLUDE_DESCRIPTION)
    target_class: Optional[str] = Field(None, description="Multiclass: explain every row's probability of this "
                                                          "class; default: each row's predicted class.")


class _Standing:
    """Where a value stands among the audited cases (columns sorted once, looked up per reason)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self._sorted: dict[str, np.ndarray] = {}
        self._shares: dict[str, pd.Series] = {}

    def text(self, feature: str, value: Any) -> str:
        if pd.isna(value):
            return "missing"
        column = self.frame[feature]
        if is_numeric(column):
            if feature not in self._sorted:
                self._sorted[feature] = np.sort(column.dropna().to_numpy(dtype=np.float64))
            ordered = self._sorted[feature]
            # the side with more cases strictly beyond the value: with ties (counts, flags) "higher
            # than 45%" says more about n_late_payments = 1 than "lower than 16%"
            below = np.searchsorted(ordered, float(value), side="left") / len(ordered)
            above = 1 - np.searchsorted(ordered, float(value), side="right") / len(ordered)
            if below >= above:
                return f"higher than {_floor_percent(below)} of the audited cases"
            return f"lower than {_floor_percent(above)} of the audited cases"
        if feature not in self._shares:
            self._shares[feature] = column.dropna().astype(str).value_counts(normalize=True)
        return f"shared by {float(self._shares[feature].get(str(value), 0.0)):.0%} of the audited cases"


def _floor_percent(share: float) -> str:
    """Rounded down, so that "higher than 100%" is never written for a share below 1."""
    return f"{math.floor(share * 100)}%"


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def _validate(params: LocalExplanationsParams, data: Any) -> None:
    validate_selection(params, data)
    validate_excluded(params.exclude_from_reasons, data)


def _raw_threshold(threshold: float | None, units: str) -> float | None:
    """The decision threshold in the units SHAP explains (log-odds for probabilities)."""
    if threshold is None:
        return None
    if units == "log-odds":
        if not 0 < threshold < 1:
            return None
        return float(np.log(threshold) - np.log1p(-threshold))
    return float(threshold)


CAVEATS = (
    'LIME fits a local linear model on random perturbations: its weights vary with the sampling and the kernel width; the SHAP-LIME agreement figure says how far they can be trusted here.',
    'Reason codes rank contributions to the score; they are not causes, and a reason that is a proxy for a protected attribute must not be cited in an adverse-action notice.',
)


@check("local_explanations", probes_inputs=True, caveats=CAVEATS, family="local", params=LocalExplanationsParams, needs_model=True,
       case_file=(("decision", "explanations"), ("reasons", "reasons"), ("charts", None)),
       metrics=["lime_fidelity", "lime_fidelity_min", "shap_lime_agreement", "top_k_overlap", "sign_agreement",
                "reason_code_coverage", "additivity_error"],
       example={"params": {"query": "decision == 1", "sample": 5, "lime_samples": 2000},
                "thresholds": {"shap_lime_agreement": {"min": 0.5}, "lime_fidelity_min": {"min": 0.1, "severity": "warn"}}},
       validate=_validate)
def local_explanations(ctx: AuditContext, params: LocalExplanationsParams) -> CheckOutput:
    """Per-row SHAP values and LIME weights, how well they agree, and reason codes.

    Rows: ``params.rows`` (file row numbers), or ``params.query`` (a pandas query with
    ``score`` and ``decision`` columns; a seeded sample of ``params.sample`` of its rows when
    it selects more), or a seeded sample of ``params.sample`` rows stratified by decision.
    SHAP: the same explainer and background as ``shap_importance``, in raw-output units, so
    ``base_value`` + a row's ``shap`` values = its raw score (``additivity_error`` is the
    largest gap). LIME: the ``lime`` package's tabular explainer (quartile-discretised,
    seeded once with the check's seed and run over the rows in order, exactly as its
    documentation's loop does; ``params.lime_samples`` samples per row) on the same raw
    output, sampling around the background's statistics; its local fit R^2 is
    ``lime_fidelity`` (median over rows; ``_min`` the worst). ``shap_lime_agreement`` =
    median over rows of the Spearman correlation of |SHAP| and |LIME weight| across features
    (1 = the two rank the features alike; a low figure means the explanations of single
    decisions should not be trusted without a second look). ``top_k_overlap`` = median share
    of the top-k features they share; ``sign_agreement`` = mean share of SHAP's top-k
    features to which LIME gives the same sign. Reason codes: for each row with the unfavourable
    decision, the top-k features whose SHAP value pushed it towards that decision, as
    sentences with the row's value and its percentile among the audit rows;
    ``reason_code_coverage`` = share of those rows that received at least one.
    ``params.exclude_from_reasons`` (true: the protected attributes and data.proxies; or a
    list of columns) keeps features out of the reason codes only: their SHAP values stay in
    table ``attributions`` and the waterfalls, and a note counts the rows where one of them
    would have been among the top-k reasons.

    Multiclass: each row explains its predicted class (or ``params.target_class``), SHAP per class
    as ``shap_importance``; a boosted model's softmax margins are explained centred over the
    classes (log p_c minus the mean log-probability, which the probabilities determine; SHAP
    values phi_c minus their mean over classes), so LIME explains the same function; every row
    gets reason codes towards its explained class. Regression: attributions are in the target's units.

    References: Ribeiro, Singh and Guestrin (2016), "Why should I trust you?" (LIME); Lundberg
    and Lee (2017), A unified approach to interpreting model predictions (SHAP).
    """
    from scipy.stats import spearmanr

    data = ctx.data
    multiclass = data.task == "multiclass"
    classes = [str(c) for c in (data.classes or [])]
    if params.target_class is not None and params.target_class not in classes:
        from auditkit.errors import CheckError

        raise CheckError(f"params.target_class: '{params.target_class}' is not a class of this model"
                         + (f"; classes: {', '.join(classes)}" if classes else f" ({data.task} task)"))
    positions = select_positions(data, params, ctx.rng)
    features = list(data.features)
    X = data.frame.iloc[positions][features]
    background, described = background_rows(ctx, params.background_size)
    chosen: np.ndarray | None = None  # multiclass: the class each row's explanation is about
    if multiclass:
        probabilities = np.asarray(data.scores)[positions]
        chosen = (np.full(len(positions), classes.index(params.target_class)) if params.target_class is not None
                  else probabilities.argmax(axis=1))
        per_class = explain_classes(ctx.model, X, background, features).centred()
        shap_result = per_class.for_rows(chosen)
    else:
        shap_result = explain(ctx.model, X, background, features)
    seed = int(ctx.rng.integers(2**31 - 1))
    notes = [f"SHAP: {shap_result.explainer}; units: {shap_result.units}; background: {described}",
             f"LIME: lime {_lime_version()} LimeTabularExplainer (random_state {seed}; regression on the raw output, quartile "
             f"discretisation, {params.lime_samples:,} samples per row, statistics of the same background)"]
    notes.extend(shap_result.notes)
    if multiclass:
        notes.append("multiclass: each row explains " + (f"its probability of class {params.target_class}"
                     if params.target_class is not None else "its predicted class")
                     + f", in {shap_result.units}; SHAP and LIME explain the same function of the probabilities")
    elif data.task == "regression" and data.target:
        notes.append(f"regression: attributions are in the units of the predicted {data.target}")

    encoder = _Encoder(data.frame, features)
    logistic = shap_result.units == "log-odds"
    centred = shap_result.units.startswith("centred")

    def score_of(c: int | None) -> Any:
        def predict(matrix: np.ndarray) -> np.ndarray:
            scores = ctx.model.predict(encoder.decode(matrix))
            if c is not None:
                if centred:  # log p_c - mean_k log p_k, the explained centred margin
                    logs = np.log(np.clip(np.asarray(scores, dtype=np.float64), 1e-12, None))
                    return logs[:, c] - logs.mean(axis=1)
                return scores[:, c]
            if logistic:
                q = np.clip(scores, 1e-7, 1 - 1e-7)
                return np.log(q) - np.log1p(-q)
            return scores
        return predict

    explainer = lime_explainer(encoder.encode(background), features, encoder.categorical, seed)
    unfavourable = 1 - data.favorable_decision
    towards_one = 1.0 if unfavourable == 1 else -1.0  # a positive SHAP value pushes towards decision 1
    decisions = np.asarray(data.decisions)[positions] if data.decisions is not None else None
    explanations, attributions, reasons = [], [], []
    fidelities, agreements, overlaps, sign_agreements = [], [], [], []
    weights_by_row = []
    covered = needing = 0
    encoded = encoder.encode(X)
    if chosen is None:
        lime_rows = explain_rows(explainer, encoded, score_of(None), num_samples=params.lime_samples)
    else:  # one row at a time, in order: the same seeded loop, each row on its own class's score
        lime_rows = [explain_rows(explainer, encoded[r:r + 1], score_of(int(chosen[r])),
                                  num_samples=params.lime_samples)[0] for r in range(len(chosen))]
    k = min(params.top_k, len(features))
    standing = _Standing(data.frame)
    excluded = excluded_features(params.exclude_from_reasons, data)
    kept_out = {j for j, f in enumerate(features) if f in excluded}
    would_cite: dict[str, int] = {}  # excluded feature -> rows where it would have been a top-k reason
    for r, position in enumerate(positions):
        row_id = int(data.frame.index[position])
        lime_row = lime_rows[r]
        row_values = X.iloc[r]
        weights = lime_row.weights
        weights_by_row.append(weights)
        fidelity = lime_row.fidelity
        shap_row = shap_result.values[r]
        agreement = float(spearmanr(np.abs(shap_row), np.abs(weights)).statistic) \
            if np.ptp(np.abs(shap_row)) > 0 and np.ptp(np.abs(weights)) > 0 else float("nan")
        top_shap = np.argsort(-np.abs(shap_row), kind="stable")[:k]
        overlap = len(set(top_shap) & set(np.argsort(-np.abs(weights), kind="stable")[:k])) / k
        signs_agree = float(np.mean(np.sign(shap_row[top_shap]) == np.sign(weights[top_shap])))
        fidelities.append(fidelity)
        agreements.append(agreement)
        overlaps.append(overlap)
        sign_agreements.append(signs_agree)
        if chosen is not None:
            decision: Any = str(decisions[r]) if decisions is not None else None
            score = float(np.asarray(data.scores)[position, chosen[r]])
        else:
            decision = None if decisions is None else int(decisions[r])
            score = float(data.scores[position])
        explanations.append({"row": row_id, "score": score, "decision": decision,
                             **({"explained_class": classes[int(chosen[r])]} if chosen is not None else {}),
                             "base_value": shap_result.base_of(r),
                             "raw_output": finite_or_none(shap_result.raw_output[r]),
                             "lime_fidelity": fidelity, "lime_intercept": lime_row.intercept,
                             "shap_lime_agreement": None if np.isnan(agreement) else agreement,
                             "top_k_overlap": overlap, "sign_agreement": signs_agree})
        order = np.argsort(-np.abs(shap_row), kind="stable")
        for rank, j in enumerate(order, start=1):
            value = row_values[features[j]]
            attributions.append({"row": row_id, "feature": features[j], "value": plain_value(value),
                                 "shap": float(shap_row[j]), "lime_weight": float(weights[j]), "rank": rank})
        if chosen is not None or (decision is not None and decision == unfavourable):
            # multiclass: every row's reasons are what pushed it towards its explained class
            needing += 1
            pushing_all = [j for j in order if (1.0 if chosen is not None else towards_one) * shap_row[j] > 0]
            for j in pushing_all[:k]:
                if j in kept_out:
                    would_cite[features[j]] = would_cite.get(features[j], 0) + 1
            pushing = [j for j in pushing_all if j not in kept_out][:k]
            covered += bool(pushing)
            for rank, j in enumerate(pushing, start=1):
                value = row_values[features[j]]
                reasons.append({"row": row_id, "rank": rank, "feature": features[j], "value": plain_value(value),
                                "shap": float(shap_row[j]),
                                "text": f"{features[j]} = {_format(value)}, "
                                        f"{standing.text(features[j], value)}"})
    finite = [a for a in agreements if np.isfinite(a)]
    n = len(positions)
    note = exclusion_note(excluded, features, "never cited as reasons:")
    if note is not None:
        # the model still uses them: say how often a notice would have cited them
        notes.append(note + ("; " + ", ".join(f"{f} would have been among the top {k} reasons of {c} of the {needing} "
                                               f"unfavourable decisions" for f, c in would_cite.items())
                             if would_cite else ""))
    metrics = {
        "lime_fidelity": Metric(float(np.median(fidelities)), n=n, note="median local R^2 of LIME's fit"),
        "lime_fidelity_min": Metric(float(np.min(fidelities)), n=n, note="the worst row's local R^2"),
        "shap_lime_agreement": Metric(float(np.median(finite)) if finite else None, n=len(finite),
                                      note="median Spearman correlation of |SHAP| and |LIME weight|"
                                      if finite else "no row had features of differing importance"),
        "top_k_overlap": Metric(float(np.median(overlaps)), n=n, note=f"top {k} features"),
        "sign_agreement": Metric(float(np.mean(sign_agreements)), n=n,
                                 note=f"share of SHAP's top {k} features to which LIME gives the same sign"),
        "reason_code_coverage": Metric(covered / needing if needing else None, n=needing,
                                       note=("rows given at least one reason towards their explained class"
                                             if multiclass else "rows with the unfavourable decision given at least "
                                             "one reason") if needing else "no explained row had the unfavourable decision"),
        "additivity_error": Metric(shap_result.additivity_error, n=n,
                                   note="largest |base + sum of SHAP - raw output|"),
    }
    threshold = None if multiclass else _raw_threshold(data.threshold, shap_result.units)
    plots = [_waterfall(explanations[r], shap_result.values[r], weights_by_row[r], X.iloc[r], features,
                        shap_result.units, threshold) for r in range(min(n, params.waterfalls))]
    if n > params.waterfalls:
        notes.append(f"waterfall charts for the first {params.waterfalls} of {n} rows (params.waterfalls); "
                     f"every row is in the tables")
    return CheckOutput(metrics=metrics, tables={"explanations": explanations, "attributions": attributions,
                                                "reasons": reasons}, plots=plots, notes=notes)


WATERFALL_FEATURES = 10


def _waterfall(explanation: dict[str, Any], shap_row: np.ndarray, lime_row: np.ndarray, values: pd.Series,
               features: list[str], units: str, threshold: float | None) -> Plot:
    order = np.argsort(-np.abs(shap_row), kind="stable")
    shown, rest = order[:WATERFALL_FEATURES], order[WATERFALL_FEATURES:]
    labels = [f"{features[j]} = {_format(values[features[j]])}" for j in shown]
    contributions = [float(shap_row[j]) for j in shown]
    side = [float(lime_row[j]) for j in shown]
    if len(rest):
        labels.append(f"{len(rest)} other features")
        contributions.append(float(shap_row[rest].sum()))
        side.append(float(lime_row[rest].sum()))
    decision = explanation["decision"]
    title = (f"Row {explanation['row']}: score {explanation['score']:.3g}"
             + ("" if decision is None else f", decision {decision}")
             + f" — SHAP waterfall ({units}) and LIME weights")
    data: dict[str, Any] = {"labels": labels, "values": contributions, "base": explanation["base_value"],
                            "output": explanation["raw_output"], "side_values": side,
                            "x_label": f"model output ({units})", "side_label": "LIME weight", "row": explanation["row"]}
    if threshold is not None:
        data["threshold"] = threshold
        data["threshold_label"] = "decision threshold"
    return Plot("waterfall", title, data)


class _Encoder:
    """LIME samples numbers: categories become codes, decoded again before the model sees them."""

    def __init__(self, frame: pd.DataFrame, features: list[str]):
        self.features = features
        self.categorical = [i for i, f in enumerate(features) if not is_numeric(frame[f])]
        self.categories = {i: sorted(frame[features[i]].dropna().astype(str).unique()) for i in self.categorical}
        self.medians = {f: float(frame[f].median()) for i, f in enumerate(features) if i not in self.categories}
        self.dtypes = {f: frame[f].dtype for f in features}

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), len(self.features)))
        for i, f in enumerate(self.features):
            if i in self.categories:
                lookup = {c: k for k, c in enumerate(self.categories[i])}
                out[:, i] = [lookup.get(str(v), 0) for v in frame[f]]
            else:
                out[:, i] = frame[f].astype(np.float64).fillna(self.medians[f]).to_numpy()
        return out

    def decode(self, matrix: np.ndarray) -> pd.DataFrame:
        frame = pd.DataFrame(matrix, columns=self.features)
        for i, values in self.categories.items():
            codes = np.clip(np.rint(matrix[:, i]).astype(int), 0, len(values) - 1)
            frame[self.features[i]] = np.asarray(values, dtype=object)[codes]
        return frame


def _lime_version() -> str:
    from importlib.metadata import version

    return version("lime")
