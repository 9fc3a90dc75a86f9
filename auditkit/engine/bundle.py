"""The audit data as the workers receive it: written once by the parent, mapped by every worker.

A pickle of the whole :class:`AuditData` gave each worker a private copy (a 1 GB CSV took
14 GB summed over the parent and 2 workers). Here the pickle is written with protocol 5
and out-of-band buffers: the bytes of every contiguous numpy array (numeric frame columns,
scores, decisions, labels, the reference frame) and of every Arrow buffer (string columns)
go to one ``audit-data.buffers`` file, which each worker memory-maps read-only; unpickling
then builds the arrays on the mapped bytes without copying them, so the page cache holds one
copy shared by all workers. Only what has no buffer (object columns, small fields) is in the
pickle itself.

The mapped arrays are read-only. A check that writes into the frame gets pandas'
copy-on-write: the worker's ``data.frame`` is a shallow copy of the frame built on the mapped
bytes, which stays referenced here, so a write copies the touched column first (as the
parent's own frame would let it) instead of failing on read-only memory.
"""
from __future__ import annotations

import mmap
import pickle
import struct
from pathlib import Path
from typing import Any

import pandas as pd

from auditkit.engine.context import AuditData

PICKLE_NAME = "audit-data.pkl"
BUFFERS_NAME = "audit-data.buffers"
_ALIGN = 64  # each buffer starts on a 64-byte boundary, as numpy and Arrow align their own
_HEADER = struct.Struct("<Q")  # count of buffers, then (offset, size) pairs, then the pickle

_LOADED: dict[str, tuple[AuditData, list[Any]]] = {}


def write_bundle(data: AuditData, directory: Path) -> Path:
    """Write the data for the workers (our own files, in the run's private 0700 directory)."""
    buffers: list[pickle.PickleBuffer] = []
    payload = pickle.dumps(data, protocol=5, buffer_callback=buffers.append)
    extents: list[tuple[int, int]] = []
    with open(directory / BUFFERS_NAME, "wb") as handle:
        offset = 0
        for buffer in buffers:
            raw = buffer.raw()
            start = -(-offset // _ALIGN) * _ALIGN
            if start > offset:
                handle.write(b"\0" * (start - offset))
            handle.write(raw)
            extents.append((start, raw.nbytes))
            offset = start + raw.nbytes
    path = directory / PICKLE_NAME
    with open(path, "wb") as handle:
        handle.write(_HEADER.pack(len(extents)))
        for start, size in extents:
            handle.write(_HEADER.pack(start) + _HEADER.pack(size))
        handle.write(payload)
    return path


def load_bundle(path: str) -> AuditData:
    """The data written by :func:`write_bundle`, its arrays on the mapped buffer file (cached)."""
    cached = _LOADED.get(path)
    if cached is not None:
        return cached[0]
    with open(path, "rb") as handle:
        (count,) = _HEADER.unpack(handle.read(_HEADER.size))
        extents = [(_HEADER.unpack(handle.read(8))[0], _HEADER.unpack(handle.read(8))[0]) for _ in range(count)]
        payload = handle.read()
    buffers = _map_buffers(Path(path).with_name(BUFFERS_NAME), extents)
    data = pickle.loads(payload, buffers=buffers)  # noqa: S301 - written by this run's parent, in a 0700 dir
    keep: list[Any] = [data.frame, data.reference]
    data.frame = _copy_on_write(data.frame)
    if data.reference is not None:
        data.reference = _copy_on_write(data.reference)
    _LOADED.clear()
    _LOADED[path] = (data, keep)
    return data


def _map_buffers(path: Path, extents: list[tuple[int, int]]) -> list[memoryview]:
    if not any(size for _, size in extents):
        return [memoryview(b"") for _ in extents]
    with open(path, "rb") as handle:
        mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)  # each slice keeps the mapping alive for as long as an array uses it
    return [view[start:start + size] for start, size in extents]


def _copy_on_write(frame: pd.DataFrame) -> pd.DataFrame:
    """A shallow copy: while the original is referenced, pandas copies a column before writing it."""
    return frame.copy(deep=False)
