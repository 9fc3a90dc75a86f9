"""The result types, as they are written to ``results.json`` (DESIGN.md, contract).

Checks return a :class:`CheckOutput` (numbers, tables, plot data, notes: never a verdict);
the engine wraps it into a :class:`CheckResult` with the statuses that ``thresholds.py``
decides, and the run into an :class:`AuditResult`.
"""
from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any, Final, Literal

import numpy as np

# info: the check ran and reports its figures, but declares no threshold ("not assessed")
Status = Literal["pass", "info", "warn", "fail", "error", "skipped"]
STATUSES: Final = ("pass", "info", "warn", "fail", "error", "skipped")
RESULTS_SCHEMA_VERSION: Final = 1


@dataclass
class Metric:
    """One figure; ``ci`` is a two-sided interval when the figure is an estimate."""

    value: float | None
    ci: tuple[float, float] | None = None
    n: int | None = None  # the sample size behind the figure
    method: str | None = None  # how the interval was made
    note: str | None = None  # why value is null, or what it is about
    level: float | None = None  # the interval's confidence level (0.95 when a ci is given and this is None)
    se: float | None = None  # standard deviation of the bootstrap draws behind ci (for tests of a change)
    # A group comparison behind the figure (its worst group against the reference group; a
    # record of the check's table ``comparisons``): the check's raw two-sided p-value, and,
    # written by the engine once every check has run, that p-value adjusted across every
    # comparison of the audit (results.multiplicity).
    p_value: float | None = None
    comparison: dict[str, str] | None = None  # {"attribute", "rate", "group", "reference_group"}
    p_adjusted: float | None = None
    correction: str | None = None  # holm | bh | none (the policy's statistics.multiple_comparisons)
    family_size: int | None = None  # how many comparisons the correction spans
    # Groups too small to detect a four-fifths disparity from the reference group (records
    # {"group", "rate", "n", "reference_group", "reference_n", "min_detectable_ratio"}); empty: none.
    underpowered: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value}
        if self.ci is not None:
            out["ci"] = [self.ci[0], self.ci[1]]
            out["level"] = self.level if self.level is not None else 0.95
        for key in ("n", "method", "note", "se", "p_value", "p_adjusted", "correction", "family_size", "comparison"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.underpowered:
            out["underpowered"] = [dict(record) for record in self.underpowered]
        return out


@dataclass
class Plot:
    """Plot data, drawn by ``charts/`` from results alone."""

    kind: str  # one of results.plots.PLOT_KINDS
    title: str
    data: dict[str, Any]

    def __post_init__(self) -> None:
        from auditkit.results.plots import canonical_plot_data, validate_plot_data

        self.data = canonical_plot_data(self.data)
        validate_plot_data(self.kind, self.data)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "title": self.title, "data": self.data}


