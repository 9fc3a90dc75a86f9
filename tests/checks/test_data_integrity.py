"""`data_integrity` against the faults planted in the sample data and a hand-built table."""
from __future__ import annotations

import json
import numpy as np
import pandas as pd
import pytest

from check_support import binary_data, run_check

from support import credit_policy, write_policy


def test_finds_the_planted_duplicates_and_out_of_range_incomes(samples, tmp_path):
    from auditkit.engine.run import RunOptions, run_audit
    from auditkit.policy.load import load_policy

    policy = credit_policy(samples, tmp_path, checks=[{"id": "dq", "type": "data_integrity"}])
    policy["data"] = {**policy["data"], "reference": str(samples / "credit_train.csv")}
    del policy["data"]["sample"]
    loaded = load_policy(write_policy(tmp_path, policy))
    check = run_audit(loaded, RunOptions(executor="inline")).results["checks"][0]
    metrics = {k: v["value"] for k, v in check["metrics"].items()}
    test = pd.read_csv(samples / "credit_test.csv")
    train = pd.read_csv(samples / "credit_train.csv")
    # ground truth written by sample_models/build.py (sample_models/README.md)
    assert metrics["rows"] == 20_150
    assert metrics["duplicate_rows"] == 150
    assert metrics["out_of_range[income]"] == int((test.income > train.income.max()).sum()) >= 40
    assert metrics["missing_share[employment_years]"] == pytest.approx(test.employment_years.isna().mean(), abs=0)
    assert metrics["missing_share[income]"] == 0
    assert metrics["dtype_mismatches"] == 0
    duplicates = check["tables"]["duplicate_rows"]
    assert len(duplicates) == 50  # listed up to 50, counted in full
    for record in duplicates[:10]:  # each listed row really repeats the row it names
        assert test.iloc[record["row"]].equals(test.iloc[record["duplicate_of"]])
        assert record["duplicate_of"] < record["row"]


def test_hand_built_table_constant_duplicate_columns_and_unseen_categories():
    frame = pd.DataFrame({
        "a": [1.0, 2.0, np.nan, 4.0, 2.0],
        "b": ["x", "y", "y", "z", "y"],
        "copy_of_a": [1.0, 2.0, np.nan, 4.0, 2.0],
        "constant": [7, 7, 7, 7, 7],
    })
    reference = pd.DataFrame({"a": [0.0, 3.0], "b": ["x", "y"], "copy_of_a": [0.0, 9.0], "constant": [7, 7]})
    data = binary_data(np.array([0, 1, 0, 1, 1]), np.array([0.1, 0.9, 0.2, 0.8, 0.9]), frame=frame,
                       features=["a", "b", "copy_of_a", "constant"], reference=reference)
    output = run_check("data_integrity", data, {"columns": ["a", "b", "copy_of_a", "constant"],
                                                 "duplicate_subset": ["a", "b"]})
    m = {k: v.value for k, v in output.metrics.items()}
    assert m["missing_share[a]"] == pytest.approx(1 / 5)
    assert m["missing_cells"] == 2
    assert m["constant_columns"] == 1
    assert m["duplicate_columns"] == 1 and output.tables["duplicate_columns"] == [{"column": "copy_of_a", "same_as": "a"}]
    assert m["duplicate_rows"] == 1 and output.tables["duplicate_rows"] == [{"row": 4, "duplicate_of": 1}]
    assert m["out_of_range[a]"] == 1  # 4.0 above the reference maximum 3.0; NaN is not out of range
    assert m["out_of_range[b]"] == 1  # "z" was never seen
    assert m["out_of_range_rows"] == 1  # row 3 has both
    by_column = {r["column"]: r for r in output.tables["columns"]}
    assert by_column["b"]["unseen_categories"] == "z"


def test_without_reference_range_metrics_are_absent_and_a_note_says_why():
    data = binary_data(np.array([0, 1]), np.array([0.2, 0.7]))
    output = run_check("data_integrity", data)
    assert "out_of_range_share" not in output.metrics
    assert any("no data.reference" in note for note in output.notes)


def test_dtype_mismatch_against_the_model_inputs_is_counted():
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "code": [10, 20, 30]})
    data = binary_data(np.array([0, 1, 1]), np.array([0.2, 0.7, 0.9]), frame=frame, features=["x", "code"],
                       input_dtypes={"x": "numeric", "code": "string"})
    output = run_check("data_integrity", data)
    assert output.metrics["dtype_mismatches"].value == 1
    assert output.tables["dtype_mismatches"] == [{"column": "code", "model_input": "text", "data": "int64"}]
