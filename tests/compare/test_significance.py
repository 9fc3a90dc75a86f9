"""Interval overlap and the z-test of a difference, against closed forms and scipy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import stats

from auditkit.compare.significance import difference_test, intervals_overlap, standard_error
from auditkit.methods.stats import bootstrap_se


def test_intervals_that_share_a_point_overlap():
    assert intervals_overlap({"ci": [0.1, 0.3]}, {"ci": [0.3, 0.5]}) is True
    assert intervals_overlap({"ci": [0.1, 0.3]}, {"ci": [0.31, 0.5]}) is False
    assert intervals_overlap({"ci": [0.4, 0.6]}, {"ci": [0.1, 0.9]}) is True


def test_overlap_is_unknown_without_both_intervals():
    assert intervals_overlap({"value": 1.0}, {"ci": [0.1, 0.2]}) is None
    assert intervals_overlap({"ci": [None, 0.2]}, {"ci": [0.1, 0.2]}) is None


def test_the_standard_error_of_a_normal_interval_is_its_sigma():
    sigma = 0.013
    for level in (0.9, 0.95, 0.99):
        half = stats.norm.ppf((1 + level) / 2) * sigma
        se, source = standard_error({"value": 0.5, "ci": [0.5 - half, 0.5 + half], "level": level})
        assert source == "interval"
        assert_allclose(se, sigma, rtol=1e-12)  # exact up to rounding: the same normal quantile


def test_a_recorded_bootstrap_se_is_preferred_to_the_interval():
    assert standard_error({"value": 0.5, "ci": [0.0, 1.0], "se": 0.01}) == (0.01, "bootstrap")


def test_the_z_test_matches_scipy():
    baseline = {"value": 0.80, "se": 0.010}
    current = {"value": 0.77, "se": 0.015}
    test = difference_test(baseline, current)
    assert test is not None
    se = math.sqrt(0.010 ** 2 + 0.015 ** 2)
    assert_allclose(test.se, se, rtol=1e-15)
    assert_allclose(test.z, (0.77 - 0.80) / se, rtol=1e-12)
    # two-sided p of the Wald test; scipy's normal survival function is the reference
    assert_allclose(test.p_value, 2 * stats.norm.sf(abs(test.z)), rtol=1e-10)
    assert test.p_value < 0.1  # non-trivial: a visible but not overwhelming change


def test_the_z_test_of_two_proportions_matches_the_unpooled_closed_form():
    """With se = sqrt(p(1-p)/n) per run, the test is the classic unpooled two-proportion z-test."""
    p1, n1, p2, n2 = 0.62, 800, 0.55, 900
    se1, se2 = math.sqrt(p1 * (1 - p1) / n1), math.sqrt(p2 * (1 - p2) / n2)
    test = difference_test({"value": p1, "se": se1}, {"value": p2, "se": se2})
    z = (p2 - p1) / math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    assert_allclose(test.z, z, rtol=1e-12)
    assert_allclose(test.p_value, 2 * stats.norm.sf(abs(z)), rtol=1e-10)


def test_exact_figures_give_a_certain_test():
    assert difference_test({"value": 3.0, "se": 0.0}, {"value": 3.0, "se": 0.0}).p_value == 1.0
    assert difference_test({"value": 3.0, "se": 0.0}, {"value": 4.0, "se": 0.0}).p_value == 0.0


def test_no_test_without_values_or_uncertainty():
    assert difference_test({"value": None, "se": 0.1}, {"value": 0.2, "se": 0.1}) is None
    assert difference_test({"value": 0.1}, {"value": 0.2, "se": 0.1}) is None


def test_bootstrap_se_is_the_standard_deviation_of_the_finite_draws():
    draws = np.array([0.1, 0.2, np.nan, 0.4, 0.3])
    assert_allclose(bootstrap_se(draws), np.std([0.1, 0.2, 0.4, 0.3], ddof=1), rtol=1e-15)
    assert bootstrap_se(np.array([np.nan, 0.2])) is None


@pytest.mark.parametrize("shift", [0.0, 0.02, -0.05])
def test_the_z_statistic_is_welchs_statistic_of_two_samples(seed, shift):
    """Two independent samples with se = sd / sqrt(n): the z statistic is Welch's t statistic
    (scipy's ttest_ind, equal_var=False), and p is its large-sample normal p-value."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.5, 0.2, 4000)
    b = rng.normal(0.5 + shift, 0.2, 4000)
    se_a, se_b = a.std(ddof=1) / math.sqrt(a.size), b.std(ddof=1) / math.sqrt(b.size)
    test = difference_test({"value": a.mean(), "se": se_a}, {"value": b.mean(), "se": se_b})
    welch = stats.ttest_ind(b, a, equal_var=False)
    assert_allclose(test.z, welch.statistic, rtol=1e-10)  # the same formula, computed independently
    assert_allclose(test.p_value, 2 * stats.norm.sf(abs(welch.statistic)), rtol=1e-9)
