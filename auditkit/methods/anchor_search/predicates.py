"""Anchors' predicates: quantile edges, the predicates an explained row satisfies, an anchor's
conditions merged per feature, its rule text and its exact coverage of the audit rows."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.methods.probes import is_numeric

Anchor = tuple[int, ...]  # sorted indices into the explained row's list of predicates
Op = Literal["<=", ">", "=", "is missing"]


@dataclass(frozen=True)
class Predicate:
    """One condition on one feature: ``income > 52340``, ``purpose = car``, ``x is missing``."""

    feature: str
    op: Op
    value: Any = None

    def holds(self, column: pd.Series) -> npt.NDArray[np.bool_]:
        """Which values of ``column`` satisfy the predicate (a missing value satisfies only ``is missing``)."""
        if self.op == "is missing":
            return column.isna().to_numpy(dtype=bool)
        if self.op == "=":
            return column.eq(self.value).fillna(False).to_numpy(dtype=bool)
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            return values <= self.value if self.op == "<=" else values > self.value

    def text(self) -> str:
        if self.op == "is missing":
            return f"{self.feature} is missing"
        return f"{self.feature} {self.op} {format_value(self.value)}"


@dataclass(frozen=True)
class Condition:
    """What an anchor asks of one feature: a category, missingness, or an interval ``(low, high]``."""

    feature: str
    kind: Literal["eq", "missing", "range"]
    value: Any = None
    low: float = -math.inf
    high: float = math.inf

    def text(self) -> str:
        if self.kind == "missing":
            return f"{self.feature} is missing"
        if self.kind == "eq":
            return f"{self.feature} = {format_value(self.value)}"
        if math.isfinite(self.low) and math.isfinite(self.high):
            return f"{format_value(self.low)} < {self.feature} <= {format_value(self.high)}"
        if math.isfinite(self.low):
            return f"{self.feature} > {format_value(self.low)}"
        return f"{self.feature} <= {format_value(self.high)}"


def format_value(value: Any) -> str:
    """Exact and readable: ``52,000``, ``0.47``, ``car`` (the shortest text that reads back as the value)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return str(value)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}" if abs(number) >= 1000 else str(int(number))
    return np.format_float_positional(number, trim="-")


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (hashable, JSON-clean)."""
    return value.item() if isinstance(value, np.generic) else value


def quantile_edges(values: npt.ArrayLike, bins: int) -> npt.NDArray[np.float64]:
    """Interior cut points of ``bins`` quantile bins: the 1/bins, ..., (bins-1)/bins quantiles.

    Each edge is a data value (the inverted empirical CDF); ties collapse, and an edge at the
    maximum is dropped (``> max`` would hold nowhere).

    >>> quantile_edges([1, 2, 3, 4, 5, 6, 7, 8], 4).tolist()
    [2.0, 4.0, 6.0]
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.empty(0)
    edges = np.unique(np.quantile(v, np.arange(1, bins) / bins, method="inverted_cdf"))
    return edges[edges < v.max()]


