"""scikit-learn-style estimators from pickle, joblib or skops files.

Unpickling runs whatever code the file names, so a pickle or joblib file is opened only
when its SHA-256 matches the policy's ``model.sha256`` pin, or when the user passes
``--trust-pickle``. skops files are loaded with skops' safe loader and an explicit list of
trusted types: skops' defaults plus ``model.trusted_types``, never ``trusted=True``.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.adapters.base import AdapterSpec, ModelAdapter, sha256_of
from auditkit.errors import ModelLoadError, Source

UNTRUSTED_PICKLE_HELP = (
    "Unpickling runs arbitrary code: a crafted .pkl/.joblib file can take over this machine the "
    "moment it is loaded, before any check runs. auditkit opens one only when you vouch for it. "
    "Either pin the file you reviewed by adding to the policy\n"
    "    model:\n      sha256: {digest}\n"
    "or pass --trust-pickle for a file you made yourself. Safer still: save the model with skops "
    "(.skops) or export it to ONNX."
)


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SklearnAdapter(ModelAdapter):
    def __init__(self, spec: AdapterSpec):
        super().__init__()
        self.spec = spec
        self.format = spec.format
        self.path = spec.path
        path = Path(spec.path or "")
        source = Source(spec.policy_file, spec.policy_key)
        self.sha256 = sha256_of(path)
        if spec.sha256 and spec.sha256.lower() != self.sha256:
            raise ModelLoadError(
                f"sha256 mismatch for {path}: the policy pins {spec.sha256.lower()}, the file has {self.sha256}. "
                "The file changed since it was pinned: review it before updating the pin.",
                source=Source(spec.policy_file, "model.sha256"))
        self.estimator = self._load(path, source)
        self._setup(source)
        self.positive_class = spec.positive_class

    def _load(self, path: Path, source: Source) -> Any:
        if self.format in ("pickle", "joblib"):
            if not (self.spec.sha256 or self.spec.trust_pickle):
                raise ModelLoadError(
                    f"refusing to unpickle {path}: it is neither pinned by model.sha256 nor trusted with --trust-pickle",
                    source=source, hint=UNTRUSTED_PICKLE_HELP.format(digest=self.sha256))
            try:
                if self.format == "joblib":
                    import joblib

                    return joblib.load(path)
                with open(path, "rb") as handle:
                    return pickle.load(handle)  # noqa: S301 - gated above by pin or explicit trust
            except Exception as exc:
                raise ModelLoadError(f"cannot load {path} as {self.format}: {type(exc).__name__}: {_short(exc)}",
                                     source=source) from None
        # skops
        try:
            import skops.io as sio

            untrusted = sio.get_untrusted_types(file=path)
        except Exception as exc:
            raise ModelLoadError(f"cannot read {path} as a skops file: {type(exc).__name__}: {_short(exc)}",
                                 source=source) from None
        allowed = set(self.spec.trusted_types)
        refused = [t for t in untrusted if t not in allowed]
        if refused:
            raise ModelLoadError(
                f"{path} contains types that skops does not trust by default: {', '.join(refused)}",
                source=Source(self.spec.policy_file, "model.trusted_types"),
                hint="review them (they can run code when loaded), then list them under model.trusted_types")
        try:
            return sio.load(path, trusted=[t for t in untrusted if t in allowed])
        except Exception as exc:
            raise ModelLoadError(f"cannot load {path} with skops: {type(exc).__name__}: {_short(exc)}",
                                 source=source) from None

    def _setup(self, source: Source) -> None:
        est = self.estimator
        if not hasattr(est, "predict"):
            raise ModelLoadError(f"the object in {self.path} ({type(est).__name__}) has no predict method", source=source)
        names = getattr(est, "feature_names_in_", None)
        self.input_features = [str(n) for n in names] if names is not None else None
        self.classes = list(getattr(est, "classes_", [])) or None
        if self.classes is not None:
            self.classes = [c.item() if hasattr(c, "item") else c for c in self.classes]
        from sklearn.base import is_regressor

        def regressor(estimator: Any) -> bool:
            # a scikit-learn-style object need not inherit BaseEstimator (is_regressor then raises)
            try:
                return bool(is_regressor(estimator))
            except Exception:
                return getattr(estimator, "_estimator_type", None) == "regressor"

        name = type(est).__name__
        if hasattr(est, "steps"):
            name = " > ".join(type(step).__name__ for _, step in est.steps)
        if self.classes is not None and hasattr(est, "predict_proba"):
            self._method, self.score_kind = "predict_proba", "probability"
        elif self.classes is not None and hasattr(est, "decision_function"):
            self._method, self.score_kind = "decision_function", "decision_function"
        elif self.classes is not None:
            self._method, self.score_kind = "predict", "label"
        else:
            self._method, self.score_kind = "predict", "value"
        if self.classes is not None:
            self.task = "binary" if len(self.classes) == 2 else "multiclass"
        else:
            self.task = "regression" if (regressor(est) or self.score_kind == "value") else "binary"
        self.kind = f"{self.format}: {name} via {self._method}"

    def _frame(self, X: pd.DataFrame) -> Any:
        if self.input_features is not None:
            return X[self.input_features]
        columns = list(self.spec.feature_names or X.columns)
        return X[columns].to_numpy()

    def _predict_batch(self, X: pd.DataFrame) -> npt.NDArray[Any]:
        out = np.asarray(getattr(self.estimator, self._method)(self._frame(X)))
        if self._method == "decision_function" and out.ndim == 1 and self.task == "binary":
            # decision_function's sign refers to classes_[1]; make it a 2-column score for selection
            out = np.column_stack([-out, out])
        return out
