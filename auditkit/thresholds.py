"""(figure, threshold) -> status. Checks never decide a verdict; this module does."""
from __future__ import annotations

from typing import Mapping

from auditkit.engine.registry import threshold_applies
from auditkit.policy.models import Threshold
from auditkit.results.model import Finding, Metric, Status


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def compare(metric: str, figure: Metric, threshold: Threshold) -> Finding:
    """One finding: pass, the threshold's severity when violated, or error when not computable."""
    value = figure.value
    if threshold.on != "value":
        if figure.ci is None:
            return Finding(metric=metric, value=None, status="error", severity=threshold.severity,
                           min=threshold.min, max=threshold.max, on=threshold.on,
                           message=f"{metric} has no confidence interval, so on: {threshold.on} cannot be compared")
        value = figure.ci[0] if threshold.on == "lower" else figure.ci[1]
    label = metric if threshold.on == "value" else f"{metric} ({threshold.on} CI bound)"
    if value is None:
        reason = f": {figure.note}" if figure.note else ""
        return Finding(metric=metric, value=None, status="error", severity=threshold.severity,
                       min=threshold.min, max=threshold.max, on=threshold.on,
                       message=f"{label} could not be computed{reason}")
    broken = []
    if threshold.min is not None and value < threshold.min:
        broken.append(f"{label} = {_fmt(value)} < {_fmt(threshold.min)} (min)")
    if threshold.max is not None and value > threshold.max:
        broken.append(f"{label} = {_fmt(value)} > {_fmt(threshold.max)} (max)")
    if broken:
        status: Status = threshold.severity
        message = "; ".join(broken) + (" [warning]" if status == "warn" else "")
    else:
        status = "pass"
        bounds = []
        if threshold.min is not None:
            bounds.append(f">= {_fmt(threshold.min)}")
        if threshold.max is not None:
            bounds.append(f"<= {_fmt(threshold.max)}")
        message = f"{label} = {_fmt(value)} {' and '.join(bounds)}"
    return Finding(metric=metric, value=value, status=status, severity=threshold.severity,
                   min=threshold.min, max=threshold.max, on=threshold.on, message=message)


def evaluate(metrics: Mapping[str, Metric], thresholds: Mapping[str, Threshold]) -> list[Finding]:
    """Every threshold against every metric it applies to (``x`` covers each ``x[...]``)."""
    findings: list[Finding] = []
    for key, threshold in thresholds.items():
        matched = [name for name in metrics if threshold_applies(key, name)]
        if not matched:
            findings.append(Finding(metric=key, value=None, status="error", severity=threshold.severity,
                                    min=threshold.min, max=threshold.max, on=threshold.on,
                                    message=f"{key} was not produced by this run"))
            continue
        findings.extend(compare(name, metrics[name], threshold) for name in matched)
    return findings


def check_status(findings: list[Finding]) -> Status:
    """fail > error > warn > pass: the worst finding decides."""
    statuses = {f.status for f in findings}
    for status in ("fail", "error", "warn"):
        if status in statuses:
            return status  # type: ignore[return-value]
    return "pass"


def exit_code(statuses: list[str], *, fail_on: str = "fail") -> int:
    """DESIGN.md: 0 pass (warnings allowed unless fail_on=warn), 1 a failure, 3 an error and no failure."""
    if "fail" in statuses or (fail_on == "warn" and "warn" in statuses):
        return 1
    if "error" in statuses:
        return 3
    return 0
