"""render.junit: JUnit XML for CI dashboards."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from auditkit.render.junit import render_junit


def parse(text: str) -> ET.Element:
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return ET.fromstring(text.encode("utf-8"))


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in root.iter("testcase")}


def test_counts_match_the_statuses(example_results):
    root = parse(render_junit(example_results))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    for element in (root, suites[0]):
        assert {k: element.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
            "tests": "4", "failures": "1", "errors": "1", "skipped": "1", "time": "12.300"}
    assert suites[0].get("name") == "Consumer credit scoring model — pre-deployment audit <demo>"
    assert suites[0].get("timestamp") == "2026-11-23T10:00:00"


def test_one_testcase_per_check_with_type_as_class(example_results):
    found = cases(parse(render_junit(example_results)))
    assert list(found) == ["discrimination", "data-quality", "crashy", "lofo"]
    assert found["discrimination"].get("classname") == "auditkit.performance"
    assert found["data-quality"].get("classname") == "auditkit.data_integrity"
    assert found["discrimination"].get("time") == "1.200"


def test_statuses_map_to_junit_elements(example_results):
    found = cases(parse(render_junit(example_results)))
    # pass with a warning: no failure, the warning in system-out.
    assert [child.tag for child in found["discrimination"]] == ["system-out"]
    assert found["discrimination"].find("system-out").text == "warning: accuracy = 0.760 < 0.80 (warning)"
    # fail: every failing finding's message.
    failure = found["data-quality"].find("failure")
    assert failure.get("message") == "duplicate_rows = 150 > 0"
    assert failure.text == "duplicate_rows = 150 > 0"
    # error and skipped, with their reasons.
    error = found["crashy"].find("error")
    assert error.get("message") == "timed out after 600 s (timeout_s)"
    assert found["lofo"].find("skipped").get("message") == "predictions mode: this check needs to query a model"


def test_every_failing_finding_is_listed(example_results, edit_check):
    findings = [
        {"metric": "selection_rate_ratio[sex]", "value": 0.7, "min": 0.8, "status": "fail", "severity": "fail",
         "message": "selection_rate_ratio[sex] = 0.700 < 0.8"},
        {"metric": "selection_rate_ratio[race]", "value": 0.6, "min": 0.8, "status": "fail", "severity": "fail",
         "message": "selection_rate_ratio[race] = 0.600 < 0.8"},
        {"metric": "equalized_odds_difference[sex]", "value": 0.05, "max": 0.1, "status": "pass", "severity": "fail"},
        {"metric": "n", "value": 12, "min": 30, "status": "warn", "severity": "warn"},
    ]
    results = edit_check(example_results, 1, findings=findings)
    case = cases(parse(render_junit(results)))["data-quality"]
    failure = case.find("failure")
    assert failure.get("message").startswith("2 thresholds failed: selection_rate_ratio[sex] = 0.700 < 0.8")
    assert failure.text.splitlines() == ["selection_rate_ratio[sex] = 0.700 < 0.8", "selection_rate_ratio[race] = 0.600 < 0.8"]
    assert case.find("system-out").text == "warning: n = 12 (threshold min 30)"


def test_traceback_error_uses_its_last_line_as_message(example_results, edit_check):
    error = "Traceback (most recent call last):\n  File \"x.py\", line 1\nValueError: boom\n"
    case = cases(parse(render_junit(edit_check(example_results, 2, error=error))))["crashy"]
    assert case.find("error").get("message") == "ValueError: boom"
    assert case.find("error").text == error


def test_hostile_names_are_escaped_and_control_characters_dropped(example_results, edit_check):
    name = 'a"<script>&\x00\x1b[31m\ufffeé'
    results = edit_check(example_results, 0, id=name, type="perf<x>")
    results["policy_name"] = "p\x07<&>"
    root = parse(render_junit(results))
    assert root.find("testsuite").get("name") == "p<&>"
    case = root.find("testsuite/testcase")
    assert case.get("name") == 'a"<script>&[31mé'
    assert case.get("classname") == "auditkit.perf<x>"


def test_properties_carry_the_reproduction_facts(example_results):
    root = parse(render_junit(example_results))
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["seed"] == "42" and props["status"] == "fail" and props["exit_code"] == "1"
    assert props["model_sha256"] == "ab" * 32 and props["policy_sha256"] == "ef" * 32


def test_zero_checks(empty_results):
    root = parse(render_junit(empty_results))
    suite = root.find("testsuite")
    assert suite.get("tests") == "0" and suite.get("failures") == "0"
    assert suite.findall("testcase") == []


def test_loads_in_junitparser(example_results, tmp_path: Path):
    junitparser = pytest.importorskip("junitparser")
    path = tmp_path / "junit.xml"
    path.write_text(render_junit(example_results), encoding="utf-8")
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 1, 1, 1)
    outcomes = {case.name: [type(r).__name__ for r in case.result] for case in suite}
    assert outcomes == {"discrimination": [], "data-quality": ["Failure"], "crashy": ["Error"], "lofo": ["Skipped"]}
