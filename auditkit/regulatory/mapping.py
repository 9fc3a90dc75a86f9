"""Which checks of an audit bear on which regulatory obligation: a pure function of results.json.

The obligations are data (``obligations.yaml``, shipped in the wheel): per regime, each
obligation's citation, a plain-language statement, and the check types (and, where a type
bears on it only through some figures, metric-name patterns) that produce evidence for it;
an obligation no tool can test says so (``testable: false``) with the reason. The mapping is
derived from results.json whenever a report is drawn: it is not stored in results.json, so a
corrected obligations file re-maps old audits too.

A check counts for an obligation when its type is listed and, when the entry names metric
patterns, the check reported one of those metrics (a check that ended as error or skipped
reported none: its type alone counts, so the reader sees that it was meant to and did not).
Being mapped says that a check gives evidence for an obligation, never that the obligation
is met.
"""
from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any, Final, Mapping, Sequence

OBLIGATIONS_FILE: Final = "obligations.yaml"
#: Worst first: the status an obligation shows is the worst of its checks'.
_STATUS_RANK: Final = {"fail": 0, "error": 1, "warn": 2, "pass": 3, "info": 4, "skipped": 5}
#: Statuses of a check that ran to the end (info: figures reported, no threshold assessed).
_RAN: Final = ("pass", "info", "warn", "fail")


@lru_cache(maxsize=1)
def load_obligations() -> dict[str, Any]:
    """The packaged obligations file, parsed (``{"version": 1, "regimes": {key: {...}}}``)."""
    from ruamel.yaml import YAML

    text = resources.files("auditkit.regulatory").joinpath(OBLIGATIONS_FILE).read_text(encoding="utf-8")
    return YAML(typ="safe", pure=True).load(text)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A metric-name pattern as a regex: ``*`` matches anything, every other character itself
    (unlike fnmatch, ``[`` is literal: metric names hold brackets)."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")) + r"\Z")


def _matched_metrics(check: Mapping[str, Any], patterns: Sequence[str]) -> list[str]:
    metrics = check.get("metrics") if isinstance(check.get("metrics"), dict) else {}
    findings = [f.get("metric") for f in check.get("findings") or [] if isinstance(f, dict)]
    names = list(dict.fromkeys([str(n) for n in metrics] + [str(n) for n in findings if n]))
    compiled = [pattern_regex(p) for p in patterns]
    return [name for name in names if any(rx.match(name) for rx in compiled)]


def _has_relative_bound(check: Mapping[str, Any]) -> bool:
    return any(isinstance(f, dict) and (f.get("max_decrease") is not None or f.get("max_increase") is not None)
               for f in check.get("findings") or [])


def _addresses(entry: Mapping[str, Any], check: Mapping[str, Any]) -> list[str] | None:
    """The metrics through which ``check`` bears on an obligation via ``entry`` ([] when the
    whole check does), or None when it does not."""
    wanted = entry.get("type")
    if wanted != "*" and check.get("type") != wanted:
        return None
    completed = check.get("status") in _RAN
    if entry.get("relative") and not (completed and _has_relative_bound(check)):
        return None
    patterns = entry.get("metrics") or []
    if not patterns or not completed:
        return []
    matched = _matched_metrics(check, patterns)
    return matched if matched else None


def _status_of(check: Mapping[str, Any], metrics: list[str]) -> Any:
    """The check's status, or, when only some of its metrics bear on the obligation, theirs: the
    worst of their findings, ``info`` when no threshold was set on them (reported, not assessed)."""
    if not metrics:
        return check.get("status")
    statuses = [str(f.get("status")) for f in check.get("findings") or []
                if isinstance(f, dict) and f.get("metric") in metrics]
    if not statuses:
        return "info"
    return min(statuses, key=lambda s: _STATUS_RANK.get(s, len(_STATUS_RANK)))


def _cross_findings_for(kinds: Sequence[str], cross: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [f for f in cross if isinstance(f, dict) and f.get("kind") in kinds]


def map_obligation(obligation: Mapping[str, Any], checks: Sequence[Mapping[str, Any]],
                   cross: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """One obligation with the checks of this audit that bear on it: each check's ``status`` is
    its own, or, when only some of its metrics bear on the obligation, that of their findings.

    ``state``: ``not_testable`` (no tool can test it: ``why`` says why), ``not_tested`` (no
    check of this audit bears on it), ``not_completed`` (its checks ended as error or were
    skipped) or ``tested``; ``status`` is the worst status of its checks.
    """
    out: dict[str, Any] = {key: obligation.get(key) for key in ("id", "citation", "title", "statement", "why", "limits")}
    out["testable"] = obligation.get("testable", True) is not False
    out["checks"] = []
    out["cross_findings"] = []
    if not out["testable"]:
        out.update(state="not_testable", status=None)
        return out
    for check in checks:
        for entry in obligation.get("checks") or []:
            metrics = _addresses(entry, check)
            if metrics is None:
                continue
            out["checks"].append({"id": check.get("id"), "type": check.get("type"),
                                  "status": _status_of(check, metrics), "check_status": check.get("status"),
                                  "metrics": metrics, "note": entry.get("note")})
            break
    out["cross_findings"] = _cross_findings_for(obligation.get("cross_findings") or [], cross)
    statuses = [str(c["status"]) for c in out["checks"]]
    if not statuses:
        out.update(state="not_tested", status=None)
    else:
        out["status"] = min(statuses, key=lambda s: _STATUS_RANK.get(s, len(_STATUS_RANK)))
        out["state"] = "tested" if any(s in _RAN for s in statuses) else "not_completed"
    return out


def selected_regimes(results: Mapping[str, Any]) -> list[str]:
    """The regimes the policy selected (``report.regimes`` in results.json)."""
    report = results.get("report") if isinstance(results.get("report"), dict) else {}
    regimes = report.get("regimes") if isinstance(report, dict) else None
    return [str(r) for r in regimes] if isinstance(regimes, list) else []


def regulatory_mapping(results: Mapping[str, Any], regimes: Sequence[str] | None = None, *,
                       cross_findings: Sequence[Mapping[str, Any]] | None = None,
                       catalogue: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Per selected regime (default: the results' ``report.regimes``, in that order), its
    obligations mapped onto the audit's checks (see :func:`map_obligation`).

    ``cross_findings`` default to the results' own; ``catalogue`` replaces the packaged
    obligations (tests). A regime the catalogue does not know is left out.
    """
    catalogue = catalogue if catalogue is not None else load_obligations()
    known = catalogue.get("regimes") or {}
    wanted = selected_regimes(results) if regimes is None else list(regimes)
    checks = [c for c in results.get("checks") or [] if isinstance(c, dict)]
    cross = cross_findings if cross_findings is not None else [
        f for f in results.get("cross_findings") or [] if isinstance(f, dict)]
    out = []
    for key in dict.fromkeys(wanted):
        regime = known.get(key)
        if not isinstance(regime, dict):
            continue
        obligations = [map_obligation(o, checks, cross) for o in regime.get("obligations") or []]
        out.append({"key": key, "name": regime.get("name"), "short": regime.get("short") or key,
                    "instrument": regime.get("instrument"),
                    "obligations": obligations,
                    "counts": {state: sum(o["state"] == state for o in obligations)
                               for state in ("tested", "not_completed", "not_tested", "not_testable")}})
    return out


def untested(mapping: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The testable obligations this audit leaves untested (no check, or none completed), with their regime."""
    return [{**o, "regime": r["key"], "regime_name": r["name"], "regime_short": r["short"]} for r in mapping for o in r["obligations"]
            if o["state"] in ("not_tested", "not_completed")]
