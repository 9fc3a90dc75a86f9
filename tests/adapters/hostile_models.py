"""scikit-learn-style binary classifiers whose output is wrong on purpose (issue #13, item 6).

Importable by name, so that a pickle of one can be loaded by the audit (in a worker too). Each
scores rows from ``debt_ratio`` with a logistic curve, then breaks the output in one way.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount",
            "employment_years", "n_open_accounts"]


class HostileClassifier:
    """A well-behaved binary classifier on ``FEATURES``; subclasses break ``predict_proba``."""

    def __init__(self, base_rows: int = 0) -> None:
        self.feature_names_in_ = np.array(FEATURES, dtype=object)
        self.classes_ = np.array([0, 1])
        self.base_rows = base_rows  # the audit's row count, for models that misbehave on other inputs only

    def _positive(self, X: pd.DataFrame) -> np.ndarray:
        debt = pd.to_numeric(X["debt_ratio"], errors="coerce").fillna(0.35).to_numpy(dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-(debt - 0.35) * 10.0))

    def _proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self._positive(X)
        return np.column_stack([1.0 - p, p])

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self._proba(X)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self._proba(X)[:, 1] >= 0.5).astype(np.int64)


class FiveColumns(HostileClassifier):
    """Two classes, five probability columns."""

    def predict_proba(self, X: pd.DataFrame) -> Any:
        p = self._positive(X)
        return np.column_stack([1.0 - p, p, np.zeros((len(X), 3))])


class OneRowShort(HostileClassifier):
    """One row of probabilities fewer than rows asked for."""

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return self._proba(X)[:-1]


class NaNScores(HostileClassifier):
    """NaN probabilities for rows 3 and 7 of every call."""

    def predict_proba(self, X: pd.DataFrame) -> Any:
        proba = self._proba(X)
        proba[[3, 7]] = np.nan
        return proba


class OverOne(HostileClassifier):
    """"Probabilities" of 1.7 (and -0.7) for every row."""

    def predict_proba(self, X: pd.DataFrame) -> Any:
        return np.tile([-0.7, 1.7], (len(X), 1))


class ShortOffBase(HostileClassifier):
    """Right on the audit rows; one row short on any other input (a check's perturbed copies)."""

    def predict_proba(self, X: pd.DataFrame) -> Any:
        proba = self._proba(X)
        return proba if len(X) == self.base_rows else proba[:-1]


class WideOffBase(HostileClassifier):
    """Right on the audit rows; five columns on any other input."""

    def predict_proba(self, X: pd.DataFrame) -> Any:
        proba = self._proba(X)
        return proba if len(X) == self.base_rows else np.column_stack([proba, np.zeros((len(X), 3))])
