"""Executors: how check tasks reach processes. The engine sees only :class:`Executor`.

``LocalExecutor`` runs each check in a worker process of a pebble pool. A worker that dies
(``os._exit``, a segfault, the OOM killer) or overruns the check's timeout is replaced and
ends only that check, as ``error``; the standard library's pool would break as a whole.
A distributed backend implements the same interface.
"""
from __future__ import annotations

import multiprocessing
import os
import queue as queue_module
import signal
import sys
import time
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

from auditkit.engine.context import AuditData
from auditkit.engine.registry import get_registry
from auditkit.engine.worker import (CheckTask, TaskOutcome, execute, init_worker, run_in_worker, warm_up,
                                   write_bundle)

EventKind = Literal["queued", "started", "finished"]


@dataclass(frozen=True)
class Event:
    kind: EventKind
    check_id: str
    at: float
    outcome: TaskOutcome | None = None


OnEvent = Callable[[Event], None]


class Executor(ABC):
    """Runs check tasks and reports events; returns one outcome per task, in task order."""

    workers: int = 1
    interrupted: bool = False

    @abstractmethod
    def run(self, tasks: list[CheckTask], data: AuditData, workdir: Path, on_event: OnEvent) -> list[TaskOutcome]:
        ...

    def start(self, n_tasks: int) -> None:
        """Optional: get workers ready while the parent prepares the data."""

    def close(self) -> None:
        """Release workers (also when the run never started)."""


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except (ValueError, TypeError):
        return f"signal {-code}"


class InlineExecutor(Executor):
    """Runs checks one after another in this process: for debugging (no isolation, no timeout)."""

    def run(self, tasks: list[CheckTask], data: AuditData, workdir: Path, on_event: OnEvent) -> list[TaskOutcome]:
        outcomes = []
        for task in tasks:
            on_event(Event("started", task.check_id, time.time()))
            outcome = execute(task, data)
            on_event(Event("finished", task.check_id, time.time(), outcome))
            outcomes.append(outcome)
        return outcomes


class LocalExecutor(Executor):
    def __init__(self, workers: int, threads_per_worker: int = 1):
        self.workers = max(1, workers)
        self.threads_per_worker = max(1, threads_per_worker)
        self._pool: Any = None
        self._events: Any = None
        self._starter: Any = None
        self._start_error: BaseException | None = None
        self._saved_env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        for key in self._saved_env:  # inherited by the forkserver and so by every worker
            os.environ[key] = str(self.threads_per_worker)

    def _context(self) -> multiprocessing.context.BaseContext:
        # forkserver: workers fork from a clean server process, not from this one (which may hold
        # onnxruntime or OpenMP threads that a plain fork would copy in a broken state).
        if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            # imported once by the server, then shared by every forked worker; scikit-learn and
            # scipy are left to the checks that need them (their import would delay every run)
            ctx.set_forkserver_preload(["auditkit.engine.worker", "onnxruntime"])
            return ctx
        return multiprocessing.get_context("spawn")

    def start(self, n_tasks: int) -> None:
        """Start the workers in the background, so that their start-up overlaps the parent's
        data loading (a forkserver answers its first request only once its preload is done)."""
        if self._pool is not None or self._starter is not None:
            return
        import threading

        self._starter = threading.Thread(target=self._start_pool, args=(n_tasks,), name="auditkit-pool-start",
                                         daemon=True)
        self._starter.start()

    def _start_pool(self, n_tasks: int) -> None:
        from pebble import ProcessPool

        try:
            ctx = self._context()
            events = ctx.SimpleQueue() if hasattr(ctx, "SimpleQueue") else None
            size = min(self.workers, max(1, n_tasks))
            pool = ProcessPool(max_workers=size, context=ctx, initializer=init_worker,
                               initargs=(self.threads_per_worker, events, tuple(get_registry().plugin_modules)))
            for _ in range(size):
                pool.schedule(warm_up)
            self._pool, self._events = pool, events
        except BaseException as exc:  # reported when run() needs the pool
            self._start_error = exc

    def _ready(self, n_tasks: int) -> None:
        if self._pool is None and self._starter is None:
            self.start(n_tasks)
        if self._starter is not None:
            self._starter.join()
            self._starter = None
        if self._start_error is not None:
            raise self._start_error

    def close(self) -> None:
        if self._starter is not None:
            self._starter.join()
            self._starter = None
        pool, self._pool = self._pool, None
        if pool is not None:
            if self.interrupted:
                pool.stop()
            else:
                pool.close()
            pool.join(timeout=10)
            if pool.active:
                pool.stop()
                pool.join(timeout=5)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def run(self, tasks: list[CheckTask], data: AuditData, workdir: Path, on_event: OnEvent) -> list[TaskOutcome]:
        from pebble import ProcessExpired

        bundle = str(write_bundle(data, workdir))
        self._ready(len(tasks))
        pool, events = self._pool, self._events
        assert pool is not None
        outcomes: dict[str, TaskOutcome] = {}
        futures = {}
        started_at: dict[str, float] = {}
        try:
            for task in tasks:
                futures[pool.schedule(run_in_worker, args=(task, bundle), timeout=task.timeout_s)] = task
                on_event(Event("queued", task.check_id, time.time()))
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                self._drain(events, started_at, on_event)
                for future in done:
                    task = futures[future]
                    outcome = self._outcome(future, task, started_at, ProcessExpired)
                    outcomes[task.check_id] = outcome
                    on_event(Event("finished", task.check_id, time.time(), outcome))
        except KeyboardInterrupt:
            self.interrupted = True
            pool.stop()
            for future, task in futures.items():
                if task.check_id not in outcomes:
                    began = started_at.get(task.check_id)
                    outcome = TaskOutcome(task.check_id, None, "interrupted (Ctrl-C) before the check finished",
                                          time.time() - began if began else 0.0)
                    outcomes[task.check_id] = outcome
                    on_event(Event("finished", task.check_id, time.time(), outcome))
        finally:
            self.close()
        return [outcomes[task.check_id] for task in tasks]

    @staticmethod
    def _drain(events: object, started_at: dict[str, float], on_event: OnEvent) -> None:
        if events is None:
            return
        while True:
            try:
                if events.empty():  # type: ignore[attr-defined]
                    return
                check_id, at = events.get()  # type: ignore[attr-defined]
            except (OSError, EOFError, queue_module.Empty):
                return
            started_at[check_id] = at
            on_event(Event("started", check_id, at))

    @staticmethod
    def _outcome(future: object, task: CheckTask, started_at: dict[str, float], expired: type) -> TaskOutcome:
        began = started_at.get(task.check_id)
        elapsed = (time.time() - began) if began else 0.0
        try:
            return future.result()  # type: ignore[attr-defined]
        except FutureTimeout:
            return TaskOutcome(task.check_id, None,
                               f"timed out after {task.timeout_s:g} s (timeout_s); its process was stopped",
                               max(elapsed, task.timeout_s))
        except expired as exc:
            code = getattr(exc, "exitcode", None)
            how = (f"was killed by {_signal_name(code)}" if isinstance(code, int) and code < 0
                   else f"exited with code {code}")
            return TaskOutcome(task.check_id, None, f"the check's process {how} before returning a result", elapsed)
        except Exception as exc:  # e.g. an unpicklable result
            return TaskOutcome(task.check_id, None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}", elapsed)
