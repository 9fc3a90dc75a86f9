"""Parameters that several checks share, declared once so that they mean the same everywhere.

- :class:`RowSelectionParams`: which rows a local check explains (``rows``, ``query``,
  ``sample``); ``auditkit.methods.rows`` selects and validates them.
- :class:`IntervalParams`: ``bootstrap`` resamples and the two-sided ``confidence`` level of
  every interval a check draws (DESIGN.md: an estimate says its interval and its method).
"""
from __future__ import annotations

from typing import Optional

from pydantic import Field

from auditkit.core.registry import CheckParams


class RowSelectionParams(CheckParams):
    rows: Optional[list[int]] = Field(None, description="Rows to explain, by row number (0-based position in the "
                                                        "data file, as `row` everywhere in results.json).")
    query: Optional[str] = Field(None, description='A pandas query over the audit data, with columns `score` and '
                                                   '`decision` added, e.g. "decision == 0 and income < 40000".')
    sample: int = Field(10, ge=1, le=1_000, description="How many rows: the size of the seeded sample when neither "
                                                        "rows nor query is given (stratified by decision), and the "
                                                        "most rows taken from a query's result (a seeded sample).")


class IntervalParams(CheckParams):
    bootstrap: int = Field(1000, ge=0, le=100_000, description="Bootstrap resamples behind the intervals (0: none).")
    confidence: float = Field(0.95, gt=0, lt=1, description="Two-sided level of the intervals.")
