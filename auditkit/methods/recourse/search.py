"""The recourse search: for each explained row, the cheapest change within its constraints that
gets the favourable decision (model-agnostic; every batch of candidates is one model call).

Strategies, in order: every feature alone over its observed values and categories, bisected
to the boundary (:func:`single_feature`); the nearest observed rows with the favourable
decision, moved into the constraints (:func:`nearest_favourable`); growing spheres of random
sparse changes in the scaled L1 norm (:func:`growing_spheres`, Laugel et al. 2018); then greedy
sparsification (:func:`sparsify`) and bisection of the changes towards the row
(:func:`shrink`). :func:`search` runs them and predicts every chosen counterfactual once more,
checking it against every constraint. The search gives an upper bound on the nearest change.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from auditkit.engine.context import AuditData
from auditkit.methods.recourse.constraints import Array, Owner, Space, is_favourable

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


@dataclass(frozen=True)
class SearchSettings:
    """``sparsity``: cost of each changed feature (distance units); ``seeds``: nearest favourable
    rows tried per row; ``candidates`` per row and growing-spheres round; ``max_rounds`` of them."""

    sparsity: float = 1.0
    seeds: int = 20
    candidates: int = 100
    max_rounds: int = 20


@dataclass(frozen=True)
class Recourse:
    """The search's outcome per explained row (arrays of length n, rows of ``final``)."""

    final: Array  # the counterfactual, or the row itself where none was found
    found: npt.NDArray[np.bool_]  # flips when predicted again and keeps every constraint
    scores_after: Array  # the model's score of ``final``
    distance: Array  # of ``final`` from the row (0 where none was found)
    n_changed: Owner
    broken: int  # counterfactuals that did not hold when predicted again (reported as not found)
    rounds: int  # growing-spheres rounds run

    def changes(self, space: Space, i: int) -> dict[int, Any]:
        """Feature index -> the value row ``i``'s counterfactual gives it, as the report writes it."""
        changed = space.changed(self.final[i:i + 1], np.array([i]))[0]
        return {int(j): space.value(j, self.final[i, j]) for j in np.flatnonzero(changed)}

    def changed_share(self, space: Space) -> Array:
        """Per feature, the share of the counterfactuals found that change it."""
        rows = np.flatnonzero(self.found)
        return space.changed(self.final[rows], rows).mean(axis=0)


def best_per_owner(owner: Owner, cost: Array, keep: int = 1) -> Owner:
    """Indices of the ``keep`` cheapest finite-cost candidates of each owner (stable on ties)."""
    finite = np.flatnonzero(np.isfinite(cost))
    if len(finite) == 0:
        return finite
    order = finite[np.lexsort((finite, cost[finite], owner[finite]))]
    first = np.searchsorted(owner[order], owner[order], side="left")
    rank = np.arange(len(order)) - first
    return order[rank < keep]


def bisect(space: Space, owner: Owner, start: Array, end: Array) -> Array:
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


def single_feature(space: Space) -> tuple[Owner, Array]:
    """Every feature alone: observed values (quantiles) and every category, all rows in one batch;
    for a numeric feature, the flip nearest the row on each side is bisected towards it."""
    owners, features, blocks = [], [], []
    for j, name in enumerate(space.features):
        rows = np.flatnonzero(space.mutable[:, j])
        if len(rows) == 0:
            continue
        if space.numeric[j]:
            values = space.frame[name].dropna().to_numpy(dtype=np.float64)
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
    refined = bisect(space, owner[chosen], space.X0[owner[chosen]], Z[chosen])
    return np.concatenate([owner[keep_cat], owner[chosen]]), np.concatenate([Z[keep_cat], refined])


def favourable_pool(space: Space, data: AuditData, rng: np.random.Generator) -> Array:
    """The audit rows with the favourable decision, encoded (a seeded sample of ``MAX_POOL`` beyond that)."""
    pool_rows = np.flatnonzero(is_favourable(data, data.decisions))
    if len(pool_rows) > MAX_POOL:
        pool_rows = np.sort(rng.choice(pool_rows, MAX_POOL, replace=False))
    return space.encode(data.frame.iloc[pool_rows][data.features])


def nearest_favourable(space: Space, pool: Array, k: int, sparsity: float) -> tuple[Owner, Array]:
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


def _shell(space: Space, rng: np.random.Generator, owner: Owner, inner: float, outer: float) -> Array:
    """One random sparse change per candidate, at a radius in [inner, outer) of the scaled L1
    norm, projected into its row's constraints."""
    n, p = space.X0.shape
    movable = space.mutable.sum(axis=1)
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
    return space.project(Z, owner)


