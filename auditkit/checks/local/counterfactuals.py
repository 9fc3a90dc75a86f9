"""``counterfactuals``: for each unfavourable decision, the nearest actionable change that flips it."""
from __future__ import annotations

import re
from typing import Any, Literal, Optional

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import Field

from auditkit.core.decisions import decide
from auditkit.methods.groups import make_grouping
from auditkit.methods.rows import select_positions
from auditkit.methods.probes import is_numeric
from auditkit.engine.context import AuditContext, AuditData
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError, did_you_mean
from auditkit.results.model import CheckOutput, Metric, Plot

Direction = Literal["increase", "decrease"]
Array = npt.NDArray[np.float64]

#: Observed values tried per numeric feature by the single-feature scan (quantiles, ends included).
GRID = 32
#: Halvings of a segment when a change is shrunk towards the row.
BISECT_STEPS = 10
#: Growing-spheres radii: the first shell's outer radius and the growth factor per round.
FIRST_RADIUS, GROWTH = 0.1, 1.5
#: Refined candidates kept per row from the seeds and from the spheres.
KEEP = 3
#: Rounds of shrinking one numeric change per candidate.
SHRINK_ROUNDS = 3
#: Observed favourable rows considered as seeds (a seeded sample beyond this).
MAX_POOL = 5_000
#: Candidates built at once when seeds are projected (memory: this many rows x features).
CHUNK = 200_000
#: More decimals than this means a continuous feature: its values are not snapped.
MAX_DECIMALS = 6
AGE_WORDS = frozenset({"age", "dob", "birth", "birthdate", "birthday", "yob", "birthyear"})
METRICS = ["recourse_rate", "mean_changed_features", "median_changed_features", "mean_distance"]
PER_ATTRIBUTE = ["recourse_rate_ratio", "recourse_burden_ratio"]


class CounterfactualsParams(CheckParams):
    rows: Optional[list[int]] = Field(None, description="Row numbers (0-based positions in the data file); those "
                                                        "with the favourable decision already are not explained.")
    query: Optional[str] = Field(None, description='A pandas query over the data, with columns `score` and '
                                                   '`decision` added, e.g. "income < 30000"; its first `sample` '
                                                   'rows, of which those with the unfavourable decision are explained.')
    sample: int = Field(100, ge=1, le=5_000, description="Without rows or query: a seeded sample of this many rows "
                                                         "with the unfavourable decision.")
    immutable: Optional[list[str]] = Field(
        None, description="Columns the search never changes, on top of the protected attributes (always immutable). "
                          "Default: every feature whose name says age or birth (age, age_band, date_of_birth, ...); "
                          "a list given here replaces that default.")
    directions: dict[str, Direction] = Field(
        default_factory=dict, description="Numeric features that may only increase or only decrease, "
                                          "e.g. {income: increase, credit_history_years: increase}.")
    sparsity: float = Field(1.0, ge=0, description="Cost of each changed feature, in distance units, when choosing "
                                                   "a row's counterfactual: the one reported minimises distance + "
                                                   "sparsity x changed features (0: nearest; 1000: fewest features "
                                                   "first).")
    seeds: int = Field(20, ge=0, le=500, description="Nearest observed rows with the favourable decision (moved "
                                                     "into the constraints) tried as starting points, per row.")
    candidates: int = Field(100, ge=10, le=5_000, description="Growing-spheres candidates per row and round.")
    max_rounds: int = Field(20, ge=1, le=60, description="Growing-spheres rounds (radius x1.5 each, from 0.1).")
    min_group_size: int = Field(5, ge=1, description="Groups with fewer explained rows are listed but left out of "
                                                     "the ratios.")
    bootstrap: int = Field(1000, ge=0, le=20_000, description="Resamples (within each group) behind the 95% "
                                                              "intervals of the ratios between groups; 0 for none.")
    bins: dict[str, list[float]] = Field(default_factory=dict, description="Bin edges for continuous protected "
                                                                           "attributes.")


# ---------------------------------------------------------------------------- constraints


def looks_like_age(name: str) -> bool:
    """``age``, ``age_band``, ``ApplicantAge``, ``date_of_birth`` (word by word, so not ``mileage``)."""
    words = re.split(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])", name)
    return any(w.lower() in AGE_WORDS for w in words) or "yearofbirth" in name.lower().replace("_", "")


def immutable_features(params: CounterfactualsParams, data: AuditData) -> dict[str, str]:
    """Model inputs the search keeps, and why."""
    reasons: dict[str, str] = {}
    chosen = params.immutable if params.immutable is not None else [f for f in data.features if looks_like_age(f)]
    why = "params.immutable" if params.immutable is not None else "default: named like an age"
    for name in chosen:
        if name in data.features:
            reasons[name] = why
    for name in data.protected:
        if name in data.features:
            reasons[name] = "protected attribute"
    return reasons


