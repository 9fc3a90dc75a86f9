"""``anchors``: scoped IF-THEN rules that pin a decision down (Ribeiro et al. 2018), implemented natively.

The algorithm is kept in pure functions so that each part can be tested on its own:
discretisation (:func:`quantile_edges`, :func:`row_predicates`), the perturbation
distribution conditioned on an anchor (:class:`ConditionalSampler`), the Bernoulli KL
confidence bounds (:func:`kl_bernoulli`, :func:`kl_lower_bound`, :func:`kl_upper_bound`),
the KL-LUCB bandit (:func:`kl_lucb`) and the beam search (:func:`beam_search`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field, model_validator
from scipy.special import rel_entr

from auditkit.core.decisions import decide
from auditkit.methods.shap_values import background_rows
from auditkit.core.params import RowSelectionParams
from auditkit.methods.rows import select_positions, validate_selection
from auditkit.methods.probes import is_numeric
from auditkit.engine.context import AuditContext
from auditkit.core.registry import check
from auditkit.results.model import CheckOutput, Metric, Plot

Anchor = tuple[int, ...]  # sorted indices into the explained row's list of predicates
Op = Literal["<=", ">", "=", "is missing"]

# KL-LUCB's exploration rate (Kaufmann and Kalyanakrishnan 2013, as the anchor authors use it)
LUCB_K: float = 405.5
LUCB_ALPHA: float = 1.1
BISECTION_STEPS: int = 40  # 2^-40 of the Pinsker bracket: far below any sampling error


class AnchorsParams(RowSelectionParams):  # rows / query / sample, as every local check
    threshold: float = Field(0.95, gt=0, lt=1, description="tau: the precision an anchor must reach (its lower "
                                                          "KL confidence bound, at confidence 1 - delta).")
    delta: float = Field(0.1, gt=0, lt=1, description="Error probability of the confidence bounds.")
    epsilon: float = Field(0.1, gt=0, le=1, description="KL-LUCB tolerance: the beam holds candidates within "
                                                        "epsilon of the best precision.")
    beam_size: int = Field(2, ge=1, le=20, description="Candidates kept per anchor length (beam width B).")
    batch_size: int = Field(100, ge=10, le=10_000, description="Perturbed samples per candidate per draw.")
    max_anchor_size: int = Field(6, ge=1, le=30, description="Most predicates in one anchor.")
    max_samples: int = Field(100_000, ge=200, le=10_000_000, description="Budget: model rows predicted per "
                                                                        "explained row.")
    bins: int = Field(4, ge=2, le=20, description="Quantile bins of each numeric feature (4 = quartiles).")
    background_size: int = Field(10_000, ge=50, le=1_000_000, description="Rows the perturbations are drawn "
                                                                          "from (DESIGN.md's background rule).")

    @model_validator(mode="after")
    def _budget_holds_a_batch_per_candidate(self) -> "AnchorsParams":
        if self.max_samples < 2 * self.batch_size:
            raise ValueError(f"max_samples ({self.max_samples}) must be at least twice batch_size "
                             f"({self.batch_size}): the search draws batch_size samples per candidate")
        return self


# ----------------------------------------------------------------------------- predicates


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


def rule_text(conditions: Sequence[Condition], decision: int, favorable_decision: int) -> str:
    """``IF income > 52,340 AND debt_ratio <= 0.3 THEN decision = 0 (favourable)``."""
    then = f"decision = {decision} ({'favourable' if decision == favorable_decision else 'unfavourable'})"
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


# ----------------------------------------------------------------------------- perturbations


class ConditionalSampler:
    """Draws from D(z | A), the perturbation distribution of the anchor package.

    Each sample starts as a row drawn uniformly (with replacement) from the ``pool``, so the
    features the anchor leaves free keep values that occur together in the data; then every
    anchored feature is put inside the anchor: a category or missingness is set to the
    explained row's, and a value outside the anchor's interval ``(low, high]`` is replaced by
    a value drawn from the pool's values inside it (the row's own value when there is none).
    A pool row that already satisfies a condition keeps its value.
    """

    def __init__(self, pool: pd.DataFrame, x: pd.Series, predicates: Sequence[Predicate]):
        self.pool = pool.reset_index(drop=True)
        self.x = x
        self.predicates = list(predicates)
        self._arrays = {f: self.pool[f].to_numpy() for f in self.pool.columns}
        self._dtypes = self.pool.dtypes
        self._in_range: dict[tuple[str, float, float], npt.NDArray[Any]] = {}

    def _values_in(self, condition: Condition) -> npt.NDArray[Any]:
        key = (condition.feature, condition.low, condition.high)
        if key not in self._in_range:
            values = self._arrays[condition.feature]
            with np.errstate(invalid="ignore"):
                inside = (values.astype(np.float64) > condition.low) & (values.astype(np.float64) <= condition.high)
            self._in_range[key] = values[inside] if inside.any() else np.asarray([self.x[condition.feature]])
        return self._in_range[key]

    def sample(self, anchors: Sequence[Anchor], n: int, rng: np.random.Generator) -> pd.DataFrame:
        """``n`` samples for each anchor, stacked in the order of ``anchors`` (one frame, one model call)."""
        rows = rng.integers(0, len(self.pool), size=n * len(anchors))
        columns = {f: values[rows] for f, values in self._arrays.items()}  # fancy indexing: copies
        for a, anchor in enumerate(anchors):
            part = slice(a * n, (a + 1) * n)
            for condition in anchor_conditions(self.predicates, anchor):
                f = condition.feature
                if condition.kind == "eq":
                    columns[f][part] = condition.value
                elif condition.kind == "missing":
                    if columns[f].dtype.kind in "iub":
                        columns[f] = columns[f].astype(np.float64)
                    columns[f][part] = np.nan
                else:
                    segment = columns[f][part]  # a view: writing to it writes the column
                    v = segment.astype(np.float64)
                    with np.errstate(invalid="ignore"):
                        outside = ~((v > condition.low) & (v <= condition.high))
                    if outside.any():
                        options = self._values_in(condition)
                        segment[outside] = options[rng.integers(0, len(options), size=int(outside.sum()))]
        out = pd.DataFrame(columns)
        for f in out.columns:
            if out[f].dtype != self._dtypes[f]:  # e.g. a categorical dtype, which arrays do not carry
                try:
                    out[f] = out[f].astype(self._dtypes[f])
                except (TypeError, ValueError):  # an integer column that now holds a missing value
                    pass
        return out


# ----------------------------------------------------------------------------- KL bounds and bandit


def kl_bernoulli(p: npt.ArrayLike, q: npt.ArrayLike) -> Any:
    """KL(Bernoulli(p) || Bernoulli(q)) in nats, with 0 log 0 = 0.

    >>> float(kl_bernoulli(0.5, 0.5))
    0.0
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    return rel_entr(p, q) + rel_entr(1.0 - p, 1.0 - q)


