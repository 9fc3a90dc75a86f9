"""The packaged obligations file (auditkit/regulatory/obligations.yaml) has the shape the mapping
reads, and every check type and metric pattern it names exists: renaming a check type or a
metric fails here, not silently in a regulator's report (#14)."""
from __future__ import annotations

import typing

import pytest

from auditkit.core.registry import get_registry
from auditkit.policy.models import Regime
from auditkit.regulatory.mapping import load_obligations, pattern_regex

OBLIGATION_KEYS = {"id", "citation", "title", "statement", "testable", "why", "checks", "limits", "cross_findings"}
CROSS_KINDS = {"reason", "counterfactual", "anchor"}


def _obligations():
    return [(key, o) for key, regime in load_obligations()["regimes"].items() for o in regime["obligations"]]


def test_the_file_covers_exactly_the_regimes_a_policy_can_select():
    catalogue = load_obligations()
    assert catalogue["version"] == 1
    assert set(catalogue["regimes"]) == set(typing.get_args(Regime))
    for regime in catalogue["regimes"].values():
        assert regime["name"] and regime["short"] and regime["instrument"] and regime["obligations"]


def test_every_obligation_has_an_id_a_citation_and_a_plain_statement():
    ids = [o["id"] for _, o in _obligations()]
    assert len(ids) == len(set(ids)), "obligation ids must be unique"
    for key, obligation in _obligations():
        assert set(obligation) <= OBLIGATION_KEYS, set(obligation) - OBLIGATION_KEYS
        assert obligation["id"].startswith(f"{key}."), obligation["id"]
        for field in ("citation", "title", "statement"):
            assert isinstance(obligation[field], str) and obligation[field].strip(), (obligation["id"], field)
        assert "\n" not in obligation["statement"]  # one line
        assert set(obligation.get("cross_findings") or []) <= CROSS_KINDS


def test_an_untestable_obligation_says_why_and_maps_no_check():
    untestable = [o for _, o in _obligations() if o.get("testable", True) is False]
    assert {o["id"] for o in untestable} >= {"eu_ai_act.human_oversight"}
    for obligation in untestable:
        assert obligation.get("why", "").strip(), obligation["id"]
        assert not obligation.get("checks"), f"{obligation['id']} is not testable: it maps no check"
    for _, obligation in _obligations():
        if obligation.get("testable", True) is not False:
            assert obligation.get("checks"), f"{obligation['id']}: testable but no check bears on it"
            assert "why" not in obligation, obligation["id"]


def test_every_check_type_named_is_registered_and_every_metric_pattern_can_match_one_of_its_metrics():
    registry = get_registry()
    for _, obligation in _obligations():
        for entry in obligation.get("checks") or []:
            assert set(entry) <= {"type", "metrics", "note", "relative"}, entry
            if entry["type"] == "*":
                assert entry.get("relative") is True, "type '*' is only for relative thresholds"
                continue
            assert entry["type"] in registry, f"{obligation['id']}: check type {entry['type']!r} is not registered"
            declared = get_registry().get(entry["type"]).metrics
            for pattern in entry.get("metrics") or []:
                # the two patterns overlap when a name one of them makes (each * read as "x") matches the other
                rx = pattern_regex(pattern)
                overlaps = [d for d in declared if rx.match(d.replace("*", "x"))
                            or pattern_regex(d).match(pattern.replace("*", "x"))]
                assert overlaps, f"{obligation['id']}: {pattern!r} matches no metric of {entry['type']}"


def test_a_renamed_check_type_would_fail_the_validation(monkeypatch):
    """The validation above is not vacuous: a type the registry lacks is caught."""
    registry = get_registry()
    assert "impact_ratio" in registry
    monkeypatch.delitem(registry._types, "impact_ratio")
    with pytest.raises(AssertionError, match="impact_ratio"):
        test_every_check_type_named_is_registered_and_every_metric_pattern_can_match_one_of_its_metrics()


def test_ll144s_impact_ratio_is_named_with_the_check_and_metric_that_give_it():
    ll144 = {o["id"]: o for _, o in _obligations() if o["id"].startswith("nyc_ll144.")}
    entries = {e["type"]: e for e in ll144["nyc_ll144.impact_ratios"]["checks"]}
    assert "impact_ratio" in entries["impact_ratio"]["note"] and entries["group_fairness"]["metrics"] == [
        "selection_rate_ratio[*]"]
    assert ll144["nyc_ll144.intersectional"]["checks"][0]["metrics"] == ["impact_ratio[* & *]"]


def test_the_pattern_language_is_a_star_and_literal_brackets():
    rx = pattern_regex("impact_ratio[* & *]")
    assert rx.match("impact_ratio[sex & race]") and not rx.match("impact_ratio[sex]")
    assert pattern_regex("selection_rate_ratio[*]").match("selection_rate_ratio[race]")
    assert not pattern_regex("selection_rate_ratio[*]").match("selection_rate_ratio")