def validate(params: CounterfactualsParams, data: AuditData) -> None:
    """Params that do not fit the data: raised before anything runs (exit 2 with the policy's line)."""
    columns = [str(c) for c in data.frame.columns]
    for name in params.immutable or []:
        if name not in data.frame.columns:
            raise CheckError(f"params.immutable: '{name}' is not a column of the data; {did_you_mean(name, columns)}")
    immutable = immutable_features(params, data)
    for name in params.directions:
        if name not in data.features:
            raise CheckError(f"params.directions: '{name}' is not a model feature; "
                             f"{did_you_mean(name, data.features)}")
        if not is_numeric(data.frame[name]):
            raise CheckError(f"params.directions: '{name}' is categorical; a direction applies to numeric features "
                             f"only (a categorical feature may change to any observed category unless immutable)")
        if name in immutable:
            hint = ("; give params.immutable explicitly, without it, to let it change"
                    if immutable[name].startswith("default") else "")
            raise CheckError(f"params.directions: '{name}' is immutable ({immutable[name]}), so it has no "
                             f"direction{hint}")
    if params.rows is not None and params.query is not None:
        raise CheckError("params.query: give rows or a query, not both")
    if params.rows is not None:
        index = pd.Index(data.frame.index)
        missing = [r for r in params.rows if r not in index]
        if missing:
            raise CheckError(f"params.rows: row {missing[0]} is not among the audit rows (rows are 0-based "
                             f"positions in the data file; {len(data.frame):,} audit rows)")
    if params.query is not None:
        view = data.frame.assign(score=data.scores, decision=data.decisions)
        try:
            chosen = view.query(params.query, engine="python")
        except Exception as exc:  # any failure of the user's expression is an input error
            raise CheckError(f"params.query {params.query!r} cannot be evaluated: {type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:160]}") from None
        if len(chosen) == 0:
            raise CheckError(f"params.query {params.query!r} selects no row")


def _produces(params: CounterfactualsParams, policy: Any) -> list[str]:
    attributes = list(getattr(policy.data, "protected", []) or [])
    return METRICS + PER_ATTRIBUTE + [f"{m}[{a}]" for m in PER_ATTRIBUTE for a in attributes]