def _kl_scalar(p: float, q: float) -> float:
    """kl_bernoulli for two floats (the search calls it thousands of times: numpy's overhead shows)."""
    out = 0.0
    if p > 0.0:
        out += math.inf if q <= 0.0 else p * math.log(p / q)
    if p < 1.0:
        out += math.inf if q >= 1.0 else (1.0 - p) * math.log((1.0 - p) / (1.0 - q))
    return out


def kl_upper_bound(p: npt.ArrayLike, level: npt.ArrayLike) -> Any:
    """max{q in [p, 1] : KL(p || q) <= level}, by bisection; the end returned is never below the exact bound.

    Pinsker's inequality (KL >= 2 (q - p)^2) brackets the bound below p + sqrt(level / 2).
    """
    if np.ndim(p) == 0 and np.ndim(level) == 0:
        p_, level_ = min(max(float(p), 0.0), 1.0), float(level)  # type: ignore[arg-type]
        low, high = p_, min(1.0, p_ + math.sqrt(level_ / 2))
        if _kl_scalar(p_, high) <= level_:
            return high
        for _ in range(BISECTION_STEPS):
            mid = (low + high) / 2
            if _kl_scalar(p_, mid) > level_:
                high = mid
            else:
                low = mid
        return high
    p_arr = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    level_arr = np.broadcast_to(np.asarray(level, dtype=np.float64), p_arr.shape)
    low_arr, high_arr = p_arr.copy(), np.minimum(1.0, p_arr + np.sqrt(level_arr / 2))
    for _ in range(BISECTION_STEPS):
        mid_arr = (low_arr + high_arr) / 2
        over = kl_bernoulli(p_arr, mid_arr) > level_arr
        high_arr, low_arr = np.where(over, mid_arr, high_arr), np.where(over, low_arr, mid_arr)
    return np.where(kl_bernoulli(p_arr, np.minimum(1.0, p_arr + np.sqrt(level_arr / 2))) <= level_arr,
                    np.minimum(1.0, p_arr + np.sqrt(level_arr / 2)), high_arr)


