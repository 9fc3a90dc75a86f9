"""``data_integrity`` by partition: a summary of some rows, summaries combined exactly.

:func:`summarise` reads a block of rows (a Parquet file of a dataset, or the whole audit
frame) and keeps only what the check's figures need: per column its missing and infinite
counts, finite min and max, distinct values, out-of-range counts against the reference;
which columns are equal over the block; a 128-bit hash of every distinct row with its first
position. :func:`combine` merges summaries of consecutive blocks (in row order) into the
summary of all of them: every count, min, max and set is exact, so the check's figures are
the same however the rows are split. Duplicate rows are found by their hashes: two rows
count as one only if two independent 64-bit hashes of their values both agree (a false
duplicate needs a collision of both: about 1 in 10^20 for a billion rows).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

MAX_LISTED = 50
_KEYS = ("auditkit-rows-1a", "auditkit-rows-2b")  # hash_pandas_object keys: 16 bytes each


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)


@dataclass
class ColumnSummary:
    head: pd.Series  # the column's first row (or none): its dtype as pandas reads the whole
    missing: int = 0
    distinct: Any = None  # the distinct non-missing values
    infinite: int = 0
    low: float | None = None  # finite min and max
    high: float | None = None
    out_of_range: int | None = None  # with a reference column
    unseen: set[str] = field(default_factory=set)


@dataclass
class Summary:
    rows: int
    columns: dict[str, ColumnSummary]
    equal_pairs: set[tuple[str, str]]  # (earlier, later) columns equal over the rows
    out_of_range_rows: int  # rows with a value outside the reference in any column
    heads: pd.DataFrame  # every column's first row: the dtypes
    # duplicate rows: the distinct row hashes (two uint64 columns) with their first position
    hashes: npt.NDArray[np.uint64]  # (k, 2)
    first: npt.NDArray[np.int64]  # (k,)
    duplicates: int  # rows repeating an earlier row of the block
    listed: list[tuple[int, int, int]]  # the first MAX_LISTED of those: (position, hash one, hash two)


def _hashable(frame: pd.DataFrame) -> pd.DataFrame:
    """Integers as floats and booleans as objects, as a Parquet file with a missing value in
    such a column reads them: the same row hashes the same in every file."""
    out = {}
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_bool_dtype(series.dtype):
            out[name] = series.astype(object)
        elif pd.api.types.is_integer_dtype(series.dtype):
            out[name] = series.astype(np.float64)
        else:
            out[name] = series
    return pd.DataFrame(out, index=frame.index)


def row_hashes(frame: pd.DataFrame) -> npt.NDArray[np.uint64]:
    """(rows, 2): two independent 64-bit hashes of each row's values."""
    rows = _hashable(frame)
    return np.column_stack([pd.util.hash_pandas_object(rows, index=False, hash_key=key).to_numpy(np.uint64)
                            for key in _KEYS])


def summarise(frame: pd.DataFrame, columns: list[str], *, reference: pd.DataFrame | None,
              duplicate_subset: list[str] | None) -> Summary:
    """The summary of a block of rows (``frame``: indexed by the rows' positions in the data)."""
    n = len(frame)
    positions = np.asarray(frame.index, dtype=np.int64)
    summaries: dict[str, ColumnSummary] = {}
    outside_any = np.zeros(n, dtype=bool)
    for name in columns:
        series = frame[name]
        column = ColumnSummary(head=_detached(series.iloc[:1]), missing=int(series.isna().sum()),
                               distinct=_detached(pd.unique(series.dropna())))
        if is_numeric(series):
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            column.infinite = int(np.isinf(values).sum())
            finite = values[np.isfinite(values)]
            column.low = float(finite.min()) if finite.size else None
            column.high = float(finite.max()) if finite.size else None
        if reference is not None and name in reference.columns:
            ref = reference[name]
            if is_numeric(series) and is_numeric(ref):
                low, high = float(ref.min()), float(ref.max())
                outside = ((series < low) | (series > high)).to_numpy(dtype=bool, na_value=False)
            else:
                seen = set(ref.dropna().astype(str))
                as_text = series.astype(object)
                outside = (series.notna() & ~as_text.astype(str).isin(seen)).to_numpy(dtype=bool)
                column.unseen = set(as_text[outside].astype(str))
            column.out_of_range = int(outside.sum())
            outside_any |= outside
        summaries[name] = column

    # columns equal over these rows: compared only where their hashes agree
    digests: dict[bytes, list[str]] = {}
    for name in columns:
        digests.setdefault(pd.util.hash_pandas_object(frame[name], index=False).to_numpy().tobytes(), []).append(name)
    equal_pairs = {(a, b) for names in digests.values() for i, a in enumerate(names) for b in names[i + 1:]
                   if frame[b].equals(frame[a])}

    hashes = row_hashes(frame[duplicate_subset] if duplicate_subset else frame)
    repeated = _repeated(hashes)
    listed_at = np.flatnonzero(repeated)[:MAX_LISTED]
    listed = [(int(positions[i]), int(hashes[i, 0]), int(hashes[i, 1])) for i in listed_at]
    # the distinct rows in the order they first occur: positions increase (combine relies on it).
    # The heads and distinct values are detached: a slice of the frame would keep every row alive
    # with the summary.
    return Summary(rows=n, columns=summaries, equal_pairs=equal_pairs, out_of_range_rows=int(outside_any.sum()),
                   heads=_detached(frame.iloc[:1]), hashes=hashes[~repeated], first=positions[~repeated],
                   duplicates=int(repeated.sum()), listed=listed)


