"""``token_attributions``: which words of a free-text input drive the model's score."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
from pydantic import Field

from auditkit.core.registry import CheckParams, check
from auditkit.engine.context import AuditContext
from auditkit.methods.identity_terms import DEFAULT_TERM_PAIRS
from auditkit.methods.text_tokens import mean_by_token, occlude, text_column, text_predictor
from auditkit.results.model import CheckOutput, Metric, Plot


WATERFALL_WORDS = 12  # words drawn one by one in a row's waterfall


class TokenAttributionsParams(CheckParams):
    column: Optional[str] = Field(None, description="The free-text model input; default: the one column of data.text.")
    max_rows: int = Field(200, ge=1, description="Seeded sample of rows whose tokens are occluded one at a time.")
    max_tokens: int = Field(200, ge=1, description="Tokens occluded per text (the first ones); longer texts are said.")
    shap_rows: int = Field(25, ge=0, description="Rows of that sample (the first ones) explained with SHAP's "
                                                 "Partition explainer too; 0 leaves SHAP out.")
    shap_max_evals: int = Field(500, ge=10, description="Model calls per row that the Partition explainer may make.")
    top_k: int = Field(10, ge=1, description="Tokens listed per class (or direction).")
    rows_shown: int = Field(3, ge=0, description="Rows whose every token is written to table `attributions`.")
    identity_terms: Optional[list[list[str]]] = Field(
        None, description="Term pairs whose attributions make up identity_attribution_share; default: the gender "
                          "pairs of identity_substitution.")


CAVEATS = (
    "Occlusion removes one word at a time: it misses what words do together (a phrase, a negation), and the "
    "values of a row need not add up to its score.",
    "SHAP over tokens uses the Partition explainer (Owen values over shap's clustering of adjacent tokens): "
    "they add up to the score minus the score of the text with every token removed, and are Shapley values "
    "only where words do not interact.",
    "A word is a run of letters and digits; the model may split text differently (sub-words, n-grams), and "
    "its attribution is then shared out by removing whole words.",
)


def _directions(ctx: AuditContext, outputs: int) -> list[tuple[str, int, float]]:
    """(name, output column, sign) of each direction that top tokens are listed for."""
    data = ctx.data
    if outputs > 1:  # multiclass: one probability per class
        classes = data.classes or list(range(outputs))
        return [(str(c), k, 1.0) for k, c in enumerate(classes)]
    if data.task == "regression":
        return [("higher prediction", 0, 1.0), ("lower prediction", 0, -1.0)]
    positive = str(data.positive_class)
    others = [str(c) for c in (data.classes or []) if str(c) != positive]
    negative = others[0] if others else f"not {positive}"
    return [(positive, 0, 1.0), (negative, 0, -1.0)]


def _identity_words(pairs: Optional[list[list[str]]]) -> set[str]:
    return {word.lower() for pair in (pairs if pairs is not None else DEFAULT_TERM_PAIRS) for word in pair}


@check("token_attributions", family="explanations", params=TokenAttributionsParams, needs_model=True,
       caveats=CAVEATS, preload=("shap",),
       metrics=["additivity_error", "top_token_agreement", "identity_attribution_share"],
       example={"params": {"max_rows": 200, "shap_rows": 25, "top_k": 10},
                "thresholds": {"identity_attribution_share": {"max": 0.05}}})
def token_attributions(ctx: AuditContext, params: TokenAttributionsParams) -> CheckOutput:
    """Leave-one-token-out occlusion and SHAP over the words of a free-text input; top words per class.

    For a seeded sample of ``max_rows`` rows, each word ``t`` of text ``x`` gets the occlusion
    attribution ``f(x) - f(x without t)`` (exact, one model call per word), and for the first
    ``shap_rows`` of them a SHAP value from shap's Partition explainer over the words, with
    ``f`` the audited score (the positive-class score of a binary classifier, each class's
    probability for a multiclass one, the value of a regressor). A word's global attribution
    is the mean over the sampled rows of its summed values in each row (0 where absent).

    Metrics: ``additivity_error`` = the largest ``|base + sum of a row's SHAP values - f(x)|``
    (0 is exact; lower is better); ``top_token_agreement`` = the share of occlusion's
    ``top_k`` words per class that SHAP's ``top_k`` also lists (1 = the two methods agree);
    ``identity_attribution_share`` = the share of the mean absolute occlusion attribution,
    summed over words, that identity terms (``identity_terms``) hold, in [0, 1]: 0 means the
    score does not move with words such as "she" or "his" (lower is better).
    Tables: ``top_tokens`` (class, rank, token, occlusion, shap, rows, identity_term),
    ``attributions`` (row, position, token, occlusion, shap) for the first ``rows_shown``
    rows, ``explanations`` (row, score, tokens, shap_base_value, shap_sum) for the rows SHAP
    explained (or the first ``rows_shown`` when SHAP is left out).

    References
    ----------
    Zeiler & Fergus (2014), Visualizing and understanding convolutional networks; Li, Monroe &
    Jurafsky (2016), Understanding neural networks through representation erasure; Lundberg &
    Lee (2017), A unified approach to interpreting model predictions.
    """
    data = ctx.data
    if data.predictions_mode:
        return CheckOutput.skip("token_attributions re-scores edited texts: it needs the model, not recorded predictions")
    column, why = text_column(data, params.column)
    if column is None:
        return CheckOutput.skip(f"token_attributions needs a free-text input: {why}")
    notes: list[str] = []
    positions = ctx.sample_positions(params.max_rows, notes, what="words occluded on a seeded sample of")
    rows = data.frame.index[positions]
    texts = [("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
             for v in data.frame[column].iloc[positions].tolist()]
    predict = text_predictor(ctx, column, positions)
    occluded = occlude(texts, predict, max_tokens=params.max_tokens)
    truncated = sum(o.truncated for o in occluded)
    if truncated:
        notes.append(f"{truncated:,} texts have more than {params.max_tokens} words: only their first "
                     f"{params.max_tokens} were occluded")
    n = len(occluded)
    outputs = occluded[0].values.shape[1] if n else 1
    occ_global = mean_by_token([(o.tokens, o.values) for o in occluded], n)

    shap_rows = min(params.shap_rows, n)
    shap_out: list[Any] = []
    metrics: dict[str, Metric] = {}
    shap_global: dict[str, tuple[np.ndarray, int]] = {}
    if shap_rows:
        from auditkit.methods.text_shap import token_shap

        explained = [i for i in range(shap_rows) if occluded[i].tokens]
        shap_out = token_shap([texts[i] for i in explained],
                              lambda variants, j: predict(variants, [explained[j]] * len(variants)),
                              max_evals=params.shap_max_evals)
        shap_global = mean_by_token([(s.tokens, s.values) for s in shap_out], len(explained))
        errors = [float(np.max(np.abs(s.base + s.values.sum(axis=0) - s.score))) for s in shap_out]
        metrics["additivity_error"] = Metric(max(errors) if errors else None, n=len(explained),
                                             method="Partition explainer, shap.maskers.Text with a \\W+ tokenizer")
        notes.append(f"SHAP (Partition explainer, up to {params.shap_max_evals:,} model calls per row) on the first "
                     f"{len(explained):,} of the {n:,} sampled rows")
        shap_by_row = dict(zip(explained, shap_out))
    else:
        shap_by_row = {}
        notes.append("SHAP left out (shap_rows: 0): occlusion only")

    identity = _identity_words(params.identity_terms)
    directions = _directions(ctx, outputs)
    top_records: list[dict[str, Any]] = []
    plots: list[Plot] = []
    agreements: list[float] = []
    bar_labels: list[str] = []
    bar_values: list[float] = []
    bar_sections: list[str] = []
    for name, k, sign in directions:
        ranked = sorted(((token, sign * float(v[k]), count) for token, (v, count) in occ_global.items()
                         if sign * float(v[k]) > 0), key=lambda item: (-item[1], item[0]))[: params.top_k]
        for rank, (token, value, count) in enumerate(ranked, start=1):
            shap_value = shap_global.get(token)
            top_records.append({"class": name, "rank": rank, "token": token, "occlusion": value,
                                "shap": None if shap_value is None else sign * float(shap_value[0][k]),
                                "rows": count, "identity_term": token in identity})
            bar_labels.append(token)
            bar_values.append(value)
            bar_sections.append(f"towards {name}")
        if shap_global:
            shap_ranked = sorted(((token, sign * float(v[k])) for token, (v, _) in shap_global.items()
                                  if sign * float(v[k]) > 0), key=lambda item: (-item[1], item[0]))[: params.top_k]
            if ranked:
                agreements.append(len({t for t, _, _ in ranked} & {t for t, _ in shap_ranked}) / len(ranked))
    if shap_global:
        metrics["top_token_agreement"] = Metric(float(np.mean(agreements)) if agreements else None,
                                                n=len(shap_by_row), note=None if agreements else "no word moves the score")
    magnitudes = _abs_by_token(occluded, n)
    total = sum(float(v.sum()) for v, _ in magnitudes.values())
    held = sum(float(v.sum()) for token, (v, _) in magnitudes.items() if token in identity)
    metrics["identity_attribution_share"] = Metric(held / total if total > 0 else None, n=n,
                                                   note=None if total > 0 else "no word moves the score")
    if bar_labels:
        units = "score" if data.task != "multiclass" else "probability"
        plots.append(Plot("bar", f"Top words of '{column}' per class (occlusion, mean over {n:,} rows)", {
            "labels": bar_labels, "values": bar_values, "sections": bar_sections, "horizontal": True,
            "x_label": "word", "y_label": f"{units} lost without the word", "n": n}))

    attributions: list[dict[str, Any]] = []
    explanations: list[dict[str, Any]] = []
    for i, (row, o) in enumerate(zip(rows, occluded)):
        k = _row_output(ctx, o.score)
        s = shap_by_row.get(i)
        aligned = s is not None and [t.lower() for t in s.tokens] == [t.lower() for t in o.tokens]
        if s is not None or i < params.rows_shown:  # the rows explained by SHAP, else the rows shown
            explanations.append({"row": int(row), "score": float(o.score[k]), "tokens": len(o.tokens),
                                 "shap_base_value": None if s is None else float(s.base[k]),
                                 "shap_sum": None if s is None else float(s.values[:, k].sum())})
        if i < params.rows_shown:
            for position, token in enumerate(o.tokens):
                attributions.append({"row": int(row), "position": position, "token": token,
                                     "occlusion": float(o.values[position, k]),
                                     "shap": float(s.values[position, k]) if aligned and s is not None else None})
        if i == 0 and s is not None and len(s.tokens):
            order = np.argsort(-np.abs(s.values[:, k]), kind="stable")
            labels = [s.tokens[j] for j in order[:WATERFALL_WORDS]]
            values = [float(s.values[j, k]) for j in order[:WATERFALL_WORDS]]
            if len(order) > WATERFALL_WORDS:  # the rest as one bar, so the bars still add up to the score
                labels.append(f"{len(order) - WATERFALL_WORDS} other words")
                values.append(float(s.values[order[WATERFALL_WORDS:], k].sum()))
            plots.append(Plot("waterfall", f"SHAP over the words of row {int(row)}", {
                "labels": labels, "values": values,
                "base": float(s.base[k]), "output": float(s.score[k]), "row": int(row),
                "x_label": "score" if data.task != "multiclass" else "probability"}))
    return CheckOutput(metrics=metrics, tables={"top_tokens": top_records, "attributions": attributions,
                                                "explanations": explanations}, plots=plots, notes=notes)


def _row_output(ctx: AuditContext, score: np.ndarray) -> int:
    """The output a row's table shows: its predicted class (multiclass), else the one score."""
    return int(np.argmax(score)) if ctx.data.task == "multiclass" and len(score) > 1 else 0


def _abs_by_token(occluded: list[Any], n: int) -> dict[str, tuple[np.ndarray, int]]:
    return mean_by_token([(o.tokens, np.abs(o.values)) for o in occluded], n)
