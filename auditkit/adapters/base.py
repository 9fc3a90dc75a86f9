"""The adapter interface and the factory that picks one from a model spec.

Every format answers the same call, ``predict(X) -> scores``:

* binary: the audited (positive-class) score, shape ``(n,)``;
* multiclass: probabilities, shape ``(n, k)``, columns in ``classes`` order;
* regression: the predicted values, shape ``(n,)``.

``score_kind`` says what the score is (``probability``, ``decision_function``, ``label`` or
``value``), so checks know whether e.g. a log-loss is meaningful.

An adapter is rebuilt in each worker from its :class:`AdapterSpec` (an ONNX session cannot
be pickled), so the spec holds everything needed to load it again, pins included.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.errors import ModelLoadError, Source

Format = Literal["onnx", "pickle", "joblib", "skops", "predictions"]
ScoreKind = Literal["probability", "decision_function", "label", "value"]
Task = Literal["binary", "multiclass", "regression"]

EXTENSIONS: dict[str, Format] = {
    ".onnx": "onnx", ".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib", ".skops": "skops",
}


@dataclass(frozen=True)
class AdapterSpec:
    """All that is needed to (re)build an adapter, in the parent or in a worker."""

    format: Format
    path: str | None
    sha256: str | None = None  # the pin from the policy
    trust_pickle: bool = False
    trusted_types: tuple[str, ...] = ()
    feature_names: tuple[str, ...] | None = None  # column order for models that take a plain matrix
    positive_class: Any = None
    intra_op_threads: int = 1
    policy_key: str = "model.path"
    policy_file: str | None = None


def infer_format(path: str | None, declared: str | None) -> Format:
    if declared:
        return declared  # type: ignore[return-value]
    if path is None:
        return "predictions"
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise ModelLoadError(
        f"cannot tell the model format from the extension '{suffix or '(none)'}'; "
        f"set model.format to one of onnx, pickle, joblib, skops, predictions",
        source=Source(path, "model.format"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class ModelAdapter(ABC):
    """One batched prediction interface, whatever the model's format."""

    format: Format
    path: str | None
    sha256: str | None
    task: Task
    classes: list[Any] | None  # class labels, in the order of the probability columns
    score_kind: ScoreKind
    input_features: list[str] | None  # the columns the model needs, when it says so itself
    kind: str  # human-readable description ("onnx: TreeEnsembleClassifier, ZipMap probabilities")
    can_query: bool = True

    def __init__(self) -> None:
        self.rows_predicted = 0  # every row sent to the model, for query-count figures

    @abstractmethod
    def _predict_batch(self, X: pd.DataFrame) -> npt.NDArray[Any]:
        """Raw output for one batch: (n,) or (n, k)."""

    def predict_raw(self, X: pd.DataFrame, *, batch_size: int = 65_536) -> npt.NDArray[Any]:
        """All of the model's scores (every class for classifiers), in batches."""
        n = len(X)
        if n == 0:
            return np.empty((0,) if self.task != "multiclass" else (0, len(self.classes or [])))
        parts = [self._predict_batch(X.iloc[start:start + batch_size]) for start in range(0, n, batch_size)]
        self.rows_predicted += n
        return np.concatenate(parts, axis=0)

    def predict(self, X: pd.DataFrame, *, batch_size: int = 65_536) -> npt.NDArray[np.float64]:
        """The audited score: positive-class score (binary), probabilities (multiclass), values."""
        raw = self.predict_raw(X, batch_size=batch_size)
        return self._select_scores(raw)

    def _select_scores(self, raw: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        if self.task == "binary" and raw.ndim == 2:
            column = self.positive_index()
            return np.asarray(raw[:, column], dtype=np.float64)
        if self.task == "binary" and self.score_kind == "label":
            return (np.asarray(raw).astype(str) == str(self.positive_class_label())).astype(np.float64)
        return np.asarray(raw, dtype=np.float64)

    # ------------------------------------------------------------------ classes
    positive_class: Any = None

    def positive_class_label(self) -> Any:
        if self.positive_class is not None:
            return self.positive_class
        if self.classes is not None and len(self.classes) == 2:
            return self.classes[1]
        return 1

    def positive_index(self) -> int:
        if self.classes is None:
            return 1
        wanted = self.positive_class_label()
        for i, label in enumerate(self.classes):
            if label == wanted or str(label) == str(wanted):
                return i
        raise ModelLoadError(
            f"positive_class {wanted!r} is not one of the model's classes {list(self.classes)}",
            source=Source(self.path, "model.positive_class"))

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "format": self.format, "sha256": self.sha256, "task": self.task,
                "classes": [str(c) for c in self.classes] if self.classes is not None else None,
                "score_kind": self.score_kind, "kind": self.kind,
                "input_features": self.input_features}


def load_adapter(spec: AdapterSpec, *, data_columns: list[str] | None = None) -> ModelAdapter:
    """Build the adapter for ``spec`` (the factory; the only place that knows the formats)."""
    if spec.format == "predictions":
        from auditkit.adapters.predictions import PredictionsAdapter

        return PredictionsAdapter(spec)
    assert spec.path is not None
    path = Path(spec.path)
    source = Source(spec.policy_file, spec.policy_key)
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}", source=source)
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}", source=source)
    if path.stat().st_size == 0:
        raise ModelLoadError(f"model file is empty: {path}", source=source)
    if spec.format == "onnx":
        from auditkit.adapters.onnx import OnnxAdapter

        return OnnxAdapter(spec)
    from auditkit.adapters.sklearn import SklearnAdapter

    return SklearnAdapter(spec)
