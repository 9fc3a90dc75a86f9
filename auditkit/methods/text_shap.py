"""SHAP values over the tokens of a text: shap's Partition explainer with its Text masker.

The masker splits a text with a regular expression (``\\W+``, so its tokens are those of
``text_tokens``; no ``transformers`` tokenizer is needed) and replaces a masked token by a
blank, which a word-level model reads as the token removed. The Partition explainer
computes Owen values over shap's hierarchical clustering of the tokens: they add up
exactly to ``f(text) - f(every token masked)`` (the base value), and equal Shapley values
when the model does not depend on interactions across the tree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import numpy.typing as npt

from auditkit.methods.text_tokens import SEPARATOR, WORD

MASK = " "  # a masked token becomes a blank: the word is gone, the words around it stay apart


@dataclass(frozen=True)
class TokenShap:
    """SHAP values of one text: one row of ``values`` per token (shap's order, empty tokens dropped)."""

    tokens: list[str]
    values: npt.NDArray[np.float64]  # (tokens, outputs)
    base: npt.NDArray[np.float64]  # f(every token masked), per output
    score: npt.NDArray[np.float64]  # f(text), per output


def token_shap(texts: Sequence[str], predict: Callable[[list[str], int], npt.NDArray[np.float64]], *,
               max_evals: int = 500, batch_size: int = 256) -> list[TokenShap]:
    """Partition SHAP values of each text; ``predict(variants, i)`` scores masked copies of
    text ``i`` and returns ``(len(variants),)`` or ``(len(variants), outputs)``."""
    import shap

    masker = shap.maskers.Text(SEPARATOR, mask_token=MASK, collapse_mask_token=False)
    out: list[TokenShap] = []
    for i, text in enumerate(texts):
        def f(variants: npt.NDArray[np.str_], i: int = i) -> npt.NDArray[np.float64]:
            return np.asarray(predict([str(v) for v in variants], i), dtype=np.float64)

        explainer = shap.explainers.PartitionExplainer(f, masker)
        explanation = explainer([text], max_evals=max_evals, batch_size=batch_size, silent=True)
        values = np.asarray(explanation.values[0], dtype=np.float64)
        base = np.atleast_1d(np.asarray(explanation.base_values[0], dtype=np.float64))
        if values.ndim == 1:
            values = values[:, None]
        # shap's segments are a word and the separator after it ("late. "): keep the word
        words = [WORD.search(str(t)) for t in explanation.data[0]]
        tokens = [word.group(0) if word else "" for word in words]
        keep = [j for j, token in enumerate(tokens) if token]
        score = np.atleast_1d(np.asarray(f(np.array([text])), dtype=np.float64).reshape(-1))
        out.append(TokenShap(tokens=[tokens[j] for j in keep], values=values[keep], base=base, score=score))
    return out
