"""``noise_robustness``: do the model's decisions hold when its inputs are slightly noisy?"""
from __future__ import annotations

from typing import Annotated, Any, Optional, Union

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, StrictInt, field_validator

from auditkit.core.decisions import decide
from auditkit.methods.probes import is_numeric
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
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


class _Perturber:
    """Builds noisy copies of the sampled rows with numpy, whole blocks at a time."""

    def __init__(self, X: pd.DataFrame, scale_from: pd.DataFrame, numeric: list[str], categorical: list[str]):
        self.X, self.numeric, self.categorical = X, numeric, categorical
        self.n = len(X)
        self.values = X[numeric].to_numpy(dtype=np.float64, na_value=np.nan) if numeric else np.empty((self.n, 0))
        std = np.nanstd(scale_from[numeric].to_numpy(dtype=np.float64, na_value=np.nan), axis=0, ddof=1) \
            if numeric else np.empty(0)
        self.std = np.where(np.isfinite(std), std, 0.0)
        self.codes: dict[str, npt.NDArray[np.int64]] = {}
        self.categories: dict[str, npt.NDArray[Any]] = {}
        self.cumulative: dict[str, npt.NDArray[np.float64]] = {}
        for column in categorical:
            counts = scale_from[column].value_counts(dropna=True, sort=False)
            categories = counts.index.to_numpy(dtype=object)
            self.categories[column] = np.append(categories, np.nan)  # code -1 -> the last entry: missing
            self.codes[column] = pd.Categorical(X[column], categories=counts.index).codes.astype(np.int64)
            share = counts.to_numpy(dtype=np.float64) / counts.sum()
            self.cumulative[column] = np.cumsum(share)

    def numeric_noise(self, rng: np.random.Generator, sigmas: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``len(sigmas)`` stacked copies (k*n, p); NaN + noise stays NaN."""
        k, p = len(sigmas), self.values.shape[1]
        noise = rng.standard_normal((k, self.n, p))
        noise *= sigmas[:, None, None] * self.std[None, None, :]
        noise += self.values[None, :, :]
        return noise.reshape(k * self.n, p)

    def swap(self, rng: np.random.Generator, column: str, codes: npt.NDArray[np.int64],
             probability: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Swap each observed code with its row's probability for another category drawn by frequency."""
        cumulative = self.cumulative[column]
        out = codes.copy()
        if len(cumulative) < 2:
            return out
        chosen = (rng.random(len(codes)) < probability) & (codes >= 0)
        current = codes[chosen]
        start = np.concatenate([[0.0], cumulative[:-1]])[current]
        mass = cumulative[current] - start
        # uniform over [0, 1 - mass of the current category), mapped around that category's slice
        u = rng.random(len(current)) * (1.0 - mass)
        u = np.where(u >= start, u + mass, u)
        out[chosen] = np.minimum(np.searchsorted(cumulative, u, side="right"), len(cumulative) - 1)
        return out

    def frame(self, numeric: npt.NDArray[np.float64], codes: dict[str, npt.NDArray[np.int64]],
              features: list[str]) -> pd.DataFrame:
        columns: dict[str, Any] = {c: numeric[:, j] for j, c in enumerate(self.numeric)}
        for column, column_codes in codes.items():
            columns[column] = self.categories[column][column_codes]
        return pd.DataFrame(columns, copy=False)[features]


def _t_interval(values: npt.NDArray[np.float64], confidence: float) -> tuple[float, tuple[float, float]]:
    from scipy import stats

    mean = float(values.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, (mean - half, mean + half)


def _wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at 0 or n successes the bound is exact; rounding would leave e.g. 1e-19
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return float(low), float(high)


@check("noise_robustness", family="robustness", params=NoiseRobustnessParams, needs_model=True,
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
      lower is better. Undefined (null, with a note) for a regression model.
    - ``mean_abs_score_change[level]`` = mean of :math:`|f(\\tilde x) - f(x)|`, in the units of
      the score. Range [0, inf); lower is better.
    - ``performance_drop[level]`` = metric on the unperturbed rows - metric on the noisy rows
      (ROC AUC for a binary model, R² for regression), on the labelled sampled rows. Range
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
    if data.task == "multiclass":
        return CheckOutput.skip("multiclass models are not covered yet: flip rate is defined for binary decisions")
    features = params.features if params.features is not None else list(data.features)
    unknown = [f for f in features if f not in data.features]
    if unknown:
        raise CheckError(f"not model features: {unknown}; features: {', '.join(data.features)}")

    notes: list[str] = []
    positions = np.arange(len(data.frame))
    if len(positions) > params.max_rows:
        positions = np.sort(ctx.rng.choice(len(positions), params.max_rows, replace=False))
        notes.append(f"on a seeded sample of {params.max_rows:,} of {len(data.frame):,} rows")
    X = data.frame.iloc[positions][data.features].reset_index(drop=True)
    n = len(X)
    base_scores = np.asarray(data.scores, dtype=np.float64)[positions]
    binary = data.task == "binary"
    threshold = data.threshold if data.threshold is not None else 0.5
    if binary and data.threshold is None:
        notes.append("no model threshold given: decisions use 0.5")
    base_decisions = decide(base_scores, threshold) if binary else None

    numeric = [f for f in data.features if is_numeric(X[f])]
    categorical = [f for f in data.features if f not in numeric]
    perturber = _Perturber(X, data.frame, numeric, categorical)
    perturbed_numeric = [numeric.index(f) for f in features if f in numeric]
    still = np.ones(len(numeric), dtype=bool)
    still[perturbed_numeric] = False
    integer_like = [f for f in features if f in numeric and np.all(np.mod(X[f].dropna().to_numpy(float), 1) == 0)]
    if integer_like:
        notes.append(f"integer-valued {', '.join(integer_like)} get continuous noise (the model sees floats)")
    constant = [f for f in features if f in numeric and perturber.std[numeric.index(f)] == 0]
    if constant:
        notes.append(f"{', '.join(constant)} {'has' if len(constant) == 1 else 'have'} no spread: left unchanged")

    # -------- every level x repeat, stacked into one frame
    levels = [float(v) for v in params.levels]
    k = len(levels) * params.n_repeats
    sigmas = np.repeat(np.array(levels), params.n_repeats)
    stacked = perturber.numeric_noise(ctx.rng, sigmas)
    if still.any():  # features outside params.features keep their values
        stacked[:, still] = np.tile(perturber.values[:, still], (k, 1))
    swap_p = np.minimum(sigmas if params.category_swap is None else np.full(k, params.category_swap), 1.0)
    codes = {c: np.tile(perturber.codes[c], k) for c in categorical}
    for column in categorical:
        if column in features:
            codes[column] = perturber.swap(ctx.rng, column, codes[column], np.repeat(swap_p, n))
    if categorical and any(c in features for c in categorical):
        how = ("with probability the level" if params.category_swap is None
               else f"with probability {params.category_swap:g}")
        notes.append(f"categorical {', '.join(c for c in categorical if c in features)} swapped {how} "
                     f"for another observed category, drawn by frequency")

    # -------- every feature alone at the sensitivity level, one draw
    p_all = len(features)
    sens_numeric = np.tile(perturber.values, (p_all, 1))
    sens_codes = {c: np.tile(perturber.codes[c], p_all) for c in categorical}
    sens_swap = min(params.sensitivity_level if params.category_swap is None else params.category_swap, 1.0)
    for i, feature in enumerate(features):
        block = slice(i * n, (i + 1) * n)
        if feature in numeric:
            j = numeric.index(feature)
            sens_numeric[block, j] += (params.sensitivity_level * perturber.std[j]) * ctx.rng.standard_normal(n)
        else:
            sens_codes[feature][block] = perturber.swap(ctx.rng, feature, perturber.codes[feature],
                                                        np.full(n, sens_swap))

    all_numeric = np.concatenate([stacked, sens_numeric]) if numeric else np.empty(((k + p_all) * n, 0))
    all_codes = {c: np.concatenate([codes[c], sens_codes[c]]) for c in categorical}
    scores = np.asarray(ctx.model.predict(perturber.frame(all_numeric, all_codes, list(data.features))), dtype=np.float64)
    level_scores = scores[:k * n].reshape(k, n)
    sens_scores = scores[k * n:].reshape(p_all, n)

    # -------- per level
    labelled = data.labelled[positions] if data.y is not None else np.zeros(n, dtype=bool)
    perf_name = "roc_auc" if binary else "r2"
    y = np.asarray(data.y, dtype=np.float64)[positions][labelled] if labelled.any() else None
    perf = None
    if y is not None:
        from sklearn import metrics as skm

        if binary and len(np.unique(y)) < 2:
            notes.append("performance_drop: the labelled rows hold one class only, ROC AUC is undefined")
        else:
            perf = skm.roc_auc_score if binary else skm.r2_score
            base_perf = float(perf(y, base_scores[labelled]))
            notes.append(f"performance_drop is the drop of {perf_name} from {base_perf:.4g} on "
                         f"{int(labelled.sum()):,} labelled rows")
    method = f"mean of {params.n_repeats} noise draws, Student-t interval over the draws"
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    for li, (raw, level) in enumerate(zip(params.levels, levels)):
        name = level_name(raw)
        block = level_scores[li * params.n_repeats:(li + 1) * params.n_repeats]
        change, change_ci = _t_interval(np.abs(block - base_scores).mean(axis=1), params.confidence)
        record: dict[str, Any] = {"level": raw, "n": n, "flip_rate": None, "flip_rate_ci": None,
                                  "mean_abs_score_change": change, "mean_abs_score_change_ci": list(change_ci),
                                  "performance_drop": None, "performance_drop_ci": None}
        if base_decisions is not None:
            flip, flip_ci = _t_interval((decide(block, threshold) != base_decisions).mean(axis=1), params.confidence)
            metrics[f"flip_rate[{name}]"] = Metric(flip, ci=flip_ci, n=n, method=method, level=params.confidence)
            record.update(flip_rate=flip, flip_rate_ci=list(flip_ci))
        else:
            metrics[f"flip_rate[{name}]"] = Metric(None, n=n, note="regression: no decision, so no flip rate")
        metrics[f"mean_abs_score_change[{name}]"] = Metric(change, ci=change_ci, n=n, method=method,
                                                            level=params.confidence)
        if perf is not None and y is not None:
            drops = np.array([base_perf - float(perf(y, row[labelled])) for row in block])
            drop, drop_ci = _t_interval(drops, params.confidence)
            metrics[f"performance_drop[{name}]"] = Metric(drop, ci=drop_ci, n=int(labelled.sum()), method=method,
                                                          level=params.confidence,
                                                          note=f"drop of {perf_name} against the unperturbed rows")
            record.update(performance_drop=drop, performance_drop_ci=list(drop_ci))
        records.append(record)
    if not binary:
        notes.append("regression: flip rates are undefined (null); score changes are reported")

    # -------- per feature
    sens_records: list[dict[str, Any]] = []
    for i, feature in enumerate(features):
        change = float(np.abs(sens_scores[i] - base_scores).mean())
        entry: dict[str, Any] = {"feature": feature, "kind": "numeric" if feature in numeric else "categorical",
                                 "scale": float(perturber.std[numeric.index(feature)]) if feature in numeric else None,
                                 "flip_rate": None, "flip_rate_ci": None, "mean_abs_score_change": change}
        if base_decisions is not None:
            flips = int((decide(sens_scores[i], threshold) != base_decisions).sum())
            ci = _wilson(flips, n, params.confidence)
            metrics[f"sensitivity[{feature}]"] = Metric(flips / n, ci=ci, n=n, level=params.confidence,
                                                        method="one noise draw, Wilson interval over rows")
            entry.update(flip_rate=flips / n, flip_rate_ci=list(ci))
        else:
            metrics[f"sensitivity[{feature}]"] = Metric(None, n=n, note="regression: no decision, so no flip rate")
        sens_records.append(entry)
    sens_records.sort(key=lambda r: (-(r["flip_rate"] or 0.0), -r["mean_abs_score_change"]))
    for rank, entry in enumerate(sens_records, start=1):
        entry["rank"] = rank
    notes.append(f"sensitivity: each feature perturbed alone at level {level_name(params.sensitivity_level)}, "
                 f"one draw; {k * n + p_all * n:,} noisy rows predicted")

    # -------- plots
    x = list(levels)
    plots: list[Plot] = []
    if base_decisions is not None:
        plots.append(Plot("line", "Decisions that flip under input noise", {
            "series": [{"name": "flip rate", "x": x, "y": [r["flip_rate"] for r in records],
                        "y_low": [r["flip_rate_ci"][0] for r in records],
                        "y_high": [r["flip_rate_ci"][1] for r in records]}],
            "x_label": "noise level (multiple of each feature's standard deviation)",
            "y_label": "share of decisions changed", "n": n}))
    else:
        plots.append(Plot("line", "Score change under input noise", {
            "series": [{"name": "mean |score change|", "x": x, "y": [r["mean_abs_score_change"] for r in records],
                        "y_low": [r["mean_abs_score_change_ci"][0] for r in records],
                        "y_high": [r["mean_abs_score_change_ci"][1] for r in records]}],
            "x_label": "noise level (multiple of each feature's standard deviation)",
            "y_label": "mean absolute score change", "n": n}))
    if any(r["performance_drop"] is not None for r in records):
        plots.append(Plot("line", f"Drop of {perf_name} under input noise", {
            "series": [{"name": f"{perf_name} drop", "x": x, "y": [r["performance_drop"] for r in records],
                        "y_low": [r["performance_drop_ci"][0] for r in records],
                        "y_high": [r["performance_drop_ci"][1] for r in records]}],
            "x_label": "noise level (multiple of each feature's standard deviation)",
            "y_label": f"drop of {perf_name}", "n": int(labelled.sum())}))
    key = "flip_rate" if base_decisions is not None else "mean_abs_score_change"
    plots.append(Plot("bar", f"Sensitivity per feature (noise level {level_name(params.sensitivity_level)})", {
        "labels": [r["feature"] for r in sens_records], "values": [r[key] for r in sens_records],
        **({"ci_low": [r["flip_rate_ci"][0] for r in sens_records],
            "ci_high": [r["flip_rate_ci"][1] for r in sens_records]} if key == "flip_rate" else {}),
        "ylabel": "share of decisions changed" if key == "flip_rate" else "mean absolute score change",
        "horizontal": True, "n": n}))
    return CheckOutput(metrics=metrics, tables={"levels": records, "sensitivity": sens_records}, plots=plots,
                       notes=notes)
