"""--tolerance: a default, per-metric and per-check rules, and the policy's relative bounds."""
from __future__ import annotations

import pytest

from auditkit.compare.tolerance import parse_tolerances
from auditkit.errors import UserError


def test_a_bare_number_is_the_default_for_every_metric():
    tolerances = parse_tolerances(["0.01"])
    assert tolerances.for_metric("perf", "roc_auc", "higher") == (0.01, "--tolerance")


def test_without_any_tolerance_every_worsening_counts():
    assert parse_tolerances([]).for_metric("perf", "roc_auc", "higher") == (0.0, "default (none)")


def test_the_most_specific_rule_wins():
    tolerances = parse_tolerances(["0.5", "selection_rate_ratio=0.02", "selection_rate_ratio[race]=0.03",
                                   "parity:selection_rate_ratio=0.04", "parity:selection_rate_ratio[race]=0.05"])
    assert tolerances.for_metric("parity", "selection_rate_ratio[race]", "higher")[0] == 0.05
    assert tolerances.for_metric("parity", "selection_rate_ratio[sex]", "higher")[0] == 0.04
    assert tolerances.for_metric("other", "selection_rate_ratio[race]", "higher")[0] == 0.03
    assert tolerances.for_metric("other", "selection_rate_ratio[sex]", "higher")[0] == 0.02
    assert tolerances.for_metric("other", "roc_auc", "higher")[0] == 0.5


def test_rules_may_be_comma_separated():
    tolerances = parse_tolerances(["roc_auc=0.01,accuracy=0.02"])
    assert tolerances.for_metric("p", "accuracy", "higher") == (0.02, "--tolerance accuracy=0.02")


def test_the_policys_relative_bound_is_the_tolerance_when_no_rule_names_the_metric():
    findings = [{"metric": "roc_auc", "max_decrease": 0.005, "status": "pass"}]
    assert parse_tolerances(["0.1"]).for_metric("perf", "roc_auc", "higher", findings) == (0.005, "policy max_decrease")
    # the bound that matters is the one in the worse direction
    assert parse_tolerances([]).for_metric("perf", "roc_auc", "lower", findings) == (0.0, "default (none)")
    # an explicit rule still wins
    assert parse_tolerances(["roc_auc=0.02"]).for_metric("perf", "roc_auc", "higher", findings)[0] == 0.02


@pytest.mark.parametrize("value, fragment", [
    ("abc", "--tolerance abc: 'abc' is not a number"),
    ("-0.1", "--tolerance -0.1: must be a finite number >= 0, got -0.1"),
    ("roc_auc=nan", "--tolerance roc_auc=nan: must be a finite number >= 0, got nan"),
    ("=0.1", "--tolerance =0.1: name a metric before '='"),
])
def test_bad_tolerances_are_refused_by_name(value, fragment):
    with pytest.raises(UserError) as caught:
        parse_tolerances([value])
    assert fragment in str(caught.value)
