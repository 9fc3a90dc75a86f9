"""A Parquet dataset audited by partition on a real LocalCluster of 2 worker processes: each
worker reads and predicts on its files, and results.json is the local executor's (#15)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra (pip install 'auditkit[dask]') is not installed")

from support import credit_policy, write_policy  # noqa: E402

ROWS = 6000
VOLATILE = ("run_id", "started_at", "finished_at", "duration_s", "engine", "command")
CHECKS = [
    {"id": "perf", "type": "performance", "params": {"bootstrap": 20},
     "thresholds": {"roc_auc": {"min": 0.7}}},
    {"id": "parity", "type": "group_fairness", "params": {"attributes": ["sex", "race"], "bootstrap": 50},
     "thresholds": {"selection_rate_ratio": {"min": 0.8}}},
    {"id": "nyc", "type": "impact_ratio", "params": {"attributes": ["sex", "race"]}},
    {"id": "integrity", "type": "data_integrity", "thresholds": {"duplicate_rows": {"max": 0}}},
    {"id": "integrity-subset", "type": "data_integrity",
     "params": {"columns": ["income", "sex"], "duplicate_subset": ["sex", "race", "age_band"]}},
]


def _stable(results: dict) -> dict:
    results = {k: v for k, v in results.items() if k not in VOLATILE}
    results["checks"] = [{k: v for k, v in c.items() if k != "duration_s"} for c in results["checks"]]
    return results


def _dataset(samples: Path, directory: Path, parts: int = 5) -> Path:
    """The credit test set as ``parts`` files of uneven sizes (its planted duplicate rows fall
    in other files than the rows they repeat), with missing incomes in one file only."""
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:ROWS]  # a few thousand rows keep the test quick
    frame["income"] = frame["income"].astype(np.float64)  # every file's schema alike
    directory.mkdir(parents=True)
    bounds = [0, 1000, 1001, 2500, 4000, len(frame)][:parts] + [len(frame)]
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        block = frame.iloc[a:b].copy()
        if i == 2:
            block.loc[block.index[:7], "income"] = np.nan
        block.to_parquet(directory / f"part-{i:02d}.parquet", index=False)
    return directory


@pytest.mark.slow
def test_a_dataset_audited_by_partition_gives_the_local_executors_results(scheduler, samples, tmp_path, cli,
                                                                          monkeypatch):
    data = _dataset(samples, tmp_path / "data")
    policy = credit_policy(samples, tmp_path / "out", checks=CHECKS,
                           data={"path": str(data), "sample": None, "reference": str(samples / "credit_train.csv")})
    del policy["data"]["sample"]
    path = write_policy(tmp_path, policy)
    local = cli("run", path, "--workers", "2", "--out", tmp_path / "local", "--format", "json")
    assert local.exit_code in (0, 1), local.stdout + local.stderr

    from auditkit.data import load

    def refuse(*args, **kwargs):
        raise AssertionError("the parent read the whole dataset")

    monkeypatch.setattr(load, "read_parquet_dataset", refuse)
    dask_run = cli("run", path, "--executor", "dask", "--scheduler", scheduler, "--out", tmp_path / "dask",
                   "--format", "json")
    assert dask_run.exit_code == local.exit_code, dask_run.stdout + dask_run.stderr
    by_local = json.loads((tmp_path / "local" / "results.json").read_text())
    by_dask = json.loads((tmp_path / "dask" / "results.json").read_text())
    assert by_dask["engine"]["partitions"] == 5
    checks = {c["id"]: c for c in by_local["checks"]}
    assert all(c["status"] in ("pass", "fail", "info") for c in checks.values()), [c.get("error") for c in checks.values()]
    assert checks["integrity"]["metrics"]["duplicate_rows"]["value"] > 0  # the planted duplicates, across files
    assert checks["integrity"]["metrics"]["missing_share[income]"]["value"] == 7 / ROWS
    assert by_local["inputs"]["data"]["rows_used"] == ROWS
    assert _stable(by_dask) == _stable(by_local)


@pytest.mark.slow
def test_a_check_that_needs_every_row_in_one_process_keeps_the_whole_data_path(scheduler, samples, tmp_path, cli):
    data = _dataset(samples, tmp_path / "data")
    checks = [*CHECKS[:1], {"id": "pi", "type": "permutation_importance", "params": {"n_repeats": 2, "max_rows": 500}}]
    policy = credit_policy(samples, tmp_path / "out", checks=checks, data={"path": str(data)})
    del policy["data"]["sample"]
    result = cli("run", write_policy(tmp_path, policy), "--executor", "dask", "--scheduler", scheduler,
                 "--format", "json")
    assert result.exit_code in (0, 1), result.stdout + result.stderr
    engine = json.loads((tmp_path / "out" / "results.json").read_text())["engine"]
    assert engine["partitions"] is None


@pytest.mark.slow
def test_memory_mb_is_each_workers_memory_limit_on_the_executors_own_cluster(samples, tmp_path, cli):
    from tests_support import register_faulty_checks

    register_faulty_checks()
    policy = credit_policy(samples, tmp_path / "out", checks=[
        {"id": "hog", "type": "test_hogs_memory", "memory_mb": 700, "params": {"mb": 1600, "chunk_mb": 16}},
        {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc"], "bootstrap": 0}}],
        data={"sample": 1000})
    result = cli("run", write_policy(tmp_path, policy), "--executor", "dask", "--workers", "2")
    assert result.exit_code == 3, result.stdout + result.stderr  # an error, nothing failed
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    by_id = {c["id"]: c for c in results["checks"]}
    assert results["engine"]["worker_memory_mb"] == 700
    assert by_id["hog"]["status"] == "error" and "memory limit is 700 MB" in by_id["hog"]["error"], by_id["hog"]
    assert by_id["perf"]["status"] == "info", by_id["perf"].get("error")


@pytest.mark.slow
def test_a_dataset_checked_by_partition_is_still_bad_input_before_any_check_runs(scheduler, samples, tmp_path, cli):
    """The parent reads no row, yet a target of one class is exit 2 naming it, as on whole data."""
    frame = pd.read_csv(samples / "credit_test.csv").iloc[:2000]
    frame["defaulted"] = 0
    directory = tmp_path / "data"
    directory.mkdir()
    frame.iloc[:1000].to_parquet(directory / "a.parquet", index=False)
    frame.iloc[1000:].to_parquet(directory / "b.parquet", index=False)
    policy = credit_policy(samples, tmp_path / "out", checks=CHECKS[:1], data={"path": str(directory)})
    del policy["data"]["sample"]
    result = cli("run", write_policy(tmp_path, policy), "--executor", "dask", "--scheduler", scheduler)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "target 'defaulted' has a single class (0)" in result.stdout + result.stderr
    assert not (tmp_path / "out" / "results.json").exists()


def test_only_row_parallel_checks_on_a_dataset_are_prepared_by_partition(samples, tmp_path):
    from auditkit.engine.partitioned import partitioned_reason
    from auditkit.policy.load import load_policy

    data = _dataset(samples, tmp_path / "data")
    policy = credit_policy(samples, tmp_path / "out", data={"path": str(data)})
    del policy["data"]["sample"]
    loaded = load_policy(write_policy(tmp_path, policy))
    row_parallel = ["performance", "data_integrity", "group_fairness", "impact_ratio"]
    assert partitioned_reason(loaded, "dask", row_parallel) is None
    assert partitioned_reason(loaded, "local", row_parallel) == "not the dask executor"
    assert "shap_importance" in partitioned_reason(loaded, "dask", [*row_parallel, "shap_importance"])
    sampled = load_policy(write_policy(tmp_path, {**policy, "data": {**policy["data"], "sample": 100}}, "s.yaml"))
    assert "data.sample" in partitioned_reason(sampled, "dask", row_parallel)


SUMMARISED = [
    {"id": "perf", "type": "performance", "params": {"bootstrap": 0}, "thresholds": {"roc_auc": {"min": 0.7}}},
    {"id": "parity", "type": "group_fairness",
     "params": {"attributes": ["sex", "race", "income"], "intersections": [["sex", "race"]],
                "bins": {"income": [30000, 60000]}, "bootstrap": 200, "min_group_size": 40},
     "thresholds": {"selection_rate_ratio": {"min": 0.8}}},
    {"id": "nyc", "type": "impact_ratio", "params": {"attributes": ["sex", "race"]},
     "thresholds": {"impact_ratio": {"min": 0.8}}},
    {"id": "nyc-small", "type": "impact_ratio",
     "params": {"attributes": ["race"], "exclude_small": True, "reference_group": {"race": "White"}}},
    {"id": "broken", "type": "group_fairness", "params": {"attributes": ["sex"], "bins": {"sex": [1]}}},
]


def _same_as_local(samples: Path, tmp_path: Path, cli, scheduler: str, policy: dict) -> tuple[dict, dict]:
    path = write_policy(tmp_path, policy)
    local = cli("run", path, "--workers", "2", "--out", tmp_path / "local", "--format", "json")
    dask_run = cli("run", path, "--executor", "dask", "--scheduler", scheduler, "--out", tmp_path / "dask",
                   "--format", "json")
    assert dask_run.exit_code == local.exit_code, dask_run.stdout + dask_run.stderr
    by_local = json.loads((tmp_path / "local" / "results.json").read_text())
    by_dask = json.loads((tmp_path / "dask" / "results.json").read_text())
    assert by_dask["engine"]["partitions"] == 5
    assert _stable(by_dask) == _stable(by_local)
    return by_local, by_dask


@pytest.mark.slow
def test_summarised_checks_by_partition_give_the_local_executors_results(scheduler, samples, tmp_path, cli):
    """performance (no bootstrap), group_fairness and impact_ratio read per-partition counts on
    the workers, never the rows: every figure, interval and table is the local executor's, and a
    check whose params fail on the rows fails with the same error."""
    data = _dataset(samples, tmp_path / "data")
    policy = credit_policy(samples, tmp_path / "out", checks=SUMMARISED, data={"path": str(data)})
    del policy["data"]["sample"]
    by_local, _ = _same_as_local(samples, tmp_path, cli, scheduler, policy)
    checks = {c["id"]: c for c in by_local["checks"]}
    assert checks["broken"]["status"] == "error" and "params.bins[sex]" in checks["broken"]["error"]
    assert all(c["status"] in ("pass", "fail", "info") for i, c in checks.items() if i != "broken"), checks
    assert checks["parity"]["metrics"]["selection_rate_ratio[sex & race]"]["ci"]
    assert checks["perf"]["metrics"]["log_loss"]["value"] > 0


@pytest.mark.slow
def test_a_multiclass_models_dataset_by_partition_gives_the_local_executors_results(scheduler, samples, tmp_path,
                                                                                     cli):
    """The shell of a run by partition knows the favourable class (data.favorable_label), so
    impact_ratio on a multiclass model runs there as on the whole data."""
    frame = pd.read_csv(samples / "credit_tier_test.csv").iloc[:ROWS]
    frame["income"] = frame["income"].astype(np.float64)
    directory = tmp_path / "data"
    directory.mkdir()
    for i, block in enumerate(np.array_split(np.arange(len(frame)), 5)):
        frame.iloc[block].to_parquet(directory / f"part-{i}.parquet", index=False)
    policy = credit_policy(samples, tmp_path / "out", checks=[
        {"id": "perf", "type": "performance", "params": {"metrics": ["accuracy", "f1_macro", "log_loss"],
                                                         "bootstrap": 0}},
        {"id": "parity", "type": "group_fairness", "params": {"attributes": ["sex", "race"], "bootstrap": 50}},
        {"id": "nyc", "type": "impact_ratio", "params": {"attributes": ["sex", "race"]}}],
        model={"path": str(samples / "credit_tier.onnx"), "task": "multiclass", "positive_class": None,
               "threshold": None},
        data={"path": str(directory), "target": "risk_tier", "favorable_label": "low",
              "ignore": ["applicant_id", "interest_rate", "defaulted"]})
    del policy["data"]["sample"]
    by_local, _ = _same_as_local(samples, tmp_path, cli, scheduler, policy)
    checks = {c["id"]: c for c in by_local["checks"]}
    assert checks["nyc"]["status"] == "info" and checks["nyc"]["metrics"]["impact_ratio[sex]"]["value"] > 0
    assert "selection_rate_ratio[sex, class=high]" in checks["parity"]["metrics"]


def test_checks_that_resample_rows_or_average_a_regressors_values_read_the_gathered_rows(samples, tmp_path):
    from auditkit.engine.partitioned import split_tasks
    from auditkit.engine.worker import CheckTask

    def task(check_id: str, check_type: str, params: dict) -> CheckTask:
        return CheckTask(check_id=check_id, type=check_type, params=params, seed=0, timeout_s=60)

    from auditkit.engine.prepare import prepare
    from auditkit.policy.load import load_policy

    policy = credit_policy(samples, tmp_path / "out")
    shell = prepare(load_policy(write_policy(tmp_path, policy))).data
    tasks = [task("a", "performance", {"bootstrap": 0}), task("b", "performance", {"bootstrap": 10}),
             task("c", "group_fairness", {}), task("d", "impact_ratio", {}), task("e", "data_integrity", {})]
    summarised, gathered = split_tasks(tasks, shell)
    assert [s[0] for s in summarised] == ["a", "c", "d", "e"] and [t.check_id for t in gathered] == ["b"]
    regressor = replace(shell, task="regression")
    summarised, gathered = split_tasks(tasks[2:4], regressor)
    assert [s[0] for s in summarised] == ["d"] and [t.check_id for t in gathered] == ["c"]
