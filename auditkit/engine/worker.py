"""Code that runs inside a worker process: load the shared bundle once, run one check.

Imported by the forkserver before it forks workers (preload), so a new worker starts with
numpy, pandas, scikit-learn and onnxruntime already imported.
"""
from __future__ import annotations

import importlib
import os
import pickle
import signal
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np  # noqa: F401 - preloaded for the workers
import pandas as pd  # noqa: F401

from auditkit.engine.context import AuditContext, AuditData
from auditkit.engine.registry import get_registry
from auditkit.errors import AuditkitError
from auditkit.results.model import CheckOutput

_BUNDLES: dict[str, AuditData] = {}
_EVENTS: Any = None
_THREADS = 1


@dataclass(frozen=True)
class CheckTask:
    check_id: str
    type: str
    params: dict[str, Any]
    seed: int
    timeout_s: float


@dataclass
class TaskOutcome:
    check_id: str
    output: CheckOutput | None
    error: str | None
    duration_s: float
    traceback: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def write_bundle(data: AuditData, directory: Path) -> Path:
    """The audit data, written once for every worker (our own file in a private temp dir)."""
    path = directory / "audit-data.pkl"
    with open(path, "wb") as handle:
        pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def load_bundle(path: str) -> AuditData:
    data = _BUNDLES.get(path)
    if data is None:
        with open(path, "rb") as handle:
            data = pickle.load(handle)  # noqa: S301 - written by this run's parent, in a 0700 temp dir
        _BUNDLES.clear()
        _BUNDLES[path] = data
    return data


def init_worker(threads: int, events: Any, plugin_modules: tuple[str, ...] = ()) -> None:
    """Per-worker setup: Ctrl-C belongs to the parent; cap native thread pools; same plugins."""
    global _EVENTS, _THREADS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    registry = get_registry()
    for name in plugin_modules:
        registry.register_module(importlib.import_module(name))
    _EVENTS = events
    _THREADS = threads
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except Exception:  # threadpoolctl is best effort: a missing BLAS info must not kill the worker
        pass


def execute(task: CheckTask, data: AuditData, threads: int = 1) -> TaskOutcome:
    """Run one check on prepared data; any exception becomes an error outcome."""
    started = time.perf_counter()
    try:
        check_type = get_registry().get(task.type)
        params = check_type.params.model_validate(task.params)
        ctx = AuditContext(data=data, check_id=task.check_id, seed=task.seed, threads=threads)
        output = check_type.func(ctx, params)
        if not isinstance(output, CheckOutput):
            raise TypeError(f"check {task.type} returned {type(output).__name__}, not CheckOutput")
        return TaskOutcome(task.check_id, output, None, time.perf_counter() - started)
    except AuditkitError as exc:
        return TaskOutcome(task.check_id, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started,
                           traceback.format_exc())
    except Exception as exc:  # a check's bug ends that check only
        return TaskOutcome(task.check_id, None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}",
                           time.perf_counter() - started, traceback.format_exc())


def warm_up() -> None:
    """A no-op task: starting a worker runs the preload and its initializer."""


def run_in_worker(task: CheckTask, bundle_path: str) -> TaskOutcome:
    if _EVENTS is not None:
        _EVENTS.put((task.check_id, time.time()))
    return execute(task, load_bundle(bundle_path), _THREADS)
