"""Bernoulli KL confidence bounds and the KL-LUCB bandit (Kaufmann and Kalyanakrishnan 2013)."""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import numpy.typing as npt
from scipy.special import rel_entr

# KL-LUCB's exploration rate (Kaufmann and Kalyanakrishnan 2013, as the anchor authors use it)
LUCB_K: float = 405.5
LUCB_ALPHA: float = 1.1
BISECTION_STEPS: int = 40  # 2^-40 of the Pinsker bracket: far below any sampling error


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


def _pinsker_end(p: Any, level: Any, upper: bool) -> Any:
    """The end of the bracket that Pinsker's inequality (KL >= 2 (q - p)^2) gives, inside [0, 1]."""
    if np.ndim(p) == 0 and np.ndim(level) == 0:
        return min(1.0, p + math.sqrt(level / 2)) if upper else max(0.0, p - math.sqrt(level / 2))
    return np.minimum(1.0, p + np.sqrt(level / 2)) if upper else np.maximum(0.0, p - np.sqrt(level / 2))


def _kl_bound(p: npt.ArrayLike, level: npt.ArrayLike, upper: bool) -> Any:
    """The q on one side of p (above it when ``upper``) where KL(p || q) reaches ``level``, by
    bisection between p and the Pinsker end; the end returned is never inside the exact bound."""
    if np.ndim(p) == 0 and np.ndim(level) == 0:
        p_, level_ = min(max(float(p), 0.0), 1.0), float(level)  # type: ignore[arg-type]
        inner, outer = p_, _pinsker_end(p_, level_, upper)
        if _kl_scalar(p_, outer) <= level_:
            return outer
        for _ in range(BISECTION_STEPS):
            mid = (inner + outer) / 2
            if _kl_scalar(p_, mid) > level_:
                outer = mid
            else:
                inner = mid
        return outer
    p_arr = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    level_arr = np.broadcast_to(np.asarray(level, dtype=np.float64), p_arr.shape)
    end = _pinsker_end(p_arr, level_arr, upper)
    inner_arr, outer_arr = p_arr.copy(), end.copy()
    for _ in range(BISECTION_STEPS):
        mid_arr = (inner_arr + outer_arr) / 2
        over = kl_bernoulli(p_arr, mid_arr) > level_arr
        outer_arr, inner_arr = np.where(over, mid_arr, outer_arr), np.where(over, inner_arr, mid_arr)
    return np.where(kl_bernoulli(p_arr, end) <= level_arr, end, outer_arr)


def kl_upper_bound(p: npt.ArrayLike, level: npt.ArrayLike) -> Any:
    """max{q in [p, 1] : KL(p || q) <= level}, by bisection; the end returned is never below the exact bound.

    Pinsker's inequality (KL >= 2 (q - p)^2) brackets the bound below p + sqrt(level / 2).
    """
    return _kl_bound(p, level, upper=True)


def kl_lower_bound(p: npt.ArrayLike, level: npt.ArrayLike) -> Any:
    """min{q in [0, p] : KL(p || q) <= level}, by bisection; the end returned is never above the exact bound.

    Pinsker's inequality brackets the bound above p - sqrt(level / 2).
    """
    return _kl_bound(p, level, upper=False)


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
