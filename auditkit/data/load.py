"""Reading CSV and Parquet files as they come: duplicate headers, empty cells, free text."""
from __future__ import annotations

import codecs
import csv
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.errors import DataError, Source

ROW = "row"  # DESIGN.md: a data row is named by its 0-based position in the file as read


@dataclass
class Table:
    frame: pd.DataFrame  # index: the 0-based row position in the file (named "row")
    path: Path
    notes: list[str] = field(default_factory=list)


def first_invalid_utf8(path: Path, *, chunk_size: int = 1 << 20) -> tuple[int, int, int] | None:
    """(byte offset, 1-based line, byte value) of the first byte that is not valid UTF-8, or None.

    Read in chunks: only the failing case reads the file a second time (to count lines).
    """
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    offset = 0  # bytes of the file before the current chunk
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                # exc.object is what the decoder held over from earlier chunks, then this chunk
                position = offset - (len(exc.object) - len(chunk)) + exc.start
                return position, _line_of(path, position), exc.object[exc.start]
            if not chunk:
                return None
            offset += len(chunk)


def _line_of(path: Path, position: int) -> int:
    line = 1
    remaining = position
    with open(path, "rb") as handle:
        while remaining > 0:
            chunk = handle.read(min(remaining, 1 << 20))
            if not chunk:
                break
            line += chunk.count(b"\n")
            remaining -= len(chunk)
    return line


def _text_encoding(path: Path, declared: str | None, source: Source, notes: list[str]) -> str:
    """The encoding to read a text file with: the declared one, else UTF-8, else (said in a
    note) Windows-1252, which decodes every byte of Latin-1 text as Latin-1 would, plus the
    typographic characters that Windows-1252 places in 0x80-0x9F."""
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            raise DataError(f"data.encoding {declared!r} is not an encoding Python knows (e.g. utf-8, latin-1, "
                            "cp1252)", source=Source(source.path, "data.encoding")) from None
        return declared
    bad = first_invalid_utf8(path)
    if bad is None:
        return "utf-8"
    position, line, byte = bad
    fallback = "cp1252"
    try:
        path.read_bytes().decode(fallback)
    except UnicodeDecodeError:
        fallback = "latin-1"  # decodes any byte
    notes.append(f"{path.name} is not UTF-8 (byte 0x{byte:02x} at line {line:,}, offset {position:,}): read as "
                 f"{fallback}; set data.encoding to say which encoding it is")
    return fallback


def read_table(path: Path, *, key: str = "data.path", policy_file: str | None = None,
               na_values: list[str] | None = None, encoding: str | None = None) -> Table:
    """Read a CSV or Parquet file, or a Parquet dataset (a directory or a glob of files);
    raise DataError naming the file when it cannot be read.

    Text files are read as ``encoding`` when given (a byte that does not decode is an error),
    else as UTF-8, else, with a note, as Windows-1252: never with bytes silently replaced.
    """
    source = Source(policy_file, key)
    if is_dataset(path):
        return read_parquet_dataset(path, source=source)
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
            text_encoding = encoding or "utf-8"
            if suffix != ".gz":
                text_encoding = _text_encoding(path, encoding, source, notes)
            header = _csv_header(path, sep, text_encoding) if suffix != ".gz" else []
            duplicated = [name for name, count in Counter(header).items() if count > 1]
            frame = pd.read_csv(path, sep=sep, na_values=list(na_values or []), keep_default_na=True,
                                low_memory=False, encoding=text_encoding, encoding_errors="strict")
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
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot read {path} as {encoding or 'utf-8'}: byte 0x{exc.object[exc.start]:02x} does not "
                        f"decode ({exc.reason}); set data.encoding to the file's encoding",
                        source=Source(policy_file, "data.encoding" if encoding else key)) from None
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
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


def _csv_header(path: Path, sep: str, encoding: str) -> list[str]:
    with open(path, newline="", encoding=encoding, errors="replace") as handle:
        reader = csv.reader(handle, delimiter=sep)
        try:
            return next(reader)
        except StopIteration:
            return []