def _decimals(values: Array) -> Optional[int]:
    """The fewest decimals that write every observed value exactly (None: a continuous feature)."""
    if len(values) == 0:
        return None
    tolerance = 1e-9 * np.maximum(1.0, np.abs(values))
    for digits in range(MAX_DECIMALS + 1):
        if np.all(np.abs(np.round(values, digits) - values) <= tolerance):
            return digits
    return None


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
    an ``owner`` (the explained row it is a candidate for)."""

    def __init__(self, ctx: AuditContext, X: pd.DataFrame, immutable: set[str], directions: dict[str, str]):
        data = ctx.data
        frame = data.frame
        self.ctx = ctx
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
        if len(Z) == 0:
            return np.zeros(0, dtype=bool), np.zeros(0)
        scores = self.ctx.model.predict(self.decode(Z))
        decision = decide(scores, self.threshold)
        return decision == self.favourable, scores

    # -- constraints and cost
    def project(self, Z: Array, owner: npt.NDArray[np.int64]) -> Array:
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

    def changed(self, Z: Array, owner: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        x0 = self.X0[owner]
        return ~((Z == x0) | (np.isnan(Z) & np.isnan(x0)))

    def distance(self, Z: Array, owner: npt.NDArray[np.int64]) -> tuple[Array, npt.NDArray[np.int64]]:
        changed = self.changed(Z, owner)
        delta = np.where(changed, np.abs(Z - self.X0[owner]), 0.0)
        parts = np.where(self.numeric, delta / self.scale, changed.astype(np.float64))
        return parts.sum(axis=1), changed.sum(axis=1)

    def cost(self, Z: Array, owner: npt.NDArray[np.int64], sparsity: float) -> Array:
        distance, n_changed = self.distance(Z, owner)
        return distance + sparsity * n_changed

    def respects(self, Z: Array, owner: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
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


# ---------------------------------------------------------------------------- the search


def _best_per_owner(owner: npt.NDArray[np.int64], cost: Array, keep: int = 1) -> npt.NDArray[np.int64]:
    """Indices of the ``keep`` cheapest finite-cost candidates of each owner (stable on ties)."""
    finite = np.flatnonzero(np.isfinite(cost))
    if len(finite) == 0:
        return finite
    order = finite[np.lexsort((finite, cost[finite], owner[finite]))]
    first = np.searchsorted(owner[order], owner[order], side="left")
    rank = np.arange(len(order)) - first
    return order[rank < keep]


def _bisect(space: Space, owner: npt.NDArray[np.int64], start: Array, end: Array) -> Array:
    """Per candidate, the point of start -> end nearest start that keeps the favourable decision
    (``end`` has it); numeric features move along the segment, categories are those of ``end``."""
    low, high = np.zeros(len(owner)), np.ones(len(owner))
    best = end.copy()
    num = space.numeric
    for _ in range(BISECT_STEPS):
        mid = (low + high) / 2
        probe = end.copy()
        probe[:, num] = start[:, num] + mid[:, None] * (end[:, num] - start[:, num])
        probe = space.project(probe, owner)
        ok, _ = space.flips(probe)
        best[ok] = probe[ok]
        high = np.where(ok, mid, high)
        low = np.where(ok, low, mid)
    return best


def _single_feature(space: Space) -> tuple[npt.NDArray[np.int64], Array]:
    """Every feature alone: observed values (quantiles) and every category, all rows in one batch;
    for a numeric feature, the flip nearest the row on each side is bisected towards it."""
    owners, features, blocks = [], [], []
    frame = space.ctx.data.frame
    for j, name in enumerate(space.features):
        rows = np.flatnonzero(space.mutable[:, j])
        if len(rows) == 0:
            continue
        if space.numeric[j]:
            values = frame[name].dropna().to_numpy(dtype=np.float64)
            grid = np.unique(np.quantile(values, np.linspace(0, 1, GRID), method="inverted_cdf"))
        else:
            grid = np.arange(len(space.categories[j]), dtype=np.float64)  # type: ignore[arg-type]
        ok = ((grid[None, :] >= space.low[rows, j, None]) & (grid[None, :] <= space.high[rows, j, None])
              & (grid[None, :] != space.X0[rows, j, None])) if space.numeric[j] else \
            (grid[None, :] != space.X0[rows, j, None])
        r, g = np.nonzero(ok)
        if len(r) == 0:
            continue
        block = space.X0[rows[r]].copy()
        block[:, j] = grid[g]
        owners.append(rows[r])
        features.append(np.full(len(r), j))
        blocks.append(block)
    if not blocks:
        return np.zeros(0, dtype=np.int64), np.zeros((0, len(space.features)))
    owner, feature, Z = np.concatenate(owners), np.concatenate(features), np.concatenate(blocks)
    flipped, _ = space.flips(Z)
    owner, feature, Z = owner[flipped], feature[flipped], Z[flipped]
    numeric = space.numeric[feature]
    keep_cat = np.flatnonzero(~numeric)
    # numeric: per (row, feature, side), the flipped grid value nearest the row
    idx = np.flatnonzero(numeric)
    if len(idx) == 0:
        return owner[keep_cat], Z[keep_cat]
    value = Z[idx, feature[idx]]
    origin = space.X0[owner[idx], feature[idx]]
    side = (value > origin).astype(np.int64)
    key = (owner[idx] * len(space.features) + feature[idx]) * 2 + side
    order = np.lexsort((np.abs(value - origin), key))
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    chosen = idx[first]
    refined = _bisect(space, owner[chosen], space.X0[owner[chosen]], Z[chosen])
    return np.concatenate([owner[keep_cat], owner[chosen]]), np.concatenate([Z[keep_cat], refined])


def _seeds(space: Space, pool: Array, k: int, sparsity: float) -> tuple[npt.NDArray[np.int64], Array]:
    """The observed favourable rows nearest each row once moved into its constraints (ranked
    before snapping, which moves a value by less than one step); those that still have the
    favourable decision."""
    n, p = space.X0.shape
    if k == 0 or len(pool) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, p))
    k = min(k, len(pool))
    per_chunk = max(1, CHUNK // len(pool))
    num = space.numeric
    weight = np.where(num, 1.0 / space.scale, 0.0)
    owners, picks = [], []
    for begin in range(0, n, per_chunk):
        rows = np.arange(begin, min(n, begin + per_chunk))
        x0 = space.X0[rows][:, None, :]
        mutable = space.mutable[rows][:, None, :]
        Z = np.where(mutable & ~np.isnan(pool)[None, :, :], pool[None, :, :], x0)
        Z = np.clip(Z, space.low[rows][:, None, :], space.high[rows][:, None, :], where=num, out=Z)
        changed = ~((Z == x0) | (np.isnan(Z) & np.isnan(x0)))
        delta = np.abs(np.where(changed, Z - x0, 0.0))
        cost = np.where(num, delta * weight, changed).sum(axis=2) + sparsity * changed.sum(axis=2)
        cost[changed.sum(axis=2) == 0] = np.inf
        nearest = np.argsort(cost, axis=1, kind="stable")[:, :k]
        ok = np.isfinite(np.take_along_axis(cost, nearest, axis=1))
        owner = np.repeat(rows, k)[ok.ravel()]
        owners.append(owner)
        picks.append(Z[np.repeat(np.arange(len(rows)), k)[ok.ravel()], nearest.ravel()[ok.ravel()]])
    owner = np.concatenate(owners)
    Z = space.project(np.concatenate(picks), owner)
    flipped, _ = space.flips(Z)
    return owner[flipped], Z[flipped]


def _spheres(space: Space, rng: np.random.Generator, params: CounterfactualsParams,
             best_cost: Array) -> tuple[npt.NDArray[np.int64], Array, int]:
    """Growing spheres (Laugel et al. 2018) in the scaled L1 norm: random sparse changes in shells
    of growing radius, all rows' candidates predicted in one batch per round; a row stops at its
    first shell with a flip, or once no candidate in the shell could beat what it has."""
    n, p = space.X0.shape
    movable = space.mutable.sum(axis=1)
    active = movable > 0
    inner, outer = 0.0, FIRST_RADIUS
    owners, found = [], []
    rounds = 0
    span = np.where(space.numeric, (space.hi - space.lo) / space.scale, 1.0)
    limit = float(np.nansum(span))  # no candidate is farther than every range at once
    for _ in range(params.max_rounds):
        active &= inner + params.sparsity < best_cost
        if not active.any() or inner > limit:
            break
        rounds += 1
        rows = np.flatnonzero(active)
        m = params.candidates
        owner = np.repeat(rows, m)
        size = len(owner)
        radius = inner + (outer - inner) * rng.random(size)
        # support: s features drawn among the row's mutable ones, s uniform in 1..movable
        keys = np.where(space.mutable[owner], rng.random((size, p)), 2.0)
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)
        support = rank < rng.integers(1, movable[owner] + 1)[:, None]
        categorical = support & ~space.numeric
        # each changed category costs 1: keep at most floor(radius) of them
        cat_rank = np.cumsum(categorical, axis=1)
        categorical &= cat_rank <= np.floor(radius)[:, None]
        support = (support & space.numeric) | categorical
        budget = np.maximum(radius - categorical.sum(axis=1), 0.0)
        weights = np.where(support & space.numeric, rng.exponential(size=(size, p)), 0.0)
        total = weights.sum(axis=1, keepdims=True)
        weights = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
        sign = np.where(space.direction != 0, space.direction, np.where(rng.random((size, p)) < 0.5, -1.0, 1.0))
        x0 = space.X0[owner]
        Z = x0 + np.where(space.numeric, sign * weights * budget[:, None] * space.scale, 0.0)
        sizes = np.array([len(c) if c is not None else 1 for c in space.categories], dtype=np.int64)
        shift = rng.integers(1, np.maximum(sizes, 2), size=(size, p))
        recoded = np.mod(np.nan_to_num(x0) + shift, sizes)
        Z = np.where(categorical, recoded, Z)
        Z = space.project(Z, owner)
        flipped, _ = space.flips(Z)
        if flipped.any():
            hit = np.flatnonzero(flipped)
            cost = np.full(size, np.inf)
            cost[hit] = space.cost(Z[hit], owner[hit], params.sparsity)
            chosen = _best_per_owner(owner, cost, keep=KEEP)
            owners.append(owner[chosen])
            found.append(Z[chosen])
            active[owner[hit]] = False
        inner, outer = outer, outer * GROWTH
    if not owners:
        return np.zeros(0, dtype=np.int64), np.zeros((0, p)), rounds
    return np.concatenate(owners), np.concatenate(found), rounds


def _sparsify(space: Space, owner: npt.NDArray[np.int64], Z: Array, sparsity: float) -> Array:
    """Greedily put features back to the row's value while the decision stays favourable,
    the cheapest result first."""
    Z = Z.copy()
    todo = np.arange(len(owner))
    while len(todo):
        changed = space.changed(Z[todo], owner[todo])
        which, feature = np.nonzero(changed)
        if len(which) == 0:
            break
        candidate = todo[which]
        trial = Z[candidate].copy()
        trial[np.arange(len(which)), feature] = space.X0[owner[candidate], feature]
        ok, _ = space.flips(trial)
        cost = np.where(ok, space.cost(trial, owner[candidate], sparsity), np.inf)
        best = _best_per_owner(candidate, cost)
        Z[candidate[best]] = trial[best]
        todo = np.unique(candidate[best])
    return Z


def _shrink(space: Space, owner: npt.NDArray[np.int64], Z: Array, sparsity: float) -> Array:
    """Bisect the whole change towards the row; then, in rounds, bisect each numeric change
    alone (all candidates and features in one batch per step) and keep, per candidate, the one
    that saves the most."""
    Z = _bisect(space, owner, space.X0[owner], Z)
    for _ in range(SHRINK_ROUNDS):
        which, feature = np.nonzero(space.changed(Z, owner) & space.numeric)
        if len(which) == 0:
            break
        start = Z[which].copy()
        start[np.arange(len(which)), feature] = space.X0[owner[which], feature]
        moved = _bisect(space, owner[which], start, Z[which])
        saving = space.cost(Z[which], owner[which], sparsity) - space.cost(moved, owner[which], sparsity)
        best = _best_per_owner(which, np.where(saving > 1e-12, -saving, np.inf))
        if len(best) == 0:
            break
        Z[which[best]] = moved[best]
    return Z


# ---------------------------------------------------------------------------- the check


def _rows(ctx: AuditContext, params: CounterfactualsParams, notes: list[str]) -> np.ndarray:
    """Positions of the rows to explain: those of the chosen rows with the unfavourable decision."""
    data = ctx.data
    unfavourable = np.asarray(data.decisions) != data.favorable_decision
    if params.rows is None and params.query is None:
        candidates = np.flatnonzero(unfavourable)
        if len(candidates) > params.sample:
            notes.append(f"a seeded sample of {params.sample:,} of the {len(candidates):,} rows with the "
                         f"unfavourable decision")
            return np.sort(ctx.rng.choice(candidates, params.sample, replace=False))
        notes.append(f"every row with the unfavourable decision ({len(candidates):,})")
        return candidates
    positions = select_positions(ctx.data, params, ctx.rng)  # type: ignore[arg-type]
    kept = positions[unfavourable[positions]]
    if len(kept) < len(positions):
        notes.append(f"{len(positions) - len(kept):,} of the {len(positions):,} selected rows have the favourable "
                     f"decision already and are not explained")
    return kept


def _median(values: list[float] | Array) -> Optional[float]:
    return float(np.median(values)) if len(values) else None


def _mean(values: list[float] | Array) -> Optional[float]:
    return float(np.mean(values)) if len(values) else None


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    """One plain-language sentence for a failing or warning figure."""
    metric, value = finding["metric"], finding.get("value")
    if value is None:
        return None
    # the figure itself, with its interval (a finding `on` a bound carries the bound as value)
    figure = (result.get("metrics", {}).get(metric) or {})
    ci = figure.get("ci")
    if figure.get("value") is not None:
        value = figure["value"]
    interval = f", 95% CI {ci[0]:.2f}-{ci[1]:.2f}" if isinstance(ci, (list, tuple)) and len(ci) == 2 else ""
    if metric == "recourse_rate":
        return (f"For {1 - value:.0%} of the explained unfavourable decisions, no change of the mutable features "
                f"within the observed ranges turns the decision around.")
    if "[" not in metric:
        return None
    name, attribute = metric[:-1].split("[", 1)
    smallest = result.get("params", {}).get("min_group_size", 1)
    groups = [g for g in result.get("tables", {}).get("groups", [])
              if g.get("attribute") == attribute and (g.get("n") or 0) >= smallest]
    key = {"recourse_rate_ratio": "recourse_rate", "recourse_burden_ratio": "mean_distance"}.get(name)
    ranked = sorted((g for g in groups if g.get(key) is not None), key=lambda g: g[key]) if key else []
    if name == "recourse_rate_ratio" and len(ranked) >= 2:
        low, high = ranked[0], ranked[-1]
        return (f"Declined applicants in group '{low['group']}' of {attribute} can change the decision in "
                f"{low['recourse_rate']:.0%} of cases, against {high['recourse_rate']:.0%} in group "
                f"'{high['group']}' (ratio {value:.2f}{interval}).")
    if name == "recourse_burden_ratio" and len(ranked) >= 2:
        low, high = ranked[0], ranked[-1]
        return (f"To turn the decision around, group '{high['group']}' of {attribute} needs a change of "
                f"{high['mean_distance']:.2f} on average (distance in MADs plus changed categories), group "
                f"'{low['group']}' {low['mean_distance']:.2f} (ratio {value:.2f}{interval}): recourse costs some groups more.")
    return None


@check("counterfactuals", family="local", params=CounterfactualsParams, needs_model=True,
       case_file=(("recourse", "counterfactuals"),),
       metrics=METRICS + [f"{m}[*]" for m in PER_ATTRIBUTE], produces=_produces, validate=validate, reading=_reading,
       example={"params": {"sample": 20, "directions": {"income": "increase"}},
                "thresholds": {"recourse_rate": {"min": 0.9}, "recourse_burden_ratio": {"min": 0.5, "severity": "warn"}}})
def counterfactuals(ctx: AuditContext, params: CounterfactualsParams) -> CheckOutput:
    """For each row with the unfavourable decision, the nearest actionable change that flips it.

    Rows: ``params.rows`` or ``params.query`` (those of them with the unfavourable decision),
    else a seeded sample of ``params.sample`` rows with the unfavourable decision.
    Constraints: protected attributes never change, nor ``params.immutable`` (default: every
    feature named like an age: ``age``, ``age_band``, ``date_of_birth``); a missing value stays
    missing; ``params.directions`` lets a numeric feature only increase or only decrease;
    numeric values stay within the observed minimum and maximum and on the data's resolution
    (integer columns stay integers, a ratio written with 3 decimals keeps 3); a categorical
    feature may take any observed category. Distance of a change from row x to x':
    :math:`d = \\sum_{numeric} |x'_j - x_j| / MAD_j + \\#\\{categorical\\ j: x'_j \\ne x_j\\}`,
    MAD_j the median absolute deviation of feature j over the audit rows (its mean absolute
    deviation when the MAD is 0), so one MAD of change costs as much as one changed category.
    A row's counterfactual minimises :math:`d + \\lambda \\cdot n_{changed}` with
    :math:`\\lambda` = ``params.sparsity`` (sparse changes are preferred).
    Search (model-agnostic, all candidates of all rows predicted in batches): every feature
    alone over its observed values and categories, bisected to the boundary; the nearest
    observed rows with the favourable decision, moved into the constraints; growing spheres
    of random sparse changes in the scaled L1 norm; then greedy sparsification (features put
    back while the decision holds) and bisection of the changes towards the row. Every
    counterfactual reported is predicted again and checked against every constraint; one that
    fails is reported as not found. The search gives an upper bound on the nearest change.

    Metrics: ``recourse_rate`` = share of explained rows with a counterfactual, in [0, 1],
    higher = more recourse; ``mean_changed_features`` / ``median_changed_features`` and
    ``mean_distance`` (d above) over the rows with one, lower = easier recourse. By protected
    attribute (groups of at least ``params.min_group_size`` explained rows):
    ``recourse_rate_ratio[attribute]`` = lowest group recourse rate / highest, and
    ``recourse_burden_ratio[attribute]`` = smallest group mean distance / largest; both in
    [0, 1], 1 = every group equal, lower = recourse rarer or costlier for some group (a group
    without any counterfactual counts in the rate ratio only). Both carry a 95% percentile
    bootstrap interval (``params.bootstrap`` resamples of the explained rows within each
    group; the search is not re-run): with small groups the interval is wide, and a
    threshold with ``on: upper`` flags only a gap the sample supports.
    Table ``counterfactuals``: ``row``, ``found``, ``score_before``, ``score_after``,
    ``changes`` (``{feature: [from, to]}``), ``n_changed``, ``distance``; table ``groups``:
    ``attribute``, ``group``, ``n``, ``recourse_rate``, ``mean_distance``, ``median_changed``.

    References: Wachter, Mittelstadt and Russell (2017), Counterfactual explanations without
    opening the black box; Laugel et al. (2018), Comparison-based inverse classification for
    interpretability in machine learning (growing spheres); Ustun, Spangher and Liu (2019),
    Actionable recourse in linear classification; Mothilal, Sharma and Tan (2020), Explaining
    machine learning classifiers through diverse counterfactual explanations (DiCE).
    """
    data = ctx.data
    if data.task != "binary" or data.decisions is None:
        return CheckOutput.skip(f"counterfactuals flip binary decisions; this is a {data.task} task")
    validate(params, data)
    notes: list[str] = []
    positions = _rows(ctx, params, notes)
    reasons = immutable_features(params, data)
    extra = [c for c in (params.immutable or []) if c not in data.features]
    if extra:
        notes.append(f"immutable columns that are not model inputs (nothing to keep): {', '.join(extra)}")
    X = data.frame.iloc[positions][data.features]
    space = Space(ctx, X, set(reasons), dict(params.directions))
    n = len(positions)
    start_queries = ctx.model.rows_predicted
    best_cost = np.full(n, np.inf)
    chosen = np.full((n, len(space.features)), np.nan)
    rounds = 0
    if n:
        # 1. one feature at a time
        owner, Z = _single_feature(space)
        # 2. observed favourable rows, 3. growing spheres; both refined
        pool_rows = np.flatnonzero(np.asarray(data.decisions) == data.favorable_decision)
        if len(pool_rows) > MAX_POOL:
            pool_rows = np.sort(ctx.rng.choice(pool_rows, MAX_POOL, replace=False))
        pool = space.encode(data.frame.iloc[pool_rows][data.features])
        seed_owner, seed_Z = _seeds(space, pool, params.seeds, params.sparsity)
        keep = _best_per_owner(seed_owner, space.cost(seed_Z, seed_owner, params.sparsity), keep=KEEP)
        seed_owner, seed_Z = seed_owner[keep], seed_Z[keep]
        known = np.concatenate([owner, seed_owner])
        known_cost = space.cost(np.concatenate([Z, seed_Z]), known, params.sparsity)
        bound = np.full(n, np.inf)
        np.minimum.at(bound, known, known_cost)
        sphere_owner, sphere_Z, rounds = _spheres(space, ctx.rng, params, bound)
        refine_owner = np.concatenate([seed_owner, sphere_owner])
        refine_Z = np.concatenate([seed_Z, sphere_Z])
        if len(refine_owner):
            refine_Z = _sparsify(space, refine_owner, refine_Z, params.sparsity)
            refine_Z = _shrink(space, refine_owner, refine_Z, params.sparsity)
            refine_Z = _sparsify(space, refine_owner, refine_Z, params.sparsity)
        all_owner = np.concatenate([owner, refine_owner])
        all_Z = np.concatenate([Z, refine_Z])
        cost = space.cost(all_Z, all_owner, params.sparsity)
        cost[space.changed(all_Z, all_owner).sum(axis=1) == 0] = np.inf
        best = _best_per_owner(all_owner, cost)
        chosen[all_owner[best]] = all_Z[best]
        best_cost[all_owner[best]] = cost[best]
    # every counterfactual is predicted once more, as reported, and checked against the constraints
    has = np.isfinite(best_cost)
    rows_index = np.arange(n)
    final = np.where(has[:, None], chosen, space.X0)
    flipped, scores_after = space.flips(final)
    valid = space.respects(final, rows_index)
    broken = int((has & ~(flipped & valid)).sum())
    if broken:
        notes.append(f"{broken} counterfactual(s) did not hold when predicted again and are reported as not found")
    found = has & flipped & valid
    distance, n_changed = space.distance(final, rows_index)
    queries = ctx.model.rows_predicted - start_queries

    records: list[dict[str, Any]] = []
    for i in range(n):
        row_id = int(data.frame.index[positions[i]])
        record: dict[str, Any] = {"row": row_id, "found": bool(found[i]),
                                  "score_before": float(data.scores[positions[i]]),
                                  "score_after": float(scores_after[i]) if found[i] else None,
                                  "changes": {}, "n_changed": None, "distance": None}
        if found[i]:
            original = X.iloc[i]
            for j in np.flatnonzero(space.changed(final[i:i + 1], rows_index[i:i + 1])[0]):
                before = original[space.features[j]]
                before = before.item() if hasattr(before, "item") else before
                record["changes"][space.features[j]] = [before, space.value(j, final[i, j])]
            record["n_changed"] = int(n_changed[i])
            record["distance"] = float(distance[i])
        records.append(record)

    found_distance = distance[found]
    found_changed = n_changed[found].astype(np.float64)
    none_found = "no counterfactual found" if n else "no row with the unfavourable decision to explain"
    metrics: dict[str, Metric] = {
        "recourse_rate": Metric(float(found.mean()) if n else None, n=n,
                                note=None if n else "no row with the unfavourable decision to explain"),
        "mean_changed_features": Metric(_mean(found_changed), n=int(found.sum()),
                                        note=None if found.any() else none_found),
        "median_changed_features": Metric(_median(found_changed), n=int(found.sum()),
                                          note=None if found.any() else none_found),
        "mean_distance": Metric(_mean(found_distance), n=int(found.sum()),
                                note="L1 in MADs + 1 per changed category" if found.any() else none_found),
    }
    groups: list[dict[str, Any]] = []
    plots: list[Plot] = []
    explained = data.frame.iloc[positions]
    for attribute in data.protected:
        if not n:
            for name in PER_ATTRIBUTE:
                metrics[f"{name}[{attribute}]"] = Metric(None, n=0, note="no row explained")
            continue
        grouping = make_grouping(explained, [attribute], params.bins)
        rates, burdens, labels, means, included = [], [], [], [], []
        for g, label in enumerate(grouping.labels):
            members = grouping.codes == g
            size = int(members.sum())
            hit = members & found
            rate = float(hit.sum() / size)
            mean = _mean(distance[hit])
            groups.append({"attribute": attribute, "group": label, "n": size, "recourse_rate": rate,
                           "mean_distance": mean, "median_changed": _median(n_changed[hit].astype(np.float64))})
            if size >= params.min_group_size:
                rates.append(rate)
                included.append(members)
                if mean is not None:
                    burdens.append(mean)
            labels.append(label)
            means.append(mean)
        compared = f"groups of {params.min_group_size} or more explained rows"
        if len(rates) < 2:
            rate_ratio, rate_note = None, f"fewer than 2 {compared}"
        elif max(rates) == 0:
            rate_ratio, rate_note = None, f"no counterfactual in any of the {compared}"
        else:
            rate_ratio, rate_note = min(rates) / max(rates), compared
        if len(burdens) < 2:
            burden, burden_note = None, f"fewer than 2 {compared} with a counterfactual"
        elif max(burdens) == 0:
            burden, burden_note = None, "every counterfactual has distance 0"
        else:
            burden, burden_note = min(burdens) / max(burdens), "smallest group mean distance / largest"
        rate_ci = burden_ci = None
        if params.bootstrap and len(included) >= 2 and (rate_ratio is not None or burden is not None):
            rate_ci, burden_ci = _ratio_intervals(included, found, distance, ctx.rng, params.bootstrap)
        method = f"stratified bootstrap within groups, {params.bootstrap} resamples, percentile"
        metrics[f"recourse_rate_ratio[{attribute}]"] = Metric(
            rate_ratio, n=n, note=rate_note, ci=rate_ci if rate_ratio is not None else None,
            method=method if rate_ci is not None and rate_ratio is not None else None)
        metrics[f"recourse_burden_ratio[{attribute}]"] = Metric(
            burden, n=int(found.sum()), note=burden_note, ci=burden_ci if burden is not None else None,
            method=method if burden_ci is not None and burden is not None else None)
        if len(plots) < 3 and any(m is not None for m in means):
            plots.append(Plot("bar", f"Recourse burden by {attribute}: mean distance of the counterfactual", {
                "labels": labels, "values": means, "ylabel": "mean distance (MADs + categories)", "n": n}))
    if found.any():
        changed_share = space.changed(final[found], rows_index[found]).mean(axis=0)
        order = [j for j in np.argsort(-changed_share, kind="stable") if space.mutable[:, j].any()]
        plots.insert(0, Plot("bar", "Features changed by the counterfactuals (share of rows with one)", {
            "labels": [space.features[j] for j in order], "values": [float(changed_share[j]) for j in order],
            "ylabel": "share of counterfactuals", "horizontal": True, "n": int(found.sum())}))
        counts, edges = np.histogram(found_distance, bins=min(20, max(5, int(found.sum()) // 5)))
        plots.insert(0, Plot("hist", "Distance of each counterfactual", {
            "edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "x_label": "distance (MADs of change + changed categories)", "y_label": "rows", "n": int(found.sum())}))
    mutable = [f for j, f in enumerate(space.features) if space.mutable[:, j].any()] if n else []
    notes.append("immutable: " + (", ".join(f"{f} ({why})" for f, why in reasons.items()) or "none")
                 + "; directions: " + (", ".join(f"{f} {d}" for f, d in params.directions.items()) or "none"))
    if n:
        notes.append(f"mutable features: {', '.join(mutable) or 'none'}; scales (MAD): "
                     + ", ".join(f"{f} {space.scale[j]:.4g}" for j, f in enumerate(space.features)
                                 if space.numeric[j]))
        missing_fixed = int((np.isnan(space.X0) & ~space.fixed).any(axis=1).sum())
        if missing_fixed:
            notes.append(f"{missing_fixed} explained row(s) have a missing feature; it stays missing")
        notes.append(f"{n - int(found.sum())} of {n} rows without a counterfactual; {rounds} growing-spheres "
                     f"round(s); {queries:,} model rows predicted ({queries / n:,.0f} per explained row)")
    tables: dict[str, list[dict[str, Any]]] = {"counterfactuals": records}
    if groups:
        tables["groups"] = groups
    return CheckOutput(metrics=metrics, tables=tables, plots=plots, notes=notes)


def _ratio_intervals(groups: list[np.ndarray], found: np.ndarray, distance: np.ndarray, rng: np.random.Generator,
                     resamples: int) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """95% percentile intervals of the recourse-rate ratio and the burden ratio (lowest group
    figure over highest), resampling the explained rows within each group (group sizes fixed)."""
    from auditkit.methods.stats import percentile_interval, resample_counts

    rates, burdens = [], []
    for members in groups:
        hit = found[members].astype(np.float64)
        dist = np.where(found[members], distance[members], 0.0).astype(np.float64)
        counts = resample_counts(rng, int(members.sum()), resamples)  # (resamples, group size)
        drawn = counts @ hit
        rates.append(drawn / counts.sum(axis=1))
        with np.errstate(invalid="ignore", divide="ignore"):
            burdens.append(np.where(drawn > 0, (counts @ dist) / drawn, np.nan))
    rate = np.vstack(rates)
    burden = np.vstack(burdens)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate_ratio = np.where(rate.max(axis=0) > 0, rate.min(axis=0) / rate.max(axis=0), np.nan)
        # a resample in which some group drew no counterfactual has no burden ratio
        complete = np.isfinite(burden).all(axis=0)
        highest = np.where(complete, np.where(np.isfinite(burden), burden, 0.0).max(axis=0), 0.0)
        lowest = np.where(np.isfinite(burden), burden, np.inf).min(axis=0)
        burden_ratio = np.where(complete & (highest > 0), lowest / np.where(highest > 0, highest, 1.0), np.nan)
    return percentile_interval(rate_ratio), percentile_interval(burden_ratio)
