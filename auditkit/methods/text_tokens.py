"""Words of a free-text input, and leave-one-token-out occlusion over them.

A token is a run of Unicode word characters (``\\w+``): the unit that attributions are
given to, whatever finer or coarser tokens the model itself uses. Removing a token deletes
its characters and keeps the text around it, so a model that tokenises on words sees the
same text without that one word.

Occlusion (Zeiler & Fergus 2014; "leave-one-out" in Li, Monroe & Jurafsky 2016) gives
token ``i`` of text ``x`` the attribution ``f(x) - f(x without token i)``: how much of the
score that word holds up on its own. It is exact (no sampling) but ignores interactions;
its values need not add up to the score.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Final, Sequence

import numpy as np
import numpy.typing as npt

#: one token: a run of word characters (letters, digits, underscore, in any script)
WORD: Final = re.compile(r"\w+")
#: what separates tokens: the complement of WORD, as shap's regex tokenizer takes it
SEPARATOR: Final = r"\W+"


def token_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every token of ``text``, in order.

    >>> token_spans("She is certified.")
    [(0, 3), (4, 6), (7, 16)]
    """
    return [match.span() for match in WORD.finditer(text)]


def without_span(text: str, span: tuple[int, int]) -> str:
    """``text`` with the characters of ``span`` removed.

    >>> without_span("She is certified.", (4, 6))
    'She  certified.'
    """
    start, end = span
    return text[:start] + text[end:]


@dataclass(frozen=True)
class Occlusion:
    """Leave-one-token-out attributions of one text: one row of ``values`` per token."""

    text: str
    tokens: list[str]
    spans: list[tuple[int, int]]
    score: npt.NDArray[np.float64]  # f(text), one value per model output
    values: npt.NDArray[np.float64]  # (tokens, outputs): f(text) - f(text without the token)
    truncated: bool  # more tokens than max_tokens: only the first max_tokens were occluded


def occlude(texts: Sequence[str], predict: Callable[[list[str], list[int]], npt.NDArray[np.float64]], *,
            max_tokens: int = 200) -> list[Occlusion]:
    """Occlusion of each text, with one batched call to ``predict``.

    ``predict(variants, owners)`` scores a list of texts (``owners[j]`` is the position in
    ``texts`` that variant ``j`` comes from, for a model with other inputs) and returns an
    array ``(len(variants),)`` or ``(len(variants), outputs)``.
    """
    variants: list[str] = []
    owners: list[int] = []
    layout: list[tuple[list[tuple[int, int]], bool]] = []
    for i, text in enumerate(texts):
        spans = token_spans(text)
        truncated = len(spans) > max_tokens
        spans = spans[:max_tokens]
        layout.append((spans, truncated))
        variants.append(text)
        owners.append(i)
        for span in spans:
            variants.append(without_span(text, span))
            owners.append(i)
    scores = np.asarray(predict(variants, owners), dtype=np.float64)
    if scores.ndim == 1:
        scores = scores[:, None]
    out: list[Occlusion] = []
    at = 0
    for text, (spans, truncated) in zip(texts, layout):
        base = scores[at]
        removed = scores[at + 1: at + 1 + len(spans)]
        out.append(Occlusion(text=text, tokens=[text[s:e] for s, e in spans], spans=spans, score=base,
                             values=base[None, :] - removed, truncated=truncated))
        at += 1 + len(spans)
    return out


def mean_by_token(per_row: Sequence[tuple[Sequence[str], npt.NDArray[np.float64]]], n_rows: int
                  ) -> dict[str, tuple[npt.NDArray[np.float64], int]]:
    """Global attribution of each (lower-cased) token: the sum of its values over every
    occurrence, divided by ``n_rows`` (a row without the token counts as 0), and how many
    rows hold it. ``per_row`` is (tokens, values (tokens, outputs)) for each row."""
    totals: dict[str, npt.NDArray[np.float64]] = {}
    rows_with: dict[str, int] = {}
    for tokens, values in per_row:
        seen: set[str] = set()
        for token, value in zip(tokens, values):
            key = token.lower()
            if not key:
                continue
            totals[key] = totals.get(key, 0.0) + value
            if key not in seen:
                rows_with[key] = rows_with.get(key, 0) + 1
                seen.add(key)
    return {key: (np.asarray(total, dtype=np.float64) / n_rows, rows_with[key]) for key, total in totals.items()}


# ---------------------------------------------------------------------------- the audited model
def text_column(data: "AuditData", column: str | None) -> tuple[str | None, str | None]:
    """The free-text input a text check reads, and None; or None and why the check does not apply.

    ``column`` (the check's param) wins; else the policy's ``data.text`` when it names one column.
    """
    if column is not None:
        if column not in data.features:
            return None, f"params.column '{column}' is not a model input (features: {', '.join(data.features)})"
        return column, None
    if not data.text:
        return None, ("no free-text input: declare the model's text column under data.text (or give "
                      "params.column) for a text model; this model's inputs are not declared as text")
    if len(data.text) > 1:
        return None, f"data.text names {len(data.text)} columns ({', '.join(data.text)}): choose one with params.column"
    return data.text[0], None


def text_predictor(ctx: "AuditContext", column: str, positions: npt.NDArray[np.int64]
                   ) -> Callable[[list[str], list[int]], npt.NDArray[np.float64]]:
    """``predict(variants, owners)``: the audited score (binary), probabilities (multiclass) or
    value (regression) of row ``positions[owners[j]]`` with its text replaced by ``variants[j]``;
    the row's other inputs are kept."""
    base = ctx.X.iloc[positions]

    def predict(variants: list[str], owners: list[int]) -> npt.NDArray[np.float64]:
        frame = base.iloc[np.asarray(owners, dtype=np.int64)].copy()
        frame[column] = np.asarray(variants, dtype=object)
        return np.asarray(ctx.model.predict(frame), dtype=np.float64)

    return predict


if TYPE_CHECKING:
    from auditkit.engine.context import AuditContext, AuditData