def kl_lower_bound(p: npt.ArrayLike, level: npt.ArrayLike) -> Any:
    """min{q in [0, p] : KL(p || q) <= level}, by bisection; the end returned is never above the exact bound.

    Pinsker's inequality brackets the bound above p - sqrt(level / 2).
    """
    if np.ndim(p) == 0 and np.ndim(level) == 0:
        p_, level_ = min(max(float(p), 0.0), 1.0), float(level)  # type: ignore[arg-type]
        low, high = max(0.0, p_ - math.sqrt(level_ / 2)), p_
        if _kl_scalar(p_, low) <= level_:
            return low
        for _ in range(BISECTION_STEPS):
            mid = (low + high) / 2
            if _kl_scalar(p_, mid) > level_:
                low = mid
            else:
                high = mid
        return low
    p_arr = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    level_arr = np.broadcast_to(np.asarray(level, dtype=np.float64), p_arr.shape)
    low_arr, high_arr = np.maximum(0.0, p_arr - np.sqrt(level_arr / 2)), p_arr.copy()
    for _ in range(BISECTION_STEPS):
        mid_arr = (low_arr + high_arr) / 2
        over = kl_bernoulli(p_arr, mid_arr) > level_arr
        low_arr, high_arr = np.where(over, mid_arr, low_arr), np.where(over, high_arr, mid_arr)
    return np.where(kl_bernoulli(p_arr, np.maximum(0.0, p_arr - np.sqrt(level_arr / 2))) <= level_arr,
                    np.maximum(0.0, p_arr - np.sqrt(level_arr / 2)), low_arr)


def lucb_beta(n_arms: int, t: int, delta: float) -> float:
    """KL-LUCB's exploration rate at round t: log(k n t^a / delta) + log log(k n t^a / delta)."""
    temp = math.log(LUCB_K * n_arms * t ** LUCB_ALPHA / delta)
    return temp + math.log(temp)


def kl_lucb(counts: npt.NDArray[np.int64], hits: npt.NDArray[np.int64], top_n: int,
            pull: Callable[[list[int], int], npt.NDArray[np.int64]], *, delta: float, epsilon: float,
            batch_size: int, budget: int) -> list[int]:
    """The ``top_n`` arms of highest mean, by KL-LUCB (Kaufmann and Kalyanakrishnan 2013).

    Every arm must have been sampled (``counts > 0``). Each round compares the weakest of the
    current top arms (lowest lower bound) with the strongest of the others (highest upper
    bound), both at level ``beta(t) / n``, and samples those two ``batch_size`` times each
    (one call of ``pull(arms, n) -> hits per arm``) until the upper bound exceeds the lower
    one by at most ``epsilon`` or ``budget`` further samples would be exceeded. ``counts``
    and ``hits`` are updated in place. Returns arm indices, best mean first.
    """
    n_arms = len(counts)
    spent, t = 0, 1
    while True:
        means = hits / counts
        order = np.argsort(-means, kind="stable")
        top, rest = order[:top_n], order[top_n:]
        if len(rest) == 0:
            return [int(i) for i in top]
        beta = lucb_beta(n_arms, t, delta)
        upper = kl_upper_bound(means[rest], beta / counts[rest])
        lower = kl_lower_bound(means[top], beta / counts[top])
        challenger, weakest = int(rest[np.argmax(upper)]), int(top[np.argmin(lower)])
        if upper.max() - lower.min() <= epsilon or spent + 2 * batch_size > budget:
            return [int(i) for i in top]
        arms = [weakest, challenger]
        new = pull(arms, batch_size)
        counts[arms] += batch_size
        hits[arms] += new
        spent += 2 * batch_size
        t += 1


# ----------------------------------------------------------------------------- beam search


@dataclass(frozen=True)
class SearchSettings:
    tau: float = 0.95
    delta: float = 0.1
    epsilon: float = 0.1
    beam_size: int = 2
    batch_size: int = 100
    max_anchor_size: int = 6
    max_samples: int = 100_000