def growing_spheres(space: Space, rng: np.random.Generator, settings: SearchSettings,
                    best_cost: Array) -> tuple[Owner, Array, int]:
    """Growing spheres (Laugel et al. 2018) in the scaled L1 norm: random sparse changes in shells
    of growing radius, all rows' candidates predicted in one batch per round; a row stops at its
    first shell with a flip, or once no candidate in the shell could beat what it has."""
    p = space.X0.shape[1]
    active = space.mutable.sum(axis=1) > 0
    inner, outer = 0.0, FIRST_RADIUS
    owners, found = [], []
    rounds = 0
    span = np.where(space.numeric, (space.hi - space.lo) / space.scale, 1.0)
    limit = float(np.nansum(span))  # no candidate is farther than every range at once
    for _ in range(settings.max_rounds):
        active &= inner + settings.sparsity < best_cost
        if not active.any() or inner > limit:
            break
        rounds += 1
        owner = np.repeat(np.flatnonzero(active), settings.candidates)
        Z = _shell(space, rng, owner, inner, outer)
        flipped, _ = space.flips(Z)
        if flipped.any():
            hit = np.flatnonzero(flipped)
            cost = np.full(len(owner), np.inf)
            cost[hit] = space.cost(Z[hit], owner[hit], settings.sparsity)
            chosen = best_per_owner(owner, cost, keep=KEEP)
            owners.append(owner[chosen])
            found.append(Z[chosen])
            active[owner[hit]] = False
        inner, outer = outer, outer * GROWTH
    if not owners:
        return np.zeros(0, dtype=np.int64), np.zeros((0, p)), rounds
    return np.concatenate(owners), np.concatenate(found), rounds


def sparsify(space: Space, owner: Owner, Z: Array, sparsity: float) -> Array:
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
        best = best_per_owner(candidate, cost)
        Z[candidate[best]] = trial[best]
        todo = np.unique(candidate[best])
    return Z


def shrink(space: Space, owner: Owner, Z: Array, sparsity: float) -> Array:
    """Bisect the whole change towards the row; then, in rounds, bisect each numeric change
    alone (all candidates and features in one batch per step) and keep, per candidate, the one
    that saves the most."""
    Z = bisect(space, owner, space.X0[owner], Z)
    for _ in range(SHRINK_ROUNDS):
        which, feature = np.nonzero(space.changed(Z, owner) & space.numeric)
        if len(which) == 0:
            break
        start = Z[which].copy()
        start[np.arange(len(which)), feature] = space.X0[owner[which], feature]
        moved = bisect(space, owner[which], start, Z[which])
        saving = space.cost(Z[which], owner[which], sparsity) - space.cost(moved, owner[which], sparsity)
        best = best_per_owner(which, np.where(saving > 1e-12, -saving, np.inf))
        if len(best) == 0:
            break
        Z[which[best]] = moved[best]
    return Z


def _refine(space: Space, owner: Owner, Z: Array, sparsity: float) -> Array:
    """Sparsify, shrink towards the row, and sparsify what shrinking freed."""
    if len(owner) == 0:
        return Z
    Z = sparsify(space, owner, Z, sparsity)
    Z = shrink(space, owner, Z, sparsity)
    return sparsify(space, owner, Z, sparsity)


def _candidates(space: Space, pool: Array, rng: np.random.Generator,
                settings: SearchSettings) -> tuple[Owner, Array, int]:
    """Every strategy's candidates (all flip), refined where refining pays."""
    n = len(space.X0)
    owner, Z = single_feature(space)
    seed_owner, seed_Z = nearest_favourable(space, pool, settings.seeds, settings.sparsity)
    keep = best_per_owner(seed_owner, space.cost(seed_Z, seed_owner, settings.sparsity), keep=KEEP)
    seed_owner, seed_Z = seed_owner[keep], seed_Z[keep]
    # what the spheres must beat: the cheapest candidate each row has so far
    known = np.concatenate([owner, seed_owner])
    bound = np.full(n, np.inf)
    np.minimum.at(bound, known, space.cost(np.concatenate([Z, seed_Z]), known, settings.sparsity))
    sphere_owner, sphere_Z, rounds = growing_spheres(space, rng, settings, bound)
    refine_owner = np.concatenate([seed_owner, sphere_owner])
    refine_Z = _refine(space, refine_owner, np.concatenate([seed_Z, sphere_Z]), settings.sparsity)
    return np.concatenate([owner, refine_owner]), np.concatenate([Z, refine_Z]), rounds


def search(space: Space, data: AuditData, rng: np.random.Generator, settings: SearchSettings) -> Recourse:
    """Each explained row's cheapest counterfactual (``distance + sparsity x changed features``)
    among every strategy's candidates, the audit rows with the favourable decision as seeds;
    each predicted once more, as reported, and checked against the constraints."""
    n, p = space.X0.shape
    best_cost = np.full(n, np.inf)
    chosen = np.full((n, p), np.nan)
    rounds = 0
    if n:
        owner, Z, rounds = _candidates(space, favourable_pool(space, data, rng), rng, settings)
        cost = space.cost(Z, owner, settings.sparsity)
        cost[space.changed(Z, owner).sum(axis=1) == 0] = np.inf
        best = best_per_owner(owner, cost)
        chosen[owner[best]] = Z[best]
        best_cost[owner[best]] = cost[best]
    has = np.isfinite(best_cost)
    rows = np.arange(n)
    final = np.where(has[:, None], chosen, space.X0)
    flipped, scores_after = space.flips(final)
    valid = space.respects(final, rows)
    distance, n_changed = space.distance(final, rows)
    return Recourse(final=final, found=has & flipped & valid, scores_after=np.asarray(scores_after),
                    distance=distance, n_changed=n_changed, broken=int((has & ~(flipped & valid)).sum()),
                    rounds=rounds)
