"""The constraint space of a recourse search: what may change, within which bounds, at what cost.

:class:`Space` holds the rows to explain as a float matrix (numeric values as they are,
categories as codes, NaN for missing) and, per row and feature, whether it may change and
between which bounds; every candidate is a row of such a matrix with an ``owner`` (the
explained row it is a candidate for). Distance of a change from x to x':
``sum_numeric |x'_j - x_j| / MAD_j + #{categorical j: x'_j != x_j}``.
"""
from __future__ import annotations

import re
from typing import Any, Optional, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.adapters.base import ModelAdapter
from auditkit.core.decisions import decide
from auditkit.engine.context import AuditData
from auditkit.methods.probes import is_numeric
from auditkit.methods.values import decimals_of

Array = npt.NDArray[np.float64]
Owner = npt.NDArray[np.int64]

AGE_WORDS = frozenset({"age", "dob", "birth", "birthdate", "birthday", "yob", "birthyear"})


def favourable_column(data: AuditData) -> Optional[int]:
    """The score column of a multiclass model's favourable class (None for a binary model)."""
    if data.task != "multiclass" or data.favorable_class is None:
        return None
    return [str(c) for c in (data.classes or [])].index(str(data.favorable_class))


def is_favourable(data: AuditData, decisions: Any) -> npt.NDArray[np.bool_]:
    """Which decisions are the favourable one: the favourable class of a multiclass model."""
    if data.task == "multiclass":
        return np.asarray(decisions).astype(str) == str(data.favorable_class)
    return np.asarray(decisions) == data.favorable_decision


def favourable_score(data: AuditData, position: int) -> float:
    """A row's score for the favourable outcome: a multiclass model's probability of that class."""
    column = favourable_column(data)
    scores = np.asarray(data.scores, dtype=np.float64)
    return float(scores[position] if column is None else scores[position, column])


def looks_like_age(name: str) -> bool:
    """``age``, ``age_band``, ``ApplicantAge``, ``date_of_birth`` (word by word, so not ``mileage``)."""
    words = re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name)
    return any(w.lower() in AGE_WORDS for w in words) or "yearofbirth" in name.lower().replace("_", "")


def immutable_features(immutable: Optional[Sequence[str]], data: AuditData) -> dict[str, str]:
    """Model inputs the search keeps, and why: ``immutable`` (default: every feature named like
    an age) and every protected attribute that is a model input."""
    reasons: dict[str, str] = {}
    chosen = immutable if immutable is not None else [f for f in data.features if looks_like_age(f)]
    why = "params.immutable" if immutable is not None else "default: named like an age"
    for name in chosen:
        if name in data.features:
            reasons[name] = why
    for name in data.protected:
        if name in data.features:
            reasons[name] = "protected attribute"
    return reasons


def _decimals(values: Array) -> Optional[int]:
    """The fewest decimals that write every observed value exactly (None: a continuous feature)."""
    return decimals_of(values)


def _robust_scale(values: Array) -> float:
    """Median absolute deviation; its mean-absolute version when half the values are equal; 1 if constant."""
    if len(values) == 0:
        return 1.0
    deviation = np.abs(values - np.median(values))
    for scale in (float(np.median(deviation)), float(np.mean(deviation))):
        if scale > 0:
            return scale
    return 1.0


