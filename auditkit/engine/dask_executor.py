"""The Dask executor: each check is a task on a ``distributed`` cluster.

With no scheduler address it starts a ``distributed.LocalCluster`` of worker processes (one
per core, one thread each, as the local executor's workers); with one, it runs on that
cluster. The audit data, model bytes included, is scattered to the workers once, and every
check takes it as its input: a worker rebuilds the model adapter from the bytes whose
SHA-256 the parent checked (``AdapterSpec.payload``), never from the model's path.

Faults, as the local executor handles them:

- a worker process that dies while it runs a check (killed, a crash in native code, Dask's
  own memory limit) ends that check as ``error``, or runs it again ``retries`` times. The
  cluster this executor starts tells a death at once (``allowed-failures: 0``) and gives each
  worker one check at a time (``worker-saturation: 1.0``), so a death concerns only the check
  that ran there; an existing cluster applies its own settings (README: "Running on Dask").
- a check past its ``timeout_s`` ends as ``error``; its worker is restarted to stop it.
- a scheduler that goes away ends every unfinished check as ``error``; finished ones are kept.

``memory_mb``: the cluster this executor starts gives each worker a Dask memory limit of the
largest ``memory_mb`` the run's checks set (none set: Dask's default, the machine's memory
shared by the workers). Past it Dask's nanny ends the worker, and the check it ran ends as
``error`` (or runs again with ``retries``), the reason naming the limit. It is a per-worker
limit, not a per-check one: the worker's share of the audit data counts towards it. An
existing cluster keeps the limits its workers were started with.
"""
from __future__ import annotations

import importlib
import logging
import queue
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Sequence, Any, Final

from auditkit.engine.context import AuditData
from auditkit.engine.executors import Event, Executor, OnEvent, with_retry_note
from auditkit.engine.interrupt import interruption
from auditkit.engine.worker import CheckTask, TaskOutcome, _load_model_if_needed, execute
from auditkit.errors import UserError

STARTED_TOPIC: Final = "auditkit-check-started"
CONNECT_TIMEOUT_S: Final = 10.0
POLL_S: Final = 0.1
MAX_LOST: Final = 3  # resubmissions of a check whose input data was lost with dead workers
# The cluster this executor starts: a dead worker fails its task at once (we retry, if asked),
# and a worker holds one check at a time, so a death concerns only the check it ran.
# A worker near its memory limit is ended (the check errs) rather than paused: a paused worker
# holding the audit data would wait for memory that never frees, and the run would hang.
LOCAL_CLUSTER_CONFIG: Final = {"distributed.scheduler.allowed-failures": 0,
                               "distributed.scheduler.worker-saturation": 1.0,
                               "distributed.worker.memory.pause": False}

connect_timeout_s = CONNECT_TIMEOUT_S  # module-level so tests can shorten it


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


