"""--executor dask on real distributed clusters of worker processes (#15).

Most tests share one LocalCluster of 2 worker processes (started once, configured as the
executor configures its own) and reach it through --scheduler, the path a user's existing
cluster takes; one test lets the executor start its own cluster.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra (pip install 'auditkit[dask]') is not installed")

from tests_support import ENGINE_TESTS, register_faulty_checks  # noqa: E402

from support import ROOT, credit_policy, write_policy  # noqa: E402

VOLATILE = ("run_id", "started_at", "finished_at", "duration_s", "engine", "command")


@pytest.fixture(autouse=True)
def faulty() -> None:
    register_faulty_checks()


def _stable(results: dict) -> dict:
    results = {k: v for k, v in results.items() if k not in VOLATILE}
    results["checks"] = [{k: v for k, v in c.items() if k != "duration_s"} for c in results["checks"]]
    return results


@pytest.mark.slow
def test_sample_credit_policy_gives_the_local_executors_results(scheduler, tmp_path, cli):
    policy = ROOT / "policies" / "credit_scoring.yaml"
    # data checks, a fairness check with its 1,000 resamples, and checks that query the model
    # (each worker rebuilds the ONNX adapter from the scattered, checked bytes)
    only = "data-quality,approval-parity,impossible-inputs"
    local = cli("run", policy, "--only", only, "--workers", "2", "--out", tmp_path / "local", "--format", "json")
    dask_run = cli("run", policy, "--only", only, "--executor", "dask", "--scheduler", scheduler,
                   "--out", tmp_path / "dask", "--format", "json")
    assert local.exit_code == 1, local.stdout + local.stderr  # the policy's planted failures
    assert dask_run.exit_code == 1, dask_run.stdout + dask_run.stderr
    assert "Dask dashboard: http" in dask_run.stdout
    by_local = json.loads((tmp_path / "local" / "results.json").read_text())
    by_dask = json.loads((tmp_path / "dask" / "results.json").read_text())
    assert by_dask["engine"]["executor"] == "dask" and by_dask["engine"]["workers"] == 2
    assert {c["status"] for c in by_local["checks"]} >= {"fail", "pass"}  # not a run of errors
    assert sorted(c["id"] for c in by_local["checks"]) == sorted(only.split(","))
    assert _stable(by_dask) == _stable(by_local)


@pytest.mark.slow
def test_a_killed_worker_ends_its_check_as_error_and_the_others_complete(scheduler, tmp_path, cli, samples):
    marker = tmp_path / "died"
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "dies", "type": "test_dies_once", "params": {"marker": str(marker)}},
        {"id": "draws", "type": "test_random_draws"},
        {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc"], "bootstrap": 20},
         "thresholds": {"roc_auc": {"min": 0.7}}},
    ], data={"sample": 1000}))
    result = cli("run", policy, "--executor", "dask", "--scheduler", scheduler)
    assert result.exit_code == 3, result.stdout + result.stderr  # an error, nothing failed
    assert marker.exists()  # the check did run, and killed its worker
    by_id = {c["id"]: c for c in json.loads((tmp_path / "out" / "results.json").read_text())["checks"]}
    assert by_id["dies"]["status"] == "error"
    assert "Dask worker process (tcp://" in by_id["dies"]["error"] and "died" in by_id["dies"]["error"]
    assert by_id["draws"]["status"] == "info" and by_id["perf"]["status"] == "pass", by_id["perf"]["error"]


@pytest.mark.slow
def test_retries_runs_a_check_again_after_its_worker_died(scheduler, tmp_path, cli, samples):
    marker = tmp_path / "died"
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "dies-once", "type": "test_dies_once", "params": {"marker": str(marker)}, "retries": 1,
         "thresholds": {"survived": {"min": 1}}},
    ], data={"sample": 500}))
    result = cli("run", policy, "--executor", "dask", "--scheduler", scheduler)
    assert result.exit_code == 0, result.stdout + result.stderr
    check = json.loads((tmp_path / "out" / "results.json").read_text())["checks"][0]
    assert check["status"] == "pass" and check["metrics"]["survived"]["value"] == 1.0
    assert any("ran 2 times (retries)" in note for note in check["notes"])


def test_retries_also_apply_to_the_local_executor(tmp_path, cli, samples):
    marker = tmp_path / "died"
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "dies-once", "type": "test_dies_once", "params": {"marker": str(marker)}, "retries": 1},
    ], data={"sample": 500}))
    result = cli("run", policy, "--workers", "1")
    assert result.exit_code == 0, result.stdout + result.stderr
    check = json.loads((tmp_path / "out" / "results.json").read_text())["checks"][0]
    assert check["status"] == "info" and marker.exists()
    assert any("ran 2 times (retries)" in note and "SIGKILL" in note for note in check["notes"])


@pytest.mark.slow
def test_a_check_past_its_timeout_ends_as_error_on_dask(scheduler, tmp_path, cli, samples):
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
        {"id": "sleeps", "type": "test_sleeps", "timeout_s": 1, "params": {"seconds": 60}},
        {"id": "draws", "type": "test_random_draws"},
    ], data={"sample": 500}))
    started = time.perf_counter()
    result = cli("run", policy, "--executor", "dask", "--scheduler", scheduler)
    assert time.perf_counter() - started < 45  # not the 60 s sleep
    assert result.exit_code == 3, result.stdout + result.stderr
    by_id = {c["id"]: c for c in json.loads((tmp_path / "out" / "results.json").read_text())["checks"]}
    assert by_id["sleeps"]["status"] == "error" and "timed out after 1 s" in by_id["sleeps"]["error"]
    assert by_id["draws"]["status"] == "info", by_id["draws"]["error"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_is_exit_2_before_anything_runs(tmp_path, cli, samples, monkeypatch):
    from auditkit.engine import dask_executor

    monkeypatch.setattr(dask_executor, "connect_timeout_s", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out"))
    result = cli("run", policy, "--executor", "dask", "--scheduler", address)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert f"--scheduler {address}: no Dask scheduler answered" in result.stderr
    assert "loading data" not in result.stdout  # refused before the data was read
    assert not (tmp_path / "out").exists()


def test_scheduler_needs_the_dask_executor(tmp_path, cli, samples):
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out"))
    result = cli("run", policy, "--scheduler", "tcp://127.0.0.1:8786")
    assert result.exit_code == 2 and "--scheduler needs --executor dask" in result.stderr


@pytest.mark.slow
def test_without_an_address_the_executor_starts_its_own_local_cluster(tmp_path, cli, samples):
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", data={"sample": 1000}))
    result = cli("run", policy, "--executor", "dask", "--workers", "2")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "starting a local Dask cluster of 2 worker processes" in result.stdout
    assert "Dask dashboard: http://" in result.stdout
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["engine"]["scheduler"] == "local cluster" and results["engine"]["workers"] == 2
    assert [c["status"] for c in results["checks"]] == ["pass", "info"]


_CLUSTER_SCRIPT = """
import logging, sys, time
sys.path.insert(0, {tests!r})
import dask, distributed
import faulty_checks  # noqa: F401 - importable by the threaded worker
with dask.config.set({{"distributed.scheduler.allowed-failures": 0}}):
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                       dashboard_address=None, silence_logs=logging.CRITICAL)
print(cluster.scheduler_address, flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_a_scheduler_that_goes_away_keeps_finished_results_and_exits_3(tmp_path, cli, samples, monkeypatch):
    from auditkit.engine import dask_executor

    monkeypatch.setattr(dask_executor, "connect_timeout_s", 20.0)
    cluster = subprocess.Popen([sys.executable, "-c", _CLUSTER_SCRIPT.format(tests=str(ENGINE_TESTS))],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = cluster.stdout.readline().strip()
        assert address.startswith("tcp://"), address
        pid_file = tmp_path / "sleeping.pid"
        policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", checks=[
            {"id": "draws", "type": "test_random_draws"},
            {"id": "sleeps", "type": "test_sleeps", "params": {"seconds": 120, "pid_file": str(pid_file)}},
        ], data={"sample": 500}))

        def kill_when_sleeping() -> None:  # the one worker thread runs draws, then sleeps
            deadline = time.monotonic() + 120
            while not pid_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            os.kill(cluster.pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_when_sleeping, daemon=True)
        killer.start()
        started = time.perf_counter()
        result = cli("run", policy, "--executor", "dask", "--scheduler", address)
        killer.join(timeout=5)
        assert time.perf_counter() - started < 90
    finally:
        cluster.kill()
        cluster.wait()
    assert result.exit_code == 3, result.stdout + result.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"]}
    assert by_id["draws"]["status"] == "info" and by_id["draws"]["metrics"]["mean_draw"]["value"] is not None
    assert by_id["sleeps"]["status"] == "error" and "Dask scheduler" in by_id["sleeps"]["error"]
    assert "went away" in by_id["sleeps"]["error"] and results["engine"]["scheduler_lost"] is True
