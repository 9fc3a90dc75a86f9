"""Is a change between two runs larger than their sampling noise?

Two readings, both from what results.json records for a metric:

- whether the two confidence intervals overlap (a plain, conservative reading: two 95%
  intervals can overlap while the difference is significant at 5%);
- a Wald z-test of the difference, ``z = (current - baseline) / sqrt(se_b^2 + se_c^2)``,
  two-sided ``p = erfc(|z| / sqrt 2)``. A metric's ``se`` is the standard deviation of its
  bootstrap draws (``performance`` and ``group_fairness`` record it); for an interval
  without one, ``se`` is read from the interval's width under a normal approximation,
  ``(high - low) / (2 z_{(1+level)/2})``.

The test treats the two runs as independent samples. That is exact when they audit different
data; when both audit the same rows (the same data file, sample and seed: a retrained model on
the same test set) the two estimates are positively correlated and the variance of their
difference is smaller than the sum, so the test is conservative: a significant change is
real, a non-significant one may still be. A paired test would need each run's per-resample
values, which results.json does not keep (they would multiply its size by the resample count).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Optional

#: The method, as the diff records it.
TEST_METHOD = ("Wald z-test of the difference, bootstrap standard errors (from the interval width where the "
               "run recorded none), runs treated as independent (conservative when both audit the same rows)")


@dataclass(frozen=True)
class DifferenceTest:
    """The z-test of ``current - baseline``."""

    difference: float
    se: float  # standard error of the difference
    z: Optional[float]  # None when se is 0 (both figures exact)
    p_value: float
    se_from: str  # "bootstrap" or "interval" (how the standard errors were obtained)

    def to_dict(self) -> dict[str, Any]:
        return {"difference": self.difference, "se": self.se, "z": self.z, "p_value": self.p_value,
                "se_from": self.se_from, "method": TEST_METHOD}


def interval(metric: dict[str, Any]) -> Optional[tuple[float, float]]:
    ci = metric.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(v, (int, float)) for v in ci):
        return float(ci[0]), float(ci[1])
    return None


def intervals_overlap(a: dict[str, Any], b: dict[str, Any]) -> Optional[bool]:
    """Whether the two metrics' intervals share a point; None when either has none."""
    first, second = interval(a), interval(b)
    if first is None or second is None:
        return None
    return max(first[0], second[0]) <= min(first[1], second[1])


def standard_error(metric: dict[str, Any]) -> tuple[Optional[float], Optional[str]]:
    """The metric's standard error and where it came from ("bootstrap" or "interval")."""
    se = metric.get("se")
    if isinstance(se, (int, float)) and math.isfinite(se) and se >= 0:
        return float(se), "bootstrap"
    bounds = interval(metric)
    if bounds is None:
        return None, None
    level = metric.get("level") if isinstance(metric.get("level"), (int, float)) else 0.95
    z = NormalDist().inv_cdf((1.0 + float(level)) / 2.0)
    return abs(bounds[1] - bounds[0]) / (2.0 * z), "interval"


def difference_test(baseline: dict[str, Any], current: dict[str, Any]) -> Optional[DifferenceTest]:
    """The z-test of the change from ``baseline`` to ``current`` (two metric records), or
    None when either lacks a value or a standard error."""
    a, b = baseline.get("value"), current.get("value")
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return None
    se_a, from_a = standard_error(baseline)
    se_b, from_b = standard_error(current)
    if se_a is None or se_b is None:
        return None
    difference = float(b) - float(a)
    se = math.hypot(se_a, se_b)
    source = "bootstrap" if from_a == from_b == "bootstrap" else "interval"
    if se == 0.0:  # both exact: any change is certain, no change is no evidence
        return DifferenceTest(difference, 0.0, None, 1.0 if difference == 0.0 else 0.0, source)
    z = difference / se
    return DifferenceTest(difference, se, z, math.erfc(abs(z) / math.sqrt(2.0)), source)
