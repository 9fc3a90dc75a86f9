"""A Parquet dataset read by partition (one file at a time, only the columns asked for), so
data larger than memory can be sampled or summarised with bounded memory."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.data.load import ROW, Table, dataset_note, dataset_schema
from auditkit.data.sample import allocate, merge_smallest, row_keys, smallest_keys, stratum_labels
from auditkit.errors import DataError, Source

BATCH_ROWS = 262_144  # rows per Parquet batch read: bounds the memory of a pass whatever a file's size


@dataclass(frozen=True)
class Partition:
    """One file of a dataset: its rows are ``offset`` .. ``offset + rows - 1`` of the whole."""

    path: str
    offset: int
    rows: int


def dataset_partitions(path: Path, *, source: Source) -> tuple[list[Partition], list[str]]:
    """The dataset's partitions (row counts from the files' footers: no row is read) and columns."""
    import pyarrow.parquet as pq

    files, schema = dataset_schema(path, source=source)
    partitions, offset = [], 0
    for file in files:
        rows = pq.ParquetFile(file).metadata.num_rows
        partitions.append(Partition(str(file), offset, rows))
        offset += rows
    return partitions, [str(name) for name in schema.names]


def read_partition(partition: Partition, columns: list[str] | None = None) -> pd.DataFrame:
    """A partition's rows (only ``columns``, all when None), indexed by their position in the dataset."""
    import pyarrow.parquet as pq

    frame = pq.read_table(partition.path, columns=columns).to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    frame.index = pd.RangeIndex(partition.offset, partition.offset + len(frame), name=ROW)
    return frame


def iter_batches(partition: Partition, columns: list[str] | None) -> Iterator[tuple[int, pd.DataFrame]]:
    """(position of the first row, rows) of a partition, in batches of at most BATCH_ROWS rows."""
    import pyarrow.parquet as pq

    start = partition.offset
    for batch in pq.ParquetFile(partition.path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
        frame = batch.to_pandas()
        yield start, frame
        start += len(frame)


def _strata(partition: Partition, column: str | None) -> Iterator[tuple[npt.NDArray[np.int64], npt.NDArray[Any]]]:
    if column is None:  # nothing to stratify by: every row is in one stratum, nothing to read
        for start in range(partition.offset, partition.offset + partition.rows, BATCH_ROWS):
            stop = min(start + BATCH_ROWS, partition.offset + partition.rows)
            yield np.arange(start, stop, dtype=np.int64), np.full(stop - start, "(all)", dtype=object)
        return
    for start, frame in iter_batches(partition, [column]):
        yield np.arange(start, start + len(frame), dtype=np.int64), stratum_labels(frame[column])


def sample_positions(partitions: list[Partition], strata_column: str | None, seed: int,
                     n_wanted: int) -> npt.NDArray[np.int64]:
    """The positions :func:`auditkit.data.sample.keyed_stratified_positions` would choose on the
    whole dataset, in two passes over the strata column alone: count each stratum, then keep
    each stratum's rows with the smallest keys. Memory: the sample, never the data."""
    counts: dict[str, int] = {}
    for partition in partitions:
        for _, labels in _strata(partition, strata_column):
            names, sizes = np.unique(labels, return_counts=True)
            for name, size in zip(names.tolist(), sizes.tolist()):
                counts[name] = counts.get(name, 0) + size
    total = sum(counts.values())
    shares = allocate(counts, min(n_wanted, total))
    kept: list[dict[str, tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]]] = []
    for partition in partitions:
        for positions, labels in _strata(partition, strata_column):
            kept.append(smallest_keys(labels, positions, row_keys(seed, positions), shares))
            kept = [_merge_kept(kept, shares)]  # at most the sample in memory at any time
    return merge_smallest(kept, shares)


def _merge_kept(kept: list[dict[str, tuple[Any, Any]]], shares: dict[str, int]) -> dict[str, tuple[Any, Any]]:
    out = {}
    for name, k in shares.items():
        pieces = [part[name] for part in kept if name in part]
        if not pieces:
            continue
        keys = np.concatenate([p[0] for p in pieces])
        positions = np.concatenate([p[1] for p in pieces])
        order = np.lexsort((positions, keys))[:k]
        out[name] = (keys[order], positions[order])
    return out


def read_rows(partitions: list[Partition], positions: npt.NDArray[np.int64], columns: list[str] | None = None) -> pd.DataFrame:
    """The rows at ``positions`` (sorted) of the dataset, read batch by batch."""
    import pyarrow as pa

    pieces = []
    for partition in partitions:
        inside = positions[(positions >= partition.offset) & (positions < partition.offset + partition.rows)]
        if inside.size == 0:
            continue
        import pyarrow.parquet as pq

        start = partition.offset
        for batch in pq.ParquetFile(partition.path).iter_batches(batch_size=BATCH_ROWS, columns=columns):
            here = inside[(inside >= start) & (inside < start + batch.num_rows)]
            if here.size:
                pieces.append(pa.Table.from_batches([batch]).take(pa.array(here - start)))
            start += batch.num_rows
    frame = pa.concat_tables(pieces).to_pandas()
    frame.columns = [str(c) for c in frame.columns]
    frame.index = pd.Index(positions, name=ROW)
    return frame


def read_dataset_sample(path: Path, *, strata_column: str | None, seed: int, n_wanted: int,
                        source: Source) -> tuple[Table, int, int]:
    """``data.sample`` of a Parquet dataset without reading it whole: (the sampled rows as a
    table, the dataset's row count, its column count)."""
    partitions, columns = dataset_partitions(path, source=source)
    total = sum(p.rows for p in partitions)
    if strata_column is not None and strata_column not in columns:
        strata_column = None  # resolve_roles names the missing target column
    try:
        positions = sample_positions(partitions, strata_column, seed, n_wanted)
        frame = read_rows(partitions, positions) if positions.size else \
            read_partition(partitions[0]).iloc[:0]
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read the Parquet dataset {path}: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:300]}", source=source) from None
    notes = [dataset_note(path, len(partitions))]
    if ROW in frame.columns:
        notes.append(f"the data has its own column '{ROW}'; auditkit's row numbers are file positions")
    return Table(frame=frame, path=path, notes=notes), total, len(columns)
