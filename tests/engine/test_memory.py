"""Memory: a limit per check, and workers that share the audit data instead of copying it (#13, item 8)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from tests_support import register_faulty_checks

from support import ROOT, credit_policy, write_policy

from auditkit.engine.limits import MEMORY_EXIT_CODE, default_memory_mb, usable_memory_mb

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="limits are enforced on Linux")


@pytest.fixture(autouse=True)
def faulty() -> None:
    register_faulty_checks()


@linux_only
def test_a_check_past_its_memory_limit_ends_as_error_and_the_others_complete(samples, tmp_path, cli):
    out_dir = tmp_path / "out"
    policy = write_policy(tmp_path, credit_policy(samples, out_dir, checks=[
        # 2 GB touched at once (the address-space limit refuses it) or 16 MB at a time (the
        # resident-memory watchdog ends the worker) against a limit of 200 MB
        {"id": "hog", "type": "test_hogs_memory", "memory_mb": 200, "params": {"mb": 2048}},
        {"id": "hog-by-chunks", "type": "test_hogs_memory", "memory_mb": 200, "params": {"mb": 2048, "chunk_mb": 16}},
        {"id": "draws", "type": "test_random_draws"},
        {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc"], "bootstrap": 20}}]))
    result = cli("run", policy, "--workers", "2")
    assert result.exit_code == 3, result.stdout + result.stderr
    results = json.loads((out_dir / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"]}
    for hog in ("hog", "hog-by-chunks"):
        assert by_id[hog]["status"] == "error"
        assert by_id[hog]["error"] == "exceeded its memory limit of 200 MB (memory_mb)"
    assert by_id["draws"]["status"] == "info" and by_id["perf"]["status"] == "info"  # no threshold declared: reported, not assessed
    assert "exceeded its memory limit of 200 MB" in result.stdout  # the summary says why


def _in_a_fresh_process(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


@linux_only
def test_one_allocation_past_the_limit_raises_memory_error_at_once():
    completed = _in_a_fresh_process("""
        import numpy as np
        from auditkit.engine.limits import memory_limit
        try:
            with memory_limit(100):
                np.ones(2 * 1024 ** 3 // 8)
        except MemoryError:
            print("MemoryError")
        np.ones(512 * 1024 ** 2 // 8)  # the limit is lifted after the block
        print("restored")
    """)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["MemoryError", "restored"]


@linux_only
def test_growth_past_the_limit_ends_the_process_with_the_memory_exit_code():
    completed = _in_a_fresh_process("""
        import numpy as np
        from auditkit.engine.limits import memory_limit
        held = []
        with memory_limit(100):
            for _ in range(60):  # 960 MB in 16 MB steps: each one allowed by the address-space slack
                held.append(np.ones(16 * 1024 ** 2 // 8))
        print("not stopped")
    """)
    assert completed.returncode == MEMORY_EXIT_CODE, completed.stdout + completed.stderr
    assert "not stopped" not in completed.stdout


def test_default_memory_limit_is_three_quarters_of_memory_shared_by_the_workers_and_recorded(samples, tmp_path):
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy

    usable = usable_memory_mb()
    assert usable is not None and usable > 1024
    assert default_memory_mb(2) == int(0.75 * usable / 2)
    assert default_memory_mb(10 ** 9) == 64  # never below the minimum a policy may ask for
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "draws", "type": "test_random_draws"}, {"id": "draws-2", "type": "test_random_draws"},
        {"id": "draws-3", "type": "test_random_draws"}]))
    results = run_audit(load_policy(policy), RunOptions(workers=2)).results
    assert results["engine"]["memory_mb_default"] == int(0.75 * usable / 2)
    # as many workers as checks when fewer checks than --workers: the share follows
    results = run_audit(load_policy(policy), RunOptions(workers=2, only=["draws"])).results
    assert results["engine"]["memory_mb_default"] == int(0.75 * usable / 1)


def test_worker_frame_columns_are_memory_mapped_not_copied(samples, tmp_path):
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy

    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "mapping", "type": "test_reports_mapping"}]))
    loaded = load_policy(policy)
    pooled = run_audit(loaded, RunOptions(workers=1)).results["checks"][0]["metrics"]
    inline = run_audit(loaded, RunOptions(executor="inline")).results["checks"][0]["metrics"]
    assert pooled["numeric_columns"]["value"] >= 8  # credit_test.csv: 8 numeric columns after ignore/sample
    assert pooled["mapped_columns"]["value"] == pooled["numeric_columns"]["value"]
    assert pooled["scores_mapped"]["value"] == 1.0
    # the parent's own frame (inline) is ordinary memory: the test tells the two apart
    assert inline["mapped_columns"]["value"] == 0.0 and inline["scores_mapped"]["value"] == 0.0


def test_a_check_that_writes_into_its_frame_works_in_a_worker_as_inline(samples, tmp_path):
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy

    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "writes", "type": "test_writes_into_frame"}]))
    loaded = load_policy(policy)
    pooled = run_audit(loaded, RunOptions(workers=1)).results["checks"][0]
    inline = run_audit(loaded, RunOptions(executor="inline")).results["checks"][0]
    assert pooled["status"] == "info", pooled["error"]
    assert {k: v["value"] for k, v in pooled["metrics"].items()} == {"written": -12345.0, "derived": -1.0,
                                                                    "original": 0.0}
    assert pooled["metrics"] == inline["metrics"]


@pytest.mark.parametrize("value, expected", [
    pytest.param("10", "checks[0].memory_mb: input should be greater than or equal to 64, got 10", id="below-64"),
    pytest.param("1.5", "checks[0].memory_mb: input should be a valid integer", id="fraction"),
    pytest.param(".nan", "checks[0].memory_mb: must be a finite number", id="nan"),
])
def test_memory_mb_below_the_minimum_or_not_an_integer_is_refused_with_its_line(cli, samples, tmp_path, value,
                                                                                expected):
    out_dir = tmp_path / "out"
    policy = write_policy(tmp_path, textwrap.dedent(f"""\
        version: 1
        name: test audit
        model:
          path: {samples / "credit_gbm.onnx"}
        data:
          path: {samples / "credit_test.csv"}
          target: defaulted
        checks:
          - id: perf
            type: performance
            memory_mb: {value}
        report:
          formats: [json]
          output_dir: {out_dir}
        """))
    result = cli("run", policy)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"error: {policy}:11:5 {expected}"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not out_dir.exists()
