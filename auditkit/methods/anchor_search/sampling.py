"""D(z | A): the perturbation distribution of the anchor package, conditioned on an anchor."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.methods.anchor_search.predicates import Anchor, Condition, Predicate, anchor_conditions


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
