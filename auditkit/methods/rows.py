"""Which rows a local check explains: file row numbers, a pandas query, or a seeded sample.

Shared by every check of the ``local`` family, so that ``rows``, ``query`` and ``sample``
mean the same everywhere and are validated against the data before any check runs.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pandas as pd

from auditkit.engine.context import AuditData
from auditkit.core.params import RowSelectionParams
from auditkit.errors import CheckError


def _shorten(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def query_positions(data: AuditData, query: str) -> np.ndarray:
    """Positions of the audit rows that ``query`` selects; CheckError when it cannot be
    evaluated or selects nothing."""
    frame = data.frame
    # a multiclass model's score is the probability of its predicted class (the decision)
    scores = np.asarray(data.scores)
    scores = scores.max(axis=1) if scores.ndim == 2 else scores
    view = frame.assign(score=scores, decision=data.decisions) if data.decisions is not None \
        else frame.assign(score=scores)
    try:
        chosen = view.query(query, engine="python")
    except Exception as exc:  # any pandas/Python error: the query is the user's input
        raise CheckError(f"params.query {query!r} cannot be evaluated: {type(exc).__name__}: "
                         f"{_shorten(str(exc))}") from None
    if not isinstance(chosen, pd.DataFrame):
        raise CheckError(f"params.query {query!r} does not select rows (it gave a {type(chosen).__name__})")
    if len(chosen) == 0:
        raise CheckError(f"params.query {query!r} selects no row of the {len(frame):,} audit rows")
    return pd.Index(frame.index).get_indexer(chosen.index)


def validate_selection(params: RowSelectionParams, data: AuditData) -> None:
    """Raise CheckError naming ``params.rows`` or ``params.query`` when they do not fit the data."""
    if params.rows is not None:
        if not params.rows:
            raise CheckError("params.rows is empty; list at least one row number")
        index = pd.Index(data.frame.index)
        missing = [r for r in params.rows if r not in index]
        if missing:
            shown = ", ".join(map(str, missing[:5])) + (", ..." if len(missing) > 5 else "")
            raise CheckError(f"params.rows: {'row ' + shown + ' is' if len(missing) == 1 else 'rows ' + shown + ' are'} not among the audit rows (row numbers are 0-based "
                             f"positions in the data file; the audit has {len(index):,} rows, numbered "
                             f"{index.min()}..{index.max()}{' with gaps after data.sample or data.query' if len(index) <= index.max() else ''})")
    if params.rows is not None and params.query is not None:
        raise CheckError("params.rows and params.query are both given; use one of them")
    if params.query is not None:
        query_positions(data, params.query)


def select_positions(data: AuditData, params: RowSelectionParams, rng: np.random.Generator,
                     *, among: Optional[np.ndarray] = None) -> np.ndarray:
    """Positions (into the audit frame) of the rows to explain, in a stable order.

    ``among`` (a boolean mask over the audit rows) restricts the seeded sample, e.g. to the
    rows with the unfavourable decision; explicit ``rows`` and a ``query`` are not restricted.
    """
    validate_selection(params, data)
    if params.rows is not None:
        return pd.Index(data.frame.index).get_indexer(params.rows)
    if params.query is not None:
        positions = query_positions(data, params.query)
        if len(positions) > params.sample:
            positions = np.sort(rng.choice(positions, size=params.sample, replace=False))
        return positions
    from auditkit.data.sample import stratified_positions

    candidates = np.arange(len(data.frame)) if among is None else np.flatnonzero(among)
    if len(candidates) == 0:
        return candidates
    strata = pd.Series(np.asarray(data.decisions)[candidates]) if data.decisions is not None else None
    chosen = stratified_positions(strata, len(candidates), min(params.sample, len(candidates)), rng)
    return np.sort(candidates[chosen])
