"""Stratified, seeded sampling that keeps the rows' file positions and order."""
from __future__ import annotations

from typing import Any

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


# -- data.sample: a keyed stratified sample, the same however the rows are split into files --

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def row_keys(seed: int, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """A pseudo-random 64-bit key per row from the seed and the row's position in the data only
    (splitmix64): a row's key does not depend on the file it is in, nor on the other rows."""
    base = _splitmix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        return _splitmix64(np.asarray(positions, dtype=np.uint64) * _GOLDEN + base)


def stratum_labels(strata: pd.Series) -> npt.NDArray[Any]:
    """The stratum of each row as text (1 and 1.0 alike: a Parquet file's integers read as floats
    where a file has missing values); a missing value is its own stratum, ``(missing)``."""
    codes, uniques = pd.factorize(strata, use_na_sentinel=True)
    names = np.array([_label(v) for v in uniques] + ["(missing)"], dtype=object)
    return names[np.where(codes < 0, len(uniques), codes)]


def _label(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and float(value).is_integer():
        return str(int(value))
    return repr(value.item() if hasattr(value, "item") else value)


def allocate(counts: dict[str, int], n_wanted: int) -> dict[str, int]:
    """Each stratum's proportional share of ``n_wanted`` (largest remainders, ties to the
    stratum named first in sorted order)."""
    names = sorted(counts)
    sizes = np.array([counts[name] for name in names], dtype=np.int64)
    exact = sizes * (n_wanted / max(int(sizes.sum()), 1))
    share = np.floor(exact).astype(np.int64)
    short = n_wanted - int(share.sum())
    if short > 0:
        order = np.lexsort((np.arange(len(exact)), -(exact - share)))
        share[order[:short]] += 1
    return {name: int(k) for name, k in zip(names, share)}


def smallest_keys(labels: npt.NDArray[Any], positions: npt.NDArray[np.int64], keys: npt.NDArray[np.uint64],
                  shares: dict[str, int]) -> dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]]:
    """Per stratum, the (key, position) of its ``shares[stratum]`` rows with the smallest keys
    (ties, all but impossible with 64-bit keys, to the earlier row)."""
    out = {}
    for name, k in shares.items():
        members = np.flatnonzero(labels == name)
        if k <= 0 or members.size == 0:
            continue
        order = np.lexsort((positions[members], keys[members]))[:k]
        out[name] = (keys[members][order], positions[members][order])
    return out


def merge_smallest(parts: list[dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]]],
                   shares: dict[str, int]) -> npt.NDArray[np.int64]:
    """Combine per-partition :func:`smallest_keys`: the sorted positions of the sample."""
    chosen = []
    for name, k in shares.items():
        pieces = [part[name] for part in parts if name in part]
        if not pieces or k <= 0:
            continue
        keys = np.concatenate([p[0] for p in pieces])
        positions = np.concatenate([p[1] for p in pieces])
        order = np.lexsort((positions, keys))[:k]
        chosen.append(positions[order])
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.array([], dtype=np.int64)


def keyed_stratified_positions(strata: pd.Series | None, n_total: int, seed: int,
                               n_wanted: int) -> npt.NDArray[np.int64]:
    """Positions (sorted) of ``data.sample``: each stratum's proportional share (as
    :func:`stratified_positions`), its rows with the smallest :func:`row_keys`. Computed in one
    piece here, and by partition (:func:`smallest_keys` then :func:`merge_smallest`) for a
    Parquet dataset: the same rows either way."""
    positions = np.arange(n_total, dtype=np.int64)
    labels = stratum_labels(strata) if strata is not None else np.full(n_total, "(all)", dtype=object)
    names, counts = np.unique(labels, return_counts=True)
    shares = allocate(dict(zip(names.tolist(), counts.tolist())), min(n_wanted, n_total))
    return merge_smallest([smallest_keys(labels, positions, row_keys(seed, positions), shares)], shares)
