"""Noisy copies of audit rows, built with numpy a whole block at a time.

A numeric feature gets Gaussian noise scaled by its standard deviation (``x + sigma * s * e``,
``e ~ N(0, 1)``; a missing value stays missing); a categorical one is swapped, with a given
probability, for another observed category drawn by its frequency. Copies are stacked
(copy-major: rows 0..n-1 are the first copy) so that every copy is predicted in one call.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
Codes = dict[str, npt.NDArray[np.int64]]


class Perturber:
    """Noisy copies of the rows ``X``; scales and category frequencies come from ``scale_from``
    (the audit rows), standard deviations with ``ddof=1``."""

    def __init__(self, X: pd.DataFrame, scale_from: pd.DataFrame, numeric: list[str], categorical: list[str]):
        self.X, self.numeric, self.categorical = X, numeric, categorical
        self.n = len(X)
        self.values = X[numeric].to_numpy(dtype=np.float64, na_value=np.nan) if numeric else np.empty((self.n, 0))
        std = np.nanstd(scale_from[numeric].to_numpy(dtype=np.float64, na_value=np.nan), axis=0, ddof=1) \
            if numeric else np.empty(0)
        self.std = np.where(np.isfinite(std), std, 0.0)
        self.codes: Codes = {}
        self.categories: dict[str, npt.NDArray[Any]] = {}
        self.cumulative: dict[str, FloatArray] = {}
        for column in categorical:
            counts = scale_from[column].value_counts(dropna=True, sort=False)
            categories = counts.index.to_numpy(dtype=object)
            self.categories[column] = np.append(categories, np.nan)  # code -1 -> the last entry: missing
            self.codes[column] = pd.Categorical(X[column], categories=counts.index).codes.astype(np.int64)
            share = counts.to_numpy(dtype=np.float64) / counts.sum()
            self.cumulative[column] = np.cumsum(share)

    def numeric_noise(self, rng: np.random.Generator, sigmas: FloatArray) -> FloatArray:
        """``len(sigmas)`` stacked copies (k*n, p); NaN + noise stays NaN."""
        k, p = len(sigmas), self.values.shape[1]
        noise = rng.standard_normal((k, self.n, p))
        noise *= sigmas[:, None, None] * self.std[None, None, :]
        noise += self.values[None, :, :]
        return noise.reshape(k * self.n, p)

    def swap(self, rng: np.random.Generator, column: str, codes: npt.NDArray[np.int64],
             probability: FloatArray) -> npt.NDArray[np.int64]:
        """Swap each observed code with its row's probability for another category drawn by frequency."""
        cumulative = self.cumulative[column]
        out = codes.copy()
        if len(cumulative) < 2:
            return out
        chosen = (rng.random(len(codes)) < probability) & (codes >= 0)
        current = codes[chosen]
        start = np.concatenate([[0.0], cumulative[:-1]])[current]
        mass = cumulative[current] - start
        # uniform over [0, 1 - mass of the current category), mapped around that category's slice
        u = rng.random(len(current)) * (1.0 - mass)
        u = np.where(u >= start, u + mass, u)
        out[chosen] = np.minimum(np.searchsorted(cumulative, u, side="right"), len(cumulative) - 1)
        return out

    def copies(self, rng: np.random.Generator, sigmas: FloatArray, swap: FloatArray,
               features: Sequence[str]) -> tuple[FloatArray, Codes]:
        """One noisy copy per entry of ``sigmas`` (numeric noise) and ``swap`` (category swap
        probability); only ``features`` are perturbed, the other columns keep their values."""
        k = len(sigmas)
        numeric = self.numeric_noise(rng, sigmas)
        still = np.array([f not in features for f in self.numeric], dtype=bool)
        if still.any():
            numeric[:, still] = np.tile(self.values[:, still], (k, 1))
        codes = {c: np.tile(self.codes[c], k) for c in self.categorical}
        for column in self.categorical:
            if column in features:
                codes[column] = self.swap(rng, column, codes[column], np.repeat(swap, self.n))
        return numeric, codes

    def one_at_a_time(self, rng: np.random.Generator, sigma: float, swap: float,
                      features: Sequence[str]) -> tuple[FloatArray, Codes]:
        """One copy per feature of ``features``, in which only that feature is perturbed."""
        n = self.n
        numeric = np.tile(self.values, (len(features), 1))
        codes = {c: np.tile(self.codes[c], len(features)) for c in self.categorical}
        for i, feature in enumerate(features):
            block = slice(i * n, (i + 1) * n)
            if feature in self.numeric:
                j = self.numeric.index(feature)
                numeric[block, j] += (sigma * self.std[j]) * rng.standard_normal(n)
            else:
                codes[feature][block] = self.swap(rng, feature, self.codes[feature], np.full(n, swap))
        return numeric, codes

    def frame(self, numeric: FloatArray, codes: Codes, features: list[str]) -> pd.DataFrame:
        """Stacked copies as the model's input frame, columns in the order of ``features``."""
        columns: dict[str, Any] = {c: numeric[:, j] for j, c in enumerate(self.numeric)}
        for column, column_codes in codes.items():
            columns[column] = self.categories[column][column_codes]
        return pd.DataFrame(columns, copy=False)[features]

    def stacked_frame(self, parts: Sequence[tuple[FloatArray, Codes]], features: list[str]) -> pd.DataFrame:
        """Several blocks of copies as one frame, in order (one model call)."""
        numeric = np.concatenate([p[0] for p in parts])
        codes = {c: np.concatenate([p[1][c] for p in parts]) for c in self.categorical}
        return self.frame(numeric, codes, features)
