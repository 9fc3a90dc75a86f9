"""`auditkit checks [TYPE] [--json]`: the catalogue of check types, for people and for tools."""
from __future__ import annotations

import json

import pytest

from auditkit.core.registry import get_registry


def flat(text: str) -> str:
    """The text with runs of whitespace made one space (the console wraps long lines off a TTY)."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def catalogue() -> list[dict]:
    from typer.testing import CliRunner

    from auditkit.cli import app

    result = CliRunner().invoke(app, ["checks", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_json_lists_every_registered_type_once(catalogue):
    assert isinstance(catalogue, list)
    assert sorted(record["type"] for record in catalogue) == get_registry().names()


def test_json_records_have_type_family_params_and_metrics(catalogue):
    for record in catalogue:
        assert {"type", "family", "params", "metrics"} <= set(record), record.get("type")
        assert isinstance(record["params"], list) and isinstance(record["metrics"], list)
        assert all({"name", "type", "default", "required"} <= set(p) for p in record["params"])


@pytest.mark.parametrize("check_type, family, params, metrics", [
    pytest.param("performance", "performance", {"metrics", "bootstrap", "confidence"}, {"roc_auc", "accuracy", "r2"},
                 id="performance"),
    pytest.param("data_integrity", "data", {"columns", "duplicate_subset"},
                 {"duplicate_rows", "max_missing_share", "missing_share[*]"}, id="data_integrity"),
])
def test_json_describes_the_builtin_checks(catalogue, check_type, family, params, metrics):
    record = next(r for r in catalogue if r["type"] == check_type)
    assert record["family"] == family
    assert {p["name"] for p in record["params"]} == params
    assert metrics <= set(record["metrics"])
    assert record["example"]["type"] == check_type


def test_json_param_defaults_match_the_params_model(catalogue):
    record = next(r for r in catalogue if r["type"] == "performance")
    by_name = {p["name"]: p for p in record["params"]}
    assert by_name["bootstrap"]["default"] == 1000 and by_name["bootstrap"]["required"] is False
    assert by_name["confidence"]["default"] == 0.95


def test_checks_lists_the_types_with_their_family(cli):
    result = cli("checks")
    assert result.exit_code == 0, result.stderr
    text = flat(result.stdout)
    assert "performance performance" in text
    assert "data_integrity data" in text


def test_checks_performance_prints_its_parameters_metrics_and_example(cli):
    result = cli("checks", "performance")
    assert result.exit_code == 0, result.stderr
    text = flat(result.stdout)
    assert text.startswith("performance (performance)")
    params = text[text.index("parameters"):text.index(" metrics ", text.index("parameters"))]
    for name in ("metrics:", "bootstrap: integer (default 1000)", "confidence: number (default 0.95)"):
        assert name in params
    metrics = text[text.index(" metrics ", text.index("parameters")):text.index("example")]
    for name in ("roc_auc", "accuracy", "brier_score", "log_loss"):
        assert name in metrics
    assert "- type: performance" in result.stdout  # the example is a YAML check entry


def test_checks_with_a_misspelt_type_exits_2_suggesting_the_closest(cli):
    result = cli("checks", "perfomance")
    assert result.exit_code == 2
    assert "unknown check type 'perfomance'; did you mean 'performance'?" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""


def test_checks_json_with_a_misspelt_type_exits_2_and_prints_no_json(cli):
    result = cli("checks", "--json", "perfomance")
    assert result.exit_code == 2
    assert "did you mean 'performance'?" in result.stderr
    assert result.stdout == ""


def test_checks_type_prints_bracketed_text_of_the_documentation_verbatim(cli):
    # rich would swallow "[from, to]" and "[attribute]" as markup
    result = cli("checks", "counterfactuals")
    assert result.exit_code == 0
    assert "recourse_burden_ratio[attribute]" in result.stdout and "[from, to]" in result.stdout
