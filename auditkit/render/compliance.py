"""The report's "Regulatory mapping" and "Cross-check findings" part, and their lines in summary.md.

Both are derived from results.json alone: the mapping from the packaged obligations
(``auditkit/regulatory``) and ``report.regimes``; the cross-check findings from results.json's
``cross_findings``, or, in results written before it existed, derived by the same pure
function the engine runs.
"""
from __future__ import annotations

from typing import Any, Final, Mapping

from auditkit.engine.cross_checks import cross_findings as derive_cross_findings
from auditkit.regulatory.mapping import regulatory_mapping, selected_regimes, untested

STATE_TEXT: Final = {
    "not_tested": "not tested by this policy",
    "not_completed": "its checks did not complete",
    "not_testable": "not testable by a tool",
}
KIND_TEXT: Final = {"reason": "Reason code", "counterfactual": "Counterfactual change", "anchor": "Anchor rule"}


def findings_of(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The run's cross-check findings: as written in results.json, else derived from its checks."""
    written = results.get("cross_findings")
    if isinstance(written, list):
        return [f for f in written if isinstance(f, dict)]
    return derive_cross_findings(results)


def basis_text(finding: Mapping[str, Any]) -> str:
    """Why the feature is sensitive, in a few words (``protected attribute``, ``proxy for race (AUC 0.82)``)."""
    because = finding.get("because") if isinstance(finding.get("because"), dict) else {}
    words = []
    if because.get("protected_attribute"):
        words.append("protected attribute")
    if because.get("declared_proxy"):
        words.append("declared proxy")
    for hit in because.get("detected_proxy") or []:
        if isinstance(hit, dict):
            value = hit.get("value")
            figure = f" ({'AUC' if hit.get('measure') == 'auc' else hit.get('measure')} {value:.2f})" \
                if isinstance(value, (int, float)) else ""
            words.append(f"proxy for {hit.get('attribute')}{figure}")
    return ", ".join(dict.fromkeys(words)) or "sensitive"


def compliance_view(results: Mapping[str, Any], checks: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """What the template draws, or None when there is nothing to draw (no regime selected and
    no cross-check finding). ``checks`` are the report's checks in order (their 1-based position
    numbers their sections, ``3.n``)."""
    cross = findings_of(results)
    regimes = selected_regimes(results)
    mapping = regulatory_mapping(results, regimes, cross_findings=cross) if regimes else []
    if not mapping and not cross:
        return None
    sections = {str(c.get("id")): i for i, c in enumerate(checks or [], start=1)}
    for regime in mapping:
        for obligation in regime["obligations"]:
            obligation["state_text"] = STATE_TEXT.get(obligation["state"], "")
            for check in obligation["checks"]:
                check["section"] = sections.get(str(check["id"]))
    rows = [{**f, "kind_text": KIND_TEXT.get(str(f.get("kind")), str(f.get("kind"))), "basis": basis_text(f),
             "section": sections.get(str(f.get("check_id")))} for f in cross]
    title = " and ".join(part for part, shown in (("Regulatory mapping", bool(mapping)),
                                                  ("cross-check findings" if mapping else "Cross-check findings",
                                                   bool(cross))) if shown)
    left = untested(mapping)
    by_regime = [{"short": r["short"], "obligations": [o for o in left if o["regime"] == r["key"]]} for r in mapping]
    return {"title": title, "mapping": mapping, "untested": left, "cross": rows,
            "untested_by_regime": [r for r in by_regime if r["obligations"]],
            "has_mapping": bool(mapping), "regimes": regimes}


def markdown_lines(results: Mapping[str, Any], escape: Any) -> list[str]:
    """summary.md's lines: the cross-check findings, and the obligations left untested."""
    view = compliance_view(results)
    if view is None:
        return []
    lines: list[str] = []
    if view["cross"]:
        lines += ["### Cross-check findings", ""]
        lines += [f"- {escape(f.get('message', ''), limit=400)}" for f in view["cross"]]
        lines.append("")
    if view["has_mapping"]:
        lines += ["### Regulatory mapping", ""]
        if view["untested"]:
            lines += ["Obligations this policy leaves untested:", ""]
            for regime in view["mapping"]:
                left = [o for o in view["untested"] if o["regime"] == regime["key"]]
                if left:
                    lines.append(f"- **{escape(regime['short'], limit=60)}**: " + "; ".join(
                        f"{escape(o['title'] or '', limit=160)} ({escape(o['citation'] or '', limit=120)})"
                        + (" (its checks did not complete)" if o["state"] == "not_completed" else "") for o in left))
        else:
            lines.append("Every testable obligation of the selected regimes is addressed by a check of this audit.")
        not_testable = sum(r["counts"]["not_testable"] for r in view["mapping"])
        if not_testable:
            lines += ["", f"{not_testable} obligation{'s' if not_testable != 1 else ''} cannot be tested by a tool; "
                          f"the report's regulatory mapping says why."]
        lines.append("")
    return lines