PARQUET_SUFFIXES = (".parquet", ".pq")


def is_dataset(path: Path) -> bool:
    """A Parquet dataset: a directory of files, or a glob pattern such as ``data/*.parquet``."""
    return path.is_dir() or any(char in path.name for char in "*?[")


def dataset_files(path: Path, *, source: Source | None = None) -> list[Path]:
    """The Parquet files of a dataset, in the order their rows are numbered (sorted by path)."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PARQUET_SUFFIXES)
        where = f"directory {path}"
    else:
        files = sorted(p for p in path.parent.glob(path.name) if p.is_file())
        where = f"pattern {path}"
    if not files:
        raise DataError(f"no Parquet files (*.parquet, *.pq) in the {where}", source=source)
    other = [p for p in files if p.suffix.lower() not in PARQUET_SUFFIXES]
    if other:
        raise DataError(f"{other[0]}: not a Parquet file; a dataset holds only .parquet/.pq files", source=source)
    return files


def data_sha256(path: Path) -> str:
    """SHA-256 of a data file; of a dataset, over each file's relative name and SHA-256 in order."""
    import hashlib

    from auditkit.core.hashing import sha256_of as of_file

    if not is_dataset(path):
        return of_file(path)
    base = path if path.is_dir() else path.parent
    digest = hashlib.sha256()
    for file in dataset_files(path):
        digest.update(f"{file.relative_to(base).as_posix()}\0{of_file(file)}\n".encode())
    return digest.hexdigest()


def read_parquet_dataset(path: Path, *, source: Source) -> Table:
    """Read the files of a Parquet dataset as one table, rows numbered across the files in
    order. Every file must have the first file's columns and types (the file that differs is
    named) before any row is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    files, _ = dataset_schema(path, source=source)
    try:
        table = pa.concat_tables([pq.read_table(file) for file in files])
        frame = table.to_pandas()
    except Exception as exc:
        raise DataError(f"cannot read the Parquet dataset {path}: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:300]}", source=source) from None
    frame.columns = [str(c) for c in frame.columns]
    frame.index = pd.RangeIndex(len(frame), name=ROW)
    notes = [dataset_note(path, len(files))]
    if ROW in frame.columns:
        notes.append(f"the data has its own column '{ROW}'; auditkit's row numbers are file positions")
    return Table(frame=frame, path=path, notes=notes)


def dataset_note(path: Path, n_files: int) -> str:
    return (f"read a Parquet dataset of {n_files} files ({path}); rows are numbered across the files in "
            "sorted order")


def dataset_schema(path: Path, *, source: Source) -> tuple[list[Path], Any]:
    """The files of a Parquet dataset and their common schema, read from the files' footers only.
    Every file must have the first file's columns and types (the file that differs is named)."""
    import pyarrow.parquet as pq

    files = dataset_files(path, source=source)
    schemas = []
    for file in files:
        try:
            schemas.append(pq.read_schema(file))
        except Exception as exc:  # pyarrow's own errors for a file that is not Parquet
            raise DataError(f"cannot read {file}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                            source=source) from None
    first = schemas[0]
    expected = {field.name: field.type for field in first}
    for file, schema in zip(files[1:], schemas[1:]):
        found = {field.name: field.type for field in schema}
        if found == expected:
            continue
        missing = [name for name in expected if name not in found]
        extra = [name for name in found if name not in expected]
        retyped = [f"'{name}' is {found[name]} there, {expected[name]} in {files[0].name}"
                   for name in expected if name in found and found[name] != expected[name]]
        why = "; ".join(filter(None, [f"missing columns {missing}" if missing else "",
                                      f"extra columns {extra}" if extra else "", *retyped]))
        raise DataError(f"{file}: its schema differs from the dataset's first file {files[0].name}: {why}",
                        source=source)
    return files, first
