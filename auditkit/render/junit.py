"""JUnit XML for CI dashboards: one test suite for the audit, one test case per check.

Mapping: ``fail`` → ``<failure>`` listing every failing finding; ``error`` → ``<error>``;
``skipped`` → ``<skipped>``; ``warn`` passes, with its warnings in ``<system-out>``.
Built with ElementTree, so every string is escaped; characters XML 1.0 cannot hold at all
(NUL and most control characters, which a column name may contain) are dropped.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from typing import Any, Final

#: Characters outside XML 1.0's Char production: no escape can carry them.
_NOT_XML_RE: Final = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
MESSAGE_LIMIT: Final = 500


def _text(value: Any, limit: int | None = None) -> str:
    text = _NOT_XML_RE.sub("", "" if value is None else str(value))
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def _seconds(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return f"{float(value):.3f}"
    return "0.000"


def _timestamp(value: Any) -> str | None:
    """JUnit's timestamp: ISO 8601 without a zone, read as UTC."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _finding_line(finding: dict[str, Any]) -> str:
    message = finding.get("message")
    if isinstance(message, str) and message.strip():
        return message
    bounds = [f"{key} {finding[key]}" for key in ("min", "max") if finding.get(key) is not None]
    return f"{finding.get('metric')} = {finding.get('value')} (threshold {', '.join(bounds) or 'n/a'})"


def render_junit(results: dict[str, Any]) -> str:
    """The audit as a JUnit XML document (``<testsuites>`` with one ``<testsuite>``)."""
    checks = [c for c in results.get("checks") or [] if isinstance(c, dict)]
    statuses = [c.get("status") for c in checks]
    counts = {
        "tests": str(len(checks)),
        "failures": str(statuses.count("fail")),
        "errors": str(statuses.count("error")),
        "skipped": str(statuses.count("skipped")),
        "time": _seconds(results.get("duration_s")),
    }
    root = ET.Element("testsuites", {"name": "auditkit", **counts})
    suite_attrs = {"name": _text(results.get("policy_name") or "auditkit audit"), **counts}
    stamp = _timestamp(results.get("started_at"))
    if stamp:
        suite_attrs["timestamp"] = stamp
    suite = ET.SubElement(root, "testsuite", suite_attrs)

    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    model = inputs.get("model") if isinstance(inputs.get("model"), dict) else {}
    data = inputs.get("data") if isinstance(inputs.get("data"), dict) else {}
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("auditkit.run_id", results.get("run_id")),
        ("auditkit_version", results.get("auditkit_version")),
        ("status", results.get("status")),
        ("exit_code", results.get("exit_code")),
        ("seed", results.get("seed")),
        ("model_path", model.get("path")),
        ("model_sha256", model.get("sha256")),
        ("data_path", data.get("path")),
        ("data_sha256", data.get("sha256")),
        ("policy_sha256", inputs.get("policy_sha256")),
    ):
        if value is not None:
            ET.SubElement(properties, "property", {"name": name, "value": _text(value, MESSAGE_LIMIT)})

    for check in checks:
        case = ET.SubElement(suite, "testcase", {
            "classname": _text(f"auditkit.{check.get('type', 'check')}"),
            "name": _text(check.get("id", "")),
            "time": _seconds(check.get("duration_s")),
        })
        status = check.get("status")
        findings = [f for f in check.get("findings") or [] if isinstance(f, dict)]
        failing = [_finding_line(f) for f in findings if f.get("status") == "fail"]
        warnings = [_finding_line(f) for f in findings if f.get("status") == "warn"]
        if status == "fail":
            if not failing:
                failing = ["the check failed its thresholds"]
            message = failing[0] if len(failing) == 1 else f"{len(failing)} thresholds failed: {failing[0]}; …"
            failure = ET.SubElement(case, "failure", {"message": _text(message, MESSAGE_LIMIT), "type": "threshold"})
            failure.text = _text("\n".join(failing))
        elif status == "error":
            reason = str(check.get("error") or "the check could not complete")
            # The message is the last line: a traceback's exception, or the whole reason.
            lines = [line.strip() for line in reason.splitlines() if line.strip()]
            summary = lines[-1] if lines else "the check could not complete"
            error = ET.SubElement(case, "error", {"message": _text(summary, MESSAGE_LIMIT), "type": "CheckError"})
            error.text = _text(reason)
        elif status == "info":
            # a passed testcase: nothing failed, but nothing was assessed either
            case_properties = ET.SubElement(case, "properties")
            ET.SubElement(case_properties, "property", {
                "name": "auditkit.status", "value": "info: not assessed (the policy declares no threshold)"})
        elif status == "skipped":
            notes = check.get("notes") or []
            reason = check.get("skip_reason") or (notes[0] if notes else "not applicable")
            ET.SubElement(case, "skipped", {"message": _text(reason, MESSAGE_LIMIT)})
        if warnings:
            out = ET.SubElement(case, "system-out")
            out.text = _text("\n".join(f"warning: {line}" for line in warnings))

    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