@dataclass
class CheckOutput:
    """What a check function returns: data, never a verdict."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None  # the reason, when the check does not apply

    @classmethod
    def skip(cls, reason: str) -> "CheckOutput":
        return cls(skipped=reason, notes=[reason])


@dataclass
class Finding:
    """One threshold compared with one figure."""

    metric: str
    value: float | None
    status: Status
    severity: Literal["fail", "warn"]
    min: float | None = None
    max: float | None = None
    on: Literal["value", "lower", "upper"] = "value"
    message: str = ""
    reading: str | None = None  # a plain-language sentence for a failing or warning figure
    # A threshold relative to a baseline run (max_decrease / max_increase): the bounds, the
    # baseline's figure, the change, and each verdict apart; None (not written) otherwise.
    max_decrease: float | None = None
    max_increase: float | None = None
    baseline: float | None = None
    change: float | None = None
    absolute_status: Status | None = None  # the min/max verdict, when the threshold has both kinds
    relative_status: Status | None = None  # "skipped" when there is no baseline figure to compare
    relative_note: str | None = None  # why the relative bound was not assessed
    # True on a pass whose figure rests on a group too small to detect a four-fifths disparity
    # (the metric's ``underpowered`` list names them; ``reading`` says it in words)
    underpowered: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        out.setdefault("value", None)
        return out


@dataclass
class CheckResult:
    id: str
    type: str
    family: str
    status: Status
    duration_s: float
    metrics: dict[str, Metric] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    plots: list[Plot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    description: str = ""
    skip_reason: str | None = None
    case_file: list[dict[str, Any]] = field(default_factory=list)  # [{"role", "table"}]: see core.registry

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "family": self.family,
            "description": self.description,
            "status": self.status,
            "duration_s": round(self.duration_s, 4),
            "seed": self.seed,
            "params": self.params,
            "metrics": {k: m.to_dict() for k, m in self.metrics.items()},
            "findings": [f.to_dict() for f in self.findings],
            "tables": self.tables,
            "plots": [p.to_dict() for p in self.plots],
            "notes": list(self.notes),
            "error": self.error,
            "skip_reason": self.skip_reason,
            **({"case_file": self.case_file} if self.case_file else {}),
        }


@dataclass
class AuditResult:
    """The whole of results.json (DESIGN.md, "results.json (contract)"): the run, its inputs
    and its checks. :meth:`to_dict` is the file's content; the shipped schema
    (``results-v1.schema.json``) describes it and every results.json written is checked
    against it."""

    run_id: str
    policy_name: str
    status: Status
    exit_code: int
    started_at: datetime
    finished_at: datetime
    duration_s: float
    seed: int
    checks: list[CheckResult]
    inputs: dict[str, Any]
    engine: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] = field(default_factory=dict)
    command: str = ""
    fail_on: str = "fail"
    interrupted: bool = False
    auditkit_version: str = ""
    schema_version: int = RESULTS_SCHEMA_VERSION
    # findings that need two results (engine/cross_checks.py): an explanation citing a protected
    # attribute or a proxy; additive, so results written before it carry none
    cross_findings: list[dict[str, Any]] = field(default_factory=list)
    # how group comparisons were judged across the audit (results.multiplicity.audit_statistics)
    statistics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "auditkit_version": self.auditkit_version,
            "run_id": self.run_id,
            "policy_name": self.policy_name,
            "status": self.status,
            "exit_code": self.exit_code,
            "fail_on": self.fail_on,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": self.finished_at.isoformat(timespec="seconds"),
            "duration_s": round(self.duration_s, 3),
            "seed": self.seed,
            "interrupted": self.interrupted,
            "command": self.command,
            "report": self.report,
            **({"statistics": self.statistics} if self.statistics else {}),
            "engine": self.engine,
            "inputs": to_jsonable(self.inputs),
            "checks": [check_json(check) for check in self.checks],
            "cross_findings": to_jsonable(self.cross_findings),
        }


def check_json(result: CheckResult) -> dict[str, Any]:
    """A check's record in results.json; a non-finite figure becomes null with a note saying where."""
    notes: list[str] = []
    item = to_jsonable(result.to_dict(), notes)
    item["notes"].extend(notes)
    return item


def to_jsonable(obj: Any, notes: list[str] | None = None, where: str = "") -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN and infinities turned into ``null``.

    A non-finite number becomes ``null`` and, when ``notes`` is given, a note says where,
    because the contract forbids NaN in results.json.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v, notes, f"{where}.{k}" if where else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, notes, f"{where}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist(), notes, where)
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        if not math.isfinite(value):
            if notes is not None:
                notes.append(f"{where}: {value} is not a finite number; written as null")
            return None
        return value
    if obj is None or isinstance(obj, (str, int)):
        return obj
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return str(obj)


def worst_status(statuses: list[str]) -> Status:
    """Audit-level status: fail > error > warn > pass > info. An audit in which no check was
    assessed against a threshold (every one info or skipped) is info, never pass."""
    for status in ("fail", "error", "warn", "pass"):
        if status in statuses:
            return status  # type: ignore[return-value]
    return "info"


def new_run_id(started_at: datetime) -> str:
    """A new run's id: its UTC start to the second, then 48 random bits (``20260101T120000Z-3f9c2a7b1d4e``).

    Ids sort by start time and say when the run began, so a reader can tell two runs apart
    at a glance; the random part keeps apart runs started in the same second (two CI jobs
    writing into one folder).
    """
    return f"{started_at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"
