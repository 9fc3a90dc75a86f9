"""Influence of training rows on a model's scores: the leave-one-out change of the parameters of
a linear or logistic model in closed form, and leave-one-out refits of any estimator.

Closed form. With design rows z_i (the model's inputs after its fitted preprocessing, and a 1
for the intercept), parameters theta, and the objective

    F(theta) = c * sum_i loss_i(theta) + 1/2 * theta' P theta

(P = alpha on the coefficients, 0 on the intercept), removing row j moves the optimum by the
Newton step from theta on the objective without j, with the Hessian without j
(Sherman-Morrison):

    delta_j = c * r_j * H^-1 z_j / (1 - c * w_j * h_j),   h_j = z_j' H^-1 z_j

where r_j is the derivative of loss_j in the linear predictor and w_j its second derivative.
For squared loss (linear and ridge regression) the objective is quadratic and this is the exact
leave-one-out refit (the PRESS identity); for logistic loss it is Pregibon's (1981) one-step
approximation, whose error is of second order in the step (checked against actual refits in
the tests). Koh & Liang's (2017) influence function is the same step without the
1 / (1 - c w_j h_j) factor.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import numpy.typing as npt

from auditkit.core.decisions import decide

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class LinearFit:
    """A fitted linear or logistic model in closed-form terms."""

    theta: FloatArray  # coefficients, then the intercept when fitted
    fit_intercept: bool
    logistic: bool
    c: float  # weight of the loss sum (logistic regression's C; 1 for squared loss)
    alpha: float  # L2 penalty on the coefficients (1 for logistic regression; ridge's alpha; 0 for none)

    def design(self, X: FloatArray) -> FloatArray:
        X = np.asarray(X, dtype=np.float64)
        return np.column_stack([X, np.ones(len(X))]) if self.fit_intercept else X

    def penalty(self) -> FloatArray:
        diagonal = np.full(len(self.theta), self.alpha)
        if self.fit_intercept:
            diagonal[-1] = 0.0
        return np.diag(diagonal)

    def derivatives(self, Z: FloatArray, y: FloatArray, theta: FloatArray | None = None) -> tuple[FloatArray, FloatArray]:
        """(r, w): first and second derivatives of each row's loss in its linear predictor."""
        eta = Z @ (self.theta if theta is None else theta)
        if self.logistic:
            p = 1.0 / (1.0 + np.exp(-eta))
            return p - y, p * (1.0 - p)
        return eta - y, np.ones(len(y))

    def hessian(self, Z: FloatArray, w: FloatArray) -> FloatArray:
        return self.c * (Z * w[:, None]).T @ Z + self.penalty()

    def polished(self, X: FloatArray, y: FloatArray, *, steps: int = 25) -> tuple["LinearFit", float]:
        """The exact optimum of the objective, by Newton steps from ``theta`` (a solver's answer
        stops at its tolerance, and the closed form assumes a zero gradient). Returns the fit and
        the gradient norm left."""
        Z = self.design(X)
        theta = self.theta.copy()
        gradient_norm = np.inf
        for _ in range(steps):
            r, w = self.derivatives(Z, y, theta)
            gradient = self.c * Z.T @ r + self.penalty() @ theta
            gradient_norm = float(np.linalg.norm(gradient))
            step = np.linalg.solve(self.c * (Z * w[:, None]).T @ Z + self.penalty(), gradient)
            theta = theta - step
            if np.linalg.norm(step) < 1e-12 * max(1.0, float(np.linalg.norm(theta))):
                r, _ = self.derivatives(Z, y, theta)
                gradient_norm = float(np.linalg.norm(self.c * Z.T @ r + self.penalty() @ theta))
                break
        return LinearFit(theta, self.fit_intercept, self.logistic, self.c, self.alpha), gradient_norm

    def predict(self, Z: FloatArray, theta: FloatArray | None = None) -> FloatArray:
        eta = Z @ (self.theta if theta is None else theta)
        return 1.0 / (1.0 + np.exp(-eta)) if self.logistic else eta


def leave_one_out_steps(fit: LinearFit, X: FloatArray, y: FloatArray) -> FloatArray:
    """delta_j for every training row j, as a (rows, parameters) matrix: theta_{-j} - theta."""
    Z = fit.design(X)
    r, w = fit.derivatives(Z, y)
    H_inv_z = np.linalg.solve(fit.hessian(Z, w), Z.T).T  # row j: H^-1 z_j
    leverage = np.einsum("ij,ij->i", Z, H_inv_z)
    return (fit.c * r / (1.0 - fit.c * w * leverage))[:, None] * H_inv_z


@dataclass(frozen=True)
class RowInfluence:
    """How removing each training row moves the scores of the audited rows."""

    mean_abs_change: FloatArray  # per training row
    max_abs_change: FloatArray
    decisions_flipped: npt.NDArray[np.int64]


