"""``identity_substitution``: does swapping identity terms in a text ("she" <-> "he") change the decision?"""
from __future__ import annotations

import re
from typing import Any, Optional

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator

from auditkit.core.decisions import decide
from auditkit.core.registry import CheckParams, check
from auditkit.engine.context import AuditContext
from auditkit.methods.identity_terms import DEFAULT_GROUPS, DEFAULT_TERM_PAIRS, TermSwapper
from auditkit.methods.stats import bootstrap, bootstrap_se, percentile_interval, wilson_interval
from auditkit.methods.text_tokens import text_column, text_predictor
from auditkit.results.model import CheckOutput, Metric, Plot

EXAMPLES = 5  # rows whose texts before and after are shown: the largest score changes
EXCERPT = 300  # characters of each text shown


class IdentitySubstitutionParams(CheckParams):
    column: Optional[str] = Field(None, description="The free-text model input; default: the one column of data.text.")
    term_pairs: Optional[list[list[str]]] = Field(
        None, description="Pairs [term of the first group, term of the second], whole words, any case; a term in "
                          "several pairs takes the first. Default: English gender terms ([he, she], [his, her], "
                          "[him, her], [man, woman], [mr, ms], ...: `auditkit checks identity_substitution` lists them).")
    groups: list[str] = Field(list(DEFAULT_GROUPS), min_length=2, max_length=2,
                              description="Names of the two groups of term_pairs, as metric names use them.")
    max_rows: int = Field(5_000, ge=1, description="Seeded sample of rows whose texts are edited.")
    bootstrap: int = Field(1_000, ge=0, description="Resamples for the intervals of the mean score changes.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Level of every interval.")

    @field_validator("term_pairs")
    @classmethod
    def _pairs_are_two_words(cls, pairs: Optional[list[list[str]]]) -> Optional[list[list[str]]]:
        for i, pair in enumerate(pairs or []):
            if len(pair) != 2 or any(not re.fullmatch(r"\w+", word) for word in pair):
                raise ValueError(f"term_pairs[{i}] must be two words (letters, digits, _), got {pair!r}")
            if pair[0].lower() == pair[1].lower():
                raise ValueError(f"term_pairs[{i}] pairs '{pair[0]}' with itself")
        if pairs is not None and not pairs:
            raise ValueError("term_pairs is empty: give at least one pair, or leave it out for the default list")
        return pairs

    @field_validator("groups")
    @classmethod
    def _groups_are_names(cls, groups: list[str]) -> list[str]:
        for name in groups:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_]*", name):
                raise ValueError(f"group name {name!r}: use letters, digits and _ (it becomes part of metric names)")
        if groups[0] == groups[1]:
            raise ValueError(f"the two groups have the same name {groups[0]!r}")
        return groups


CAVEATS = (
    "Only the listed terms are swapped: names, titles and other words that signal the group stay, so a "
    "model that reads those is not fully tested (and a text with no listed term is not tested at all).",
    "Swapping words can produce unnatural text (\"her\" becomes \"his\" even where \"him\" is right); the "
    "model then scores a text it may never see.",
)


def _produces(params: IdentitySubstitutionParams, policy: Any) -> list[str]:
    first, second = params.groups
    directions = [f"{first}_to_{second}", f"{second}_to_{first}"]
    return (["flip_rate", "mean_abs_score_change", "changed_share"]
            + [f"flip_rate[{d}]" for d in directions] + [f"mean_score_change[{d}]" for d in directions])


def _mean_with_ci(values: npt.NDArray[np.float64], params: IdentitySubstitutionParams,
                  rng: np.random.Generator) -> Metric:
    n = len(values)
    if n == 0:
        return Metric(None, n=0, note="no text holds a term of this direction")
    value = float(values.mean())
    if params.bootstrap == 0 or n < 2:
        return Metric(value, n=n)
    draws = bootstrap(lambda counts: counts @ values / counts.sum(axis=1), n, resamples=params.bootstrap, rng=rng)
    return Metric(value, ci=percentile_interval(draws, params.confidence), n=n, level=params.confidence,
                  method=f"bootstrap over rows, {params.bootstrap:,} resamples, percentile", se=bootstrap_se(draws))


