"""Binary 'classifiers' whose score is a known function of one column (pickled for the noise tests)."""
from __future__ import annotations

import numpy as np
import pandas as pd


class OneColumnClassifier:
    """P(positive) = logistic(x[column] - centre): the decision ``>= 0.5`` is ``x >= centre``."""

    def __init__(self, columns: list[str], column: str, centre: float = 0.0):
        self.feature_names_in_ = np.array(columns, dtype=object)
        self.classes_ = np.array([0, 1])
        self.column = column
        self.centre = centre

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = X[self.column].to_numpy(dtype=float)
        p = 1.0 / (1.0 + np.exp(-(x - self.centre)))
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)
