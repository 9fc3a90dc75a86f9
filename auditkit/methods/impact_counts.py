"""``impact_ratio``'s counts per key of :mod:`auditkit.methods.group_keys`, combined across blocks.

Per key (a combination of the attributes' categories): its rows, its selected rows, and the
rows per distinct score (:mod:`auditkit.methods.score_counts`), from which the median of every
row's score and each category's share on the favourable side of it follow exactly, after the
blocks are combined.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.methods import score_counts as sc
from auditkit.methods.group_keys import Keys, add_by_key, block_keys, merge_keys
from auditkit.methods.groups import Grouping


@dataclass
class ImpactCounts:
    rows: int
    keys: Keys
    sizes: npt.NDArray[np.int64]  # per key
    selected: npt.NDArray[np.int64]
    scores: sc.ScoreCounts | None  # per key, rows per distinct score (None: no scores)


def summarise(frame: pd.DataFrame, columns: list[str], selected: npt.ArrayLike,
              scores: npt.ArrayLike | None) -> ImpactCounts:
    """The counts of a block of rows (``selected`` and ``scores``: a value per row of ``frame``)."""
    codes, keys = block_keys(frame, columns, {})
    if codes is None:
        return ImpactCounts(len(frame), keys, np.zeros(0, np.int64), np.zeros(0, np.int64), None)
    n_keys = len(keys.labels)
    chosen = np.asarray(selected, dtype=bool).ravel()
    return ImpactCounts(rows=len(frame), keys=keys, sizes=np.bincount(codes, minlength=n_keys).astype(np.int64),
                        selected=np.bincount(codes[chosen], minlength=n_keys).astype(np.int64),
                        scores=None if scores is None else sc.score_counts(scores, None, codes))


def combine(parts: list[ImpactCounts]) -> ImpactCounts:
    """The counts of consecutive blocks of rows (in row order), from theirs."""
    keys, remaps = merge_keys([p.keys for p in parts])
    rows = sum(p.rows for p in parts)
    if not keys.usable:
        return ImpactCounts(rows, keys, np.zeros(0, np.int64), np.zeros(0, np.int64), None)
    n_keys = len(keys.labels)
    scores = None if parts[0].scores is None else sc.merge([p.scores for p in parts], remaps)  # type: ignore[misc]
    return ImpactCounts(rows=rows, keys=keys, sizes=add_by_key([p.sizes for p in parts], remaps, n_keys),
                        selected=add_by_key([p.selected for p in parts], remaps, n_keys), scores=scores)


def per_group(values: npt.ArrayLike, grouping: Grouping) -> npt.NDArray[np.float64]:
    """Per-key counts added up per group of ``grouping`` (whose codes give each key's group)."""
    return np.bincount(grouping.codes, weights=np.asarray(values, dtype=np.float64), minlength=len(grouping.labels))


def favourable_scores(counts: ImpactCounts, median: float, *, high: bool) -> npt.NDArray[np.float64]:
    """Per key, the rows scoring strictly above (``high``) or below the median."""
    assert counts.scores is not None
    return sc.count_beyond(counts.scores, median, len(counts.keys.labels), above=high)