def _rate_with_ci(flips: npt.NDArray[np.bool_], confidence: float) -> Metric:
    n = len(flips)
    if n == 0:
        return Metric(None, n=0, note="no text holds a term of this direction")
    k = int(flips.sum())
    return Metric(k / n, ci=wilson_interval(k, n, confidence), n=n, level=confidence, method="Wilson score interval")


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT else text[: EXCERPT - 3] + "..."


@check("identity_substitution", family="fairness", params=IdentitySubstitutionParams, needs_model=True,
       caveats=CAVEATS, produces=_produces,
       metrics=["flip_rate[*]", "mean_score_change[*]", "mean_abs_score_change", "changed_share"],
       example={"params": {"term_pairs": [["he", "she"], ["his", "her"], ["him", "her"], ["man", "woman"]],
                           "groups": ["male", "female"]},
                "thresholds": {"flip_rate": {"max": 0.01}, "mean_abs_score_change": {"max": 0.02, "on": "upper"}}})
def identity_substitution(ctx: AuditContext, params: IdentitySubstitutionParams) -> CheckOutput:
    """Swap identity terms in a free-text input ("she" <-> "he", "her" <-> "his") and re-score.

    A counterfactual-fairness test for text (Garg et al. 2019): each sampled text that holds a
    term of ``term_pairs`` is rewritten with every such term replaced by its counterpart
    (whole words, letter case kept) and scored again, its other inputs unchanged. A text that
    holds terms of the first group only is a ``<first>_to_<second>`` swap, of the second only
    ``<second>_to_<first>``; a text with both is swapped too (it counts in the overall figures).

    Metrics: ``flip_rate`` = share of swapped texts whose decision changes, overall and per
    direction (0 = the terms never decide; lower is better; Wilson intervals);
    ``mean_score_change[direction]`` = mean of score after minus score before (0 = no effect;
    its sign says which group the model favours; bootstrap intervals);
    ``mean_abs_score_change`` = mean absolute change (lower is better); ``changed_share`` =
    share of sampled texts that hold a term at all (how much of the data was tested). The
    score is the audited score (binary), the probability of the class first predicted
    (multiclass; a flip is a change of predicted class) or the value (regression: no flips).
    Tables: ``swaps`` (direction, n, flip_rate, to_favourable, to_unfavourable,
    mean_score_change), ``examples`` (the largest changes: row, before, after, scores, decisions).

    Default term_pairs (first group male, second female; methods/identity_terms.py): he/she,
    his/her, him/her, himself/herself, man/woman, men/women, boy/girl, boys/girls, mr/ms,
    mr/mrs, sir/madam, gentleman/lady, gentlemen/ladies, male/female, father/mother,
    son/daughter, brother/sister, husband/wife, boyfriend/girlfriend, uncle/aunt,
    nephew/niece, king/queen, actor/actress, waiter/waitress, fiance/fiancee.

    References
    ----------
    Garg, Perot, Limtiaco, Taly, Chi & Beutel (2019), Counterfactual fairness in text
    classification through robustness; Lu, Mardziel, Wu, Amancharla & Datta (2018), Gender
    bias in neural natural language processing.
    """
    data = ctx.data
    if data.predictions_mode:
        return CheckOutput.skip("identity_substitution re-scores edited texts: it needs the model, not recorded "
                                "predictions")
    column, why = text_column(data, params.column)
    if column is None:
        return CheckOutput.skip(f"identity_substitution needs a free-text input: {why}")
    pairs = params.term_pairs if params.term_pairs is not None else [list(p) for p in DEFAULT_TERM_PAIRS]
    swapper = TermSwapper(pairs)
    first, second = params.groups
    notes: list[str] = []
    positions = ctx.sample_positions(params.max_rows, notes, what="texts edited on a seeded sample of")
    values = data.frame[column].iloc[positions]
    texts = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values.tolist()]
    swaps = [swapper.swap(text) for text in texts]
    changed = np.array([s.changed for s in swaps], dtype=bool)
    metrics: dict[str, Metric] = {"changed_share": Metric(float(changed.mean()), n=len(swaps))}
    directions = np.array([f"{first}_to_{second}" if s.first and not s.second else
                           f"{second}_to_{first}" if s.second and not s.first else
                           "mixed" if s.changed else "" for s in swaps], dtype=object)
    where = np.flatnonzero(changed)
    if len(where) == 0:
        notes.append(f"no sampled text holds a listed term: nothing was swapped in '{column}'")
        return CheckOutput(metrics=metrics, notes=notes)
    predict = text_predictor(ctx, column, positions)
    after_raw = predict([swaps[i].text for i in where], list(where))
    before_raw = np.asarray(data.scores, dtype=np.float64)[positions][where]
    if data.task == "multiclass":
        predicted = np.argmax(before_raw, axis=1)
        before = before_raw[np.arange(len(where)), predicted]
        after = after_raw[np.arange(len(where)), predicted]
        flips: Optional[npt.NDArray[np.bool_]] = np.argmax(after_raw, axis=1) != predicted
        to_favourable = None
    else:
        before, after = before_raw, after_raw
        if data.task == "binary" and data.threshold is not None:
            old_d, new_d = decide(before, data.threshold), decide(after, data.threshold)
            flips = old_d != new_d
            to_favourable = flips & (new_d == data.favorable_decision)
        else:
            flips, to_favourable = None, None
    change = after - before
    rng = ctx.rng
    if flips is not None:
        metrics["flip_rate"] = _rate_with_ci(flips, params.confidence)
    metrics["mean_abs_score_change"] = _mean_with_ci(np.abs(change), params, rng)
    records: list[dict[str, Any]] = []
    plot_labels, plot_values, ci_low, ci_high = [], [], [], []
    for direction in (f"{first}_to_{second}", f"{second}_to_{first}", "mixed"):
        mask = directions[where] == direction
        if direction == "mixed" and not mask.any():
            continue
        mean = _mean_with_ci(change[mask], params, rng)
        if direction != "mixed":
            metrics[f"mean_score_change[{direction}]"] = mean
            if flips is not None:
                metrics[f"flip_rate[{direction}]"] = _rate_with_ci(flips[mask], params.confidence)
        n_flips = int(flips[mask].sum()) if flips is not None else None
        favourable = int(to_favourable[mask].sum()) if to_favourable is not None else None
        records.append({"direction": direction, "n": int(mask.sum()),
                        "flip_rate": None if flips is None or not mask.any() else float(flips[mask].mean()),
                        "to_favourable": favourable,
                        "to_unfavourable": None if favourable is None or n_flips is None else n_flips - favourable,
                        "mean_score_change": mean.value, "mean_score_change_ci": list(mean.ci) if mean.ci else None})
        if mean.value is not None:
            plot_labels.append(direction.replace("_", " "))
            plot_values.append(mean.value)
            ci_low.append(mean.ci[0] if mean.ci else mean.value)
            ci_high.append(mean.ci[1] if mean.ci else mean.value)
    if (directions[where] == "mixed").any():
        notes.append(f"{int((directions[where] == 'mixed').sum()):,} texts hold terms of both groups: swapped, "
                     "counted in flip_rate and mean_abs_score_change, in no direction")
    examples = []
    for j in np.argsort(-np.abs(change), kind="stable")[:EXAMPLES]:
        i = where[j]
        examples.append({"row": int(data.frame.index[positions[i]]), "direction": directions[i],
                         "before": _excerpt(texts[i]), "after": _excerpt(swaps[i].text),
                         "score_before": float(before[j]), "score_after": float(after[j]),
                         "flipped": None if flips is None else bool(flips[j])})
    plots = [Plot("bar", f"Mean score change when identity terms in '{column}' are swapped", {
        "labels": plot_labels, "values": plot_values, "ci_low": ci_low, "ci_high": ci_high,
        "level": params.confidence, "x_label": "swap", "y_label": "score after - score before",
        "n": int(len(where))})]
    notes.append(f"{len(where):,} of {len(texts):,} sampled texts hold a listed term ({len(pairs)} term pairs)")
    return CheckOutput(metrics=metrics, tables={"swaps": records, "examples": examples}, plots=plots, notes=notes)
