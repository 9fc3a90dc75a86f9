"""Change over time end to end (issue #16): the planted regression of the candidate model.

The baseline is the demo model (credit_gbm.onnx); the candidate (credit_gbm_candidate.onnx,
sample_models/README.md) was retrained on labels with a larger historic bias, so Black
applicants are approved at a lower rate relative to the others. `auditkit diff` must name that,
a relative threshold must fail while the absolute one passes, and `auditkit verify` must
reproduce a fresh run and refuse a changed input.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from support import credit_policy, write_policy

from auditkit.compare.diff import format_value
from auditkit.results.io import validate_results

CANDIDATE = "credit_gbm_candidate.onnx"


def invoke(*args: Any) -> Any:
    from auditkit.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def candidate(samples: Path) -> Path:
    """The candidate model; built into an existing sample build when it predates it."""
    path = samples / CANDIDATE
    if not path.exists():
        subprocess.run([sys.executable, str(samples / "build.py"), "--candidate-only"], check=True)
    return path


def fairness_policy(samples: Path, out_dir: Path, model: Path, **thresholds: Any) -> dict[str, Any]:
    """The demo's performance and approval-parity checks, on a 4,000-row sample, few resamples."""
    return credit_policy(samples, out_dir, model={"path": str(model)}, data={"sample": 4000}, checks=[
        {"id": "discrimination", "type": "performance", "params": {"metrics": ["roc_auc", "accuracy"], "bootstrap": 100},
         "thresholds": {"roc_auc": {"min": 0.7}}},
        {"id": "approval-parity", "type": "group_fairness",
         "params": {"attributes": ["sex", "race"], "min_group_size": 30, "bootstrap": 100},
         "thresholds": {"selection_rate_ratio": {"min": 0.5, **thresholds}}},
    ])


