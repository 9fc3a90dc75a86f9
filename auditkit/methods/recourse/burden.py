"""Recourse compared between the groups of a protected attribute: how often each group gets a
counterfactual (recourse rate) and how far it must move (burden: mean distance), the ratios
lowest / highest, and their percentile bootstrap intervals (rows resampled within each group;
the search is not re-run).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.methods.groups import make_grouping
from auditkit.methods.stats import percentile_interval, resample_counts

Array = npt.NDArray[np.float64]
Interval = Optional[tuple[float, float]]


def mean_or_none(values: list[float] | Array) -> Optional[float]:
    return float(np.mean(values)) if len(values) else None


def median_or_none(values: list[float] | Array) -> Optional[float]:
    return float(np.median(values)) if len(values) else None


@dataclass(frozen=True)
class Ratio:
    """Lowest group figure / highest, with what it compares (or why it is undefined) and its interval."""

    value: Optional[float]
    note: str
    ci: Interval = None


@dataclass(frozen=True)
class GroupRecourse:
    """One protected attribute: a table row per group, and the two ratios between groups."""

    groups: list[dict[str, Any]]  # attribute, group, n, recourse_rate, mean_distance, median_changed
    rate_ratio: Ratio
    burden_ratio: Ratio


def _ratio(figures: list[float], undefined: str, zero: str, defined: str) -> tuple[Optional[float], str]:
    if len(figures) < 2:
        return None, undefined
    if max(figures) == 0:
        return None, zero
    return min(figures) / max(figures), defined


def compare_groups(explained: pd.DataFrame, attribute: str, bins: dict[str, list[float]],
                   found: npt.NDArray[np.bool_], distance: Array, n_changed: npt.NDArray[np.int64], *,
                   min_group_size: int, rng: np.random.Generator, bootstrap: int,
                   confidence: float) -> GroupRecourse:
    """Recourse rate and burden per group of ``attribute`` over the explained rows (``found``,
    ``distance`` and ``n_changed`` per row); the ratios over groups of at least
    ``min_group_size`` rows, with ``bootstrap`` resamples behind their ``confidence`` intervals."""
    grouping = make_grouping(explained, [attribute], bins)
    rows: list[dict[str, Any]] = []
    rates, burdens, included = [], [], []
    for g, label in enumerate(grouping.labels):
        members = grouping.codes == g
        size = int(members.sum())
        hit = members & found
        rate = float(hit.sum() / size)
        mean = mean_or_none(distance[hit])
        rows.append({"attribute": attribute, "group": label, "n": size, "recourse_rate": rate,
                     "mean_distance": mean, "median_changed": median_or_none(n_changed[hit].astype(np.float64))})
        if size >= min_group_size:
            rates.append(rate)
            included.append(members)
            if mean is not None:
                burdens.append(mean)
    compared = f"groups of {min_group_size} or more explained rows"
    rate_ratio, rate_note = _ratio(rates, f"fewer than 2 {compared}", f"no counterfactual in any of the {compared}",
                                   compared)
    burden, burden_note = _ratio(burdens, f"fewer than 2 {compared} with a counterfactual",
                                 "every counterfactual has distance 0", "smallest group mean distance / largest")
    rate_ci = burden_ci = None
    if bootstrap and len(included) >= 2 and (rate_ratio is not None or burden is not None):
        rate_ci, burden_ci = ratio_intervals(included, found, distance, rng, bootstrap, confidence)
    return GroupRecourse(rows, Ratio(rate_ratio, rate_note, rate_ci if rate_ratio is not None else None),
                         Ratio(burden, burden_note, burden_ci if burden is not None else None))


def ratio_intervals(groups: list[npt.NDArray[np.bool_]], found: npt.NDArray[np.bool_], distance: Array,
                    rng: np.random.Generator, resamples: int,
                    confidence: float = 0.95) -> tuple[Interval, Interval]:
    """Percentile intervals at ``confidence`` of the recourse-rate ratio and the burden ratio
    (lowest group figure over highest), resampling the explained rows within each group (group
    sizes fixed)."""
    rates, burdens = [], []
    for members in groups:
        hit = found[members].astype(np.float64)
        dist = np.where(found[members], distance[members], 0.0).astype(np.float64)
        counts = resample_counts(rng, int(members.sum()), resamples)  # (resamples, group size)
        drawn = counts @ hit
        rates.append(drawn / counts.sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            burdens.append(np.where(drawn > 0, (counts @ dist) / drawn, np.nan))
    rate = np.vstack(rates)
    burden = np.vstack(burdens)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_ratio = np.where(rate.max(axis=0) > 0, rate.min(axis=0) / rate.max(axis=0), np.nan)
        # a resample in which some group drew no counterfactual has no burden ratio
        complete = np.isfinite(burden).all(axis=0)
        highest = np.where(complete, np.where(np.isfinite(burden), burden, 0.0).max(axis=0), 0.0)
        lowest = np.where(np.isfinite(burden), burden, np.inf).min(axis=0)
        burden_ratio = np.where(complete & (highest > 0), lowest / np.where(highest > 0, highest, 1.0), np.nan)
    return percentile_interval(rate_ratio, confidence), percentile_interval(burden_ratio, confidence)
