"""``noise_robustness``: do the model's decisions hold when its inputs are slightly noisy?

The noisy copies come from :class:`auditkit.methods.noise.Perturber`; the intervals from
:mod:`auditkit.methods.stats`. The check samples rows, draws every level and every feature
alone, predicts them in one call, and summarises per level and per feature.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Optional, Union

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, StrictInt, field_validator

from auditkit.core.decisions import decide
from auditkit.core.registry import CheckParams, check
from auditkit.engine.context import AuditContext, AuditData
from auditkit.methods.noise import Perturber
from auditkit.methods.probes import is_numeric
from auditkit.methods.stats import t_interval, wilson_interval
from auditkit.results.model import CheckOutput, Metric, Plot

# An int stays an int so that a level is named as the policy writes it: ``1`` -> "1", ``1.0`` -> "1.0".
Level = Annotated[Union[StrictInt, float], Field(gt=0)]
PER_LEVEL = ("flip_rate", "mean_abs_score_change", "performance_drop")


def level_name(level: float) -> str:
    """The level as the user wrote it: Python's shortest round-trip form (0.1 -> "0.1", 0.05 -> "0.05")."""
    return repr(level)


class NoiseRobustnessParams(CheckParams):
    levels: list[Level] = Field([0.01, 0.05, 0.1, 0.2], min_length=1,
                                description="Noise levels: the Gaussian noise's standard deviation as a multiple of "
                                            "each numeric feature's standard deviation; each > 0.")
    category_swap: Optional[float] = Field(None, ge=0, le=1,
                                           description="Probability that a categorical value is swapped for another "
                                                       "observed category; default: the level (capped at 1).")
    n_repeats: int = Field(5, ge=2, le=100, description="Seeded noise draws per level; the interval comes from their "
                                                          "spread.")
    renamed = {"repeats": "n_repeats"}  # the name permutation_importance (and scikit-learn) use
    max_rows: int = Field(5_000, ge=10, description="Seeded sample of audit rows (cost grows with it).")
    sensitivity_level: float = Field(0.1, gt=0, description="The level at which each feature is perturbed alone.")
    features: Optional[list[str]] = Field(None, description="Features to perturb; default: every model input.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Two-sided level of the intervals.")
    tolerance: Optional[float] = Field(None, gt=0, description="Regression: a prediction that moves by more than this "
                                                               "(in the target's units) counts as a flip; without "
                                                               "it, regression flip rates are null.")

    @field_validator("levels")
    @classmethod
    def _distinct(cls, levels: list[float]) -> list[float]:
        names = [level_name(v) for v in levels]
        if len(set(names)) != len(names):
            raise ValueError(f"levels must be distinct, got {names}")
        return levels


def _produces(params: NoiseRobustnessParams, policy: Any) -> list[str]:
    names = [f"{stem}[{level_name(v)}]" for stem in PER_LEVEL for v in params.levels]
    # the bare stems let a threshold on ``flip_rate`` apply to every level
    return names + list(PER_LEVEL) + ["sensitivity[*]"]


@dataclass(frozen=True)
class _Base:
    """The sampled rows' unperturbed audited scores, and what counts as a flip: a binary
    decision that changes, a multiclass predicted class that changes (the score is then the
    probability of the row's predicted class), a regression prediction that moves by more than
    the declared tolerance (None: no flips)."""

    scores: npt.NDArray[np.float64]
    decisions: Optional[npt.NDArray[Any]]  # None when flips are undefined
    threshold: float
    tolerance: Optional[float] = None

    def flips(self, scores: npt.NDArray[np.float64], predicted: Optional[npt.NDArray[Any]] = None
              ) -> npt.NDArray[np.bool_]:
        if predicted is not None:
            return predicted != self.decisions
        if self.tolerance is not None:
            return np.abs(scores - self.scores) > self.tolerance
        return decide(scores, self.threshold) != self.decisions


