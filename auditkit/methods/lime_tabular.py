"""LIME on tabular rows through the ``lime`` package, with its regression weights read correctly.

One explainer, seeded once, explains the rows in order: exactly the loop of lime's own
documentation, so the same seed and background give the same weights as that loop. In
regression mode lime keeps the local fit under label 1 and its negation under label 0
(``local_exp[0]``); reading the first key, as a classifier's explanation is read, flips every
sign.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class LimeRow:
    weights: np.ndarray  # one weight per feature (0 for a feature lime did not select)
    intercept: float
    fidelity: float  # R^2 of the weighted local fit
    local_prediction: float  # the local fit's value at the row


def lime_explainer(training: np.ndarray, features: list[str], categorical: list[int], random_state: int):
    """lime's tabular explainer for a regression on ``training``'s statistics (quartile bins)."""
    from lime.lime_tabular import LimeTabularExplainer

    return LimeTabularExplainer(training, mode="regression", feature_names=features,
                                categorical_features=categorical, discretize_continuous=True,
                                random_state=random_state)


def explain_rows(explainer, rows: np.ndarray, predict: Callable[[np.ndarray], np.ndarray], *,
                 num_samples: int) -> list[LimeRow]:
    """Explain each row in order with ``num_samples`` perturbations (one batch of predictions per row)."""
    n_features = rows.shape[1]
    out = []
    for row in rows:
        explanation = explainer.explain_instance(row, predict, num_features=n_features, num_samples=num_samples)
        weights = np.zeros(n_features)
        for index, weight in explanation.local_exp[1]:
            weights[index] = weight
        local = explanation.local_pred
        out.append(LimeRow(weights=weights, intercept=float(explanation.intercept[1]),
                           fidelity=float(explanation.score),
                           local_prediction=float(np.ravel(local)[0]) if local is not None else float("nan")))
    return out