@pytest.fixture(scope="module")
def runs(samples: Path, candidate: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two audits with the same policy, data and seed: production model, then candidate."""
    root = tmp_path_factory.mktemp("change")
    paths = {}
    for name, model in (("baseline", samples / "credit_gbm.onnx"), ("candidate", candidate)):
        directory = root / name
        directory.mkdir()
        policy = write_policy(directory, fairness_policy(samples, directory / "out", model))
        result = invoke("run", policy, "--workers", "1")
        assert result.exit_code == 0, result.stdout + result.stderr  # both pass the absolute thresholds
        paths[name] = directory / "out" / "results.json"
    paths["root"] = root
    return paths


def figure(results_path: Path, check_id: str, metric: str) -> float:
    results = json.loads(results_path.read_text())
    (check,) = [c for c in results["checks"] if c["id"] == check_id]
    return check["metrics"][metric]["value"]


@pytest.mark.slow
def test_diff_of_the_planted_regression_exits_1_and_names_it(runs):
    before = figure(runs["baseline"], "approval-parity", "selection_rate_ratio[race]")
    after = figure(runs["candidate"], "approval-parity", "selection_rate_ratio[race]")
    assert before - after > 0.1  # the planted regression is large (0.72 -> 0.57 on this sample)
    out_dir = runs["root"] / "diff"
    result = invoke("diff", runs["baseline"], runs["candidate"], "--tolerance", "0.05", "--alpha", "0.05",
                    "--out", out_dir)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert (f"regression approval-parity: selection_rate_ratio[race] fell from {format_value(before)} to "
            f"{format_value(after)}") in result.stdout
    assert "inputs that differ: model: sha256" in result.stdout and CANDIDATE in result.stdout
    diff = json.loads((out_dir / "diff.json").read_text())
    regressed = {r["metric"] for r in diff["regressions"]}
    assert "selection_rate_ratio[race]" in regressed
    # only the race disparity regressed: not sex, not performance (within the 0.05 tolerance)
    assert all(name.endswith("[race]") for name in regressed), regressed
    markdown = (out_dir / "diff.md").read_text()
    assert markdown.index("selection\\_rate\\_ratio\\[race\\]") < markdown.index("<details>")


@pytest.mark.slow
def test_diff_of_a_run_with_itself_exits_0(runs):
    result = invoke("diff", runs["baseline"], runs["baseline"])
    assert result.exit_code == 0, result.stdout
    assert "no regression since the baseline" in result.stdout
    assert "inputs that differ: none" in result.stdout


@pytest.mark.slow
def test_the_relative_threshold_fails_while_the_absolute_one_passes(samples, candidate, runs):
    directory = runs["root"] / "relative"
    directory.mkdir()
    policy = fairness_policy(samples, directory / "out", candidate, max_decrease=0.05)
    shutil.copy(runs["baseline"], directory / "production.json")
    policy["report"]["baseline"] = "production.json"  # relative to the policy file
    result = invoke("run", write_policy(directory, policy), "--workers", "1", "--format", "json,md,junit")
    assert result.exit_code == 1, result.stdout + result.stderr
    results = json.loads((directory / "out" / "results.json").read_text())
    validate_results(results)
    (parity,) = [c for c in results["checks"] if c["id"] == "approval-parity"]
    findings = {f["metric"]: f for f in parity["findings"]}
    race = findings["selection_rate_ratio[race]"]
    assert (race["status"], race["absolute_status"], race["relative_status"]) == ("fail", "pass", "fail")
    assert race["value"] >= 0.5 and race["baseline"] - race["value"] > 0.05
    assert race["max_decrease"] == 0.05
    assert "(absolute: pass); fell by" in race["message"] and race["message"].endswith("(relative: fail)")
    sex = findings["selection_rate_ratio[sex]"]
    assert (sex["status"], sex["absolute_status"], sex["relative_status"]) == ("pass", "pass", "pass")
    baseline_bytes = (directory / "production.json").read_bytes()
    assert results["inputs"]["baseline"]["sha256"] == hashlib.sha256(baseline_bytes).hexdigest()
    assert "fall ≤ 0.05 from" in (directory / "out" / "summary.md").read_text()
    assert "(relative: fail)" in (directory / "out" / "junit.xml").read_text()
    # verify re-runs it, the baseline found again beside the results and its hash checked
    verified = invoke("verify", directory / "out" / "results.json")
    assert verified.exit_code == 0, verified.stdout + verified.stderr
    assert "baseline results (sha256" in verified.stdout


@pytest.mark.slow
def test_verify_of_a_fresh_run_exits_0_whatever_the_worker_count(runs):
    result = invoke("verify", runs["baseline"], "--workers", "2")  # recorded with 1 worker
    assert result.exit_code == 0, result.stdout + result.stderr
    recorded = json.loads(runs["baseline"].read_text())
    numbers = sum(1 for check in recorded["checks"] for part in ("status", "metrics", "findings", "tables", "plots")
                  for value in _leaves(check[part]) if isinstance(value, (int, float)) and not isinstance(value, bool))
    assert numbers > 100
    assert f"{numbers} of {numbers} figures identical" in result.stdout


def _leaves(node: Any) -> Any:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from _leaves(value)
    else:
        yield node


# --------------------------------------------------------------------------- verify on a copy of the data


@pytest.fixture
def small_run(samples: Path, tmp_path: Path) -> dict[str, Path]:
    """A quick audit of a private copy of the test data (so that it can be altered)."""
    data = tmp_path / "credit_test.csv"
    shutil.copy(samples / "credit_test.csv", data)
    policy = credit_policy(samples, tmp_path / "out", data={"path": str(data), "sample": 800}, checks=[
        {"id": "integrity", "type": "data_integrity"},
        {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc"], "bootstrap": 30}}])
    path = write_policy(tmp_path, policy)
    result = invoke("run", path, "--workers", "1")
    assert result.exit_code == 0, result.stdout + result.stderr
    return {"policy": path, "data": data, "results": tmp_path / "out" / "results.json"}


def test_verify_after_one_byte_of_the_data_changed_exits_2_naming_the_file(small_run):
    data = small_run["data"]
    raw = bytearray(data.read_bytes())
    position = raw.index(b"\n") + 1 + 10  # a byte of the first data row
    raw[position] = ord("7") if raw[position] != ord("7") else ord("3")
    data.write_bytes(bytes(raw))
    result = invoke("verify", small_run["results"])
    assert result.exit_code == 2, result.stdout + result.stderr
    message = result.stderr.strip()
    assert message.startswith(f"error: data {data} changed since the audit: sha256 ")
    assert "(inputs.data.sha256)" in message
    assert "re-running" not in result.stdout  # nothing was run


def test_verify_with_a_changed_policy_exits_2_naming_it(small_run):
    small_run["policy"].write_text(small_run["policy"].read_text().replace('"test audit"', '"edited"'))
    result = invoke("verify", small_run["results"])
    assert result.exit_code == 2
    assert f"error: policy {small_run['policy']} changed since the audit" in result.stderr


def test_verify_without_the_policy_exits_2_and_says_how_to_point_at_it(small_run, tmp_path):
    moved = tmp_path / "elsewhere.yaml"
    small_run["policy"].rename(moved)
    result = invoke("verify", small_run["results"])
    assert result.exit_code == 2
    assert "error: policy file not found (tried" in result.stderr and "--policy PATH" in result.stderr
    again = invoke("verify", small_run["results"], "--policy", moved)
    assert again.exit_code == 0, again.stdout + again.stderr


def test_verify_names_every_figure_that_differs_and_exits_1(small_run):
    results = json.loads(small_run["results"].read_text())
    (perf,) = [c for c in results["checks"] if c["id"] == "perf"]
    recorded = perf["metrics"]["roc_auc"]["value"]
    perf["metrics"]["roc_auc"]["value"] = recorded + 0.01  # as if the audit had printed another figure
    small_run["results"].write_text(json.dumps(results))
    result = invoke("verify", small_run["results"], "--json")
    assert result.exit_code == 1
    outcome = json.loads(result.stdout)
    assert outcome["identical"] is False
    assert outcome["differences"] == [{"check": "perf", "path": "metrics.roc_auc.value",
                                       "recorded": recorded + 0.01, "rerun": recorded}]
    assert outcome["figures_identical"] == outcome["figures"] - 1
