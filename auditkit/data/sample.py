"""Stratified, seeded sampling that keeps the rows' file positions and order."""
from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd


def stratified_positions(strata: pd.Series | None, n_total: int, n_wanted: int,
                         rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Positions (0..n_total-1, sorted) of a sample of ``n_wanted`` rows, stratified.

    Each stratum gets its proportional share (largest remainders break the rounding), so the
    sample's class balance matches the data's; missing stratum values form their own stratum.
    """
    if n_wanted >= n_total:
        return np.arange(n_total, dtype=np.int64)
    if strata is None:
        return np.sort(rng.choice(n_total, size=n_wanted, replace=False)).astype(np.int64)
    codes, _ = pd.factorize(strata.astype(object).where(strata.notna(), "(missing)"), sort=True)
    counts = np.bincount(codes)
    exact = counts * (n_wanted / n_total)
    share = np.floor(exact).astype(np.int64)
    short = n_wanted - int(share.sum())
    if short > 0:
        order = np.lexsort((np.arange(len(exact)), -(exact - share)))
        share[order[:short]] += 1
    chosen: list[npt.NDArray[np.int64]] = []
    for code, k in enumerate(share):
        members = np.flatnonzero(codes == code)
        if k > 0:
            chosen.append(rng.choice(members, size=int(k), replace=False))
    return np.sort(np.concatenate(chosen)).astype(np.int64)