def _detached(values: Any) -> Any:
    """``values`` in buffers of their own: a slice of an Arrow-backed column (pandas' string
    dtype), even copied, shares the whole column's buffers; a pickled copy holds only its rows."""
    import pickle

    return pickle.loads(pickle.dumps(values, protocol=pickle.HIGHEST_PROTOCOL))


def _repeated(hashes: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    """True for each row whose hash pair occurred on an earlier row (a hash table, not a sort).

    Only rows whose first hash occurs more than once can repeat a pair: the pairs are compared
    among those alone (in row order), so the table over every row holds one 64-bit key a row,
    not two (the combine of ten million rows' summaries stays a few hundred MB smaller)."""
    repeated = np.zeros(len(hashes), dtype=bool)
    candidates = np.flatnonzero(pd.Series(hashes[:, 0]).duplicated(keep=False).to_numpy(dtype=bool))
    if len(candidates):
        repeated[candidates] = pd.DataFrame(hashes[candidates]).duplicated(keep="first").to_numpy(dtype=bool)
    return repeated


def combine(parts: list[Summary]) -> Summary:
    """The summary of consecutive blocks of rows, given in row order, from theirs."""
    parts = [p for p in parts if p.rows] or parts[:1]
    if len(parts) == 1:
        return parts[0]
    columns: dict[str, ColumnSummary] = {}
    for name in parts[0].columns:
        pieces = [p.columns[name] for p in parts]
        lows = [c.low for c in pieces if c.low is not None]
        highs = [c.high for c in pieces if c.high is not None]
        out = [c.out_of_range for c in pieces]
        columns[name] = ColumnSummary(
            head=pd.concat([c.head for c in pieces]), missing=sum(c.missing for c in pieces),
            distinct=pd.unique(pd.concat([pd.Series(c.distinct) for c in pieces], ignore_index=True)),
            infinite=sum(c.infinite for c in pieces), low=min(lows) if lows else None,
            high=max(highs) if highs else None,
            out_of_range=None if out[0] is None else sum(int(o or 0) for o in out),
            unseen=set().union(*(c.unseen for c in pieces)))
    equal_pairs = set.intersection(*(p.equal_pairs for p in parts))

    # duplicate rows: a block's distinct row whose hash an earlier block has is a duplicate too.
    # Blocks come in row order and list their distinct rows by increasing position, so the
    # concatenation is in row order: the first occurrence of a hash is its first row.
    hashes = np.concatenate([p.hashes for p in parts])
    first = np.concatenate([p.first for p in parts])
    repeated = _repeated(hashes)
    across = [(int(f), int(h[0]), int(h[1])) for f, h in zip(first[repeated][:MAX_LISTED], hashes[repeated][:MAX_LISTED])]
    listed = sorted([*(row for p in parts for row in p.listed), *across])[:MAX_LISTED]
    return Summary(rows=sum(p.rows for p in parts), columns=columns, equal_pairs=equal_pairs,
                   out_of_range_rows=sum(p.out_of_range_rows for p in parts),
                   heads=pd.concat([p.heads for p in parts]), hashes=hashes[~repeated], first=first[~repeated],
                   duplicates=sum(p.duplicates for p in parts) + int(repeated.sum()), listed=listed)


def first_of(summary: Summary, listed: tuple[int, int, int]) -> int:
    """The position of the first row that ``listed`` (a duplicate row) repeats."""
    _, a, b = listed
    match = np.flatnonzero((summary.hashes[:, 0] == np.uint64(a)) & (summary.hashes[:, 1] == np.uint64(b)))
    return int(summary.first[match[0]])
