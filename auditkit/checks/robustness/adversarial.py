"""``adversarial``: the smallest change of mutable numeric inputs that flips a decision (black box)."""
from __future__ import annotations

from typing import Any, Callable, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.core.decisions import decide
from auditkit.methods.groups import make_grouping
from auditkit.methods.probes import is_numeric
from auditkit.methods.values import as_resolution, resolution_of, snap_nearest
from auditkit.engine.context import AuditContext
from auditkit.core.registry import CheckParams, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot

EXAMPLES_LISTED = 50


class AdversarialParams(CheckParams):
    max_rows: int = Field(200, ge=5, description="Seeded sample of rows to attack.")
    features: Optional[list[str]] = Field(None, description="Mutable numeric features; default: every numeric "
                                                            "model input that is not protected or immutable.")
    immutable: list[str] = Field(default_factory=list, description="Inputs the search must not change.")
    epsilon: float = Field(0.1, gt=0, le=1, description="Budget, in units of each feature's observed range.")
    candidates: int = Field(20, ge=1, le=200, description="Nearest opposite-decision rows tried as starting points.")
    binary_steps: int = Field(12, ge=4, le=40, description="Bisection steps towards the decision boundary.")
    refine_rounds: int = Field(3, ge=0, le=20, description="Rounds of per-feature shrinking after the bisection.")
    gradient_rounds: int = Field(15, ge=0, le=50, description="Rounds of boundary-gradient steps (HopSkipJump-style).")
    gradient_samples: int = Field(24, ge=4, le=500, description="Decision probes per row to estimate each gradient.")
    tolerance: Optional[float] = Field(None, gt=0, description="Regression: a prediction moved by more than this (in "
                                                               "the target's units) counts as a flip; required for "
                                                               "a regressor, refused for a classifier.")


Project = Callable[[np.ndarray], np.ndarray]


