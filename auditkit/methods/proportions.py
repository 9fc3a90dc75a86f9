"""Comparing one group's rate with a reference group's: the test, and what it can detect.

A fairness figure compares proportions (a selection rate, a true- or false-positive rate:
``x`` successes out of ``n``). :func:`compare_proportions` tests a group against the
reference group; :func:`min_detectable_ratio` says how large a disparity that test finds
with a given power, so that a "pass" on a small group can say it could not have failed.
"""
from __future__ import annotations

import math
from typing import Final

# The four-fifths rule (EEOC, 29 CFR 1607.4(D)): a group that cannot be told apart from the
# reference at this ratio is too small for a pass on it to mean much.
DETECTABLE_RATIO: Final = 0.8

Z_TEST: Final = "two-proportion z test"
FISHER: Final = "Fisher's exact test"


def compare_proportions(x: int, n: int, x0: int, n0: int) -> tuple[float | None, str | None]:
    """Two-sided p-value of ``x / n`` against ``x0 / n0``, and the test's name.

    The pooled two-proportion z test (the chi-square test of the 2 x 2 table without
    continuity correction), unless an expected count of the table is under 5 (Cochran's
    rule), where the normal approximation is poor: then Fisher's exact test. ``(None, None)``
    when either group has no rows in the denominator.

    >>> compare_proportions(30, 100, 50, 100)[1]
    'two-proportion z test'
    >>> round(compare_proportions(30, 100, 50, 100)[0], 6)
    0.003892
    """
    if n <= 0 or n0 <= 0:
        return None, None
    from scipy import stats

    total = n + n0
    hits = x + x0
    expected = [n * hits / total, n * (total - hits) / total, n0 * hits / total, n0 * (total - hits) / total]
    if min(expected) < 5:
        return float(stats.fisher_exact([[x, n - x], [x0, n0 - x0]]).pvalue), FISHER
    pooled = hits / total
    z = (x / n - x0 / n0) / math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / n0))
    return float(2 * stats.norm.sf(abs(z))), Z_TEST


def power_two_sided(h: float, n: int, n0: int, alpha: float) -> float:
    """Power of the two-sided normal test of Cohen's effect size ``h`` with groups of ``n`` and ``n0``
    (both tails), as statsmodels' ``NormalIndPower`` computes it."""
    from scipy import stats

    scale = math.sqrt(1 / (1 / n + 1 / n0))
    crit = float(stats.norm.isf(alpha / 2))
    return float(stats.norm.sf(crit - h * scale) + stats.norm.cdf(-crit - h * scale))


def min_detectable_ratio(n: int, n0: int, p0: float, *, alpha: float, power: float) -> float | None:
    """The largest ratio ``p / p0`` below 1 that a two-sided test at ``alpha`` detects with ``power``.

    A group of ``n`` compared with a reference of ``n0`` whose rate is ``p0``: every true
    ratio at or below the returned one is found with at least ``power``; a ratio nearer 1 may
    be missed. Normal approximation on the arcsine scale (Cohen's h = 2 asin sqrt(p0) - 2 asin
    sqrt(p)): h = (z_{1-alpha/2} + z_power) sqrt(1/n + 1/n0) in closed form, refined for the
    far tail's (tiny) share of the power. ``None`` when no ratio is detectable: not even a
    rate of 0 (or ``p0`` is 0, so no rate is below it).

    >>> round(min_detectable_ratio(1000, 1000, 0.5, alpha=0.05, power=0.8), 4)
    0.875
    >>> min_detectable_ratio(5, 5, 0.5, alpha=0.05, power=0.8) is None
    True
    """
    if n <= 0 or n0 <= 0 or not 0 < p0 <= 1:
        return None
    from scipy import optimize, stats

    scale = math.sqrt(1 / n + 1 / n0)
    closed = (float(stats.norm.isf(alpha / 2)) + float(stats.norm.ppf(power))) * scale
    if power <= alpha:  # the test "detects" any ratio that often by chance alone
        return 1.0
    # the closed form ignores the far tail, which only adds power: the exact h is a little smaller
    h = float(optimize.brentq(lambda e: power_two_sided(e, n, n0, alpha) - power, 0.0, closed, xtol=1e-14))
    top = math.asin(math.sqrt(p0))
    if h / 2 > top:
        return None
    return math.sin(top - h / 2) ** 2 / p0


def underpowered(ratio: float | None) -> bool:
    """Whether a group whose minimum detectable ratio is ``ratio`` misses a four-fifths disparity."""
    return ratio is None or ratio < DETECTABLE_RATIO