class DaskExecutor(Executor):
    """Runs checks as tasks on a Dask cluster: an existing one (``scheduler``) or a LocalCluster."""

    def __init__(self, workers: int, *, scheduler: str | None = None, workdir: Path | None = None,
                 debug: bool = False, memory_mb: int | None = None):
        self.workers = max(1, workers)
        self.memory_mb = memory_mb if scheduler is None else None  # each worker's limit, on our own cluster
        self.scheduler = scheduler
        self.workdir = workdir
        self.debug = debug
        self.scheduler_lost = False
        self.dashboard_link: str | None = None
        self._client: Any = None
        self._cluster: Any = None
        self._bystanders: set[str] = set()  # task keys that died with a worker restarted for a timeout
        self.parts: list[Any] | None = None  # a dataset prepared by partition: its blocks' futures

    @property
    def client(self) -> Any:
        self.connect()
        return self._client

    # -- connecting ---------------------------------------------------------------------

    def connect(self) -> None:
        """Reach the scheduler (or start a LocalCluster) before anything runs: an address that
        does not answer, or workers without auditkit, are bad input (exit 2)."""
        if self._client is not None:
            return
        if not dask_available():
            raise UserError("--executor dask needs the distributed package: pip install 'auditkit[dask]'")
        import dask
        from distributed import Client, LocalCluster

        quiet = logging.CRITICAL if not self.debug else logging.WARNING
        if self.scheduler is None:
            with dask.config.set(LOCAL_CLUSTER_CONFIG):
                self._cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                             dashboard_address=":0", silence_logs=quiet,
                                             memory_limit=f"{self.memory_mb}MiB" if self.memory_mb else "auto",
                                             local_directory=str(self.workdir) if self.workdir else None)
                self._client = Client(self._cluster, set_as_default=False)
        else:
            for name in ("distributed.client", "distributed.comm", "distributed.core"):
                logging.getLogger(name).setLevel(quiet)
            try:
                self._client = Client(self.scheduler, timeout=connect_timeout_s, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                reason = " ".join(str(exc).split())[:300]
                raise UserError(f"--scheduler {self.scheduler}: no Dask scheduler answered within "
                                f"{connect_timeout_s:g} s ({type(exc).__name__}: {reason})",
                                hint="start one with `dask scheduler`, or leave out --scheduler for a local "
                                     "cluster") from None
        self._check_workers()
        try:
            self.dashboard_link = self._client.dashboard_link
        except Exception:  # a scheduler without the dashboard (bokeh not installed there)
            self.dashboard_link = None

    def _check_workers(self) -> None:
        """Every worker must import the same auditkit version as this process."""
        from auditkit import __version__

        try:
            versions = self._client.run(_auditkit_version)
        except Exception as exc:  # the workers cannot even unpickle our function: no auditkit there
            self.close()
            raise UserError(f"the Dask workers cannot run auditkit: {type(exc).__name__}: {exc}",
                            hint="install auditkit (the same version, with the model formats' extras) on every "
                                 "worker") from None
        wrong = {address: version for address, version in versions.items() if version != __version__}
        if wrong:
            self.close()
            listed = ", ".join(f"{address} has {version}" for address, version in sorted(wrong.items()))
            raise UserError(f"the Dask workers run another auditkit version than this one ({__version__}): {listed}")
        if self.scheduler is not None:
            self.workers = max(1, len(versions))

    def start(self, n_tasks: int, preload: Sequence[str] = ()) -> None:
        self.connect()  # Dask workers import what a task needs when it first runs there

    def close(self) -> None:
        client, cluster = self._client, self._cluster
        self._client = self._cluster = None
        if client is not None:
            try:
                client.close(timeout=5)
            except Exception:  # a scheduler already gone: nothing left to close
                pass
        if cluster is not None:
            try:
                cluster.close(timeout=10)
            except Exception:
                pass

    # -- running ------------------------------------------------------------------------

    def run(self, tasks: list[CheckTask], data: AuditData, workdir: Path, on_event: OnEvent) -> list[TaskOutcome]:
        from auditkit.core.registry import get_registry

        self.connect()
        client = self._client
        started: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        run_token = uuid.uuid4().hex[:8]
        client.subscribe_topic(f"{STARTED_TOPIC}-{run_token}", lambda event: started.put(event[1]))
        plugins = tuple(get_registry().plugin_modules)
        outcomes: dict[str, TaskOutcome] = {}
        futures: dict[Any, CheckTask] = {}
        began: dict[str, float] = {}
        where: dict[str, str] = {}
        deaths: dict[str, list[str]] = {}
        lost: dict[str, int] = {}  # times a check's input was lost with the workers that held it

        def submit(task: CheckTask, data_future: Any) -> None:
            attempt = f"{len(deaths.get(task.check_id, []))}-{lost.get(task.check_id, 0)}"
            key = f"auditkit-{task.check_id}-{run_token}-{attempt}"
            if self.parts is not None:  # a dataset prepared by partition: the blocks stay on the workers
                from auditkit.engine.partitioned import for_check, run_partitioned_task

                # each block cut down, on its own worker, to what this check reads: its summary alone,
                # or the rows without the other checks' summaries
                mine = [client.submit(for_check, part, task.check_id, key=f"{key}-part-{i}", pure=False)
                        for i, part in enumerate(self.parts)]
                future = client.submit(run_partitioned_task, task, data, mine, plugins, run_token, key=key,
                                       pure=False)
            else:
                future = client.submit(run_dask_task, task, data_future, plugins, run_token, key=key, pure=False)
            futures[future] = task

        def capacity() -> int:
            """As many checks at once as the cluster has threads: the scheduler then gives each
            to an idle worker, and no check waits on a worker behind another, so a worker's death
            concerns the check it ran alone. (Dask's own queueing holds back only root tasks, and
            a worker resource does not stop the scheduler assigning tasks to a busy worker.)"""
            try:
                return max(1, sum(w.get("nthreads", 1) for w in _workers(client).values()
                                  if w.get("status", "running") == "running"))
            except Exception:
                return 1

        def finish(task: CheckTask, outcome: TaskOutcome) -> None:
            outcomes[task.check_id] = with_retry_note(outcome, deaths.get(task.check_id, []))
            on_event(Event("finished", task.check_id, time.time(), outcomes[task.check_id]))

        try:
            # Once, to every worker: checks take it as an input and never re-read a file.
            # (a dataset prepared by partition: its blocks are already on the workers, and Dask
            # computes again any that died with a worker)
            data_future = (_Kept() if self.parts is not None
                           else client.scatter(data, broadcast=True, hash=False))
            waiting = list(tasks)
            for task in tasks:
                on_event(Event("queued", task.check_id, time.time()))
            pending: set[Any] = set()
            while pending or waiting:
                while waiting and len(pending) < capacity():
                    submit(waiting.pop(0), data_future)
                    pending.add(next(reversed(futures)))
                done = {future for future in pending if future.done()}
                if not done:
                    time.sleep(POLL_S)
                pending -= done
                self._drain(started, began, where, on_event)
                for future in done:
                    task = futures[future]
                    if future.status == "finished":
                        finish(task, future.result())
                    elif future.status == "cancelled":  # not by us
                        if client.status != "running" or lost.get(task.check_id, 0) >= MAX_LOST:
                            pending.add(future)  # the scheduler went away: ended below
                            self.scheduler_lost = client.status != "running"
                            if not self.scheduler_lost:
                                finish(task, TaskOutcome(task.check_id, None, "the Dask cluster lost the check's "
                                                         f"input data {MAX_LOST} times", 0.0))
                                pending.discard(future)
                            continue
                        # the input data's last copy was on a worker that died: send it again
                        lost[task.check_id] = lost.get(task.check_id, 0) + 1
                        if data_future.status != "finished":
                            data_future = client.scatter(data, broadcast=True, hash=False)
                        began.pop(task.check_id, None)
                        submit(task, data_future)
                        pending.add(next(f for f, t in reversed(futures.items()) if t is task))
                    else:
                        exc = future.exception()
                        reason = _failure(exc, where.get(task.check_id))
                        if _is_death(exc) and self.memory_mb:
                            reason += (f" (each worker's Dask memory limit is {self.memory_mb} MB, the largest "
                                       "memory_mb of the checks)")
                        elapsed = time.time() - began[task.check_id] if task.check_id in began else 0.0
                        bystander = future.key in self._bystanders and lost.get(task.check_id, 0) < MAX_LOST
                        if _is_death(exc) and (bystander or len(deaths.get(task.check_id, [])) < task.retries):
                            if bystander:  # waited on a worker restarted for another check's timeout
                                lost[task.check_id] = lost.get(task.check_id, 0) + 1
                            else:
                                deaths.setdefault(task.check_id, []).append(reason)
                            began.pop(task.check_id, None)
                            if data_future.status != "finished":  # its last copy died with the worker
                                data_future = client.scatter(data, broadcast=True, hash=False)
                            submit(task, data_future)
                            pending.add(next(f for f, t in reversed(futures.items()) if t is task))
                            continue
                        finish(task, TaskOutcome(task.check_id, None, reason, elapsed))
                if self.scheduler_lost or client.status not in ("running", "connecting", "newly-created"):
                    self.scheduler_lost = True
                    for task in [futures[future] for future in pending] + waiting:
                        elapsed = time.time() - began[task.check_id] if task.check_id in began else 0.0
                        finish(task, TaskOutcome(task.check_id, None,
                                                 f"the Dask scheduler ({self._address()}) went away before the check "
                                                 "finished", elapsed))
                    break
                pending -= self._stop_overdue(pending, futures, began, where, finish)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what finished
            self.interrupted = True
            for task in tasks:  # those not yet sent to the cluster too
                if task.check_id not in outcomes:
                    elapsed = time.time() - began[task.check_id] if task.check_id in began else 0.0
                    finish(task, TaskOutcome(task.check_id, None,
                                             f"interrupted ({interruption(exc)}) before the check finished", elapsed))
            try:
                client.cancel(list(futures), force=True)
            except Exception:
                pass
        finally:
            self.close()
        return [outcomes[task.check_id] for task in tasks]

    def _address(self) -> str:
        return self.scheduler or "the local cluster"

    @staticmethod
    def _drain(started: "queue.SimpleQueue[dict[str, Any]]", began: dict[str, float], where: dict[str, str],
               on_event: OnEvent) -> None:
        while True:
            try:
                message = started.get_nowait()
            except queue.Empty:
                return
            check_id = message["check_id"]
            began[check_id] = message["at"]
            where[check_id] = message["worker"]
            on_event(Event("started", check_id, message["at"]))

    def _stop_overdue(self, pending: set[Any], futures: dict[Any, CheckTask], began: dict[str, float],
                      where: dict[str, str], finish: Any) -> set[Any]:
        """End checks past their timeout: cancel the task and restart its worker (which stops
        it: a running Dask task cannot be interrupted otherwise)."""
        now = time.time()
        overdue = {f for f in pending if futures[f].check_id in began
                   and now - began[futures[f].check_id] > futures[f].timeout_s}
        for future in overdue:
            task = futures[future]
            future.cancel()
            worker = where.get(task.check_id)
            if worker is not None:
                try:
                    # checks waiting on that worker die with it through no fault of their own
                    self._bystanders.update(key for key in self._client.processing([worker]).get(worker, ())
                                            if key != future.key)
                    self._client.restart_workers([worker], timeout=30, raise_for_error=False)
                except Exception:  # a worker without a nanny cannot be restarted: it finishes in vain
                    pass
            finish(task, TaskOutcome(task.check_id, None,
                                     f"timed out after {task.timeout_s:g} s (timeout_s); its Dask worker was restarted",
                                     now - began[task.check_id]))
        return overdue


class _Kept:
    """Stands for the scattered data when there is none to scatter again (partitioned runs)."""

    status = "finished"


def _workers(client: Any) -> dict[str, Any]:
    """Every worker the scheduler knows (newer clients list only a few unless asked for all)."""
    import inspect

    if "n_workers" in inspect.signature(client.scheduler_info).parameters:
        return dict(client.scheduler_info(n_workers=-1)["workers"])
    return dict(client.scheduler_info()["workers"])


def _is_death(exc: BaseException | None) -> bool:
    from distributed import KilledWorker

    return isinstance(exc, KilledWorker)


def _failure(exc: BaseException | None, worker: str | None) -> str:
    if _is_death(exc):
        # where the task last ran: our record of it, else the scheduler's (KilledWorker.last_worker),
        # since a worker can die before the task's start reached us
        last = getattr(getattr(exc, "last_worker", None), "address", None)
        worker = worker or (str(last) if last else None)
        at = f" ({worker})" if worker else ""
        return f"the check's Dask worker process{at} died before returning a result"
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"


# -- on the worker ------------------------------------------------------------------------


def _auditkit_version() -> str:
    from auditkit import __version__

    return __version__


def run_dask_task(task: CheckTask, data: AuditData, plugins: tuple[str, ...], run_token: str) -> TaskOutcome:
    """One check on a Dask worker, on the scattered data (shared by the checks of this worker)."""
    failed = worker_setup(task, plugins, run_token)
    if failed is not None:
        return failed
    # Each check gets its own shallow copies: a check writing into its frame (pandas copies on
    # write) must not change what the next check on this worker sees.
    own = replace(data, frame=data.frame.copy(deep=False),
                  reference=data.reference.copy(deep=False) if data.reference is not None else None)
    _load_model_if_needed(task, own)
    return execute(task, own, 1)


def worker_setup(task: CheckTask, plugins: tuple[str, ...], run_token: str) -> TaskOutcome | None:
    """On a Dask worker, before a check: say it started, register the plugins, one native
    thread. An outcome when the check cannot run there."""
    try:
        from distributed import get_worker

        worker = get_worker()
        worker.log_event(f"{STARTED_TOPIC}-{run_token}",
                         {"check_id": task.check_id, "at": time.time(), "worker": worker.address})
    except ValueError:  # not on a worker (a test calling it directly)
        pass
    from auditkit.core.registry import get_registry

    registry = get_registry()
    for name in plugins:
        try:
            registry.register_module(importlib.import_module(name))
        except ImportError as exc:
            return TaskOutcome(task.check_id, None, f"the check module {name} cannot be imported on the Dask worker "
                                                    f"({exc}): install it there", 0.0)
        except Exception:  # registered already (a worker that ran an earlier check)
            pass
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # as the local workers: a thread count must not change a figure
    except Exception:
        pass
    return None