def readable_edges(edges: npt.NDArray[np.float64], values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Edges rounded one decimal place finer than the smallest gap between them (52,340 -> 52,000
    when the quartiles are 12,000 apart), so that rules read like a person's: each edge moves by
    at most a twentieth of that gap, so the bins keep their order and nearly their shares.

    >>> readable_edges(np.array([29_540.0, 42_180.0, 58_620.0]), [0, 1e5]).tolist()
    [30000.0, 42000.0, 59000.0]
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(edges) == 0 or v.size == 0:
        return edges
    if len(edges) > 1:
        scale = float(np.min(np.diff(edges)))
    else:
        scale = float(np.subtract(*np.quantile(v, [0.95, 0.05]))) or abs(float(edges[0])) or 1.0
    digits = 1 - math.floor(math.log10(scale))
    rounded = np.unique([round(float(e), digits) for e in edges])
    return rounded[(rounded >= v.min()) & (rounded < v.max())]


def discretise(pool: pd.DataFrame, features: Sequence[str], bins: int) -> dict[str, npt.NDArray[np.float64]]:
    """The (readable) quantile edges of every numeric feature; the other features are categorical."""
    edges = {}
    for f in features:
        if is_numeric(pool[f]):
            values = pool[f].to_numpy(dtype=np.float64, na_value=np.nan)
            edges[f] = readable_edges(quantile_edges(values, bins), values)
    return edges


def row_predicates(x: pd.Series, features: Sequence[str], edges: dict[str, npt.NDArray[np.float64]]) -> list[Predicate]:
    """The predicates the explained row satisfies, as the anchor package builds them.

    A numeric feature gives one predicate per edge ``e``: ``f <= e`` when the row's value is
    at most ``e``, else ``f > e`` (so its bin, and every wider interval around it, can be
    expressed); a categorical feature gives ``f = value``; a missing value ``f is missing``.
    """
    out: list[Predicate] = []
    for f in features:
        value = x[f]
        if pd.isna(value):
            out.append(Predicate(f, "is missing"))
        elif f in edges:
            v = float(value)
            out.extend(Predicate(f, "<=", float(e)) if v <= e else Predicate(f, ">", float(e)) for e in edges[f])
        else:
            out.append(Predicate(f, "=", _plain(value)))
    return out


def anchor_conditions(predicates: Sequence[Predicate], anchor: Anchor) -> list[Condition]:
    """An anchor's predicates merged per feature (``income > a`` and ``income <= b`` -> ``a < income <= b``)."""
    merged: dict[str, Condition] = {}
    for j in anchor:
        p = predicates[j]
        old = merged.get(p.feature)
        if p.op == "is missing":
            merged[p.feature] = Condition(p.feature, "missing")
        elif p.op == "=":
            merged[p.feature] = Condition(p.feature, "eq", p.value)
        else:
            low = old.low if old is not None else -math.inf
            high = old.high if old is not None else math.inf
            if p.op == ">":
                low = max(low, p.value)
            else:
                high = min(high, p.value)
            merged[p.feature] = Condition(p.feature, "range", low=low, high=high)
    return list(merged.values())


def is_redundant(predicates: Sequence[Predicate], anchor: Anchor, j: int) -> bool:
    """Whether predicate ``j`` is already implied by the anchor (``x <= 5`` when it holds ``x <= 3``)."""
    p = predicates[j]
    if p.op not in ("<=", ">"):
        return False
    for condition in anchor_conditions(predicates, anchor):
        if condition.feature == p.feature and condition.kind == "range":
            return condition.high <= p.value if p.op == "<=" else condition.low >= p.value
    return False


def rule_text(conditions: Sequence[Condition], decision: Any, favorable_decision: Any,
              outcome: str = "decision") -> str:
    """``IF income > 52,340 AND debt_ratio <= 0.3 THEN decision = 0 (favourable)``; a multiclass
    model's rule keeps its ``predicted class``, qualified only when the policy named a favourable one."""
    if favorable_decision is None:
        then = f"{outcome} = {decision}"
    else:
        then = f"{outcome} = {decision} ({'favourable' if decision == favorable_decision else 'unfavourable'})"
    if not conditions:
        return f"IF (no condition) THEN {then}"
    return "IF " + " AND ".join(c.text() for c in conditions) + " THEN " + then


class CoverageIndex:
    """Coverage = share of the data's rows that satisfy an anchor (exact, no sampling)."""

    def __init__(self, frame: pd.DataFrame, predicates: Sequence[Predicate]):
        self.n = len(frame)
        self._holds = [p.holds(frame[p.feature]) for p in predicates]

    def __call__(self, anchor: Anchor) -> float:
        if not anchor or self.n == 0:
            return 1.0 if self.n else 0.0
        return float(np.logical_and.reduce([self._holds[j] for j in anchor]).mean())
