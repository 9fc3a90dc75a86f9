"""The executive summary: the audit's verdict and its most important findings as sentences.

Generated from results.json alone (never written per model): a verdict sentence with the
counts, then one sentence per missed threshold — failures first, then warnings, in the
policy's order — using the check's own plain-language reading where it has one, else a
sentence built from the figure, its interval, its sample size and the threshold.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from auditkit.render.format import checks_of, format_number, report_title, status_counts

#: Findings written out in the summary; the rest are counted and left to the checks' sections.
SUMMARY_FINDINGS: Final = 8

_VERDICT: Final = {
    "fail": "The model does not meet this audit's policy: at least one figure misses a threshold the policy "
            "treats as failing.",
    "error": "The audit is incomplete: at least one check could not complete, and no check failed.",
    "warn": "The model meets every failing threshold of this audit's policy, but misses at least one "
            "warning threshold.",
    "pass": "The model meets every threshold of this audit's policy.",
    "info": "The policy declares no threshold: the figures are reported, not assessed.",
    "skipped": "No check applied to this model and data.",
}

_COUNT_WORDS: Final = (
    ("fail", "failed"), ("warn", "raised a warning"), ("error", "could not complete"), ("pass", "passed"),
    ("info", "reported figures without a threshold (not assessed)"), ("skipped", "did not apply"))


@dataclass(frozen=True)
class SummaryFinding:
    status: str
    check_id: str
    section: int  # 1-based position of the check, for its anchor
    sentence: str


@dataclass(frozen=True)
class ExecutiveSummary:
    verdict: str
    counts: str
    scope: str
    findings: list[SummaryFinding]
    more: int  # missed thresholds not written out


def executive_summary(results: dict[str, Any]) -> ExecutiveSummary:
    """The summary's sentences (plain text; the template escapes them)."""
    checks = checks_of(results)
    status = str(results.get("status", ""))
    missed = [(index, check, finding) for rank in ("fail", "warn")
              for index, check in enumerate(checks, start=1)
              for finding in check.get("findings") or []
              if isinstance(finding, dict) and finding.get("status") == rank]
    errors = [(index, check) for index, check in enumerate(checks, start=1) if check.get("status") == "error"]
    written = [SummaryFinding(str(f.get("status")), str(c.get("id")), i, finding_sentence(c, f))
               for i, c, f in missed[:SUMMARY_FINDINGS]]
    room = max(0, SUMMARY_FINDINGS - len(written))
    written += [SummaryFinding("error", str(c.get("id")), i,
                               f"Check '{c.get('id')}' could not complete, so what it tests is not known: "
                               f"{_first_line(c.get('error')) or 'no reason was recorded'}.")
                for i, c in errors[:room]]
    more = len(missed) + len(errors) - len(written)
    return ExecutiveSummary(verdict=_VERDICT.get(status, f"Overall result: {status}."), counts=_counts(results),
                            scope=_scope(results), findings=written, more=more)


def finding_sentence(check: dict[str, Any], finding: dict[str, Any]) -> str:
    """One sentence for a missed threshold: the check's reading, else the figure and its bound."""
    reading = finding.get("reading")
    if isinstance(reading, str) and reading.strip():
        return reading.strip()
    metric = str(finding.get("metric"))
    figure = (check.get("metrics") or {}).get(metric)
    figure = figure if isinstance(figure, dict) else {}
    value = figure.get("value", finding.get("value"))
    details = []
    ci = figure.get("ci")
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        level = figure.get("level") or 0.95
        details.append(f"{float(level):.0%} CI {format_number(ci[0])}–{format_number(ci[1])}")
    if figure.get("n") is not None:
        details.append(f"n = {format_number(figure['n'])}")
    detail = f" ({'; '.join(details)})" if details else ""
    on = {"lower": "its lower confidence bound ", "upper": "its upper confidence bound "}.get(str(finding.get("on")), "")
    if finding.get("min") is not None and (finding.get("value") is None or finding["value"] < finding["min"]):
        bound = f"the policy requires {on}at least {format_number(finding['min'])}"
    elif finding.get("max") is not None:
        bound = f"the policy allows {on}at most {format_number(finding['max'])}"
    else:
        bound = str(finding.get("message") or "")
    return f"In check '{check.get('id')}', {metric} is {format_number(value)}{detail}; {bound}."


def _counts(results: dict[str, Any]) -> str:
    counts = status_counts(results)
    total = sum(counts.values())
    parts = [f"{counts[status]} {words}" for status, words in _COUNT_WORDS if counts.get(status)]
    if not parts:
        return "No check was run."
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"Of {total} check{'s' if total != 1 else ''}, {listed}."


def _scope(results: dict[str, Any]) -> str:
    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    model = inputs.get("model") if isinstance(inputs.get("model"), dict) else {}
    data = inputs.get("data") if isinstance(inputs.get("data"), dict) else {}
    report = results.get("report") if isinstance(results.get("report"), dict) else {}
    name = report.get("model_name") or model.get("path") or "the decisions recorded in the data"
    version = f" version {report['model_version']}" if report.get("model_version") else ""
    rows = data.get("rows_used", data.get("rows"))
    rows_text = f"{format_number(rows)} rows of " if rows is not None else ""
    protected = data.get("protected") or []
    audited = f"; audited attributes: {', '.join(map(str, protected))}" if protected else ""
    return (f"{report_title(results)}: {name}{version}, on {rows_text}{data.get('path') or 'the audit data'}"
            f"{audited}.")


def _first_line(text: Any) -> str:
    return str(text).strip().splitlines()[0].rstrip(".") if text and str(text).strip() else ""