class _Flip:
    """Whether a probe's decision differs from its attacked row's: a binary decision on the other
    side of the threshold, another predicted class (multiclass), or a prediction moved by more than
    the tolerance (regression). ``rows`` index the attacked rows this oracle covers."""

    def __init__(self, ctx: AuditContext, task: str, original: np.ndarray, threshold: float,
                 tolerance: Optional[float]):
        self.ctx, self.task, self.original = ctx, task, original
        self.threshold, self.tolerance = threshold, tolerance

    def subset(self, mask: np.ndarray) -> "_Flip":
        return _Flip(self.ctx, self.task, self.original[mask], self.threshold, self.tolerance)

    def outcome(self, scores: np.ndarray) -> np.ndarray:
        """The decision (binary, multiclass: class index) or prediction (regression) of scores."""
        if self.task == "multiclass":
            return np.asarray(scores).argmax(axis=1)
        if self.task == "regression":
            return np.asarray(scores, dtype=np.float64)
        return decide(scores, self.threshold)

    def differs(self, outcome: np.ndarray, original: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            assert self.tolerance is not None
            return np.abs(outcome - original) > self.tolerance
        return outcome != original

    def __call__(self, probe: pd.DataFrame, rows: Optional[np.ndarray] = None) -> np.ndarray:
        original = self.original if rows is None else self.original[rows]
        return self.differs(self.outcome(self.ctx.model.predict(probe)), original)


def _bisect(ctx: AuditContext, base: pd.DataFrame, start: np.ndarray, end: np.ndarray, columns: list[str],
            flipped: _Flip, steps: int, project: Project) -> np.ndarray:
    """For each row, the point on start -> end closest to start that still has the flipped decision.

    Every probe is projected onto the features' resolution first, and the point returned is
    the projection of the last probe that flipped (``end`` itself, on the grid, flips)."""
    low, high = np.zeros(len(start)), np.ones(len(start))
    for _ in range(steps):
        mid = (low + high) / 2
        probe = base.copy()
        probe[columns] = project(start + mid[:, None] * (end - start))
        ok = flipped(probe)
        high = np.where(ok, mid, high)
        low = np.where(ok, low, mid)
    return project(start + high[:, None] * (end - start))


def _drop_changes(ctx: AuditContext, base: pd.DataFrame, x0: np.ndarray, point: np.ndarray, columns: list[str],
                  flipped: _Flip) -> np.ndarray:
    """Feature by feature, put the row's own value back wherever the decision stays flipped
    without the change: the example lists only the features the flip needs."""
    for j in range(len(columns)):
        moved = point[:, j] != x0[:, j]
        if not moved.any():
            continue
        trial = point.copy()
        trial[:, j] = x0[:, j]
        probe = base.copy()
        probe[columns] = trial
        ok = flipped(probe) & moved
        point = np.where(ok[:, None], trial, point)
    return point


def _gradient_steps(ctx: AuditContext, base: pd.DataFrame, x0: np.ndarray, point: np.ndarray, columns: list[str],
                    flipped: _Flip, scale: np.ndarray, low: np.ndarray, high: np.ndarray,
                    params: AdversarialParams, project: Project) -> np.ndarray:
    """Walk along the decision boundary towards the row (as HopSkipJump does): estimate the
    boundary's normal from decision-only probes around the current point, step along it, and
    bisect back to the boundary; keep a step only when it comes closer to the row."""
    rng = ctx.rng
    n, k = point.shape
    for round_ in range(params.gradient_rounds):
        distance = np.sqrt((((point - x0) / scale) ** 2).sum(axis=1))
        delta = np.maximum(distance, 1e-3) * 0.05 / np.sqrt(k)
        directions = rng.normal(size=(n, params.gradient_samples, k))
        directions /= np.linalg.norm(directions, axis=2, keepdims=True)
        probes = point[:, None, :] + (delta[:, None, None] * directions) * scale
        probes = np.clip(probes, low, high)
        frame = base.iloc[np.repeat(np.arange(n), params.gradient_samples)].reset_index(drop=True)
        frame[columns] = probes.reshape(-1, k)
        adverse = flipped(frame, np.repeat(np.arange(n), params.gradient_samples)).reshape(n, params.gradient_samples)
        signs = np.where(adverse, 1.0, -1.0)
        signs -= signs.mean(axis=1, keepdims=True)  # baseline, as HopSkipJump's estimator
        gradient = (signs[:, :, None] * directions).mean(axis=1)
        norm = np.linalg.norm(gradient, axis=1, keepdims=True)
        usable = norm[:, 0] > 0
        gradient = np.where(usable[:, None], gradient / np.where(norm > 0, norm, 1.0), 0.0)
        step = distance / np.sqrt(round_ + 1)
        candidate = project(np.clip(point + (step[:, None] * gradient) * scale, low, high))
        probe = base.copy()
        probe[columns] = candidate
        still = flipped(probe)
        moved = _bisect(ctx, base, x0, np.where(still[:, None], candidate, point), columns, flipped,
                        params.binary_steps, project)
        closer = np.sqrt((((moved - x0) / scale) ** 2).sum(axis=1)) < distance
        point = np.where((closer & usable)[:, None], moved, point)
    return point


def _before_after(data: Any, before: Any, after: Any) -> dict[str, Any]:
    """An example's decision (or prediction) before and after, as the task names it."""
    if data.task == "multiclass":
        classes = [str(c) for c in (data.classes or [])]
        return {"decision_before": classes[int(before)], "decision_after": classes[int(after)]}
    if data.task == "regression":
        return {"prediction_before": float(before), "prediction_after": float(after)}
    return {"decision_before": int(before), "decision_after": int(after)}


CAVEATS = (
    'The search is black-box and decision-based: a flip it fails to find may still exist; the distances found are upper bounds on the smallest flip.',
)


@check("adversarial", probes_inputs=True, caveats=CAVEATS, family="robustness", params=AdversarialParams, needs_model=True,
       metrics=["success_rate_linf", "success_rate_l2", "median_perturbation_linf", "median_perturbation_l2",
                "queries_per_row", "median_perturbation_ratio[*]"],
       example={"params": {"epsilon": 0.05, "max_rows": 100}, "thresholds": {"success_rate_linf": {"max": 0.1}}})
def adversarial(ctx: AuditContext, params: AdversarialParams) -> CheckOutput:
    """Black-box, decision-based search for the smallest flip of each sampled decision.

    Over the mutable numeric features, each scaled by its observed range (so a perturbation of
    0.1 is a tenth of a feature's range), and staying inside the observed ranges: start from
    the nearest rows with the other decision, bisect towards the row to the decision boundary,
    shrink feature by feature while the decision stays flipped, then walk along the boundary
    towards the row with gradient directions estimated from decision-only probes, as
    HopSkipJump does (all candidates of all rows predicted in batches), and last put back every
    feature the flip does not need. Each feature is searched on its own resolution (the decimals
    of its observed values: an integer count moves by whole units), so every point probed and
    reported is one the data could hold. Every example reported is re-predicted to confirm the flip.
    ``success_rate_linf`` / ``_l2`` = share of rows flipped within ``params.epsilon`` in the
    L-inf / L2 norm (lower = more robust); ``median_perturbation_linf`` / ``_l2`` = median of
    the smallest flip found (rows without one count as infinitely far; null when most are);
    ``queries_per_row`` = model rows predicted per attacked row. By protected group:
    ``median_perturbation_ratio[attribute]`` = smallest group median / largest (1 = every
    group is as hard to flip; lower = some group is easier to flip). The search is an upper
    bound on the true minimal perturbation. A multiclass decision is the predicted class (a flip:
    another class becomes the most probable); a regressor's flip is a prediction moved by more
    than ``params.tolerance`` (the target's units; without it the check is skipped).

    References: Chen, Jordan and Wainwright (2020), HopSkipJumpAttack: a query-efficient
    decision-based attack, IEEE S&P.
    """
    data = ctx.data
    if data.predictions_mode:
        return CheckOutput.skip("predictions mode: the adversarial search needs to query the model")
    if data.task == "regression" and params.tolerance is None:
        return CheckOutput.skip("a regressor has no decision to flip: declare params.tolerance (in the target's "
                                "units) to count a prediction moved by more than it as a flip")
    if data.task != "regression" and params.tolerance is not None:
        raise CheckError(f"params.tolerance applies to regression models; a {data.task} model's flip is a changed "
                         "decision")
    if data.task == "binary" and data.decisions is None:
        return CheckOutput.skip("no decisions: the model has no threshold")
    frame = data.frame
    immutable = set(params.immutable) | set(data.protected)
    unknown = [c for c in params.immutable if c not in frame.columns]
    if unknown:
        raise CheckError(f"params.immutable names columns that are not in the data: {unknown}")
    if params.features is not None:
        ctx.require_features(params.features)
        bad = [f for f in params.features if not is_numeric(frame[f])]
        if bad:
            raise CheckError(f"adversarial perturbs numeric features only; categorical: {bad}")
        columns = [f for f in params.features if f not in immutable]
    else:
        columns = [f for f in data.features if is_numeric(frame[f]) and f not in immutable]
    if not columns:
        raise CheckError("no mutable numeric feature to perturb")
    notes: list[str] = []
    positions = ctx.sample_positions(params.max_rows, notes)
    low = frame[columns].min().to_numpy(dtype=np.float64)
    high = frame[columns].max().to_numpy(dtype=np.float64)
    # each feature searched on its own resolution: an integer count moves by whole units, a
    # ratio written with 3 decimals by 0.001 (a flip through 3 -> 3.0002 is no flip)
    digits = [resolution_of(frame[c]) for c in columns]

    def project(points: np.ndarray) -> np.ndarray:
        return snap_nearest(points, digits)

    scale = np.where(high > low, high - low, 1.0)
    attacked = frame.iloc[positions][data.features].reset_index(drop=True)
    complete = attacked[columns].notna().all(axis=1).to_numpy()
    if not complete.all():
        notes.append(f"{int((~complete).sum())} sampled rows with a missing mutable feature are not attacked")
    attacked, positions = attacked[complete].reset_index(drop=True), positions[complete]
    n = len(attacked)
    threshold = float(data.threshold if data.threshold is not None else 0.5)
    # what each row's decision is: binary 0/1, multiclass the predicted class's index, regression the prediction
    judge = _Flip(ctx, data.task, np.empty(0), threshold, params.tolerance)
    all_outcomes = judge.outcome(np.asarray(data.scores))
    original = all_outcomes[positions]
    flipped = _Flip(ctx, data.task, original, threshold, params.tolerance)
    start_queries = ctx.model.rows_predicted
    x0 = attacked[columns].to_numpy(dtype=np.float64)

    # 1. starting points: the nearest rows of the data with another decision (in range by construction)
    pool = frame[frame[columns].notna().all(axis=1)]
    pool_outcomes = all_outcomes[frame.index.get_indexer(pool.index)]
    pool_values = pool[columns].to_numpy(dtype=np.float64)
    start = np.full_like(x0, np.nan)
    k = min(params.candidates, len(pool_values))
    nearest = np.zeros((n, k), dtype=np.int64)
    usable = np.zeros((n, k), dtype=bool)
    for i in range(n):
        other = judge.differs(pool_outcomes, original[i])
        candidates = np.flatnonzero(other)
        if len(candidates) == 0:
            continue
        distance = (((x0[i] - pool_values[candidates]) / scale) ** 2).sum(axis=1)
        chosen = candidates[np.argsort(distance, kind="stable")[:k]]
        nearest[i, :len(chosen)], usable[i, :len(chosen)] = chosen, True
    rows = np.repeat(np.arange(n), k)
    tries = attacked.iloc[rows].reset_index(drop=True)
    tries[columns] = pool_values[nearest.ravel()]
    ok = (flipped(tries, rows).reshape(n, k) & usable) if n and k else np.zeros((n, k), dtype=bool)
    for i in range(n):
        hits = np.flatnonzero(ok[i])
        if len(hits):
            start[i] = pool_values[nearest[i, hits[0]]]
    found = ~np.isnan(start).any(axis=1)

    # 2. bisect to the boundary, 3. shrink feature by feature, bisect again
    adv = x0.copy()
    if found.any():
        base = attacked[found].reset_index(drop=True)
        sub = flipped.subset(found)
        point = _bisect(ctx, base, x0[found], start[found], columns, sub, params.binary_steps, project)
        for _ in range(params.refine_rounds):
            for j in range(len(columns)):
                trial = point.copy()
                trial[:, j] = x0[found][:, j] + 0.5 * (point[:, j] - x0[found][:, j])
                trial = project(trial)
                probe = base.copy()
                probe[columns] = trial
                ok = sub(probe)
                point = np.where(ok[:, None], trial, point)
            point = _bisect(ctx, base, x0[found], point, columns, sub, max(4, params.binary_steps // 2), project)
        point = _gradient_steps(ctx, base, x0[found], point, columns, sub, scale, low, high, params, project)
        point = _drop_changes(ctx, base, x0[found], point, columns, sub)
        adv[found] = point
    # verify every example once more, as reported
    check_frame = attacked.copy()
    check_frame[columns] = adv
    final = flipped.outcome(ctx.model.predict(check_frame))
    found &= flipped.differs(final, original)
    queries = ctx.model.rows_predicted - start_queries
    delta = (adv - x0) / scale
    linf = np.where(found, np.abs(delta).max(axis=1), np.inf)
    l2 = np.where(found, np.sqrt((delta ** 2).sum(axis=1)), np.inf)

    def median(values: np.ndarray) -> float | None:
        value = float(np.median(values)) if len(values) else None
        return value if value is not None and np.isfinite(value) else None

    metrics: dict[str, Metric] = {
        "success_rate_linf": Metric(float(np.mean(linf <= params.epsilon)), n=n, note=f"budget {params.epsilon:g}"),
        "success_rate_l2": Metric(float(np.mean(l2 <= params.epsilon)), n=n, note=f"budget {params.epsilon:g}"),
        "median_perturbation_linf": Metric(median(linf), n=n, note="in units of each feature's range"),
        "median_perturbation_l2": Metric(median(l2), n=n, note="in units of each feature's range"),
        "queries_per_row": Metric(queries / n if n else None, n=n),
    }
    groups: list[dict[str, Any]] = []
    for attribute in data.protected:
        grouping = make_grouping(frame.iloc[positions], [attribute], {})
        medians = []
        for g, label in enumerate(grouping.labels):
            members = grouping.codes == g
            m = median(l2[members])
            groups.append({"attribute": attribute, "group": label, "n": int(members.sum()),
                           "success_rate_l2": float(np.mean(l2[members] <= params.epsilon)),
                           "median_perturbation_l2": m})
            if m is not None and members.sum() >= 5:
                medians.append(m)
        metrics[f"median_perturbation_ratio[{attribute}]"] = Metric(
            min(medians) / max(medians) if len(medians) >= 2 and max(medians) > 0 else None, n=n,
            note="groups of 5 or more attacked rows")
    examples = []
    order = np.argsort(l2)
    for i in order[:EXAMPLES_LISTED]:
        if not found[i]:
            break
        # only the features that changed, each in its own resolution (an integer count as an int)
        changes = {c: [as_resolution(x0[i, j], digits[j]), as_resolution(adv[i, j], digits[j])]
                   for j, c in enumerate(columns) if adv[i, j] != x0[i, j]}
        examples.append({"row": int(frame.index[positions[i]]), **_before_after(data, original[i], final[i]),
                         "linf": float(linf[i]), "l2": float(l2[i]), "changes": changes})
    budgets = np.linspace(0, max(params.epsilon * 3, 0.05), 16)
    plot = Plot("line", "Share of decisions flipped within a budget", {
        "series": [{"name": "L-inf", "x": [float(b) for b in budgets], "y": [float(np.mean(linf <= b)) for b in budgets]},
                   {"name": "L2", "x": [float(b) for b in budgets], "y": [float(np.mean(l2 <= b)) for b in budgets]}],
        "x_label": "budget (share of each feature's range)", "y_label": "share of rows flipped", "n": n,
        "thresholds": {"max": params.epsilon}})
    notes.append(f"mutable features: {', '.join(columns)}; {queries:,} model rows predicted")
    if data.task == "multiclass":
        notes.append("multiclass: a flip is another class becoming the most probable")
    elif data.task == "regression":
        notes.append(f"regression: a flip is a prediction moved by more than {params.tolerance:g} "
                     f"({data.target or 'the target'}'s units)")
    tables: dict[str, list[dict[str, Any]]] = {"examples": examples}
    if groups:
        tables["by_group"] = groups
    return CheckOutput(metrics=metrics, tables=tables, plots=[plot], notes=notes)
