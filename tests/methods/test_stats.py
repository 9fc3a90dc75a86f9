"""methods/stats.py: the Student-t and Wilson intervals (moved from noise_robustness, #17) against
scipy's own, and a confidence level written as a reader writes it."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from auditkit.methods.stats import level_text, t_interval, wilson_interval


@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_t_interval_is_scipys_student_t_interval_of_the_mean(confidence):
    values = np.array([0.12, 0.15, 0.11, 0.19, 0.14])
    mean, (low, high) = t_interval(values, confidence)
    ref_low, ref_high = stats.t.interval(confidence, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(0.142, abs=1e-15)  # (0.12 + 0.15 + 0.11 + 0.19 + 0.14) / 5
    assert (low, high) == pytest.approx((ref_low, ref_high), rel=1e-12)  # two float paths to one formula


@pytest.mark.parametrize("successes, n", [(1, 10), (7, 40), (39, 40), (250, 1000)])
@pytest.mark.parametrize("confidence", [0.9, 0.95])
def test_wilson_interval_is_scipys_wilson_interval(successes, n, confidence):
    reference = stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")
    assert wilson_interval(successes, n, confidence) == pytest.approx((reference.low, reference.high), rel=1e-12)


def test_wilson_interval_is_exact_at_no_and_every_success():
    low, high = wilson_interval(0, 50, 0.95)
    assert low == 0.0 and 0 < high < 0.1
    low, high = wilson_interval(50, 50, 0.95)
    assert high == 1.0 and 0.9 < low < 1


def test_level_text_writes_the_level_as_a_percentage():
    assert [level_text(c) for c in (0.95, 0.975, 0.9, 0.8, 0.99)] == ["95%", "97.5%", "90%", "80%", "99%"]
