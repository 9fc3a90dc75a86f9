"""Models that are known functions (pickled for the tests; loaded in-process only)."""
from __future__ import annotations

import numpy as np
import pandas as pd


class FunctionModel:
    """A 'regressor' whose predict is a closed-form function of named columns."""

    _estimator_type = "regressor"

    def __init__(self, name: str, columns: list[str]):
        self.name = name
        self.feature_names_in_ = np.array(columns, dtype=object)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        x = {c: X[c].to_numpy(dtype=float) for c in self.feature_names_in_}
        if self.name == "linear_plus_square":  # f = 2 x1 + x2^2
            return 2 * x["x1"] + x["x2"] ** 2
        if self.name == "off_manifold":  # f = x1 + 10 (x1 - x2)^2: wild only where no data lie
            return x["x1"] + 10 * (x["x1"] - x["x2"]) ** 2
        if self.name == "interaction":  # f = x1 x2 + x3
            return x["x1"] * x["x2"] + x["x3"]
        if self.name == "exponential":  # f = exp(x1): overflows to inf for large inputs
            with np.errstate(over="ignore"):
                return np.exp(x["x1"])
        raise ValueError(self.name)
