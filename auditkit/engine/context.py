"""What a check sees: the prepared audit data, its model, and its own seeded RNG."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.adapters.base import AdapterSpec, ModelAdapter, load_adapter

Task = Literal["binary", "multiclass", "regression"]


@dataclass
class AuditData:
    """Everything prepared once in the parent and shared, read-only, by every check.

    ``frame`` holds the audit rows (sampled, filtered), indexed by their position in the data
    file (``row``). ``scores``/``decisions`` are the base predictions on those rows, computed
    once. For a binary task ``y`` is 1 for the positive class, 0 otherwise, NaN when missing;
    ``decisions`` are 1 when ``scores >= threshold``.
    """

    frame: pd.DataFrame
    features: list[str]
    target: str | None
    protected: list[str]
    task: Task
    scores: npt.NDArray[np.float64]
    decisions: npt.NDArray[Any] | None
    y: npt.NDArray[Any] | None
    score_kind: str
    adapter_spec: AdapterSpec
    positive_class: Any = 1
    threshold: float | None = None
    favorable_decision: int = 1
    # multiclass: the class whose prediction benefits the person (data.favorable_label), as a string
    favorable_class: str | None = None
    classes: list[Any] | None = None
    reference: pd.DataFrame | None = None
    model_info: dict[str, Any] = field(default_factory=dict)
    input_dtypes: dict[str, str] = field(default_factory=dict)  # model input column -> expected kind
    rows_in_file: int = 0
    notes: list[str] = field(default_factory=list)
    proxies: list[str] = field(default_factory=list)  # data.proxies: inputs declared to stand in for a protected one
    text: list[str] = field(default_factory=list)  # data.text: model inputs that hold free text
    # the policy's statistics: level and power at which group comparisons state what they can detect
    alpha: float = 0.05
    power: float = 0.8
    # check id -> the summary of every audit row, combined from a dataset's partitions (checks
    # registered with ``summary=``, on the Dask executor): the frame then holds no row
    row_summaries: dict[str, Any] = field(default_factory=dict)

    @property
    def predictions_mode(self) -> bool:
        return self.adapter_spec.format == "predictions"

    @property
    def labelled(self) -> npt.NDArray[np.bool_]:
        if self.y is None:
            return np.zeros(len(self.frame), dtype=bool)
        if self.task == "multiclass":
            return pd.notna(self.y)
        return ~np.isnan(np.asarray(self.y, dtype=np.float64))


_ADAPTERS: dict[AdapterSpec, ModelAdapter] = {}


def derive_seed(run_seed: int, check_id: str) -> int:
    """A check's own seed, from the run seed and its id only (never from worker or order)."""
    digest = hashlib.sha256(f"{run_seed}:{check_id}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


@dataclass
class AuditContext:
    data: AuditData
    check_id: str
    seed: int
    threads: int = 1

    @cached_property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)

    @property
    def frame(self) -> pd.DataFrame:
        return self.data.frame

    @property
    def X(self) -> pd.DataFrame:
        return self.data.frame[self.data.features]

    def sample_positions(self, max_rows: int, notes: list[str], *, what: str = "on a seeded sample of") -> npt.NDArray[np.int64]:
        """Positions of every audit row, or of a seeded sample of ``max_rows`` (said in ``notes``)."""
        n = len(self.data.frame)
        if n <= max_rows:
            return np.arange(n)
        notes.append(f"{what} {max_rows:,} of {n:,} rows")
        return np.sort(self.rng.choice(n, max_rows, replace=False))

    def require_features(self, names: list[str]) -> None:
        """Raise CheckError naming any of ``names`` that is not a model input."""
        unknown = [name for name in names if name not in self.data.features]
        if unknown:
            from auditkit.errors import CheckError

            raise CheckError(f"not model features: {sorted(set(unknown))}; features: {', '.join(self.data.features)}")

    @property
    def model(self) -> ModelAdapter:
        """The model adapter, built once per process (cached across checks) from the model bytes
        the spec carries, re-hashed: the model file itself is never opened again."""
        adapter = _ADAPTERS.get(self.data.adapter_spec)
        if adapter is None:
            adapter = load_adapter(self.data.adapter_spec)
            _ADAPTERS[self.data.adapter_spec] = adapter
        return adapter
