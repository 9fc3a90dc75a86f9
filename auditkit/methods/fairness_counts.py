"""``group_fairness``'s classification figures from per-key counts that combine across blocks.

Every figure of a group is a function of counts of its rows: the six confusion cells of
:func:`auditkit.methods.rates.cell_counts` (its bootstrap already resamples those counts), the
positives and negatives per distinct score (the group's ROC AUC), and per calibration bin the
exact sum of the scores and the count of positives (mean score, observed rate, ECE: exact,
:mod:`auditkit.methods.exact_sums`). :func:`summarise` keeps them per key of
:mod:`auditkit.methods.group_keys` (one per combination of the attributes' groups) for each
decision audited (a binary model's, or each class one-vs-rest), :func:`combine` adds blocks'
summaries, and :func:`group_cells` / :func:`score_figures` read one grouping's figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.methods import score_counts as sc
from auditkit.methods.exact_sums import ExactSum, exact_sums, rounded
from auditkit.methods.group_keys import Keys, add_by_key, block_keys, merge_keys
from auditkit.methods.groups import Grouping
from auditkit.methods.rates import cell_counts


@dataclass
class DecisionCounts:
    """One decision's counts per key."""

    cells: npt.NDArray[np.int64]  # (keys, 6): decision x target state, as cell_counts
    scores: sc.ScoreCounts | None = None  # labelled rows: per key, distinct score -> (positives, negatives)
    bin_sums: list[ExactSum] = field(default_factory=list)  # labelled rows: per (key, bin), the scores' exact sum
    bin_positives: npt.NDArray[np.int64] | None = None  # (keys, bins)
    bin_rows: npt.NDArray[np.int64] | None = None  # (keys, bins)


@dataclass
class FairnessCounts:
    rows: int
    keys: Keys
    bins: int
    decisions: dict[str | None, DecisionCounts] = field(default_factory=dict)  # class (None: binary) -> counts


def summarise(frame: pd.DataFrame, columns: list[str], bins: dict[str, list[float]],
              variants: list[tuple[str | None, Any, Any, Any]], *, probability: bool,
              calibration_bins: int) -> FairnessCounts:
    """The counts of a block of rows: ``variants`` lists (class, decisions 0/1, target 0/1/NaN
    or None, scores) per decision audited, each a value per row of ``frame``."""
    codes, keys = block_keys(frame, columns, bins)
    out = FairnessCounts(rows=len(frame), keys=keys, bins=calibration_bins)
    if codes is None:
        return out
    n_keys = len(keys.labels)
    edges = np.linspace(0, 1, calibration_bins + 1)
    for klass, decisions, y, scores in variants:
        y = None if y is None else np.asarray(y, dtype=np.float64)
        counts = DecisionCounts(cells=cell_counts(codes, n_keys, np.asarray(decisions, dtype=np.int64), y).astype(np.int64))
        if y is not None:
            labelled = ~np.isnan(y)
            key, yy, ss = codes[labelled], y[labelled], np.asarray(scores, dtype=np.float64)[labelled]
            counts.scores = sc.score_counts(ss, yy == 1, key)
            if probability:
                which = np.clip(np.digitize(ss, edges[1:-1]), 0, calibration_bins - 1)
                cell = key * calibration_bins + which
                counts.bin_sums = exact_sums(ss, cell, n_keys * calibration_bins)
                size = n_keys * calibration_bins
                counts.bin_positives = np.bincount(cell[yy == 1], minlength=size).reshape(n_keys, -1).astype(np.int64)
                counts.bin_rows = np.bincount(cell, minlength=size).reshape(n_keys, -1).astype(np.int64)
        out.decisions[klass] = counts
    return out


def combine(parts: list[FairnessCounts]) -> FairnessCounts:
    """The counts of consecutive blocks of rows (in row order), from theirs."""
    keys, remaps = merge_keys([p.keys for p in parts])
    out = FairnessCounts(rows=sum(p.rows for p in parts), keys=keys, bins=parts[0].bins)
    if not keys.usable:
        return out
    n_keys = len(keys.labels)
    for klass in parts[0].decisions:
        pieces = [p.decisions[klass] for p in parts]
        counts = DecisionCounts(cells=add_by_key([c.cells for c in pieces], remaps, n_keys))
        if pieces[0].scores is not None:
            counts.scores = sc.merge([c.scores for c in pieces], remaps)  # type: ignore[misc]
        if pieces[0].bin_positives is not None:
            bins = out.bins
            sums = [ExactSum()] * (n_keys * bins)
            for c, remap in zip(pieces, remaps):
                for local_key, key in enumerate(remap):
                    for b in range(bins):
                        sums[key * bins + b] = sums[key * bins + b] + c.bin_sums[local_key * bins + b]
            counts.bin_sums = sums
            counts.bin_positives = add_by_key([c.bin_positives for c in pieces], remaps, n_keys)  # type: ignore[misc]
            counts.bin_rows = add_by_key([c.bin_rows for c in pieces], remaps, n_keys)  # type: ignore[misc]
        out.decisions[klass] = counts
    return out


def group_cells(counts: FairnessCounts, grouping: Grouping, klass: str | None) -> npt.NDArray[np.float64]:
    """(groups, 6) confusion counts of one grouping (``grouping.codes``: the group of each key)."""
    cells = counts.decisions[klass].cells
    n_groups = len(grouping.labels)
    return np.stack([np.bincount(grouping.codes, weights=cells[:, j].astype(np.float64), minlength=n_groups)
                     for j in range(6)], axis=1)


def score_figures(counts: FairnessCounts, grouping: Grouping, klass: str | None, *, labelled: bool,
                  probability: bool) -> list[dict[str, Any]]:
    """Per group: ``auc`` (None without both classes), and with probability scores
    ``mean_score``, ``observed_rate`` and ``ece`` (sum over bins of |sum of scores - positives|
    over the group's labelled rows), all over its labelled rows; {} without a target."""
    n_groups = len(grouping.labels)
    out: list[dict[str, Any]] = [{} for _ in range(n_groups)]
    decision = counts.decisions[klass]
    if not labelled or decision.scores is None:
        return out
    by_group = sc.merge([decision.scores], [grouping.codes])
    bins = counts.bins
    for g in range(n_groups):
        mine = by_group.of(g)
        n = int(mine.total.sum())
        record: dict[str, Any] = {"auc": sc.auc(mine) if mine.pos.sum() > 0 and mine.neg.sum() > 0 else None}
        if probability and n and decision.bin_positives is not None:
            members = np.flatnonzero(grouping.codes == g)
            positives = int(decision.bin_positives[members].sum())
            score_sum = Fraction(0)
            gap = Fraction(0)
            for b in range(bins):
                in_bin = sum((decision.bin_sums[key * bins + b] for key in members), ExactSum())
                if not in_bin.finite:
                    score_sum = gap = None  # type: ignore[assignment]
                    break
                hits = int(decision.bin_positives[members, b].sum())
                score_sum += in_bin.fraction
                gap += abs(in_bin.fraction - hits)
            record["mean_score"] = rounded(score_sum / n) if score_sum is not None else float("nan")
            record["observed_rate"] = positives / n
            record["ece"] = rounded(gap / n) if gap is not None else float("nan")
        out[g] = record
    return out
