"""Test-only check types that misbehave on purpose (registered by the engine tests)."""
from __future__ import annotations

import ctypes
import mmap
import os
import sys
import time
from typing import Optional

from pydantic import Field

from auditkit.core.registry import CheckParams, check
from auditkit.results.model import CheckOutput, Metric


class DrawParams(CheckParams):
    draws: int = Field(5, ge=1)


@check("test_random_draws", family="data", params=DrawParams, metrics=["mean_draw", "first_row"])
def random_draws(ctx, params: DrawParams) -> CheckOutput:
    """Seeded draws: the same for a check id and run seed, whatever the worker."""
    values = ctx.rng.random(params.draws)
    return CheckOutput(metrics={"mean_draw": Metric(float(values.mean())),
                                "first_row": Metric(float(ctx.frame.index[0]))},
                       tables={"draws": [{"i": i, "value": float(v)} for i, v in enumerate(values)]})


class NoParams(CheckParams):
    seconds: float = 60.0


@check("test_raises", family="data", params=NoParams, metrics=["never"])
def raises(ctx, params: NoParams) -> CheckOutput:
    """Raises an ordinary exception."""
    raise ValueError("deliberate failure inside the check")


@check("test_exits", family="data", params=NoParams, metrics=["never"])
def exits(ctx, params: NoParams) -> CheckOutput:
    """Kills its own process without a word."""
    os._exit(7)


@check("test_segfaults", family="data", params=NoParams, metrics=["never"])
def segfaults(ctx, params: NoParams) -> CheckOutput:
    """Dereferences a null pointer in native code."""
    ctypes.string_at(0)
    return CheckOutput()


class SleepParams(CheckParams):
    seconds: float = 60.0
    pid_file: Optional[str] = None  # where to write the worker's pid once sleeping


@check("test_sleeps", family="data", params=SleepParams, metrics=["never"])
def sleeps(ctx, params: SleepParams) -> CheckOutput:
    """Overruns any short timeout."""
    if params.pid_file:
        with open(params.pid_file + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(params.pid_file + ".tmp", params.pid_file)
    time.sleep(params.seconds)
    return CheckOutput()


def _sleep_while_validating(params: NoParams, data) -> None:
    time.sleep(params.seconds)


@check("test_slow_to_validate", family="data", params=NoParams, metrics=["never"],
       validate=_sleep_while_validating)
def slow_to_validate(ctx, params: NoParams) -> CheckOutput:
    """Its params check (in the parent, while loading, before any check runs) takes ``seconds``."""
    return CheckOutput()


STRAY_MARKER = "STRAY-WORKER-OUTPUT"


@check("test_writes_stderr", family="data", params=NoParams, metrics=["written"])
def writes_stderr(ctx, params: NoParams) -> CheckOutput:
    """Writes to its process's stderr, from Python and at the file-descriptor level."""
    print(f"{STRAY_MARKER} from sys.stderr", file=sys.stderr, flush=True)
    os.write(2, f"{STRAY_MARKER} from fd 2\n".encode())
    return CheckOutput(metrics={"written": Metric(1.0)})


def raise_in_child() -> None:
    """Target of a process forked outside the pool: its traceback goes to the forkserver's stderr."""
    raise RuntimeError(STRAY_MARKER)


def _is_mapped(array) -> bool:
    """True when an array's memory belongs to a memory-mapped file (follows the chain of bases)."""
    base = array
    while base is not None:
        if isinstance(base, mmap.mmap):
            return True
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    return False


@check("test_reports_mapping", family="data", params=NoParams,
       metrics=["numeric_columns", "mapped_columns", "scores_mapped", "pid"])
def reports_mapping(ctx, params: NoParams) -> CheckOutput:
    """How many numeric columns of the frame a check sees are views on a memory-mapped file."""
    import numpy as np

    numeric = [c for c in ctx.frame.columns if isinstance(ctx.frame[c].dtype, np.dtype)]
    mapped = [c for c in numeric if _is_mapped(ctx.frame[c].to_numpy())]
    return CheckOutput(metrics={"numeric_columns": Metric(float(len(numeric))),
                                "mapped_columns": Metric(float(len(mapped))),
                                "scores_mapped": Metric(float(_is_mapped(ctx.data.scores))),
                                "pid": Metric(float(os.getpid()))})


@check("test_writes_into_frame", family="data", params=NoParams, metrics=["written", "derived", "original"])
def writes_into_frame(ctx, params: NoParams) -> CheckOutput:
    """Writes into the frame it is given and into a frame derived from it, as a careless plugin
    might: copy-on-write must allow both, whatever memory the data lives in."""
    column = next(c for c in ctx.frame.columns if ctx.frame[c].dtype.kind == "f")
    original = float(ctx.frame[column].iloc[1])
    derived = ctx.frame[[column]]
    derived.iloc[1, 0] = -1.0
    frame = ctx.frame
    frame.loc[frame.index[0], column] = -12345.0
    return CheckOutput(metrics={"written": Metric(float(frame[column].iloc[0])),
                                "derived": Metric(float(derived.iloc[1, 0])),
                                "original": Metric(float(ctx.frame[column].iloc[1]) - original)})


@check("test_needs_model", family="data", params=NoParams, metrics=["rows"], needs_model=True)
def needs_model(ctx, params: NoParams) -> CheckOutput:
    """Queries the model (so predictions mode must skip it)."""
    return CheckOutput(metrics={"rows": Metric(float(len(ctx.model.predict(ctx.X))))})


class HogParams(CheckParams):
    mb: int = 2048
    chunk_mb: int = 0  # 0: one allocation of mb; else chunks of chunk_mb, each touched


@check("test_hogs_memory", family="data", params=HogParams, metrics=["never"])
def hogs_memory(ctx, params: HogParams) -> CheckOutput:
    """Allocates and touches far more memory than a small memory_mb allows."""
    import numpy as np

    if not params.chunk_mb:
        block = np.ones(params.mb * 1024 * 1024 // 8)
        return CheckOutput(metrics={"never": Metric(float(block[-1]))})
    held = [np.ones(params.chunk_mb * 1024 * 1024 // 8) for _ in range(params.mb // params.chunk_mb)]
    return CheckOutput(metrics={"never": Metric(float(len(held)))})


class DieOnceParams(CheckParams):
    marker: str  # a file: absent, the check creates it and kills its process; present, it succeeds


@check("test_dies_once", family="data", params=DieOnceParams, metrics=["survived"])
def dies_once(ctx, params: DieOnceParams) -> CheckOutput:
    """Kills its own process (SIGKILL, as the OOM killer would) the first time it runs."""
    import signal

    if not os.path.exists(params.marker):
        with open(params.marker, "w") as handle:
            handle.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return CheckOutput(metrics={"survived": Metric(1.0)})
