"""Metric functions on (target, scores) for explanation checks, with scikit-learn's definitions."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from auditkit.core.decisions import decide
from auditkit.engine.context import AuditData


@dataclass(frozen=True)
class Scorer:
    name: str
    greater_is_better: bool
    func: Callable[[np.ndarray, np.ndarray], float]  # (y, scores) -> figure


def scorer(name: str, data: AuditData) -> Scorer:
    """The named metric for this audit's task, computed from the audited scores."""
    from sklearn import metrics as skm

    threshold = data.threshold if data.threshold is not None else 0.5
    classes = [str(c) for c in (data.classes or [])]

    def decisions(s: np.ndarray) -> np.ndarray:
        return decide(s, threshold)

    binary: dict[str, Scorer] = {
        "roc_auc": Scorer("roc_auc", True, lambda y, s: skm.roc_auc_score(y, s)),
        "average_precision": Scorer("average_precision", True, lambda y, s: skm.average_precision_score(y, s)),
        "accuracy": Scorer("accuracy", True, lambda y, s: skm.accuracy_score(y, decisions(s))),
        "balanced_accuracy": Scorer("balanced_accuracy", True, lambda y, s: skm.balanced_accuracy_score(y, decisions(s))),
        "f1": Scorer("f1", True, lambda y, s: skm.f1_score(y, decisions(s), zero_division=0.0)),
        "log_loss": Scorer("log_loss", False, lambda y, s: skm.log_loss(y, np.clip(s, 0, 1), labels=[0, 1])),
        "brier_score": Scorer("brier_score", False, lambda y, s: skm.brier_score_loss(y, np.clip(s, 0, 1))),
    }
    multiclass: dict[str, Scorer] = {
        "accuracy": Scorer("accuracy", True, lambda y, s: skm.accuracy_score(y, np.asarray(classes)[s.argmax(1)])),
        "f1_macro": Scorer("f1_macro", True,
                           lambda y, s: skm.f1_score(y, np.asarray(classes)[s.argmax(1)], average="macro")),
        "log_loss": Scorer("log_loss", False, lambda y, s: skm.log_loss(y, s, labels=classes)),
    }
    regression: dict[str, Scorer] = {
        "r2": Scorer("r2", True, lambda y, s: skm.r2_score(y, s)),
        "mae": Scorer("mae", False, lambda y, s: skm.mean_absolute_error(y, s)),
        "rmse": Scorer("rmse", False, lambda y, s: float(np.sqrt(skm.mean_squared_error(y, s)))),
    }
    table: dict[str, Any] = {"binary": binary, "multiclass": multiclass, "regression": regression}[data.task]
    if name not in table:
        from auditkit.errors import CheckError

        raise CheckError(f"metric '{name}' does not apply to a {data.task} task; valid: {', '.join(table)}")
    return table[name]


DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "r2"}
