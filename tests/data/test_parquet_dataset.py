"""data.path as a Parquet dataset: a directory or a glob of files (#15)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from auditkit.data.load import data_sha256, read_table
from auditkit.errors import DataError

from support import credit_policy, write_policy

CHECKS = [
    {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc", "accuracy"], "bootstrap": 50}},
    {"id": "integrity", "type": "data_integrity"},
    {"id": "parity", "type": "group_fairness", "params": {"attributes": ["sex", "race"], "bootstrap": 50}},
]


def _split(frame: pd.DataFrame, directory: Path, parts: int) -> list[Path]:
    """The frame as ``parts`` Parquet files whose sorted names keep the rows in order."""
    directory.mkdir(parents=True, exist_ok=True)
    size = -(-len(frame) // parts)
    paths = []
    for i in range(parts):
        path = directory / f"part-{i:03d}.parquet"
        frame.iloc[i * size:(i + 1) * size].to_parquet(path, index=False)
        paths.append(path)
    return paths


@pytest.fixture
def credit_frame(samples) -> pd.DataFrame:
    return pd.read_csv(samples / "credit_test.csv")


def test_a_parquet_directory_gives_the_same_results_as_one_file(samples, credit_frame, tmp_path, cli):
    single = tmp_path / "single.parquet"
    credit_frame.to_parquet(single, index=False)
    _split(credit_frame, tmp_path / "dataset", 4)
    runs = {}
    for name, path in (("file", single), ("dataset", tmp_path / "dataset")):
        policy = write_policy(tmp_path, credit_policy(samples, tmp_path / name, checks=CHECKS,
                                                      data={"path": str(path), "sample": 2000}), name=f"{name}.yaml")
        result = cli("run", policy, "--executor", "inline")
        assert result.exit_code == 0, result.stdout + result.stderr
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
    one, many = runs["file"], runs["dataset"]
    assert many["inputs"]["data"]["rows"] == len(credit_frame) and many["inputs"]["data"]["rows_used"] == 2000
    assert any("Parquet dataset of 4 files" in note for note in many["inputs"]["data"]["notes"])
    assert one["checks"][0]["metrics"]["roc_auc"]["value"] > 0.7  # a real model, not an empty run
    strip = lambda checks: [{k: v for k, v in c.items() if k != "duration_s"} for c in checks]  # noqa: E731
    assert strip(many["checks"]) == strip(one["checks"])


def test_a_glob_reads_the_matching_files_in_order(credit_frame, tmp_path):
    _split(credit_frame, tmp_path, 3)
    (tmp_path / "notes.txt").write_text("not data")
    table = read_table(tmp_path / "part-*.parquet")
    assert len(table.frame) == len(credit_frame)
    assert table.frame.index.name == "row" and list(table.frame.index[:3]) == [0, 1, 2]
    pd.testing.assert_frame_equal(table.frame.reset_index(drop=True), credit_frame, check_dtype=False)


def test_files_that_disagree_on_schema_are_exit_2_naming_the_file(samples, credit_frame, tmp_path, cli):
    paths = _split(credit_frame, tmp_path / "dataset", 3)
    changed = credit_frame.iloc[:10].assign(income=lambda f: f["income"].astype(str))
    changed.to_parquet(paths[1], index=False)
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", data={"path": str(tmp_path / "dataset")}))
    result = cli("run", policy)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert str(paths[1]) in result.stderr and "'income' is " in result.stderr and "string there, int64 in part-000" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_missing_a_column_is_named(credit_frame, tmp_path):
    paths = _split(credit_frame, tmp_path, 2)
    credit_frame.drop(columns=["sex"]).iloc[:5].to_parquet(paths[1], index=False)
    with pytest.raises(DataError, match=r"part-001\.parquet: its schema differs .*missing columns \['sex'\]"):
        read_table(tmp_path)


def test_an_empty_directory_is_exit_2(samples, tmp_path, cli):
    (tmp_path / "empty").mkdir()
    policy = write_policy(tmp_path, credit_policy(samples, tmp_path / "out", data={"path": str(tmp_path / "empty")}))
    result = cli("run", policy)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "no Parquet files" in result.stderr and "empty" in result.stderr


def test_the_dataset_hash_changes_with_any_file(credit_frame, tmp_path):
    paths = _split(credit_frame, tmp_path, 2)
    before = data_sha256(tmp_path)
    credit_frame.iloc[:7].to_parquet(paths[1], index=False)
    assert data_sha256(tmp_path) != before and len(before) == 64