@dataclass(frozen=True)
class _Performance:
    """ROC AUC (binary), accuracy (multiclass: on predicted class indices) or R² (regression) on the
    labelled sampled rows; ``func`` None when undefined."""

    name: str
    labelled: npt.NDArray[np.bool_]
    y: Optional[npt.NDArray[np.float64]]
    func: Optional[Callable[..., float]]
    base: float = float("nan")

    def drops(self, block: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The drop of the metric on each noisy copy (a row of ``block``)."""
        assert self.func is not None
        return np.array([self.base - float(self.func(self.y, row[self.labelled])) for row in block])


def _performance(data: AuditData, positions: npt.NDArray[np.int64], base: _Base, notes: list[str]) -> _Performance:
    binary = data.task == "binary"
    labelled = data.labelled[positions] if data.y is not None else np.zeros(len(positions), dtype=bool)
    if data.task == "multiclass":
        if not labelled.any():
            return _Performance("accuracy", labelled, None, None)
        classes = [str(c) for c in (data.classes or [])]
        lookup = {c: i for i, c in enumerate(classes)}
        y_index = np.array([lookup.get(str(v), -1) for v in np.asarray(data.y, dtype=object)[positions][labelled]])

        def accuracy(y: Any, predicted: Any) -> float:
            return float(np.mean(np.asarray(predicted) == y))

        base_accuracy = accuracy(y_index, np.asarray(base.decisions)[labelled])
        notes.append(f"performance_drop is the drop of accuracy from {base_accuracy:.4g} on "
                     f"{int(labelled.sum()):,} labelled rows")
        return _Performance("accuracy", labelled, y_index, accuracy, base_accuracy)
    name = "roc_auc" if binary else "r2"
    y = np.asarray(data.y, dtype=np.float64)[positions][labelled] if labelled.any() else None
    if y is None:
        return _Performance(name, labelled, None, None)
    from sklearn import metrics as skm

    if binary and len(np.unique(y)) < 2:
        notes.append("performance_drop: the labelled rows hold one class only, ROC AUC is undefined")
        return _Performance(name, labelled, y, None)
    func = skm.roc_auc_score if binary else skm.r2_score
    base_perf = float(func(y, base.scores[labelled]))
    notes.append(f"performance_drop is the drop of {name} from {base_perf:.4g} on "
                 f"{int(labelled.sum()):,} labelled rows")
    return _Performance(name, labelled, y, func, base_perf)


def _feature_notes(X: pd.DataFrame, perturber: Perturber, features: list[str],
                   params: NoiseRobustnessParams) -> list[str]:
    notes: list[str] = []
    numeric = perturber.numeric
    integer_like = [f for f in features if f in numeric and np.all(np.mod(X[f].dropna().to_numpy(float), 1) == 0)]
    if integer_like:
        notes.append(f"integer-valued {', '.join(integer_like)} get continuous noise (the model sees floats)")
    constant = [f for f in features if f in numeric and perturber.std[numeric.index(f)] == 0]
    if constant:
        notes.append(f"{', '.join(constant)} {'has' if len(constant) == 1 else 'have'} no spread: left unchanged")
    swapped = [c for c in perturber.categorical if c in features]
    if swapped:
        how = ("with probability the level" if params.category_swap is None
               else f"with probability {params.category_swap:g}")
        notes.append(f"categorical {', '.join(swapped)} swapped {how} for another observed category, drawn by "
                     f"frequency")
    return notes


def _per_level(params: NoiseRobustnessParams, scores: npt.NDArray[np.float64], base: _Base,
               performance: _Performance, predicted: Optional[npt.NDArray[Any]] = None
               ) -> tuple[dict[str, Metric], list[dict[str, Any]]]:
    """Per level: flip rate, mean |score change| and performance drop, each the mean of the
    ``n_repeats`` draws with a Student-t interval over them; ``scores`` is (levels x repeats, n)."""
    n, level = len(base.scores), params.confidence
    method = f"mean of {params.n_repeats} noise draws, Student-t interval over the draws"
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    for li, raw in enumerate(params.levels):
        name = level_name(raw)
        block = scores[li * params.n_repeats:(li + 1) * params.n_repeats]
        change, change_ci = t_interval(np.abs(block - base.scores).mean(axis=1), level)
        record: dict[str, Any] = {"level": raw, "n": n, "flip_rate": None, "flip_rate_ci": None,
                                  "mean_abs_score_change": change, "mean_abs_score_change_ci": list(change_ci),
                                  "performance_drop": None, "performance_drop_ci": None}
        chosen = None if predicted is None else predicted[li * params.n_repeats:(li + 1) * params.n_repeats]
        if base.decisions is not None:
            flip, flip_ci = t_interval(base.flips(block, chosen).mean(axis=1), level)
            metrics[f"flip_rate[{name}]"] = Metric(flip, ci=flip_ci, n=n, method=method, level=level)
            record.update(flip_rate=flip, flip_rate_ci=list(flip_ci))
        else:
            metrics[f"flip_rate[{name}]"] = Metric(None, n=n, note=NO_TOLERANCE)
        metrics[f"mean_abs_score_change[{name}]"] = Metric(change, ci=change_ci, n=n, method=method, level=level)
        if performance.func is not None:
            drop, drop_ci = t_interval(performance.drops(block if predicted is None else chosen), level)
            metrics[f"performance_drop[{name}]"] = Metric(drop, ci=drop_ci, n=int(performance.labelled.sum()),
                                                          method=method, level=level,
                                                          note=f"drop of {performance.name} against the "
                                                               f"unperturbed rows")
            record.update(performance_drop=drop, performance_drop_ci=list(drop_ci))
        records.append(record)
    return metrics, records


def _sensitivity(params: NoiseRobustnessParams, features: list[str], perturber: Perturber,
                 scores: npt.NDArray[np.float64], base: _Base, predicted: Optional[npt.NDArray[Any]] = None
                 ) -> tuple[dict[str, Metric], list[dict[str, Any]]]:
    """Per feature perturbed alone (one draw, a row of ``scores``): its flip rate with a Wilson
    interval over rows, and its mean |score change|; records ranked by flip rate."""
    n, numeric = len(base.scores), perturber.numeric
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    for i, feature in enumerate(features):
        change = float(np.abs(scores[i] - base.scores).mean())
        entry: dict[str, Any] = {"feature": feature, "kind": "numeric" if feature in numeric else "categorical",
                                 "scale": float(perturber.std[numeric.index(feature)]) if feature in numeric else None,
                                 "flip_rate": None, "flip_rate_ci": None, "mean_abs_score_change": change}
        if base.decisions is not None:
            flips = int(base.flips(scores[i], None if predicted is None else predicted[i]).sum())
            ci = wilson_interval(flips, n, params.confidence)
            metrics[f"sensitivity[{feature}]"] = Metric(flips / n, ci=ci, n=n, level=params.confidence,
                                                        method="one noise draw, Wilson interval over rows")
            entry.update(flip_rate=flips / n, flip_rate_ci=list(ci))
        else:
            metrics[f"sensitivity[{feature}]"] = Metric(None, n=n, note=NO_TOLERANCE)
        records.append(entry)
    records.sort(key=lambda r: (-(r["flip_rate"] or 0.0), -r["mean_abs_score_change"]))
    for rank, entry in enumerate(records, start=1):
        entry["rank"] = rank
    return metrics, records


def _level_plot(title: str, name: str, key: str, records: list[dict[str, Any]], y_label: str, n: int,
                level: float) -> Plot:
    return Plot("line", title, {
        "series": [{"name": name, "x": [float(r["level"]) for r in records], "y": [r[key] for r in records],
                    "y_low": [r[f"{key}_ci"][0] for r in records], "y_high": [r[f"{key}_ci"][1] for r in records]}],
        "x_label": "noise level (multiple of each feature's standard deviation)", "y_label": y_label, "n": n,
        "level": level})


def _plots(params: NoiseRobustnessParams, records: list[dict[str, Any]], sensitivity: list[dict[str, Any]],
           base: _Base, performance: _Performance) -> list[Plot]:
    n = len(base.scores)
    if base.decisions is not None:
        plots = [_level_plot("Decisions that flip under input noise", "flip rate", "flip_rate", records,
                             "share of decisions changed", n, params.confidence)]
    else:
        plots = [_level_plot("Score change under input noise", "mean |score change|", "mean_abs_score_change",
                             records, "mean absolute score change", n, params.confidence)]
    if any(r["performance_drop"] is not None for r in records):
        plots.append(_level_plot(f"Drop of {performance.name} under input noise", f"{performance.name} drop",
                                 "performance_drop", records, f"drop of {performance.name}",
                                 int(performance.labelled.sum()), params.confidence))
    key = "flip_rate" if base.decisions is not None else "mean_abs_score_change"
    plots.append(Plot("bar", f"Sensitivity per feature (noise level {level_name(params.sensitivity_level)})", {
        "labels": [r["feature"] for r in sensitivity], "values": [r[key] for r in sensitivity],
        **({"ci_low": [r["flip_rate_ci"][0] for r in sensitivity],
            "ci_high": [r["flip_rate_ci"][1] for r in sensitivity], "level": params.confidence}
           if key == "flip_rate" else {}),
        "y_label": "share of decisions changed" if key == "flip_rate" else "mean absolute score change",
        "horizontal": True, "n": n}))
    return plots


NO_TOLERANCE = "regression without params.tolerance: no decision, so no flip rate"

CAVEATS = (
    "Noise is drawn independently per feature in multiples of each feature's standard deviation; real measurement error may be correlated or one-sided.",
)


@check("noise_robustness", probes_inputs=True, caveats=CAVEATS, family="robustness", params=NoiseRobustnessParams, needs_model=True,
       metrics=["flip_rate[*]", "mean_abs_score_change[*]", "performance_drop[*]", "sensitivity[*]"],
       produces=_produces,
       example={"params": {"levels": [0.01, 0.05, 0.1, 0.2], "n_repeats": 5, "max_rows": 5000},
                "thresholds": {"flip_rate[0.05]": {"max": 0.02}, "flip_rate[0.2]": {"max": 0.1, "severity": "warn"}}})
def noise_robustness(ctx: AuditContext, params: NoiseRobustnessParams) -> CheckOutput:
    """Share of decisions that change when the inputs get small random noise, per noise level.

    Each numeric feature :math:`x_j` gets Gaussian noise scaled by its standard deviation
    :math:`s_j` (over the audit rows, ``ddof=1``): :math:`\\tilde x_j = x_j + \\sigma s_j \\varepsilon`,
    :math:`\\varepsilon \\sim N(0, 1)`, for every level :math:`\\sigma` in ``params.levels``. Each
    categorical (text, boolean) feature is swapped, with probability ``params.category_swap``
    (default: the level, capped at 1), for another observed category drawn by its frequency. A
    missing value stays missing. Integer-valued columns get continuous noise (the model sees
    floats). Every level is drawn ``params.n_repeats`` times on a seeded sample of at most
    ``params.max_rows`` rows, and all noisy copies are predicted in large batches.

    Metrics, per level (named as the policy writes the level, e.g. ``flip_rate[0.1]``):

    - ``flip_rate[level]`` = mean over rows of :math:`1[d(\\tilde x) \\ne d(x)]`, where the
      decision :math:`d` is ``score >= threshold`` (binary). Range [0, 1]; 0 = no decision moves,
      lower is better. Multiclass: the predicted class (the most probable) changes. Regression:
      the prediction moves by more than ``params.tolerance`` (target units); without a tolerance,
      undefined (null, with a note).
    - ``mean_abs_score_change[level]`` = mean of :math:`|f(\\tilde x) - f(x)|`, in the units of
      the score (multiclass: the probability of the row's unperturbed predicted class; regression:
      the target's units). Range [0, inf); lower is better.
    - ``performance_drop[level]`` = metric on the unperturbed rows - metric on the noisy rows
      (ROC AUC for a binary model, accuracy for multiclass, R² for regression), on the labelled sampled rows. Range
      [-1, 1] for AUC; 0 = no loss, lower is better. Only when the data are labelled.

    Their interval is a Student-t interval over the ``params.n_repeats`` draws: it reflects the
    noise, conditional on the sampled rows.

    ``sensitivity[feature]`` = flip rate when only that feature is perturbed, at
    ``params.sensitivity_level``, one draw; range [0, 1], 0 = the decision ignores noise on that
    feature (exactly 0 when the model does not use it), lower is better; a Wilson interval over
    rows (each row's noise is independent). Tables: ``levels`` (``level``, ``flip_rate``,
    ``flip_rate_ci``, ``mean_abs_score_change``, ``mean_abs_score_change_ci``,
    ``performance_drop``, ``performance_drop_ci``, ``n``) and ``sensitivity`` (``feature``,
    ``kind``, ``scale``, ``flip_rate``, ``flip_rate_ci``, ``mean_abs_score_change``, ``rank``).

    For a score equal to one feature, :math:`s = x` with threshold :math:`t`, the expected flip
    rate is :math:`\\operatorname{E}[\\Phi(-|x - t| / (\\sigma s_x))]`. A row exactly on the
    threshold flips half the time, and one far away never does:

    >>> from scipy.stats import norm
    >>> from fractions import Fraction
    >>> Fraction(float(norm.cdf(-abs(0.5 - 0.5) / 0.1)))
    Fraction(1, 2)

    References
    ----------
    Hendrycks, D. & Dietterich, T. (2019). Benchmarking neural network robustness to common
    corruptions and perturbations. ICLR. Cohen, J., Rosenfeld, E. & Kolter, Z. (2019). Certified
    adversarial robustness via randomized smoothing. ICML (flip probability under Gaussian
    noise). Wilson, E. B. (1927). Probable inference... JASA 22, 209-212.
    """
    data = ctx.data
    if data.predictions_mode:
        return CheckOutput.skip("predictions mode: noise robustness needs to query the model")
    if params.tolerance is not None and data.task != "regression":
        from auditkit.errors import CheckError

        raise CheckError(f"params.tolerance applies to regression models (a flip is a move beyond it); this is a "
                         f"{data.task} task, whose flips are changed decisions")
    features = params.features if params.features is not None else list(data.features)
    ctx.require_features(features)

    # -------- sampling
    notes: list[str] = []
    positions = ctx.sample_positions(params.max_rows, notes)
    X = data.frame.iloc[positions][data.features].reset_index(drop=True)
    binary, multiclass = data.task == "binary", data.task == "multiclass"
    threshold = data.threshold if data.threshold is not None else 0.5
    if binary and data.threshold is None:
        notes.append("no model threshold given: decisions use 0.5")
    scores = np.asarray(data.scores, dtype=np.float64)[positions]
    if multiclass:
        top = scores.argmax(axis=1)  # the predicted class; its probability is the score followed
        base = _Base(scores[np.arange(len(top)), top], top, threshold)
    elif binary:
        base = _Base(scores, decide(scores, threshold), threshold)
    else:
        base = _Base(scores, None if params.tolerance is None else np.zeros(len(scores)), threshold, params.tolerance)

    # -------- noising: every level x repeat, then every feature alone; one model call
    numeric = [f for f in data.features if is_numeric(X[f])]
    perturber = Perturber(X, data.frame, numeric, [f for f in data.features if f not in numeric])
    notes.extend(_feature_notes(X, perturber, features, params))
    sigmas = np.repeat(np.array([float(v) for v in params.levels]), params.n_repeats)
    swap = np.minimum(sigmas if params.category_swap is None else np.full(len(sigmas), params.category_swap), 1.0)
    levels = perturber.copies(ctx.rng, sigmas, swap, features)
    sensitivity_swap = params.sensitivity_level if params.category_swap is None else params.category_swap
    alone = perturber.one_at_a_time(ctx.rng, params.sensitivity_level, min(sensitivity_swap, 1.0), features)
    noisy = np.asarray(ctx.model.predict(perturber.stacked_frame([levels, alone], list(data.features))),
                       dtype=np.float64)
    predicted = None
    if multiclass:
        probabilities = noisy.reshape(len(sigmas) + len(features), len(X), -1)
        predicted = probabilities.argmax(axis=2)
        noisy = np.take_along_axis(probabilities, np.broadcast_to(base.decisions, predicted.shape)[:, :, None],
                                   axis=2)[:, :, 0]
    noisy = noisy.reshape(len(sigmas) + len(features), len(X))

    # -------- per level, then per feature
    performance = _performance(data, positions, base, notes)
    metrics, records = _per_level(params, noisy[:len(sigmas)], base, performance,
                                  None if predicted is None else predicted[:len(sigmas)])
    if multiclass:
        notes.append("multiclass: a flip is a change of the predicted (most probable) class; score changes are in "
                     "the probability of each row's unperturbed predicted class")
    elif params.tolerance is not None:
        notes.append(f"regression: a flip is a prediction moving by more than {params.tolerance:g}"
                     + (f" ({data.target}, the target's units)" if data.target else " (the target's units)"))
    elif not binary:
        notes.append("regression: flip rates are undefined (null) without params.tolerance; score changes are "
                     "reported" + (f" in {data.target}'s units" if data.target else ""))
    sensitivity_metrics, sensitivity = _sensitivity(params, features, perturber, noisy[len(sigmas):], base,
                                                    None if predicted is None else predicted[len(sigmas):])
    metrics.update(sensitivity_metrics)
    notes.append(f"sensitivity: each feature perturbed alone at level {level_name(params.sensitivity_level)}, "
                 f"one draw; {noisy.size:,} noisy rows predicted")
    return CheckOutput(metrics=metrics, tables={"levels": records, "sensitivity": sensitivity},
                       plots=_plots(params, records, sensitivity, base, performance), notes=notes)