@dataclass(frozen=True)
class SearchResult:
    anchor: Anchor
    precision: float  # hits / n over the anchor's own samples
    low: float  # KL lower confidence bound on the precision
    high: float  # KL upper confidence bound
    n: int  # samples of this anchor
    coverage: float
    met: bool  # low >= tau
    n_samples: int  # model rows predicted for the whole search
    budget_exhausted: bool


def beam_search(predicates: Sequence[Predicate], pull: Callable[[list[Anchor], int], npt.NDArray[np.int64]],
                coverage: Callable[[Anchor], float], settings: SearchSettings) -> SearchResult:
    """The shortest anchor whose precision's lower bound reaches ``tau``; among those, the widest.

    ``pull(anchors, n)`` draws ``n`` perturbations from D(. | A) for each anchor (one batch,
    one model call) and returns, per anchor, how many got the explained row's decision.
    Start with the empty anchor; then, one predicate at a time, extend each anchor of the
    beam by every predicate it does not already imply, sample every new candidate
    ``batch_size`` times, and keep the ``beam_size`` best by KL-LUCB. Each kept candidate is
    then sampled until its KL bounds (at level log((1 + (B - 1) * #predicates) / delta) / n,
    the anchor authors' union bound) decide against tau — lower bound >= tau (met) or upper
    bound < tau — or it has used a quarter of the budget. The first length with a met
    candidate ends the search with its highest-coverage one (ties: higher lower bound).
    Without one (anchor size or budget exhausted), the anchor with the highest lower bound
    among all kept candidates is returned, not met.
    """
    s = settings
    stats: dict[Anchor, list[int]] = {}
    used = 0
    verify_beta = math.log((1 + (s.beam_size - 1) * max(1, len(predicates))) / s.delta)
    verify_cap = max(s.batch_size, s.max_samples // 4)

    def draw(anchors: list[Anchor], n: int) -> npt.NDArray[np.int64]:
        nonlocal used
        got = np.asarray(pull(anchors, n), dtype=np.int64)
        used += n * len(anchors)
        for anchor, h in zip(anchors, got):
            entry = stats.setdefault(anchor, [0, 0])
            entry[0] += n
            entry[1] += int(h)
        return got

    def bounds(anchor: Anchor) -> tuple[float, float, float]:
        n, h = stats[anchor]
        mean = h / n
        return mean, kl_lower_bound(mean, verify_beta / n), kl_upper_bound(mean, verify_beta / n)

    def affordable(n: int) -> bool:
        return used + n <= s.max_samples

    def verify(anchors: list[Anchor]) -> None:
        while True:
            undecided = [a for a in anchors if stats[a][0] < verify_cap
                         and bounds(a)[1] < s.tau <= bounds(a)[2]]
            if not undecided or not affordable(s.batch_size * len(undecided)):
                return
            draw(undecided, s.batch_size)

    def result(anchor: Anchor, exhausted: bool) -> SearchResult:
        mean, low, high = bounds(anchor)
        return SearchResult(anchor, mean, low, high, stats[anchor][0], coverage(anchor), low >= s.tau,
                            used, exhausted)

    draw([()], s.batch_size)
    verify([()])
    if bounds(())[1] >= s.tau:
        return result((), False)
    beam: list[Anchor] = [()]
    kept: list[Anchor] = [()]
    exhausted = False
    for _size in range(1, s.max_anchor_size + 1):
        candidates: list[Anchor] = []
        seen: set[Anchor] = set()
        for anchor in beam:
            for j in range(len(predicates)):
                if j in anchor or is_redundant(predicates, anchor, j):
                    continue
                candidate = tuple(sorted(anchor + (j,)))
                if candidate not in seen:
                    seen.add(candidate)
                    candidates.append(candidate)
        if not candidates:
            break
        fresh = [c for c in candidates if c not in stats]
        if not affordable(s.batch_size * len(fresh)):
            exhausted = True
            break
        if fresh:
            draw(fresh, s.batch_size)
        counts = np.array([stats[c][0] for c in candidates], dtype=np.int64)
        hits = np.array([stats[c][1] for c in candidates], dtype=np.int64)
        chosen = kl_lucb(counts, hits, min(s.beam_size, len(candidates)),
                         lambda arms, n: draw([candidates[i] for i in arms], n),
                         delta=s.delta, epsilon=s.epsilon, batch_size=s.batch_size,
                         budget=s.max_samples - used)
        beam = [candidates[i] for i in chosen]
        verify(beam)
        kept.extend(beam)
        met = [a for a in beam if bounds(a)[1] >= s.tau]
        if met:
            best = max(met, key=lambda a: (coverage(a), bounds(a)[1]))
            return result(best, False)
        if not affordable(2 * s.batch_size):
            exhausted = True
            break
    best = max(kept, key=lambda a: (bounds(a)[1], -len(a), coverage(a)))
    return result(best, exhausted)


# ----------------------------------------------------------------------------- the check


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    records = result.get("tables", {}).get("anchors", [])
    if not records:
        return None
    if finding.get("metric") == "anchor_precision_min":
        worst = min(records, key=lambda r: r["precision"])
        return (f"For row {worst['row']} the most precise rule found, \"{worst['rule']}\", gives the same decision "
                f"to only {worst['precision']:.0%} of similar cases: that decision does not rest on a few simple "
                f"conditions (the row lies near the decision boundary, or the model is irregular there).")
    if finding.get("metric") == "anchor_target_met":
        missed = [r for r in records if not r.get("met_target")]
        if not missed:
            return None
        rows = ", ".join(str(r["row"]) for r in missed[:5]) + (", ..." if len(missed) > 5 else "")
        return (f"{len(missed)} of {len(records)} explained decisions (rows {rows}) have no simple rule that "
                f"reaches the precision target within the search budget.")
    return None


@check("anchors", family="local", params=AnchorsParams, needs_model=True, validate=validate_selection,
       case_file=(("rule", "anchors"),),
       reading=_reading,
       metrics=["anchor_precision", "anchor_precision_min", "anchor_coverage", "anchor_length", "anchor_target_met"],
       example={"params": {"sample": 5},
                "thresholds": {"anchor_precision_min": {"min": 0.9}}})
def anchors(ctx: AuditContext, params: AnchorsParams) -> CheckOutput:
    """Scoped rules that pin each explained decision down: IF conditions THEN the same decision.

    The anchors algorithm (Ribeiro et al. 2018), implemented natively. For an explained row
    x with decision d, an anchor A is a set of predicates that x satisfies; numeric features
    are cut at their quantiles (``params.bins``; 4 = quartiles, computed on the background),
    giving ``f <= e`` or ``f > e`` for each edge e, categorical ones give ``f = value``.
    ``precision`` = P(model decision on z = d) for z ~ D(z | A): a background row with every
    anchored feature put inside the anchor (categories set to x's, numbers outside the
    anchor's interval replaced by background values inside it), estimated on the model's
    decisions for perturbed samples, with KL confidence bounds ``precision_ci`` at
    confidence 1 - delta. ``coverage`` = share of audit rows that satisfy A (exact). Search:
    beam search of width ``beam_size``, one predicate at a time; the best candidates of each
    length are picked by the KL-LUCB bandit (tolerance ``epsilon``), sampling in batches of
    ``batch_size`` (every batch is one model call); the search stops at the shortest anchor
    whose lower bound reaches ``params.threshold`` (tau), the one of highest coverage among
    those; ``max_samples`` caps the model rows per explained row, ``max_anchor_size`` the
    predicates. A row whose search ends without one reports its most precise anchor found,
    ``met_target`` false. Background: data.reference when given, else the audit data (a
    seeded sample of ``background_size`` rows beyond that). Rows: ``params.rows``,
    ``params.query`` or a seeded sample stratified by decision, as every local check.

    Table ``anchors``, one record per explained row: ``row``, ``decision``, ``rule`` (text),
    ``predicates`` (each a text), ``precision``, ``precision_ci`` (its KL bounds),
    ``precision_n`` (samples of the anchor), ``coverage``, ``n_samples`` (model rows
    predicted for the row), ``met_target`` (lower bound >= tau).

    Metrics (over explained rows): ``anchor_precision`` (median) and ``anchor_precision_min``
    (smallest), in [0, 1], higher = decisions that simple rules explain faithfully;
    ``anchor_coverage`` (median, [0, 1], higher = rules that apply to more people);
    ``anchor_length`` (mean number of predicates, >= 0, lower = simpler);
    ``anchor_target_met`` (share of rows whose anchor reached tau, [0, 1]).

    References: Ribeiro, Singh and Guestrin (2018), Anchors: high-precision model-agnostic
    explanations, AAAI; Kaufmann and Kalyanakrishnan (2013), Information complexity in
    bandit subset selection, COLT (KL-LUCB).
    """
    data = ctx.data
    if data.task != "binary" or data.decisions is None:
        return CheckOutput.skip(f"anchors explains binary decisions; this is a {data.task} task")
    base_seed = int(ctx.rng.integers(2**32))
    positions = select_positions(data, params, ctx.rng)
    features = list(data.features)
    pool, described = background_rows(ctx, params.background_size)
    pool = pool.reset_index(drop=True)
    edges = discretise(pool, features, params.bins)
    threshold = float(data.threshold if data.threshold is not None else 0.5)
    decisions = np.asarray(data.decisions)
    audit_X = data.frame[features]
    settings = SearchSettings(tau=params.threshold, delta=params.delta, epsilon=params.epsilon,
                              beam_size=params.beam_size, batch_size=params.batch_size,
                              max_anchor_size=params.max_anchor_size, max_samples=params.max_samples)
    records: list[dict[str, Any]] = []
    exhausted_rows: list[int] = []
    for position in positions:
        row_id = int(data.frame.index[position])
        x = data.frame.iloc[position]
        decision = int(decisions[position])
        predicates = row_predicates(x, features, edges)
        sampler = ConditionalSampler(pool, x, predicates)
        rng = np.random.default_rng([base_seed, row_id])  # a row's anchor does not depend on the others

        def pull(anchor_list: list[Anchor], n: int, sampler: ConditionalSampler = sampler,
                 rng: np.random.Generator = rng, decision: int = decision) -> npt.NDArray[np.int64]:
            frame = sampler.sample(anchor_list, n, rng)
            same = decide(ctx.model.predict(frame), threshold) == decision
            return same.reshape(len(anchor_list), n).sum(axis=1)

        found = beam_search(predicates, pull, CoverageIndex(audit_X, predicates), settings)
        if found.budget_exhausted:
            exhausted_rows.append(row_id)
        conditions = anchor_conditions(predicates, found.anchor)
        records.append({
            "row": row_id, "decision": decision,
            "rule": rule_text(conditions, decision, data.favorable_decision),
            "predicates": [predicates[j].text() for j in found.anchor],
            "precision": found.precision, "precision_ci": [found.low, found.high], "precision_n": found.n,
            "coverage": found.coverage, "n_samples": found.n_samples, "met_target": bool(found.met),
        })
    n = len(records)
    precision = np.array([r["precision"] for r in records])
    total = int(sum(r["n_samples"] for r in records))
    metrics = {
        "anchor_precision": Metric(float(np.median(precision)), n=n, note="median over explained rows"),
        "anchor_precision_min": Metric(float(precision.min()), n=n, note="the least precise row's anchor"),
        "anchor_coverage": Metric(float(np.median([r["coverage"] for r in records])), n=n,
                                  note=f"median share of the {len(audit_X):,} audit rows an anchor covers"),
        "anchor_length": Metric(float(np.mean([len(r["predicates"]) for r in records])), n=n,
                                note="mean number of predicates"),
        "anchor_target_met": Metric(float(np.mean([r["met_target"] for r in records])), n=n,
                                    note=f"share of rows whose anchor's lower bound reached {params.threshold:g}"),
    }
    numeric = [f for f in features if f in edges]
    notes = [f"background: {described}",
             f"{params.bins} quantile bins for numeric features ({', '.join(numeric) or 'none'}); "
             f"categorical features as equalities",
             f"precision bounds: KL, at confidence {1 - params.delta:g}; {total:,} model rows predicted "
             f"({total / max(n, 1):,.0f} per explained row, budget {params.max_samples:,})"]
    if exhausted_rows:
        notes.append(f"the sample budget ran out before the search ended for rows "
                     f"{', '.join(map(str, exhausted_rows[:20]))}{' …' if len(exhausted_rows) > 20 else ''}")
    plot = Plot("bar", f"Anchor precision per explained row (KL bounds; target {params.threshold:g})", {
        "labels": [f"row {r['row']}" for r in records], "values": [r["precision"] for r in records],
        "ci_low": [r["precision_ci"][0] for r in records], "ci_high": [r["precision_ci"][1] for r in records],
        "ylabel": "precision", "thresholds": {"min": params.threshold}, "n": n})
    return CheckOutput(metrics=metrics, tables={"anchors": records}, plots=[plot], notes=notes)
