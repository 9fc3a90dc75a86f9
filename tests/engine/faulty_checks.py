"""Test-only check types that misbehave on purpose (registered by the engine tests)."""
from __future__ import annotations

import ctypes
import os
import time

from pydantic import Field

from auditkit.engine.registry import CheckParams, check
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


@check("test_sleeps", family="data", params=NoParams, metrics=["never"])
def sleeps(ctx, params: NoParams) -> CheckOutput:
    """Overruns any short timeout."""
    time.sleep(params.seconds)
    return CheckOutput()


@check("test_needs_model", family="data", params=NoParams, metrics=["rows"], needs_model=True)
def needs_model(ctx, params: NoParams) -> CheckOutput:
    """Queries the model (so predictions mode must skip it)."""
    return CheckOutput(metrics={"rows": Metric(float(len(ctx.model.predict(ctx.X))))})