def score_changes(base: FloatArray, changed: Iterator[tuple[slice, FloatArray]], *, threshold: float | None
                  ) -> RowInfluence:
    """Summaries of (training rows, audited rows) score changes given chunk by chunk:
    ``changed`` yields (training-row slice, new scores of shape (chunk, audited rows))."""
    parts: list[tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]] = []
    base_decision = None if threshold is None else decide(base, threshold)
    for _, new in changed:
        delta = np.abs(new - base[None, :])
        flips = (np.zeros(len(new), dtype=np.int64) if base_decision is None
                 else (decide(new, threshold) != base_decision[None, :]).sum(axis=1))
        parts.append((delta.mean(axis=1), delta.max(axis=1), flips))
    return RowInfluence(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                        np.concatenate([p[2] for p in parts]).astype(np.int64))


def closed_form_influence(fit: LinearFit, X_train: FloatArray, y_train: FloatArray, X_audit: FloatArray, *,
                          threshold: float | None, positive_first: bool, chunk: int = 1024) -> RowInfluence:
    """Leave-one-out influence of every training row on the audited rows' scores (closed form)."""
    steps = leave_one_out_steps(fit, X_train, y_train)
    Z_audit = fit.design(X_audit)

    def audited(scores: FloatArray) -> FloatArray:
        return 1.0 - scores if positive_first else scores

    base = audited(fit.predict(Z_audit))

    def chunks() -> Iterator[tuple[slice, FloatArray]]:
        for start in range(0, len(steps), chunk):
            part = slice(start, start + chunk)
            thetas = fit.theta[None, :] + steps[part]  # (chunk, k)
            eta = thetas @ Z_audit.T
            yield part, audited(1.0 / (1.0 + np.exp(-eta)) if fit.logistic else eta)

    return score_changes(base, chunks(), threshold=threshold)


def refit_influence(fit_and_score: Callable[[npt.NDArray[np.int64] | None], FloatArray], rows: npt.NDArray[np.int64],
                    *, threshold: float | None) -> tuple[RowInfluence, FloatArray]:
    """Leave-one-out refits: ``fit_and_score(None)`` fits on every training row and scores the
    audited rows; ``fit_and_score(keep)`` fits on the rows ``keep`` only. Returns the influence
    of each row in ``rows`` and the baseline scores."""
    base = fit_and_score(None)

    def chunks() -> Iterator[tuple[slice, FloatArray]]:
        for i, row in enumerate(rows):
            yield slice(i, i + 1), fit_and_score(np.asarray([row]))[None, :]

    return score_changes(base, chunks(), threshold=threshold), base


def linear_fit_of(estimator: Any, positive_index: int) -> tuple[LinearFit | None, str]:
    """The closed-form description of a fitted scikit-learn linear model, or (None, why not)."""
    name = type(estimator).__name__
    params = estimator.get_params() if hasattr(estimator, "get_params") else {}
    coef = getattr(estimator, "coef_", None)
    if coef is None:
        return None, f"{name} is not a linear model"
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    intercept = np.atleast_1d(np.asarray(getattr(estimator, "intercept_", 0.0), dtype=np.float64))
    fit_intercept = bool(params.get("fit_intercept", True))
    if name == "LogisticRegression":
        if coef.shape[0] != 1:
            return None, "a multinomial logistic regression"
        l1_ratio = params.get("l1_ratio") or 0.0
        penalty = params.get("penalty", "l2")
        # scikit-learn >= 1.8 says the penalty with l1_ratio (penalty="deprecated"); before, with penalty
        if penalty in ("l1", "elasticnet") or (penalty == "deprecated" and l1_ratio > 0):
            return None, "an L1 or elastic-net penalty has no Hessian at zero coefficients"
        if params.get("solver") == "liblinear":
            return None, "liblinear penalises the intercept (intercept_scaling)"
        if params.get("class_weight") is not None:
            return None, "class weights"
        C = float(params.get("C", 1.0))
        unpenalised = penalty is None or penalty == "none" or not np.isfinite(C)
        theta = np.r_[coef[0], intercept[0]] if fit_intercept else coef[0].copy()
        return LinearFit(theta, fit_intercept, True, 1.0 if unpenalised else C, 0.0 if unpenalised else 1.0), \
            "logistic regression: one-step Newton leave-one-out (Pregibon 1981)"
    if name in ("LinearRegression", "Ridge"):
        if coef.shape[0] != 1:
            return None, "several outputs"
        alpha = float(params.get("alpha", 0.0)) if name == "Ridge" else 0.0
        if np.ndim(params.get("alpha", 0.0)) > 0:
            return None, "one alpha per target"
        theta = np.r_[coef[0], intercept[0]] if fit_intercept else coef[0].copy()
        return LinearFit(theta, fit_intercept, False, 1.0, alpha), \
            "least squares: exact leave-one-out (the PRESS identity)"
    return None, f"{name} has no closed form here"
