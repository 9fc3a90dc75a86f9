"""Code that runs inside a worker process: load the shared bundle once, run one check.

Imported by the forkserver before it forks workers (preload), so a new worker starts with
numpy, pandas, scikit-learn and onnxruntime already imported.
"""
from __future__ import annotations

import importlib
import multiprocessing
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np  # noqa: F401 - preloaded for the workers
import pandas as pd  # noqa: F401

from auditkit.engine.bundle import load_bundle, write_bundle  # noqa: F401 - write_bundle: the parent's half
from auditkit.engine.context import AuditContext, AuditData
from auditkit.engine.limits import memory_limit, memory_message
from auditkit.core.registry import get_registry
from auditkit.engine.worker_stderr import redirect_stderr
from auditkit.errors import AuditkitError
from auditkit.results.model import CheckOutput

_EVENTS: Any = None
_THREADS = 1
# A worker that finds its parent gone exits with this code (no one is left to read it).
PARENT_GONE_EXIT_CODE = 87
PARENT_POLL_S = 0.5  # where the parent's pipe cannot be watched, how often its pid is checked


@dataclass(frozen=True)
class CheckTask:
    check_id: str
    type: str
    params: dict[str, Any]
    seed: int
    timeout_s: float
    memory_mb: int | None = None
    retries: int = 0  # runs again when its process dies (not when it raises or times out)


@dataclass
class TaskOutcome:
    check_id: str
    output: CheckOutput | None
    error: str | None
    duration_s: float
    traceback: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def init_worker(threads: int, events: Any, plugin_modules: tuple[str, ...] = (), main_pid: int | None = None,
                stderr_path: str | None = None) -> None:
    """Per-worker setup: Ctrl-C belongs to the parent; cap native thread pools; same plugins;
    exit when the parent dies; stderr to the run's log file unless the user debugs."""
    global _EVENTS, _THREADS
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if stderr_path is not None:
        redirect_stderr(stderr_path)
    if main_pid is not None:
        watch_parent(main_pid)
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


def watch_parent(main_pid: int) -> threading.Thread:
    """Exit this worker as soon as the auditkit process that asked for it has died (SIGKILL,
    OOM killer): an orphan would run its check to the end for no one.

    Workers are children of the forkserver, which outlives the parent while any worker holds
    its pipe, so the parent's death is watched directly: multiprocessing gives each process a
    pipe whose far end the parent holds, readable at its death (``parent_process().join()``);
    where that parent is not ``main_pid`` (another start method), its pid is polled.
    """
    parent = multiprocessing.parent_process()

    def wait_then_exit() -> None:
        if parent is not None and parent.pid == main_pid:
            parent.join()
        else:
            from auditkit.engine.rundir import process_alive

            while process_alive(main_pid):
                time.sleep(PARENT_POLL_S)
        os._exit(PARENT_GONE_EXIT_CODE)

    thread = threading.Thread(target=wait_then_exit, name="auditkit-parent-watchdog", daemon=True)
    thread.start()
    return thread


def execute(task: CheckTask, data: AuditData, threads: int = 1, *, memory_limited: bool = False) -> TaskOutcome:
    """Run one check on prepared data; any exception becomes an error outcome.

    With ``memory_limited`` (a worker holding the check to ``task.memory_mb``) a MemoryError
    says the check exceeded its limit.
    """
    started = time.perf_counter()
    try:
        check_type = get_registry().get(task.type)
        params = check_type.params.model_validate(task.params)
        ctx = AuditContext(data=data, check_id=task.check_id, seed=task.seed, threads=threads)
        rounded_before = _rounded_values(data)
        if check_type.probes_inputs and data.text and set(data.features) <= set(data.text):
            output = CheckOutput.skip(
                f"{task.type} probes the model's inputs as numbers or categories, and every input of this model is "
                f"free text (data.text: {', '.join(data.text)}); token_attributions and identity_substitution "
                "examine a text model")
            return TaskOutcome(task.check_id, output, None, time.perf_counter() - started)
        output = check_type.func(ctx, params)
        if not isinstance(output, CheckOutput):
            raise TypeError(f"check {task.type} returned {type(output).__name__}, not CheckOutput")
        _note_rounding(data, output, _rounded_values(data) - rounded_before)
        return TaskOutcome(task.check_id, output, None, time.perf_counter() - started)
    except MemoryError:
        message = (memory_message(task.memory_mb) if memory_limited and task.memory_mb
                   else "MemoryError: the check ran out of memory")
        return TaskOutcome(task.check_id, None, message, time.perf_counter() - started, traceback.format_exc())
    except AuditkitError as exc:
        return TaskOutcome(task.check_id, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started,
                           traceback.format_exc())
    except Exception as exc:  # a check's bug ends that check only
        return TaskOutcome(task.check_id, None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}",
                           time.perf_counter() - started, traceback.format_exc())


def _rounded_values(data: AuditData) -> int:
    from auditkit.engine.context import _ADAPTERS

    adapter = _ADAPTERS.get(data.adapter_spec)
    return 0 if adapter is None else int(getattr(adapter, "rounded_values", 0))


def _note_rounding(data: AuditData, output: CheckOutput, rounded: int) -> None:
    """A check whose probes (grids, noise, sampled neighbours) fed non-integers to an integer
    input says so: the model saw the nearest whole numbers instead."""
    if rounded <= 0:
        return
    from auditkit.engine.context import _ADAPTERS

    columns = _ADAPTERS[data.adapter_spec].integer_inputs()
    output.notes.append(f"the model takes {', '.join(columns)} as whole numbers (integer inputs): {rounded:,} probe "
                        "values between two integers were rounded to the nearest whole number before prediction")


def warm_up() -> None:
    """A no-op task: starting a worker runs the preload and its initializer."""


def run_in_worker(task: CheckTask, bundle_path: str) -> TaskOutcome:
    if _EVENTS is not None:
        _EVENTS.put((task.check_id, time.time()))
    data = load_bundle(bundle_path)  # before the limit: the shared data is not the check's memory
    _load_model_if_needed(task, data)
    with memory_limit(task.memory_mb):
        return execute(task, data, _THREADS, memory_limited=bool(task.memory_mb))


def _load_model_if_needed(task: CheckTask, data: AuditData) -> None:
    """Load the model before the check's memory limit applies: the first check of each worker
    would otherwise pay for it, and whether a check fits its limit would depend on the worker."""
    try:
        if get_registry().get(task.type).needs_model and not data.predictions_mode:
            AuditContext(data=data, check_id=task.check_id, seed=task.seed).model
    except Exception:  # the check meets the same error itself, and reports it
        pass
