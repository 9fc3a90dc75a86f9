"""The adapter interface and the factory that picks one from a model spec.

Every format answers the same call, ``predict(X) -> scores``:

* binary: the audited (positive-class) score, shape ``(n,)``;
* multiclass: probabilities, shape ``(n, k)``, columns in ``classes`` order;
* regression: the predicted values, shape ``(n,)``.

``score_kind`` says what the score is (``probability``, ``decision_function``, ``label`` or
``value``), so checks know whether e.g. a log-loss is meaningful.

An adapter is rebuilt in each worker from its :class:`AdapterSpec` (an ONNX session cannot
be pickled), so the spec holds everything needed to load it again, pins included. The parent
reads the model file once, hashes those bytes, checks the pin and loads those bytes; the spec
then carries them (:class:`ModelBytes`) to every worker, which re-hashes them and never opens
the path: a file swapped on disk after the check is never loaded.
"""
from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.errors import CheckError, ModelLoadError, Source
from auditkit.core.hashing import sha256_of as core_sha256_of

Format = Literal["onnx", "pickle", "joblib", "skops", "predictions"]
ScoreKind = Literal["probability", "decision_function", "label", "value"]
Task = Literal["binary", "multiclass", "regression"]

EXTENSIONS: dict[str, Format] = {
    ".onnx": "onnx", ".pkl": "pickle", ".pickle": "pickle", ".joblib": "joblib", ".skops": "skops",
}


@dataclass(frozen=True)
class ModelBytes:
    """The model as the parent read it: the only bytes any process loads.

    ``data`` is left out of equality, hashing and repr (the spec is a cache key and is printed
    in tracebacks; the digest stands for the bytes there).
    """

    data: bytes = field(compare=False, repr=False)
    sha256: str  # of ``data``, recorded when the parent read it; every worker re-checks it
    file_sha256: str  # of the model file itself (differs from ``sha256`` when ONNX external data was embedded)
    external_data: tuple[tuple[str, str], ...] = ()  # (location, sha256) of ONNX external data files embedded in data


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
    payload: ModelBytes | None = None  # set by load_adapter in the parent; workers load only this


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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


sha256_of = core_sha256_of  # where adapters' callers have always found it


PROBABILITY_SLACK = 1e-6  # float rounding allowed outside [0, 1] for a probability


class ModelOutputError(CheckError):
    """The model's output does not fit its input (inside a check, that check ends as ``error``)."""


