"""data.sample on a Parquet dataset: drawn without reading the data whole, the same rows
however the dataset is split into files (#15)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from auditkit.data import load
from auditkit.data.partitions import dataset_partitions, read_rows, sample_positions
from auditkit.data.sample import keyed_stratified_positions, row_keys
from auditkit.errors import Source

from support import credit_policy, write_policy

CHECKS = [{"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc", "accuracy"], "bootstrap": 0}}]


def _split(frame: pd.DataFrame, directory: Path, parts: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, len(frame), parts + 1).round().astype(int)
    for i in range(parts):
        frame.iloc[bounds[i]:bounds[i + 1]].to_parquet(directory / f"part-{i:03d}.parquet", index=False)
    return directory


@pytest.fixture
def credit_frame(samples) -> pd.DataFrame:
    return pd.read_csv(samples / "credit_test.csv")


def test_a_row_key_depends_on_the_seed_and_the_row_position_only():
    keys = row_keys(7, np.arange(1000))
    assert np.array_equal(keys[500:], row_keys(7, np.arange(500, 1000)))
    assert not np.array_equal(keys, row_keys(8, np.arange(1000)))
    assert len(np.unique(keys)) == 1000


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_the_sample_is_the_same_rows_however_the_dataset_is_split(credit_frame, tmp_path, parts):
    expected = keyed_stratified_positions(credit_frame["defaulted"], len(credit_frame), 42, 1500)
    partitions, _ = dataset_partitions(_split(credit_frame, tmp_path / "d", parts), source=Source(None, "data.path"))
    assert np.array_equal(sample_positions(partitions, "defaulted", 42, 1500), expected)
    rows = read_rows(partitions, expected)
    assert list(rows.index) == list(expected)
    pd.testing.assert_frame_equal(rows.reset_index(drop=True), credit_frame.iloc[expected].reset_index(drop=True))


def test_the_sample_keeps_each_class_share_and_its_size(credit_frame):
    positions = keyed_stratified_positions(credit_frame["defaulted"], len(credit_frame), 3, 2000)
    assert len(positions) == 2000 and len(np.unique(positions)) == 2000
    share = credit_frame["defaulted"].mean()
    assert abs(credit_frame["defaulted"].iloc[positions].sum() - share * 2000) < 1  # largest remainders
    other = keyed_stratified_positions(credit_frame["defaulted"], len(credit_frame), 4, 2000)
    assert len(np.intersect1d(positions, other)) < 400  # another seed, another sample (about 10% overlap expected)


def test_a_sampled_dataset_is_never_read_whole(samples, credit_frame, tmp_path, cli, monkeypatch):
    _split(credit_frame, tmp_path / "d", 4)
    credit_frame.to_csv(tmp_path / "whole.csv", index=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the whole dataset was read")

    runs = {}
    for name, path in (("csv", tmp_path / "whole.csv"), ("dataset", tmp_path / "d")):
        if name == "dataset":
            monkeypatch.setattr(load, "read_parquet_dataset", refuse)
        policy = write_policy(tmp_path, credit_policy(samples, tmp_path / name, checks=CHECKS,
                                                      data={"path": str(path), "sample": 3000}), name=f"{name}.yaml")
        result = cli("run", policy, "--executor", "inline")
        assert result.exit_code == 0, result.stdout + result.stderr
        runs[name] = json.loads((tmp_path / name / "results.json").read_text())
    data = runs["dataset"]["inputs"]["data"]
    assert data["rows"] == len(credit_frame) and data["rows_used"] == 3000
    assert data["columns"] == credit_frame.shape[1]
    assert any(note.startswith("sampled 3,000 of 20,150 rows (data.sample, stratified by defaulted")
               for note in data["notes"])
    # the CSV and the dataset: the same sample, so the same figures
    assert runs["csv"]["checks"][0]["metrics"] == runs["dataset"]["checks"][0]["metrics"]
