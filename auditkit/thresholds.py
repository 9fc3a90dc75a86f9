"""(figure, threshold) -> status. Checks never decide a verdict; this module does."""
from __future__ import annotations

from dataclasses import replace
from typing import Callable, Mapping

from auditkit.core.metric_names import threshold_applies
from auditkit.policy.models import Threshold
from auditkit.results.model import Finding, Metric, Status

#: The same metric in the baseline run: its figure, or None and why there is none.
BaselineLookup = Callable[[str], "tuple[Metric | None, str | None]"]
#: Rounding slack for a relative bound: 0.80 - 0.78 is 0.020000000000000018 in binary, and a
#: change of exactly max_decrease must pass, as a value equal to min does.
_RELATIVE_SLACK = 1e-12


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def compare(metric: str, figure: Metric, threshold: Threshold, baseline: BaselineLookup | None = None) -> Finding:
    """One finding: pass, the threshold's severity when violated, or error when not computable.

    A threshold with ``max_decrease`` / ``max_increase`` is also compared with the same metric
    of the baseline run (``baseline``; None when the run has none, e.g. ``--no-baseline``): the
    finding keeps both verdicts and its status is the worse of the two.
    """
    finding = _compare_absolute(metric, figure, threshold)
    if not threshold.relative:
        return finding
    return _with_relative(finding, figure, threshold, baseline)


def _selected(figure: Metric, on: str) -> float | None:
    if on == "value":
        return figure.value
    if figure.ci is None:
        return None
    return figure.ci[0] if on == "lower" else figure.ci[1]


def _with_relative(finding: Finding, figure: Metric, threshold: Threshold, baseline: BaselineLookup | None) -> Finding:
    """Add the verdict of the relative bounds; the message then gives each verdict apart."""
    bounds = {"max_decrease": threshold.max_decrease, "max_increase": threshold.max_increase}
    absolute = finding.status if threshold.min is not None or threshold.max is not None else None
    finding = replace(finding, **bounds, absolute_status=absolute)
    if finding.status == "error":  # the figure itself is missing: nothing to compare either
        return replace(finding, relative_status="error")
    label = finding.metric if threshold.on == "value" else f"{finding.metric} ({threshold.on} CI bound)"
    named = " and ".join(f"{k} {_fmt(v)}" for k, v in bounds.items() if v is not None)
    lead = _lead(finding, absolute, label)
    base_figure, reason = (None, "the run has no baseline (--no-baseline)") if baseline is None else baseline(finding.metric)
    base = _selected(base_figure, threshold.on) if base_figure is not None else None
    if base is None:
        reason = reason or (f"the baseline's {label} has no value" if base_figure is not None else "no baseline figure")
        return replace(finding, relative_status="skipped", relative_note=reason,
                       message=f"{lead}{named} not assessed: {reason}")
    value = finding.value
    assert value is not None  # an error finding returned above
    change = value - base
    slack = _RELATIVE_SLACK * max(1.0, abs(value), abs(base))
    broken = []
    if threshold.max_decrease is not None and -change > threshold.max_decrease + slack:
        broken.append(f"fell by {_fmt(-change)} from baseline {_fmt(base)} > {_fmt(threshold.max_decrease)} (max_decrease)")
    if threshold.max_increase is not None and change > threshold.max_increase + slack:
        broken.append(f"rose by {_fmt(change)} from baseline {_fmt(base)} > {_fmt(threshold.max_increase)} (max_increase)")
    relative: Status = threshold.severity if broken else "pass"
    text = "; ".join(broken) if broken else f"changed by {change:+.4g} from baseline {_fmt(base)}, within {named}"
    status = relative if absolute is None else _worse(absolute, relative)
    return replace(finding, status=status, relative_status=relative, baseline=base, change=change,
                   message=f"{lead}{text} (relative: {relative})")


def _lead(finding: Finding, absolute: Status | None, label: str) -> str:
    """The start of a relative finding's message: the absolute verdict, or the figure."""
    if absolute is not None:
        return f"{finding.message} (absolute: {absolute}); "
    return f"{label} = {_fmt(finding.value)}: " if finding.value is not None else f"{label}: "


def _worse(a: Status, b: Status) -> Status:
    order = ("fail", "error", "warn", "pass")
    return a if order.index(a) <= order.index(b) else b


def _compare_absolute(metric: str, figure: Metric, threshold: Threshold) -> Finding:
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
        message = f"{label} = {_fmt(value)} {' and '.join(bounds)}".rstrip()
    return Finding(metric=metric, value=value, status=status, severity=threshold.severity,
                   min=threshold.min, max=threshold.max, on=threshold.on, message=message)


def evaluate(metrics: Mapping[str, Metric], thresholds: Mapping[str, Threshold],
             baseline: BaselineLookup | None = None) -> list[Finding]:
    """Every threshold against every metric it applies to (``x`` covers each ``x[...]``);
    relative bounds against ``baseline`` (the same check's figures in the baseline run)."""
    findings: list[Finding] = []
    for key, threshold in thresholds.items():
        matched = [name for name in metrics if threshold_applies(key, name)]
        if not matched:
            findings.append(Finding(metric=key, value=None, status="error", severity=threshold.severity,
                                    min=threshold.min, max=threshold.max, on=threshold.on,
                                    message=f"{key} was not produced by this run"))
            continue
        findings.extend(compare(name, metrics[name], threshold, baseline) for name in matched)
    return findings


def check_status(findings: list[Finding]) -> Status:
    """fail > error > warn > pass: the worst finding decides. A check without any finding (no
    threshold was declared) is info: its figures are reported, not assessed (DESIGN.md)."""
    if not findings:
        return "info"
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
