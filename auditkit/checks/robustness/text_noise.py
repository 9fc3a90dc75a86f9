"""``text_noise``: do typos in a free-text input change the decision?"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pydantic import Field, field_validator

from auditkit.core.decisions import decide
from auditkit.core.registry import CheckParams, check
from auditkit.engine.context import AuditContext
from auditkit.methods.stats import wilson_interval
from auditkit.methods.text_noise import KINDS, Kind, add_typos
from auditkit.methods.text_tokens import text_column, text_predictor
from auditkit.results.model import CheckOutput, Metric, Plot

EXAMPLES = 3  # edited texts shown per level: those whose score moved most
EXCERPT = 300


class TextNoiseParams(CheckParams):
    column: Optional[str] = Field(None, description="The free-text model input; default: the one column of data.text.")
    levels: list[float] = Field([0.05, 0.1, 0.2], min_length=1,
                                description="Typo rates: the probability that each word (2+ characters) gets one "
                                            "character edit; each in (0, 1].")
    kinds: list[Kind] = Field(list(KINDS), min_length=1,
                              description="Edits drawn from: swap (adjacent characters), delete, insert, substitute.")
    max_rows: int = Field(2_000, ge=1, description="Seeded sample of rows whose texts get typos.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of the Wilson intervals of the flip rates.")

    @field_validator("levels")
    @classmethod
    def _rates(cls, levels: list[float]) -> list[float]:
        for level in levels:
            if not 0 < level <= 1:
                raise ValueError(f"each level is a probability in (0, 1], got {level}")
        if len({repr(v) for v in levels}) != len(levels):
            raise ValueError(f"levels must be distinct, got {levels}")
        return levels


def _produces(params: TextNoiseParams, policy: Any) -> list[str]:
    stems = ("flip_rate", "mean_abs_score_change")
    # a threshold on the bare name applies to every level (core.metric_names.threshold_applies)
    return [*stems, *(f"{stem}[{level!r}]" for stem in stems for level in params.levels)]


@check("text_noise", family="robustness", params=TextNoiseParams, needs_model=True, produces=_produces,
       metrics=["flip_rate[*]", "mean_abs_score_change[*]"],
       example={"params": {"levels": [0.05, 0.1, 0.2]}, "thresholds": {"flip_rate": {"max": 0.05}}})
def text_noise(ctx: AuditContext, params: TextNoiseParams) -> CheckOutput:
    """Share of decisions that change when the words of a free-text input get typos, per typo rate.

    At each level (a typo rate ``r``), every word of two or more characters of each sampled
    text gets, with probability ``r``, one character edit (an adjacent swap, a deletion, an
    insertion or a substitution; seeded), and the text is scored again with the row's other
    inputs unchanged. ``flip_rate[r]`` = share of rows whose decision changes (0 = typos never
    decide; lower is better; Wilson interval), ``mean_abs_score_change[r]`` = mean absolute
    change of the audited score (for a multiclass model: of the probability of the class first
    predicted, a flip being a change of class; a regressor has no flips). Table ``levels``:
    level, n, words_edited (share of eligible words), flip_rate, mean_abs_score_change; table
    ``examples``: the texts whose score moved most at each level.

    References
    ----------
    Belinkov & Bisk (2018), Synthetic and natural noise both break neural machine translation;
    Ribeiro, Wu, Guestrin & Singh (2020), Beyond accuracy: behavioral testing of NLP models with
    CheckList.
    """
    data = ctx.data
    if data.predictions_mode:
        return CheckOutput.skip("text_noise re-scores edited texts: it needs the model, not recorded predictions")
    column, why = text_column(data, params.column)
    if column is None:
        return CheckOutput.skip(f"text_noise needs a free-text input: {why}")
    notes: list[str] = []
    positions = ctx.sample_positions(params.max_rows, notes, what="typos added on a seeded sample of")
    texts = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
             for v in data.frame[column].iloc[positions].tolist()]
    before_raw = np.asarray(data.scores, dtype=np.float64)[positions]
    predict = text_predictor(ctx, column, positions)
    rng = ctx.rng
    metrics: dict[str, Metric] = {}
    records: list[dict[str, Any]] = []
    examples: list[dict[str, Any]] = []
    xs, ys, lows, highs = [], [], [], []
    n = len(texts)
    for level in params.levels:
        noisy = [add_typos(text, level, rng, params.kinds) for text in texts]
        after_raw = predict([t for t, _, _ in noisy], list(range(n)))
        if data.task == "multiclass":
            predicted = np.argmax(before_raw, axis=1)
            before, after = before_raw[np.arange(n), predicted], after_raw[np.arange(n), predicted]
            flips = np.argmax(after_raw, axis=1) != predicted
        else:
            before, after = before_raw, after_raw
            flips = (decide(before, data.threshold) != decide(after, data.threshold)
                     if data.task == "binary" and data.threshold is not None else None)
        change = np.abs(after - before)
        name = repr(level)
        edited = sum(e for _, e, _ in noisy)
        eligible = sum(g for _, _, g in noisy)
        metrics[f"mean_abs_score_change[{name}]"] = Metric(float(change.mean()) if n else None, n=n)
        if flips is not None and n:
            k = int(flips.sum())
            ci = wilson_interval(k, n, params.confidence)
            metrics[f"flip_rate[{name}]"] = Metric(k / n, ci=ci, n=n, level=params.confidence,
                                                   method="Wilson score interval")
            xs.append(level)
            ys.append(k / n)
            lows.append(ci[0])
            highs.append(ci[1])
        records.append({"level": level, "n": n, "words_edited": edited / eligible if eligible else None,
                        "flip_rate": None if flips is None or not n else float(flips.mean()),
                        "mean_abs_score_change": float(change.mean()) if n else None})
        for j in np.argsort(-change, kind="stable")[:EXAMPLES]:
            examples.append({"level": level, "row": int(data.frame.index[positions[j]]),
                             "before": texts[j][:EXCERPT], "after": noisy[j][0][:EXCERPT],
                             "score_before": float(before[j]), "score_after": float(after[j]),
                             "flipped": None if flips is None else bool(flips[j])})
    plots = []
    if xs:
        plots.append(Plot("line", f"Decision flips when the words of '{column}' get typos", {
            "series": [{"name": "flip rate", "x": xs, "y": ys, "y_low": lows, "y_high": highs}],
            "level": params.confidence, "x_label": "typo rate (share of words edited)", "y_label": "flip rate",
            "n": n}))
    notes.append(f"edits drawn from: {', '.join(params.kinds)}; one draw per level (seeded)")
    return CheckOutput(metrics=metrics, tables={"levels": records, "examples": examples}, plots=plots, notes=notes)
