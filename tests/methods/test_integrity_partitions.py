"""data_integrity by partition: summaries of blocks of rows combine into the whole's (#15)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auditkit.methods.integrity import combine, first_of, summarise


def _frame(seed: int = 0, n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 10, n).round(1),
        "years": rng.integers(0, 5, n).astype(np.float64),
        "region": rng.choice(["north", "south", "east", None], n),
        "flag": rng.random(n) < 0.3,
        "const": 1.0,
    })
    frame["income_copy"] = frame["income"]
    frame.loc[rng.choice(n, 20, replace=False), "income"] = np.nan
    frame.loc[rng.choice(n, 3, replace=False), "years"] = np.inf
    repeats = rng.choice(n, 40, replace=False)  # rows copied over later rows, across any split
    frame.iloc[repeats[20:]] = frame.iloc[repeats[:20]].to_numpy()
    frame.index = pd.RangeIndex(n, name="row")
    return frame


def _as_dict(summary) -> dict:
    return {"rows": summary.rows, "dup": summary.duplicates, "listed": summary.listed,
            "first": [first_of(summary, item) for item in summary.listed],
            "equal": sorted(summary.equal_pairs), "out": summary.out_of_range_rows,
            "dtypes": {c: str(summary.heads[c].dtype) for c in summary.heads.columns},
            "columns": {name: (c.missing, len(c.distinct), c.infinite, c.low, c.high, c.out_of_range, sorted(c.unseen))
                        for name, c in summary.columns.items()}}


@pytest.mark.parametrize("cuts", [[300], [1, 2, 599], [100, 200, 300, 400, 500], [0, 600]])
def test_combined_block_summaries_are_the_whole_frames_summary(cuts):
    frame = _frame()
    columns = list(frame.columns)
    reference = frame.iloc[:200].dropna()
    whole = summarise(frame, columns, reference=reference, duplicate_subset=None)
    bounds = [0, *cuts, len(frame)]
    blocks = [frame.iloc[a:b] for a, b in zip(bounds, bounds[1:])]
    parts = combine([summarise(b, columns, reference=reference, duplicate_subset=None) for b in blocks])
    assert _as_dict(parts) == _as_dict(whole)


def test_the_summary_agrees_with_pandas():
    frame = _frame(1)
    summary = summarise(frame, list(frame.columns), reference=None, duplicate_subset=None)
    duplicated = frame.duplicated(keep="first")
    assert summary.duplicates == int(duplicated.sum()) > 0
    assert [row for row, _, _ in summary.listed] == list(frame.index[duplicated][:50])
    firsts = frame.reset_index().groupby(list(frame.columns), dropna=False)["row"].transform("first")
    assert [first_of(summary, item) for item in summary.listed] == list(firsts[duplicated.to_numpy()][:50])
    for name in frame.columns:
        assert len(summary.columns[name].distinct) == frame[name].nunique()
        assert summary.columns[name].missing == frame[name].isna().sum()
    assert ("income", "income_copy") not in summary.equal_pairs  # income has missing values, the copy not
    same = frame.assign(copy2=frame["region"])
    assert ("region", "copy2") in summarise(same, list(same.columns), reference=None, duplicate_subset=None).equal_pairs


def test_integers_in_one_file_and_floats_in_another_hash_alike():
    """A Parquet int column reads as float64 in a file where it has a missing value."""
    a = pd.DataFrame({"x": pd.Series([1, 2], dtype=np.int64), "b": [True, False]}, index=pd.RangeIndex(0, 2))
    b = pd.DataFrame({"x": [1.0, np.nan], "b": [True, None]}, index=pd.RangeIndex(2, 4))
    combined = combine([summarise(part, ["x", "b"], reference=None, duplicate_subset=None) for part in (a, b)])
    assert combined.duplicates == 1 and combined.listed[0][0] == 2 and first_of(combined, combined.listed[0]) == 0
    assert str(combined.heads["x"].dtype) == "float64" and str(combined.heads["b"].dtype) == "object"