class Space:
    """The rows to explain, their constraints, and the model: candidates are rows of a float
    matrix ``Z`` (numeric values as they are, categories as codes, NaN for missing), each with
    an ``owner`` (the explained row it is a candidate for).

    Scales, bounds, resolutions and categories come from ``data.frame`` (every audit row);
    ``X`` holds the rows to explain; ``immutable`` features and missing values never change;
    ``directions`` maps a numeric feature to ``increase`` or ``decrease``.
    """

    def __init__(self, data: AuditData, model: ModelAdapter, X: pd.DataFrame, immutable: set[str],
                 directions: dict[str, str]):
        frame = data.frame
        self.frame = frame
        self.model = model
        self.features = list(data.features)
        p = len(self.features)
        self.numeric = np.array([is_numeric(frame[f]) for f in self.features], dtype=bool)
        self.categories: list[Optional[npt.NDArray[Any]]] = []
        self.codes: list[dict[Any, int]] = []
        self.lo, self.hi = np.full(p, np.nan), np.full(p, np.nan)
        self.scale = np.ones(p)
        self.decimals: list[Optional[int]] = [None] * p
        self.integer = np.zeros(p, dtype=bool)
        self.dtypes = [frame[f].dtype for f in self.features]
        for j, name in enumerate(self.features):
            column = frame[name]
            if self.numeric[j]:
                values = column.dropna().to_numpy(dtype=np.float64)
                self.categories.append(None)
                self.codes.append({})
                if len(values):
                    self.lo[j], self.hi[j] = values.min(), values.max()
                self.scale[j] = _robust_scale(values)
                digits = 0 if pd.api.types.is_integer_dtype(column.dtype) else _decimals(values)
                self.integer[j] = digits == 0
                self.decimals[j] = digits
            else:
                present = column.dropna().unique()
                ordered = np.array(sorted(present, key=lambda v: (str(type(v)), str(v))), dtype=object)
                self.categories.append(ordered)
                self.codes.append({v: k for k, v in enumerate(ordered)})
        self.direction = np.array([{"increase": 1, "decrease": -1}.get(directions.get(f, ""), 0)
                                   for f in self.features])
        self.fixed = fixed = np.array([f in immutable for f in self.features], dtype=bool)
        self.X0 = self.encode(X)
        n = len(self.X0)
        # per row and feature: may it change (not immutable, not missing), and within which bounds
        self.mutable = (~fixed)[None, :] & ~np.isnan(self.X0)
        for j in np.flatnonzero(~self.numeric):
            self.mutable[:, j] &= len(self.categories[j]) > 1  # type: ignore[arg-type]
        self.low = np.where(self.mutable, np.broadcast_to(self.lo, (n, p)), self.X0)
        self.high = np.where(self.mutable, np.broadcast_to(self.hi, (n, p)), self.X0)
        up, down = self.direction == 1, self.direction == -1
        self.low[:, up] = np.where(self.mutable[:, up], self.X0[:, up], self.low[:, up])
        self.high[:, down] = np.where(self.mutable[:, down], self.X0[:, down], self.high[:, down])
        self.threshold = float(data.threshold if data.threshold is not None else 0.5)
        self.favourable = int(data.favorable_decision)
        # a multiclass model's favourable decision is its predicted class data.favorable_class
        self.favourable_column = favourable_column(data)

    # -- conversion
    def encode(self, X: pd.DataFrame) -> Array:
        Z = np.full((len(X), len(self.features)), np.nan)
        for j, name in enumerate(self.features):
            if self.numeric[j]:
                Z[:, j] = X[name].to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                lookup = self.codes[j]
                Z[:, j] = [np.nan if pd.isna(v) else lookup.get(v, np.nan) for v in X[name]]
        return Z

    def decode(self, Z: Array) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for j, name in enumerate(self.features):
            values = Z[:, j]
            if self.numeric[j]:
                # an integer column goes back as integers (a nullable Int64 one as floats, as pandas reads NaN)
                if isinstance(self.dtypes[j], np.dtype) and self.dtypes[j].kind in "iu" and not np.isnan(values).any():
                    columns[name] = np.rint(values).astype(self.dtypes[j])
                else:
                    columns[name] = values
            else:
                missing = np.isnan(values)
                codes = np.where(missing, 0, values).astype(np.int64)
                out = self.categories[j][codes].copy()  # type: ignore[index]
                out[missing] = None
                # a boolean input goes back to the model as booleans, not as Python objects
                columns[name] = out.astype(bool) if self.dtypes[j] == bool and not missing.any() else out
        return pd.DataFrame(columns)

    def value(self, j: int, v: float) -> Any:
        """A value as the report writes it: a category, an int, or a float with the data's decimals."""
        if not self.numeric[j]:
            item = self.categories[j][int(v)]  # type: ignore[index]
            return item.item() if hasattr(item, "item") else item
        if self.integer[j]:
            return int(round(v))
        digits = self.decimals[j]
        return float(round(v, digits)) if digits is not None else float(v)

    # -- the model
    def flips(self, Z: Array) -> tuple[npt.NDArray[np.bool_], Array]:
        """Which candidates get the favourable decision, and their scores."""
        if len(Z) == 0:
            return np.zeros(0, dtype=bool), np.zeros(0)
        scores = self.model.predict(self.decode(Z))
        if self.favourable_column is not None:
            probabilities = np.asarray(scores, dtype=np.float64)
            return probabilities.argmax(axis=1) == self.favourable_column, probabilities[:, self.favourable_column]
        decision = decide(scores, self.threshold)
        return decision == self.favourable, scores

    # -- constraints and cost
    def project(self, Z: Array, owner: Owner) -> Array:
        """Into the row's constraints: immutables and missing values kept, directions and observed
        bounds respected, numeric values snapped away from the row onto the data's decimals."""
        x0, low, high = self.X0[owner], self.low[owner], self.high[owner]
        out = np.where(self.mutable[owner], Z, x0)
        num = np.flatnonzero(self.numeric)
        values = np.clip(out[:, num], low[:, num], high[:, num])
        for k, j in enumerate(num):
            digits = self.decimals[j]
            if digits is None:
                continue
            step = 10.0 ** digits
            v, origin = values[:, k], x0[:, j]
            # snapping away from the row keeps a flipped candidate on its side of the boundary
            snapped = np.where(v > origin, np.ceil(v * step - 1e-6) / step,
                               np.where(v < origin, np.floor(v * step + 1e-6) / step, origin))
            values[:, k] = np.clip(np.where(snapped == origin, origin, np.round(snapped, digits)),
                                   low[:, j], high[:, j])
        out[:, num] = values
        return out

    def changed(self, Z: Array, owner: Owner) -> npt.NDArray[np.bool_]:
        x0 = self.X0[owner]
        return ~((Z == x0) | (np.isnan(Z) & np.isnan(x0)))

    def distance(self, Z: Array, owner: Owner) -> tuple[Array, Owner]:
        """Per candidate: L1 in MADs over numeric features + 1 per changed category; changed features."""
        changed = self.changed(Z, owner)
        delta = np.where(changed, np.abs(Z - self.X0[owner]), 0.0)
        parts = np.where(self.numeric, delta / self.scale, changed.astype(np.float64))
        return parts.sum(axis=1), changed.sum(axis=1)

    def cost(self, Z: Array, owner: Owner, sparsity: float) -> Array:
        distance, n_changed = self.distance(Z, owner)
        return distance + sparsity * n_changed

    def respects(self, Z: Array, owner: Owner) -> npt.NDArray[np.bool_]:
        """Every constraint, checked once more on the reported counterfactuals."""
        changed = self.changed(Z, owner)
        ok = ~(changed & ~self.mutable[owner]).any(axis=1)
        num = self.numeric
        with np.errstate(invalid="ignore"):
            inside = (Z[:, num] >= self.low[owner][:, num] - 1e-9) & (Z[:, num] <= self.high[owner][:, num] + 1e-9)
        ok &= (inside | ~changed[:, num]).all(axis=1)
        for j in np.flatnonzero(self.integer):
            ok &= ~changed[:, j] | (Z[:, j] == np.rint(Z[:, j]))
        for j in np.flatnonzero(~num):
            ok &= ~changed[:, j] | ((Z[:, j] >= 0) & (Z[:, j] < len(self.categories[j])))  # type: ignore[arg-type]
        return ok
