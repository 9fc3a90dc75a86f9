"""The anchors beam search (Ribeiro et al. 2018): the shortest set of predicates whose precision's
KL lower bound reaches tau, the candidates of each length picked by KL-LUCB."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.methods.anchor_search.bandit import kl_lower_bound, kl_lucb, kl_upper_bound
from auditkit.methods.anchor_search.predicates import Anchor, CoverageIndex, Predicate, is_redundant
from auditkit.methods.anchor_search.sampling import ConditionalSampler


@dataclass(frozen=True)
class SearchSettings:
    """The anchor package's settings: ``tau`` (precision to reach), ``delta`` (error probability
    of the bounds), ``epsilon`` (KL-LUCB tolerance), beam width, samples per draw, most
    predicates, and the budget of model rows for one explained row."""

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


def explain_row(x: pd.Series, predicates: Sequence[Predicate], pool: pd.DataFrame, audit_X: pd.DataFrame,
                same_decision: Callable[[pd.DataFrame], npt.NDArray[np.bool_]], settings: SearchSettings,
                rng: np.random.Generator) -> SearchResult:
    """The anchor of row ``x`` among its ``predicates``: perturbations drawn from D(z | A) over
    the background ``pool``, ``same_decision(frame)`` telling which get x's decision (one model
    call per batch), coverage exact over the audit rows ``audit_X``."""
    sampler = ConditionalSampler(pool, x, predicates)

    def pull(anchors: list[Anchor], n: int) -> npt.NDArray[np.int64]:
        same = same_decision(sampler.sample(anchors, n, rng))
        return same.reshape(len(anchors), n).sum(axis=1)

    return beam_search(predicates, pull, CoverageIndex(audit_X, predicates), settings)
