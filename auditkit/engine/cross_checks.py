"""Findings that need two results: an explanation that relies on a protected attribute or a proxy.

One check explains a decision (a reason code, an anchor rule, a counterfactual change); another
says which features stand in for a protected attribute (``proxy_detection``), or the policy
declares them (``data.proxies``). Neither check alone sees that a declined applicant was given
a race proxy as a principal reason; this post-pass, run after every check, does. It is a pure
function of the results (results.json's ``checks``, ``inputs.data.protected`` and
``report.proxies``), so ``auditkit report`` can derive it for results written before it existed.

A feature is *sensitive* when it is a protected attribute, a declared proxy, or a feature
that a ``proxy_detection`` check flagged: its per-feature figure (``auc``, ``mutual_information``
or ``mi_share`` in table ``proxies``) exceeds the ``max`` of a failing or warning threshold on
the matching per-attribute metric (``max_single_feature_auc[race]`` ...).
"""
from __future__ import annotations

from typing import Any, Final, Mapping, Sequence

#: proxy_detection metric -> the per-feature column of its table ``proxies`` it is the maximum of
PROXY_COLUMNS: Final = {"max_single_feature_auc": "auc", "max_mutual_information": "mutual_information",
                        "max_mutual_information_share": "mi_share"}
#: What each case-file role contributes, and the kind of cross finding it gives.
ROLE_KINDS: Final = {"reasons": "reason", "recourse": "counterfactual", "rule": "anchor"}
#: Roles of the local checks in results written before checks declared ``case_file``.
_DECLARED_BEFORE: Final = {"local_explanations": [("reasons", "reasons")],
                           "counterfactuals": [("recourse", "counterfactuals")], "anchors": [("rule", "anchors")]}
_COMPLETED: Final = ("pass", "info", "warn", "fail")


def _checks(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in results.get("checks") or [] if isinstance(c, dict)]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def detected_proxies(checks: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Features that a proxy_detection check flagged: feature -> what flagged it."""
    flagged: dict[str, list[dict[str, Any]]] = {}
    for check in checks:
        if check.get("type") != "proxy_detection" or check.get("status") not in ("fail", "warn"):
            continue
        tables = check.get("tables") if isinstance(check.get("tables"), dict) else {}
        records = [r for r in tables.get("proxies") or [] if isinstance(r, dict)]
        for finding in check.get("findings") or []:
            if not isinstance(finding, dict) or finding.get("status") not in ("fail", "warn"):
                continue
            metric = str(finding.get("metric", ""))
            if not metric.endswith("]") or "[" not in metric:
                continue
            name, attribute = metric[:-1].split("[", 1)
            column, bound = PROXY_COLUMNS.get(name), finding.get("max")
            if column is None or not isinstance(bound, (int, float)):
                continue
            for record in records:
                value = record.get(column)
                if record.get("attribute") == attribute and isinstance(value, (int, float)) and value > bound:
                    flagged.setdefault(str(record.get("feature")), []).append({
                        "check_id": check.get("id"), "attribute": attribute, "group": record.get("group"),
                        "measure": column, "value": value, "max": bound, "status": finding.get("status")})
    return flagged


def _roles(check: Mapping[str, Any]) -> list[tuple[str, str]]:
    declared = check.get("case_file")
    if isinstance(declared, list):
        return [(str(c["role"]), str(c["table"])) for c in declared
                if isinstance(c, dict) and c.get("role") in ROLE_KINDS and isinstance(c.get("table"), str)]
    return _DECLARED_BEFORE.get(str(check.get("type")), [])


def _anchor_features(record: Mapping[str, Any], known: Sequence[str]) -> list[str]:
    """The features an anchor's predicates condition on: its ``features``, else read off each
    predicate's text (``zip_region = R11``, ``income <= 41000``), longest known name first."""
    if isinstance(record.get("features"), list):
        return _strings(record["features"])
    names = sorted(set(known), key=len, reverse=True)
    out = []
    for predicate in _strings(record.get("predicates")):
        match = next((n for n in names if predicate.startswith(n + " ")), None)
        if match is not None:
            out.append(match)
    return out


def _why(feature: str, protected: set[str], declared: set[str],
         detected: Mapping[str, list[dict[str, Any]]]) -> tuple[dict[str, Any], str] | None:
    reasons, words = {}, []
    if feature in protected:
        reasons["protected_attribute"] = True
        words.append("a protected attribute")
    if feature in declared:
        reasons["declared_proxy"] = True
        words.append("declared a proxy by the policy (data.proxies)")
    if feature in detected:
        reasons["detected_proxy"] = detected[feature]
        for hit in detected[feature]:
            label = {"auc": "AUC", "mutual_information": "mutual information",
                     "mi_share": "mutual information share"}.get(hit["measure"], hit["measure"])
            words.append(f"found by '{hit['check_id']}' to predict {hit['attribute']} "
                         f"({label} {hit['value']:.2f}, above the {hit['max']:g} allowed)")
    if not reasons:
        return None
    return reasons, "; ".join(words)


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cross_findings(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every explanation in the results that relies on a sensitive feature (see the module).

    One record per (check, row, feature): ``kind`` (``reason``, ``counterfactual`` or
    ``anchor``), ``check_id``, ``row``, ``feature``, ``because`` (``protected_attribute``,
    ``declared_proxy`` and/or ``detected_proxy``: the proxy_detection figures that flagged
    it), ``message``; a reason also carries its ``rank``, a counterfactual its change
    (``from``, ``to``). In the order of the checks, then rows as the check lists them.
    """
    checks = _checks(results)
    inputs = results.get("inputs") if isinstance(results.get("inputs"), dict) else {}
    data = inputs.get("data") if isinstance(inputs.get("data"), dict) else {}
    report = results.get("report") if isinstance(results.get("report"), dict) else {}
    protected, declared = set(_strings(data.get("protected"))), set(_strings(report.get("proxies")))
    detected = detected_proxies(checks)
    known = _strings(data.get("features")) + sorted(protected | declared | set(detected))
    out: list[dict[str, Any]] = []
    for check in checks:
        if check.get("status") not in _COMPLETED:
            continue
        tables = check.get("tables") if isinstance(check.get("tables"), dict) else {}
        for role, table in _roles(check):
            kind = ROLE_KINDS[role]
            for record in tables.get(table) or []:
                if not isinstance(record, dict) or "row" not in record:
                    continue
                row = record["row"]
                if kind == "reason":
                    uses = [(str(record.get("feature")), {"rank": record.get("rank")})]
                elif kind == "counterfactual":
                    changes = record.get("changes") if isinstance(record.get("changes"), dict) else {}
                    uses = [(str(f), {"from": v[0], "to": v[1]}) for f, v in changes.items()
                            if isinstance(v, (list, tuple)) and len(v) == 2]
                else:
                    uses = [(f, {}) for f in dict.fromkeys(_anchor_features(record, known))]
                for feature, extra in uses:
                    why = _why(feature, protected, declared, detected)
                    if why is None:
                        continue
                    because, words = why
                    if kind == "reason":
                        what = f"reason {extra['rank']} for the decision cites {feature}"
                    elif kind == "counterfactual":
                        what = (f"the counterfactual changes {feature} "
                                f"({_value(extra['from'])} to {_value(extra['to'])})")
                    else:
                        what = f"the anchor rule conditions on {feature}"
                    out.append({"kind": kind, "check_id": check.get("id"), "row": row, "feature": feature,
                                **extra, "because": because,
                                "message": f"Row {row} ({check.get('id')}): {what}, {words}."})
    return out
