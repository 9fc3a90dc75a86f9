"""Protected-attribute groups counted by block of rows, the blocks combined exactly.

A fairness figure needs, per group, counts (and sums) of its rows, never the rows. So a block
of rows (a partition of a dataset, or every audit row) is keyed by the combination of its
attributes' group labels (:func:`auditkit.methods.groups._labels_of`: the labels
``make_grouping`` gives), and each check keeps its counts per key. :func:`merge_keys` unites
the keys of blocks given in row order (a key's index is its first appearance in the rows, as
in one block of them all), and :func:`key_grouping` turns the keys into the groups of one
attribute or intersection, labelled, ordered and valued exactly as ``make_grouping`` does on
the rows. A numeric attribute with too many distinct values to compare is refused with the
count of its distinct values over every block, as on the whole data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.errors import CheckError
from auditkit.methods.groups import MAX_GROUPS, MISSING, Grouping, _labels_of, continuous

IntArray = npt.NDArray[np.int64]


@dataclass
class Keys:
    """The keys of a block of rows: one per distinct combination of the columns' group labels."""

    columns: tuple[str, ...]
    labels: list[tuple[str, ...]] = field(default_factory=list)  # per key, in order of first appearance
    absent: list[str] = field(default_factory=list)  # named columns the data lacks
    errors: dict[str, CheckError] = field(default_factory=dict)  # a column that cannot be labelled (bins on text)
    distinct: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)  # too many values: the distinct ones

    @property
    def usable(self) -> bool:
        return not (self.absent or self.errors or self.distinct)


def _continuous_values(series: pd.Series, bins: list[float] | None) -> npt.NDArray[np.float64] | None:
    """A numeric attribute's distinct values when there are too many to label (None otherwise)."""
    if bins is not None or not (pd.api.types.is_float_dtype(series.dtype) or pd.api.types.is_integer_dtype(series.dtype)):
        return None
    distinct = pd.unique(series.dropna())
    return np.asarray(distinct, dtype=np.float64) if len(distinct) > MAX_GROUPS else None


def block_keys(frame: pd.DataFrame, columns: list[str], bins: dict[str, list[float]]) -> tuple[IntArray | None, Keys]:
    """(each row's key, the keys) of a block of rows; no key codes when a column cannot be grouped."""
    keys = Keys(columns=tuple(columns), absent=[c for c in columns if c not in frame.columns])
    per_column: list[tuple[IntArray, list[str]]] = []
    for name in columns:
        if name in keys.absent:
            continue
        series = frame[name]
        many = _continuous_values(series, bins.get(name))
        if many is not None:
            keys.distinct[name] = many
            continue
        raw, uniques = pd.factorize(series, use_na_sentinel=True)
        try:  # each distinct value labelled once (the labels depend on the value only)
            text = _labels_of(pd.Series(uniques, dtype=series.dtype), name, bins.get(name))
        except CheckError as exc:
            keys.errors[name] = exc
            continue
        label_codes, label_names = pd.factorize(pd.Series([*map(str, text), MISSING], dtype=object))
        per_column.append((label_codes[np.where(raw < 0, len(uniques), raw)].astype(np.int64),
                           [str(v) for v in label_names]))
    if not keys.usable:
        return None, keys
    combined = np.zeros(len(frame), dtype=np.int64)
    for codes, names in per_column:
        combined = combined * len(names) + codes
    codes, firsts = pd.factorize(combined, sort=False)  # keys numbered in order of appearance
    radix = [len(names) for _, names in per_column]
    for value in firsts:
        parts = []
        for (_, names), base in zip(reversed(per_column), reversed(radix)):
            value, digit = divmod(int(value), base)
            parts.append(names[digit])
        keys.labels.append(tuple(reversed(parts)))
    return codes.astype(np.int64), keys


def merge_keys(parts: list[Keys]) -> tuple[Keys, list[IntArray]]:
    """The keys of consecutive blocks (in row order), and per block the index of each of its
    keys among them."""
    merged = Keys(columns=parts[0].columns)
    for part in parts:
        merged.absent += [c for c in part.absent if c not in merged.absent]
        for name, exc in part.errors.items():
            merged.errors.setdefault(name, exc)
    for name in {n for p in parts for n in p.distinct}:  # the distinct values of every block
        index = merged.columns.index(name)
        pieces = [p.distinct[name] if name in p.distinct else
                  np.array([float(k[index]) for k in p.labels if k[index] != MISSING], dtype=np.float64)
                  for p in parts]
        merged.distinct[name] = np.unique(np.concatenate(pieces))
    where: dict[tuple[str, ...], int] = {}
    remaps = []
    for part in parts:
        remaps.append(np.array([where.setdefault(label, len(where)) for label in part.labels], dtype=np.int64))
    merged.labels = list(where)
    return merged, remaps


def add_by_key(arrays: list[np.ndarray], remaps: list[IntArray], n_keys: int) -> np.ndarray:
    """Per-key arrays of blocks (first axis: the block's keys) summed into the merged keys'."""
    shape = (n_keys, *arrays[0].shape[1:]) if arrays else (n_keys,)
    out = np.zeros(shape, dtype=arrays[0].dtype if arrays else np.int64)
    for values, remap in zip(arrays, remaps):
        np.add.at(out, remap, values)
    return out


def key_grouping(keys: Keys, parts: list[str]) -> Grouping:
    """The groups of ``parts`` (an attribute, or an intersection) as ``make_grouping`` makes them
    on the rows, with ``codes`` the group of each key (not of each row); raises its errors."""
    for name in parts:
        if name not in keys.columns or name in keys.absent:
            raise CheckError(f"protected attribute '{name}' is not a column of the data")
    for name in parts:
        if name in keys.errors:
            raise keys.errors[name]
        if name in keys.distinct:
            raise continuous(name, len(keys.distinct[name]))
    where = [keys.columns.index(name) for name in parts]
    combined = [" & ".join(label[i] for i in where) for label in keys.labels]
    labels = sorted(set(combined))
    index = {label: g for g, label in enumerate(labels)}
    codes = np.array([index[c] for c in combined], dtype=np.int64)
    values: list[tuple[str, ...] | None] = [None] * len(labels)
    for label, g in zip(keys.labels, codes):  # keys come in row order: the first key is the first row
        if values[g] is None:
            values[g] = tuple(label[i] for i in where)
    return Grouping(attribute=" & ".join(parts), parts=tuple(parts), codes=codes, labels=labels,
                    values=[v for v in values if v is not None])
