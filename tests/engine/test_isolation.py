"""A check that raises, dies or overruns ends as `error`; every other check completes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests_support import ENGINE_TESTS, register_faulty_checks

from support import credit_policy, hiring_predictions_policy, write_policy


@pytest.fixture(autouse=True)
def faulty() -> None:
    register_faulty_checks()


def _faulty_policy(samples: Path, out_dir: Path) -> dict:
    return credit_policy(samples, out_dir, checks=[
        {"id": "draws", "type": "test_random_draws"},
        {"id": "raises", "type": "test_raises"},
        {"id": "exits", "type": "test_exits"},
        {"id": "segfaults", "type": "test_segfaults"},
        {"id": "sleeps", "type": "test_sleeps", "timeout_s": 2, "params": {"seconds": 60}},
        {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc"], "bootstrap": 50},
         "thresholds": {"roc_auc": {"min": 0.7}}},
    ])


@pytest.mark.slow
def test_raise_exit_segfault_and_timeout_end_as_error_and_the_rest_complete(samples, tmp_path, cli):
    policy = write_policy(tmp_path, _faulty_policy(samples, tmp_path / "out"))
    started = time.perf_counter()
    result = cli("run", policy, "--workers", "2")
    elapsed = time.perf_counter() - started
    assert result.exit_code == 3, result.stdout + result.stderr  # errors, and no check failed
    assert elapsed < 45  # the 60 s sleeper was stopped at its 2 s timeout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"]}
    assert by_id["draws"]["status"] == "info"  # no threshold declared: reported, not assessed
    assert by_id["perf"]["status"] == "pass" and by_id["perf"]["metrics"]["roc_auc"]["value"] > 0.7
    assert by_id["raises"]["status"] == "error" and "deliberate failure" in by_id["raises"]["error"]
    assert by_id["exits"]["status"] == "error" and "exited with code 7" in by_id["exits"]["error"]
    assert by_id["segfaults"]["status"] == "error" and "SIGSEGV" in by_id["segfaults"]["error"]
    assert by_id["sleeps"]["status"] == "error" and "timed out after 2 s" in by_id["sleeps"]["error"]
    assert results["status"] == "error"


@pytest.mark.slow
def test_results_are_identical_with_one_and_four_workers(samples, tmp_path, cli):
    checks = [{"id": f"draws-{i}", "type": "test_random_draws", "params": {"draws": 20}} for i in range(3)] + [
        {"id": "perf", "type": "performance", "params": {"bootstrap": 200}},
        {"id": "integrity", "type": "data_integrity"}]
    outputs = []
    for workers in (1, 4):
        out_dir = tmp_path / f"w{workers}"
        policy = write_policy(tmp_path, credit_policy(samples, out_dir, checks=checks), name=f"p{workers}.yaml")
        result = cli("run", policy, "--workers", str(workers))
        assert result.exit_code == 0, result.stdout + result.stderr
        outputs.append(json.loads((out_dir / "results.json").read_text()))

    def stable(results: dict) -> dict:
        results = {k: v for k, v in results.items()
                   if k not in ("run_id", "started_at", "finished_at", "duration_s", "engine", "command")}
        results["inputs"] = {k: v for k, v in results["inputs"].items() if k != "policy_sha256"}
        results["inputs"]["policy_path"] = None
        results["inputs"]["policy_path_from_output"] = None  # two policy files, two output folders
        results["checks"] = [{k: v for k, v in c.items() if k != "duration_s"} for c in results["checks"]]
        return results

    one, four = stable(outputs[0]), stable(outputs[1])
    assert one["checks"][0]["metrics"]["mean_draw"]["value"] != one["checks"][1]["metrics"]["mean_draw"]["value"]
    assert one == four


def test_same_check_id_and_seed_give_the_same_numbers_inline_and_in_a_pool(samples, tmp_path):
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy

    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "o", checks=[
        {"id": "draws", "type": "test_random_draws"}]))
    loaded = load_policy(policy)
    inline = run_audit(loaded, RunOptions(executor="inline")).results["checks"][0]
    pooled = run_audit(loaded, RunOptions(workers=1)).results["checks"][0]
    assert inline["metrics"] == pooled["metrics"]


@pytest.mark.slow
def test_ctrl_c_stops_and_keeps_the_results_of_finished_checks(samples, tmp_path):
    out_dir = tmp_path / "out"
    policy = write_policy(tmp_path, credit_policy(samples, out_dir, checks=[
        {"id": "quick", "type": "test_random_draws"},
        {"id": "slow", "type": "test_sleeps", "params": {"seconds": 120}}]))
    env = {**os.environ, "AUDITKIT_PLUGINS": "faulty_checks",
           "PYTHONPATH": os.pathsep.join([str(ENGINE_TESTS), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "auditkit", "run", str(policy), "--workers", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    assert process.stdout is not None
    deadline = time.time() + 60
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "quick" in line and "done" in line:
            break
        assert time.time() < deadline, "".join(seen)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 3, "".join(seen) + rest
    results = json.loads((out_dir / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"]}
    assert results["interrupted"] is True
    assert by_id["quick"]["status"] == "info" and by_id["quick"]["metrics"]["mean_draw"]["value"] is not None
    assert by_id["slow"]["status"] == "error" and "interrupted" in by_id["slow"]["error"]
    assert "Traceback" not in rest


def test_predictions_mode_skips_checks_that_query_a_model(samples, tmp_path, cli):
    out_dir = tmp_path / "out"
    policy = write_policy(tmp_path, hiring_predictions_policy(samples, out_dir, [
        {"id": "model-query", "type": "test_needs_model"},
        {"id": "perf", "type": "performance", "params": {"metrics": ["accuracy"], "bootstrap": 50}}]))
    result = cli("run", policy)
    assert result.exit_code == 0, result.stdout + result.stderr
    by_id = {c["id"]: c for c in json.loads((out_dir / "results.json").read_text())["checks"]}
    assert by_id["model-query"]["status"] == "skipped"
    assert "no model to query" in by_id["model-query"]["notes"][0]
    assert by_id["perf"]["status"] == "info"  # no threshold declared: reported, not assessed
