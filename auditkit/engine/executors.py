"""Executors: how check tasks reach processes. The engine sees only :class:`Executor`.

``LocalExecutor`` runs each check in a worker process of a pebble pool. A worker that dies
(``os._exit``, a segfault, the OOM killer) or overruns the check's timeout is replaced and
ends only that check, as ``error``; the standard library's pool would break as a whole.
A distributed backend implements the same interface.
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.util
import os
import queue as queue_module
import signal
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from concurrent.futures import FIRST_COMPLETED, wait
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Sequence

from auditkit.engine.bundle import write_bundle
from auditkit.engine.context import AuditData
from auditkit.engine.interrupt import interruption
from auditkit.engine.limits import MEMORY_EXIT_CODE, memory_message
from auditkit.engine.preload import PRELOAD_ENV, PRELOAD_PATH_ENV
from auditkit.core.registry import get_registry
from auditkit.engine.worker import CheckTask, TaskOutcome, execute, init_worker, run_in_worker, warm_up
from auditkit.engine.worker_stderr import ENV_VAR as WORKER_STDERR_ENV

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

    def start(self, n_tasks: int, preload: Sequence[str] = ()) -> None:
        """Optional: get workers ready while the parent prepares the data, with the modules
        in ``preload`` imported (see :func:`auditkit.engine.preload.modules_to_preload`)."""

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
        outcomes: list[TaskOutcome] = []
        for task in tasks:
            on_event(Event("started", task.check_id, time.time()))
            began = time.time()
            try:
                outcome = execute(task, data)
            except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what finished, like LocalExecutor
                self.interrupted = True
                message = f"interrupted ({interruption(exc)}) before the check finished"
                for rest in tasks[len(outcomes):]:
                    outcome = TaskOutcome(rest.check_id, None, message, time.time() - began if rest is task else 0.0)
                    on_event(Event("finished", rest.check_id, time.time(), outcome))
                    outcomes.append(outcome)
                return outcomes
            on_event(Event("finished", task.check_id, time.time(), outcome))
            outcomes.append(outcome)
        return outcomes


WORKER_LOG_NAME = "workers.log"
# An AF_UNIX socket path holds at most 107 bytes and multiprocessing names the forkserver's
# "<tempdir>/listener-xxxxxxxx": a longer run directory keeps multiprocessing's own pymp-* one.
_MAX_SOCKET_DIR = 107 - len("/listener-xxxxxxxx")


class LocalExecutor(Executor):
    """A pebble process pool whose every temporary file lives in ``workdir`` (the run's directory).

    While it runs, the forkserver this executor starts and its workers use ``workdir`` as their
    temporary directory (multiprocessing's socket, anything a check writes with ``tempfile``),
    write their stderr to ``workdir/workers.log`` unless ``worker_output`` is True, and exit
    when this process dies. :meth:`close` stops the workers and that forkserver, so nothing of
    the run is left running or on disk once ``workdir`` is removed.
    """

    def __init__(self, workers: int, threads_per_worker: int = 1, *, workdir: Path | None = None,
                 worker_output: bool = False):
        self.workers = max(1, workers)
        self.threads_per_worker = max(1, threads_per_worker)
        self.workdir = workdir
        self._pool: Any = None
        self._events: Any = None
        self._starter: Any = None
        self._start_error: BaseException | None = None
        self._worker_log = str(workdir / WORKER_LOG_NAME) if workdir is not None and not worker_output else None
        env = {key: str(self.threads_per_worker) for key in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
        if workdir is not None:
            tempfile.gettempdir()  # this process keeps its own: pinned before TMPDIR changes for the workers
            env["TMPDIR"] = str(workdir)
        if self._worker_log is not None:
            env[WORKER_STDERR_ENV] = f"{os.getpid()}:{self._worker_log}"
        # inherited by the forkserver (started next, in start()) and so by every worker
        self._saved_env = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        self._saved_mp_tempdir = _place_multiprocessing_tempdir(workdir)
        self._forkserver_before = _forkserver_pid()

    def _context(self) -> multiprocessing.context.BaseContext:
        # forkserver: workers fork from a clean server process, not from this one (which may hold
        # onnxruntime or OpenMP threads that a plain fork would copy in a broken state).
        if sys.platform != "win32" and "forkserver" in multiprocessing.get_all_start_methods():
            ctx = multiprocessing.get_context("forkserver")
            # imported once by the server, then shared by every forked worker: the engine, then
            # what the plan's checks import (forkserver_preload reads the list start() set).
            # worker_stderr first: it redirects the server's stderr, which every worker inherits.
            ctx.set_forkserver_preload(["auditkit.engine.worker_stderr", "auditkit.engine.worker", "onnxruntime",
                                        "auditkit.engine.forkserver_preload"])
            return ctx
        return multiprocessing.get_context("spawn")

    def start(self, n_tasks: int, preload: Sequence[str] = ()) -> None:
        """Start the workers in the background, so that their start-up overlaps the parent's
        data loading (a forkserver answers its first request only once its preload is done).

        ``preload``: modules the forkserver imports before it forks a worker, so that each
        check's ``duration_s`` is its computation, not the import of its libraries.
        """
        if self._pool is not None or self._starter is not None:
            return
        import threading

        # read by the forkserver (started by the thread below) from its inherited environment
        for key, value in ((PRELOAD_ENV, ",".join(preload)), (PRELOAD_PATH_ENV, os.pathsep.join(sys.path))):
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

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
                               initargs=(self.threads_per_worker, events, tuple(get_registry().plugin_modules),
                                         os.getpid(), self._worker_log))
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
        pool = self._pool
        if pool is not None:
            if self.interrupted:
                pool.stop()
            else:
                pool.close()
            try:
                pool.join(timeout=10)
            except FutureTimeout:  # a task still running past the wait: stopped below
                pass
            if pool.active:
                pool.stop()
                pool.join(timeout=5)
            self._pool = None  # only now: a close() cut short by a signal is finished by the next call
        if self._events is not None:
            self._events.close()
            self._events = None
        _stop_forkserver(self._forkserver_before)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}
        if self._saved_mp_tempdir is not None:
            _restore_multiprocessing_tempdir(self._saved_mp_tempdir)
            self._saved_mp_tempdir = None

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
            deaths: dict[str, list[str]] = {}
            while pending:
                done, pending = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
                self._drain(events, started_at, on_event)
                for future in done:
                    task = futures[future]
                    outcome = self._outcome(future, task, started_at, ProcessExpired)
                    if _died(future, ProcessExpired) and len(deaths.get(task.check_id, [])) < task.retries:
                        # retries: the process died (not the check raising): run it once more
                        deaths.setdefault(task.check_id, []).append(outcome.error or "")
                        retry = pool.schedule(run_in_worker, args=(task, bundle), timeout=task.timeout_s)
                        futures[retry] = task
                        pending.add(retry)
                        continue
                    outcome = with_retry_note(outcome, deaths.get(task.check_id, []))
                    outcomes[task.check_id] = outcome
                    on_event(Event("finished", task.check_id, time.time(), outcome))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (interrupt.Terminated)
            self.interrupted = True
            pool.stop()
            for future, task in futures.items():
                if task.check_id not in outcomes:
                    began = started_at.get(task.check_id)
                    outcome = TaskOutcome(task.check_id, None,
                                          f"interrupted ({interruption(exc)}) before the check finished",
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
            if code == MEMORY_EXIT_CODE and task.memory_mb:
                return TaskOutcome(task.check_id, None, memory_message(task.memory_mb), elapsed)
            how = (f"was killed by {_signal_name(code)}" if isinstance(code, int) and code < 0
                   else f"exited with code {code}")
            return TaskOutcome(task.check_id, None, f"the check's process {how} before returning a result", elapsed)
        except Exception as exc:  # e.g. an unpicklable result
            return TaskOutcome(task.check_id, None, f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}", elapsed)


def _died(future: Any, expired: type) -> bool:
    """Whether a finished pebble future ended because its process died."""
    try:
        return isinstance(future.exception(timeout=0), expired)
    except BaseException:  # cancelled, or a timeout: not a death
        return False


def with_retry_note(outcome: TaskOutcome, deaths: list[str]) -> TaskOutcome:
    """Say in the check's notes (or its error) that it ran again after its process died."""
    if not deaths:
        return outcome
    runs = len(deaths) + 1
    said = f"ran {runs} times (retries): its worker process died on the earlier run{'s' if runs > 2 else ''}: {deaths[-1]}"
    if outcome.output is not None:
        outcome.output.notes.append(said)
    elif outcome.error:
        outcome.error = f"{outcome.error} (after {runs} runs: retries: {len(deaths)})"
    return outcome


def _place_multiprocessing_tempdir(workdir: Path | None) -> tuple[bool, Any] | None:
    """Make ``workdir`` multiprocessing's temporary directory in this process (where the
    forkserver's socket goes) instead of a ``/tmp/pymp-*`` of its own that a killed run leaves
    behind; returns what to restore. multiprocessing has no public setting for it: its
    ``util.get_temp_dir()`` reads the process's ``_config['tempdir']``.
    """
    config = getattr(multiprocessing.current_process(), "_config", None)
    if workdir is None or not isinstance(config, dict) or len(str(workdir)) > _MAX_SOCKET_DIR:
        return None
    saved = ("tempdir" in config, config.get("tempdir"))
    config["tempdir"] = str(workdir)
    return saved


def _restore_multiprocessing_tempdir(saved: tuple[bool, Any]) -> None:
    config = getattr(multiprocessing.current_process(), "_config", None)
    if not isinstance(config, dict):
        return
    had, value = saved
    if had:
        config["tempdir"] = value
    else:
        config.pop("tempdir", None)


def _forkserver_pid() -> int | None:
    try:
        from multiprocessing import forkserver
    except ImportError:
        return None
    return getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)


def _stop_forkserver(running_before: int | None, timeout: float = 5.0) -> None:
    """Stop the forkserver this run started (its socket is in the run's directory, its stderr
    is the run's log): one left running would serve the next run in this process from a
    removed directory. A forkserver that was running before the run is not ours to stop.

    multiprocessing only stops it in its own tests (``ForkServer._stop``), which waits without
    limit; this is the same steps with a deadline, on the same private attributes.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    pid = getattr(server, "_forkserver_pid", None)
    if server is None or pid is None or pid == running_before:
        return
    needed = ("_lock", "_forkserver_alive_fd", "_forkserver_address")
    if not all(hasattr(server, name) for name in needed):
        return
    with server._lock:
        if server._forkserver_alive_fd is not None:
            os.close(server._forkserver_alive_fd)  # the server exits when no one holds this pipe
            server._forkserver_alive_fd = None
        deadline = time.monotonic() + timeout
        try:
            while os.waitpid(pid, os.WNOHANG)[0] == 0:
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.02)
        except ChildProcessError:
            pass
        address = server._forkserver_address
        if address and not multiprocessing.util.is_abstract_socket_namespace(address):
            try:
                os.unlink(address)
            except OSError:
                pass
        server._forkserver_address = None
        server._forkserver_pid = None
