"""Exact sums of float64 values: the same figure however the rows are split or ordered.

A floating-point sum depends on the order of its additions, so a mean computed on a whole
column and one combined from partitions' sums can differ in the last bits. Here every
float64 is an integer multiple of 2**-1074 (the smallest subnormal), so a sum of them is
one exact integer in those units (a Python int). Partitions' sums combine by integer
addition, and a mean is the correctly rounded quotient of two integers (Python's int
division rounds correctly): every figure built on these sums is the exactly rounded value of
its real-number definition.

The per-row work is vectorised: ``np.frexp`` splits each value into a 53-bit integer
mantissa and an exponent; the mantissa is cut into three 18-bit pieces whose sums per (key,
exponent) stay below 2**53 for up to 2**35 rows, so ``np.bincount``'s float64 sums of them
are exact integers; Python ints then shift each exponent's sum into place.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable

import numpy as np
import numpy.typing as npt

_UNIT_BITS = 1074  # values are held in units of 2**-1074
_PIECE = 18
_MASK = (1 << _PIECE) - 1


@dataclass(frozen=True)
class ExactSum:
    """The exact sum of some float64 values: ``total`` in units of 2**-1074, and whether a NaN,
    +inf or -inf was among them (they make the sum non-finite, as numpy's would be)."""

    total: int = 0
    nan: bool = False
    pos_inf: bool = False
    neg_inf: bool = False

    def __add__(self, other: "ExactSum") -> "ExactSum":
        return ExactSum(self.total + other.total, self.nan or other.nan, self.pos_inf or other.pos_inf,
                        self.neg_inf or other.neg_inf)

    @property
    def finite(self) -> bool:
        return not (self.nan or self.pos_inf or self.neg_inf)

    def _special(self) -> float | None:
        if self.nan or (self.pos_inf and self.neg_inf):
            return float("nan")
        if self.pos_inf:
            return float("inf")
        if self.neg_inf:
            return float("-inf")
        return None

    @property
    def fraction(self) -> Fraction:
        """The exact sum as a rational (finite sums only)."""
        return Fraction(self.total, 1 << _UNIT_BITS)

    def value(self) -> float:
        """The sum, correctly rounded to float64."""
        special = self._special()
        return special if special is not None else rounded(self.fraction)

    def mean(self, n: int | float) -> float:
        """The sum divided by ``n``, correctly rounded (NaN for n = 0)."""
        special = self._special()
        if special is not None:
            return special
        if n <= 0:
            return float("nan")
        return rounded(self.fraction / int(n))


def rounded(value: Fraction) -> float:
    """A rational, correctly rounded to float64 (inf beyond its range)."""
    try:
        return value.numerator / value.denominator  # int true division rounds correctly
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def of_int(count: int) -> ExactSum:
    """An integer (a count) as an exact sum."""
    return ExactSum(int(count) << _UNIT_BITS)


def total(sums: Iterable[ExactSum]) -> ExactSum:
    out = ExactSum()
    for s in sums:
        out = out + s
    return out


def exact_sums(values: npt.ArrayLike, keys: npt.ArrayLike | None = None, n_keys: int = 1) -> list[ExactSum]:
    """The exact sum of ``values`` per key (``keys``: an integer in [0, n_keys) per value; None:
    one sum of them all)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    k = np.zeros(len(v), dtype=np.int64) if keys is None else np.asarray(keys, dtype=np.int64).ravel()
    finite = np.isfinite(v)
    nan = np.bincount(k[np.isnan(v)], minlength=n_keys) > 0
    pos_inf = np.bincount(k[v == np.inf], minlength=n_keys) > 0
    neg_inf = np.bincount(k[v == -np.inf], minlength=n_keys) > 0
    v, k = v[finite], k[finite]
    totals = [0] * n_keys
    if len(v):
        mantissa, exponent = np.frexp(v)  # v = mantissa * 2**exponent, 0.5 <= |mantissa| < 1
        m = np.ldexp(mantissa, 53).astype(np.int64)  # exact: a float64 mantissa has 53 bits
        low = int(exponent.min())
        spread = int(exponent.max()) - low + 1
        cell = k * spread + (exponent - low)
        sign = np.sign(m)
        magnitude = np.abs(m)
        pieces = [np.bincount(cell, weights=sign * ((magnitude >> (_PIECE * j)) & _MASK), minlength=n_keys * spread)
                  for j in range(3)]
        for index in np.flatnonzero((pieces[0] != 0) | (pieces[1] != 0) | (pieces[2] != 0)):
            key, e = divmod(int(index), spread)
            integer = sum(int(pieces[j][index]) << (_PIECE * j) for j in range(3))
            shift = e + low - 53 + _UNIT_BITS  # value = integer * 2**(exponent - 53)
            totals[key] += integer << shift if shift >= 0 else integer >> -shift  # exact: a multiple of 2**-1074
    return [ExactSum(totals[i], bool(nan[i]), bool(pos_inf[i]), bool(neg_inf[i])) for i in range(n_keys)]


def exact_sum(values: npt.ArrayLike) -> ExactSum:
    return exact_sums(values)[0]


_SPLITTER = 134217729.0  # 2**27 + 1: Veltkamp's split of a float64 into two halves of 26 bits


def exact_square_sum(values: npt.ArrayLike) -> ExactSum:
    """The exact sum of the values' squares (not of their rounded squares): each value is split
    into halves, a = hi + lo, whose products hi*hi, 2*hi*lo and lo*lo are exact in float64. (Exact
    for magnitudes between about 1e-140 and 1e300, far beyond any audited score or outcome.)"""
    a = np.asarray(values, dtype=np.float64).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        c = _SPLITTER * a
        hi = c - (c - a)
        lo = a - hi
        hi = np.where(np.isfinite(hi), hi, a * a)  # inf or NaN: the square's own (inf or NaN)
        lo = np.where(np.isfinite(lo), lo, 0.0)
    return total([exact_sum(hi * hi), exact_sum(2 * hi * lo), exact_sum(lo * lo)])
