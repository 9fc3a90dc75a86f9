"""scikit-learn-style estimators from pickle, joblib or skops files.

Unpickling runs whatever code the file names, so a pickle or joblib file is opened only
when its SHA-256 matches the policy's ``model.sha256`` pin, or when the user passes
``--trust-pickle``. skops files are loaded with skops' safe loader and an explicit list of
trusted types: skops' defaults plus ``model.trusted_types``, never ``trusted=True``.

Every format is loaded from the bytes that were hashed (``spec.payload``), never from the
path. joblib's legacy format (joblib < 0.10) is refused: its ``NDArrayWrapper`` makes joblib
``np.load`` a sibling file, with pickles allowed, that no pin covers.
"""
from __future__ import annotations

import inspect
import io
import pickle
import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.adapters.base import AdapterSpec, ModelAdapter
from auditkit.errors import ModelLoadError, Source

UNTRUSTED_PICKLE_HELP = (
    "Unpickling runs arbitrary code: a crafted .pkl/.joblib file can take over this machine the "
    "moment it is loaded, before any check runs. auditkit opens one only when you vouch for it. "
    "Either pin the file you reviewed by adding to the policy\n"
    "    model:\n      sha256: {digest}\n"
    "or pass --trust-pickle for a file you made yourself. Safer still: save the model with skops "
    "(.skops) or export it to ONNX."
)

# joblib < 0.10 stored arrays in sibling files that these classes read back (np.load with
# allow_pickle=True, or a zlib file): bytes outside the file that was hashed and pinned.
LEGACY_JOBLIB_NAMES = frozenset({"NDArrayWrapper", "ZNDArrayWrapper", "ZipNumpyUnpickler", "load_compatibility",
                                 "read_zfile"})


class LegacyJoblibFormat(pickle.UnpicklingError):
    """The stream uses joblib's legacy format, which loads files beside the model."""


def refuse_legacy_joblib(module: str, name: str) -> None:
    """Raise LegacyJoblibFormat for a reference to joblib's legacy loading machinery."""
    # joblib.numpy_pickle re-exports the wrappers; old scikit-learn vendored joblib under sklearn.externals
    if module.endswith("numpy_pickle_compat") or (name in LEGACY_JOBLIB_NAMES and "joblib" in module):
        raise LegacyJoblibFormat(f"it references {module}.{name}")


class _PickleUnpickler(pickle.Unpickler):
    """pickle's own unpickler, refusing joblib's legacy wrappers (see refuse_legacy_joblib)."""

    def find_class(self, module: str, name: str) -> Any:
        refuse_legacy_joblib(module, name)
        return super().find_class(module, name)


def _joblib_load(data: bytes) -> Any:
    """joblib.load of in-memory bytes, with joblib's own (de)compression and array handling,
    through an unpickler that refuses the legacy format (find_class, and BUILD as a backstop)."""
    from joblib import numpy_pickle, numpy_pickle_utils
    from joblib.numpy_pickle_compat import NDArrayWrapper

    class PinnedNumpyUnpickler(numpy_pickle.NumpyUnpickler):  # type: ignore[misc, name-defined]
        dispatch = numpy_pickle.NumpyUnpickler.dispatch.copy()

        def find_class(self, module: str, name: str) -> Any:
            refuse_legacy_joblib(module, name)
            return super().find_class(module, name)

        def load_build(self) -> None:
            # an NDArrayWrapper reached by any other route is still never read
            if len(self.stack) >= 2 and isinstance(self.stack[-2], NDArrayWrapper):
                raise LegacyJoblibFormat(f"it builds joblib's {type(self.stack[-2]).__name__}")
            numpy_pickle.NumpyUnpickler.load_build(self)

        dispatch[pickle.BUILD[0]] = load_build

    # joblib >= 1.5 names the helper that picks the decompressor differently and yields a pair
    opener = getattr(numpy_pickle_utils, "_validate_fileobject_and_memmap", None) or numpy_pickle_utils._read_fileobject
    extra = ({"ensure_native_byte_order": True}
             if "ensure_native_byte_order" in inspect.signature(numpy_pickle.NumpyUnpickler).parameters else {})
    with warnings.catch_warnings():
        # joblib warns "regenerate this pickle file" for the legacy container; we refuse it instead
        warnings.filterwarnings("ignore", message=".*joblib version less than 0.10", category=DeprecationWarning)
        with opener(io.BytesIO(data), "", None) as opened:
            stream = opened[0] if isinstance(opened, tuple) else opened
            if isinstance(stream, str):  # joblib's answer for the "ZF" container of joblib < 0.10
                raise LegacyJoblibFormat("a 'ZF' zlib container, written by joblib < 0.10")
            return PinnedNumpyUnpickler("", stream, **extra).load()


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SklearnAdapter(ModelAdapter):
    def __init__(self, spec: AdapterSpec):
        super().__init__()
        assert spec.payload is not None, "load_adapter reads and checks the bytes first"
        self.spec = spec
        self.format = spec.format
        self.path = spec.path
        self.sha256 = spec.payload.file_sha256
        source = Source(spec.policy_file, spec.policy_key)
        self.estimator = self._load(spec.payload.data, source)
        self._setup(source)
        self.positive_class = spec.positive_class

    def _load(self, data: bytes, source: Source) -> Any:
        path = self.path
        if self.format in ("pickle", "joblib"):
            if not (self.spec.sha256 or self.spec.trust_pickle):
                raise ModelLoadError(
                    f"refusing to unpickle {path}: it is neither pinned by model.sha256 nor trusted with --trust-pickle",
                    source=source, hint=UNTRUSTED_PICKLE_HELP.format(digest=self.sha256))
            try:
                if self.format == "joblib":
                    return _joblib_load(data)
                return _PickleUnpickler(io.BytesIO(data)).load()  # noqa: S301 - gated above by pin or explicit trust
            except LegacyJoblibFormat as exc:
                raise ModelLoadError(
                    f"refusing to load {path}: it is in joblib's legacy format ({exc}), which "
                    "makes joblib read sibling files that the pin (model.sha256) does not cover; re-save the model "
                    "with a current joblib (joblib.dump), or better with skops (.skops) or as ONNX",
                    source=source) from None
            except Exception as exc:
                raise ModelLoadError(f"cannot load {path} as {self.format}: {type(exc).__name__}: {_short(exc)}",
                                     source=source) from None
        # skops
        try:
            import skops.io as sio

            untrusted = sio.get_untrusted_types(data=data)
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
            return sio.loads(data, trusted=[t for t in untrusted if t in allowed])
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
