"""Reading CSV and Parquet files as they come: duplicate headers, empty cells, free text."""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from auditkit.errors import DataError, Source

ROW = "row"  # DESIGN.md: a data row is named by its 0-based position in the file as read


@dataclass
class Table:
    frame: pd.DataFrame  # index: the 0-based row position in the file (named "row")
    path: Path
    notes: list[str] = field(default_factory=list)


def read_table(path: Path, *, key: str = "data.path", policy_file: str | None = None,
               na_values: list[str] | None = None) -> Table:
    """Read a CSV or Parquet file; raise DataError naming the file when it cannot be read."""
    source = Source(policy_file, key)
    if not path.exists():
        raise DataError(f"data file not found: {path}", source=source)
    if not path.is_file():
        raise DataError(f"data path is not a file: {path}", source=source)
    suffix = path.suffix.lower()
    notes: list[str] = []
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix in (".csv", ".txt", ".gz", ".tsv"):
            sep = "\t" if suffix == ".tsv" else ","
            header = _csv_header(path, sep) if suffix != ".gz" else []
            duplicated = [name for name, count in Counter(header).items() if count > 1]
            frame = pd.read_csv(path, sep=sep, na_values=list(na_values or []), keep_default_na=True,
                                low_memory=False, encoding_errors="replace")
            for name in duplicated:
                copies = [c for c in frame.columns if c == name or c.startswith(f"{name}.")]
                same = all(frame[c].equals(frame[name]) for c in copies)
                notes.append(
                    f"column '{name}' appears {Counter(header)[name]} times in the header; the copies are read as "
                    f"{', '.join(repr(c) for c in copies[1:])}" + (" (identical values)" if same else " (values differ)"))
        else:
            raise DataError(f"unsupported data file type '{suffix}' (use .csv or .parquet)", source=source)
    except DataError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                        source=source) from None
    except Exception as exc:  # pyarrow raises its own error types for corrupt files
        raise DataError(f"cannot read {path}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                        source=source) from None
    frame.columns = [str(c) for c in frame.columns]
    frame.index = pd.RangeIndex(len(frame), name=ROW)
    if ROW in frame.columns:
        notes.append(f"the data has its own column '{ROW}'; auditkit's row numbers are file positions")
    return Table(frame=frame, path=path, notes=notes)


def _csv_header(path: Path, sep: str) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle, delimiter=sep)
        try:
            return next(reader)
        except StopIteration:
            return []
