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


class OneColumnRegressor:
    """predict = x[column]: a prediction moves exactly as much as the noise on that column."""

    _estimator_type = "regressor"

    def __init__(self, columns: list[str], column: str):
        self.feature_names_in_ = np.array(columns, dtype=object)
        self.column = column

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X[self.column].to_numpy(dtype=float)


class BandClassifier:
    """Three classes by bands of one column: class 0 below ``low``, 1 in [low, high), 2 from ``high``
    (probability 0.8 on the band's class, 0.1 on each other one)."""

    def __init__(self, columns: list[str], column: str, low: float, high: float):
        self.feature_names_in_ = np.array(columns, dtype=object)
        self.classes_ = np.array(["a", "b", "c"], dtype=object)
        self.column, self.low, self.high = column, low, high

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x = X[self.column].to_numpy(dtype=float)
        band = (x >= self.low).astype(int) + (x >= self.high).astype(int)
        out = np.full((len(x), 3), 0.1)
        out[np.arange(len(x)), band] = 0.8
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class LinearProbabilityClassifier:
    """Three classes whose probabilities are 1/3 + a x1 + b x2 (+ c x1 x2), 1/3 minus the same, and 1/3:
    a known function for the multiclass explanation tests (inputs kept small, so all stay in [0, 1])."""

    def __init__(self, columns: list[str], a: float, b: float, c: float = 0.0):
        self.feature_names_in_ = np.array(columns, dtype=object)
        self.classes_ = np.array(["down", "flat", "up"], dtype=object)
        self.a, self.b, self.c = a, b, c

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        x1, x2 = X["x1"].to_numpy(dtype=float), X["x2"].to_numpy(dtype=float)
        move = self.a * x1 + self.b * x2 + self.c * x1 * x2
        return np.column_stack([1 / 3 - move, np.full(len(x1), 1 / 3), 1 / 3 + move])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]
