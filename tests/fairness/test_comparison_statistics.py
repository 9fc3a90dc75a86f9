"""The statistics behind fairness verdicts: each group comparison's test, the audit-wide
correction of their p-values, and the minimum detectable ratio (#18), against statsmodels and
scipy, and by simulation."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportion_effectsize, proportions_ztest

from auditkit.methods.proportions import FISHER, Z_TEST, compare_proportions, min_detectable_ratio, power_two_sided
from auditkit.results.multiplicity import adjust_p_values


def _expected_min(x: int, n: int, x0: int, n0: int) -> float:
    table = np.array([[x, n - x], [x0, n0 - x0]])
    return float(stats.contingency.expected_freq(table).min())


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 3000), n0=st.integers(1, 3000), a=st.floats(0, 1), b=st.floats(0, 1))
@example(n=100, n0=100, a=0.3, b=0.5)  # z test
@example(n=8, n0=12, a=0.25, b=0.75)  # Fisher
@example(n=40, n0=40, a=0.0, b=0.0)  # nobody selected: nothing to tell apart
def test_group_test_is_statsmodels_z_test_or_scipy_fisher_for_small_expected_counts(n, n0, a, b):
    x, x0 = round(a * n), round(b * n0)
    p, test = compare_proportions(x, n, x0, n0)
    if _expected_min(x, n, x0, n0) < 5:
        assert test == FISHER
        # 1e-12: the same scipy call on the same table
        assert_allclose(p, stats.fisher_exact([[x, n - x], [x0, n0 - x0]]).pvalue, rtol=1e-12, atol=0)
    else:
        assert test == Z_TEST
        _, reference = proportions_ztest([x, x0], [n, n0])  # pooled variance under the null, two-sided
        # 1e-9 relative: two implementations of one closed form (normal tail of the same z)
        assert_allclose(p, reference, rtol=1e-9, atol=1e-300)
        # and the same p as the chi-square test of the 2 x 2 table, the test group_fairness already reports
        chi2 = stats.chi2_contingency([[x, n - x], [x0, n0 - x0]], correction=False).pvalue
        assert_allclose(p, chi2, rtol=1e-9, atol=1e-300)
    assert 0 <= p <= 1


def test_group_without_rows_in_the_denominator_is_not_tested():
    assert compare_proportions(0, 0, 10, 40) == (None, None)


@settings(max_examples=150, deadline=None)
@given(p=st.lists(st.sampled_from([1e-8, 0.001, 0.01, 0.02, 0.04, 0.049, 0.2, 0.5, 0.9, 1.0])
                  | st.floats(0, 1), min_size=1, max_size=60))
@example(p=[0.01, 0.04, 0.03])
@example(p=[0.02, 0.02, 0.02, 0.5])  # ties
def test_holm_and_bh_equal_statsmodels_multipletests(p):
    for ours, theirs in (("holm", "holm"), ("bh", "fdr_bh")):
        expected = multipletests(p, alpha=0.05, method=theirs)[1]
        # 1e-12: both are products and running maxima / minima of the same floats
        assert_allclose(adjust_p_values(p, ours), expected, rtol=1e-12, atol=1e-15)
    assert adjust_p_values(p, "none") == [float(v) for v in p]


CASES = [(200, 200, 0.5), (150, 600, 0.3), (400, 100, 0.7), (60, 2000, 0.45), (5000, 5000, 0.1)]


@pytest.mark.parametrize("n, n0, p0", CASES)
@pytest.mark.parametrize("alpha, power", [(0.05, 0.8), (0.01, 0.9)])
def test_min_detectable_ratio_has_the_stated_power_in_statsmodels(n, n0, p0, alpha, power):
    ratio = min_detectable_ratio(n, n0, p0, alpha=alpha, power=power)
    assert ratio is not None and 0 < ratio < 1
    h = proportion_effectsize(p0, ratio * p0)  # Cohen's h, 2 asin sqrt(p0) - 2 asin sqrt(p)
    achieved = NormalIndPower().power(h, nobs1=n, alpha=alpha, ratio=n0 / n, alternative="two-sided")
    # 1e-9: brentq solved our power equation to xtol 1e-14 in h
    assert_allclose(achieved, power, rtol=0, atol=1e-9)
    assert_allclose(power_two_sided(h, n, n0, alpha), achieved, rtol=1e-12)
    solved = NormalIndPower().solve_power(effect_size=None, nobs1=n, alpha=alpha, power=power, ratio=n0 / n)
    expected = math.sin(math.asin(math.sqrt(p0)) - solved / 2) ** 2 / p0
    # 1e-5: statsmodels' own root finder stops at about 1e-7 in h
    assert_allclose(ratio, expected, rtol=0, atol=1e-5)
    # a larger disparity (smaller ratio) is detected with more power, a smaller one with less
    for nearer, more in ((ratio + 0.02, False), (ratio - 0.02, True)):
        got = NormalIndPower().power(proportion_effectsize(p0, nearer * p0), nobs1=n, alpha=alpha, ratio=n0 / n)
        assert bool(got > power) is more


@pytest.mark.parametrize("n, n0, p0", CASES[:4])
def test_test_rejects_a_planted_disparity_at_the_minimum_detectable_ratio_with_the_stated_power(n, n0, p0):
    ratio = min_detectable_ratio(n, n0, p0, alpha=0.05, power=0.8)
    rng = np.random.default_rng(1234)
    sims = 4000
    x = rng.binomial(n, ratio * p0, sims)
    x0 = rng.binomial(n0, p0, sims)
    rejected = np.mean([compare_proportions(int(a), n, int(b), n0)[0] <= 0.05 for a, b in zip(x, x0)])
    # 0.035: Monte Carlo (3 sd of a rate near 0.8 over 4,000 draws is 0.019) plus the arcsine
    # normal approximation's own error for the z / Fisher test (up to about 0.015 at these sizes)
    assert abs(rejected - 0.8) < 0.035


def test_no_ratio_is_detectable_when_even_a_rate_of_zero_would_be_missed():
    assert min_detectable_ratio(5, 5, 0.5, alpha=0.05, power=0.8) is None
    assert min_detectable_ratio(100, 100, 0.0, alpha=0.05, power=0.8) is None  # nothing below a rate of 0
    # a rate of zero against 0.5 with 40 a side is found with far more than 80% power
    assert min_detectable_ratio(40, 40, 0.5, alpha=0.05, power=0.8) is not None


def test_larger_groups_detect_smaller_disparities():
    ratios = [min_detectable_ratio(n, 1000, 0.4, alpha=0.05, power=0.8) for n in (50, 200, 1000, 5000)]
    assert all(a < b for a, b in zip(ratios, ratios[1:]))