class ModelAdapter(ABC):
    """One batched prediction interface, whatever the model's format."""

    spec: AdapterSpec
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
        self.rounded_values = 0  # probe values that were not whole numbers, fed to an integer input rounded

    def integer_inputs(self) -> list[str]:
        """The features the model can only take as whole numbers (an ONNX int64 input): a probe
        value between two integers reaches the model rounded to the nearest one."""
        return []

    @abstractmethod
    def _predict_batch(self, X: pd.DataFrame) -> npt.NDArray[Any]:
        """Raw output for one batch: (n,) or (n, k)."""

    def predict_raw(self, X: pd.DataFrame, *, batch_size: int = 65_536) -> npt.NDArray[Any]:
        """All of the model's scores (every class for classifiers), in batches.

        Raises ModelOutputError (a CheckError) when the output's shape does not fit the input (a row too few, a
        column per class too many): a check must never index past what the model returned.
        """
        n = len(X)
        if n == 0:
            return np.empty((0,) if self.task != "multiclass" else (0, len(self.classes or [])))
        parts = []
        for start in range(0, n, batch_size):
            batch = X.iloc[start:start + batch_size]
            out = np.asarray(self._predict_batch(batch))
            problem = self.shape_problem(out, len(batch))
            if problem is not None:
                raise ModelOutputError(f"the model {self.path} returned {problem}")
            parts.append(out)
        self.rows_predicted += n
        return np.concatenate(parts, axis=0)

    def shape_problem(self, out: npt.NDArray[Any], n_rows: int) -> str | None:
        """What is wrong with the shape of ``out`` for ``n_rows`` input rows, or None."""
        if out.ndim not in (1, 2):
            return f"scores of shape {out.shape} for {n_rows:,} input rows; expected (rows,) or (rows, columns)"
        if out.shape[0] != n_rows:
            return f"{out.shape[0]:,} rows of scores for {n_rows:,} input rows; expected one row per input row"
        if out.ndim == 1:
            if self.task == "multiclass" and self.score_kind != "label":
                return (f"one score per row for a classifier with {len(self.classes or [])} classes; "
                        "expected one column per class")
            return None
        columns = out.shape[1]
        if self.score_kind == "label" or self.task == "regression":
            what = "labels" if self.score_kind == "label" else "values"
            return None if columns == 1 else f"{columns} columns of {what}; expected one per row"
        # a binary task audits two classes, whatever labels a graph without class names was given
        expected = 2 if self.task == "binary" else len(self.classes or [])
        if columns != expected:
            named = self.classes is not None and len(self.classes) == expected
            classes = f" ({', '.join(map(str, self.classes or []))})" if named else ""
            single = ", or a 1-d array of positive-class scores" if self.task == "binary" else ""
            plural = "s" if columns != 1 else ""
            return f"{columns} score column{plural}; expected {expected}, one per class{classes}{single}"
        return None

    def predict(self, X: pd.DataFrame, *, batch_size: int = 65_536) -> npt.NDArray[np.float64]:
        """The audited score: positive-class score (binary), probabilities (multiclass), values."""
        raw = self.predict_raw(X, batch_size=batch_size)
        return self._select_scores(raw)

    def predict_base(self, X: pd.DataFrame) -> npt.NDArray[np.float64]:
        """The base prediction on the audit data, validated once before any check.

        Every fault is a ModelLoadError (exit 2) naming the model file: a shape that does not
        fit the data, a score that is not a finite number, a probability outside [0, 1].
        """
        source = Source(self.spec.policy_file, self.spec.policy_key)
        try:
            raw = self.predict_raw(X)
        except ModelOutputError as exc:  # on the audit data itself: the model, not a check, is at fault
            raise ModelLoadError(exc.message, source=source) from None
        scores = self._select_scores(raw)
        if len(X) == 0 or raw.dtype.kind not in "biuf":  # labels as text: the scores are 0/1 comparisons
            return scores
        values = np.asarray(raw, dtype=np.float64).reshape(len(X), -1)
        bad_rows = ~np.isfinite(values).all(axis=1)
        if bad_rows.any():
            raise ModelLoadError(
                f"the model {self.path} returned scores that are not finite numbers (NaN or infinity) for "
                f"{int(bad_rows.sum()):,} of {len(X):,} audit rows, first at row {X.index[int(np.argmax(bad_rows))]}",
                source=source)
        if self.score_kind == "probability":
            # float32 models and soft-max rounding stray a hair outside [0, 1]
            outside = ((values < -PROBABILITY_SLACK) | (values > 1 + PROBABILITY_SLACK)).any(axis=1)
            if outside.any():
                raise ModelLoadError(
                    f"the model {self.path} returned probabilities outside [0, 1] (from {values.min():g} to "
                    f"{values.max():g}) for {int(outside.sum()):,} of {len(X):,} audit rows, "
                    f"first at row {X.index[int(np.argmax(outside))]}", source=source)
        return scores

    def _select_scores(self, raw: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        if raw.ndim == 2 and raw.shape[1] == 1 and (self.score_kind == "label" or self.task == "regression"):
            raw = raw[:, 0]  # one label or value per row, as a column
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
    """Build the adapter for ``spec`` (the factory; the only place that knows the formats).

    Without ``spec.payload`` (the parent), the model file is read once, hashed and checked
    against the pin; with it (a worker), the bytes the parent checked are hashed again and the
    path is never opened. Either way only those bytes are loaded, and the adapter's ``spec``
    carries them on.
    """
    if spec.format == "predictions":
        from auditkit.adapters.predictions import PredictionsAdapter

        return PredictionsAdapter(spec)
    if spec.payload is None:
        spec = replace(spec, payload=read_model(spec))
        if spec.format == "onnx":
            from auditkit.adapters.onnx import embed_external_data

            spec = embed_external_data(spec)
    else:
        recheck_payload(spec)
    if spec.format == "onnx":
        from auditkit.adapters.onnx import OnnxAdapter

        return OnnxAdapter(spec)
    from auditkit.adapters.sklearn import SklearnAdapter

    return SklearnAdapter(spec)


def read_model(spec: AdapterSpec) -> ModelBytes:
    """The model file's bytes, read once and checked against the policy's pin."""
    assert spec.path is not None
    path = Path(spec.path)
    source = Source(spec.policy_file, spec.policy_key)
    if not path.exists():
        raise ModelLoadError(f"model file not found: {path}", source=source)
    if not path.is_file():
        raise ModelLoadError(f"model path is not a file: {path}", source=source)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read the model file {path}: {exc.strerror or exc}", source=source) from None
    if not data:
        raise ModelLoadError(f"model file is empty: {path}", source=source)
    digest = sha256_bytes(data)
    if spec.sha256 and spec.sha256.lower() != digest:
        raise ModelLoadError(
            f"sha256 mismatch for {path}: the policy pins {spec.sha256.lower()}, the file has {digest}. "
            "The file changed since it was pinned: review it before updating the pin.",
            source=Source(spec.policy_file, "model.sha256"))
    return ModelBytes(data=data, sha256=digest, file_sha256=digest)


def recheck_payload(spec: AdapterSpec) -> None:
    """Refuse model bytes that are not the ones the parent hashed (and, when pinned, checked)."""
    assert spec.payload is not None
    digest = sha256_bytes(spec.payload.data)
    # the pin too: a payload is the model file itself whenever there is a pin (no external data)
    expected = spec.sha256.lower() if spec.sha256 else spec.payload.sha256
    if digest != spec.payload.sha256 or digest != expected:
        raise ModelLoadError(
            f"the bytes of {spec.path} handed to this process have sha256 {digest}, not the {expected} that was "
            "checked: refusing to load them", source=Source(spec.policy_file, spec.policy_key))
