"""Case files: everything the local checks say about one explained row, gathered per row.

A case officer answering "why was I declined, and what can I do?" needs one page per
decision, not one section per check: the reasons, the nearest actionable change, a rule that
holds around the case and the what-if profiles. Each check says in results.json what it
contributes and in which role (``case_file``, declared when it is registered), so a new local
check adds to the case files without a change here. Built from results.json alone, like the
rest of the report.
"""
from __future__ import annotations

from typing import Any, Final

#: What the four local checks declared before results.json carried ``case_file`` (files
#: written by earlier versions); a check's own declaration always wins.
DECLARED_BEFORE: Final = {
    "local_explanations": [{"role": "decision", "table": "explanations"}, {"role": "reasons", "table": "reasons"},
                           {"role": "charts", "table": None}],
    "counterfactuals": [{"role": "recourse", "table": "counterfactuals"}],
    "anchors": [{"role": "rule", "table": "anchors"}],
    "ceteris_paribus": [{"role": "charts", "table": None}],
}
#: Pages of case files at most; the rest are in results.json.
MAX_CASES = 25
#: The report's number of its "Checks" part (after the summary, the glance and what was audited).
CHECKS_SECTION: Final = 4


def _records(check: dict[str, Any], table: Any) -> list[dict[str, Any]]:
    tables = check.get("tables") if isinstance(check.get("tables"), dict) else {}
    records = tables.get(table) if isinstance(tables, dict) and isinstance(table, str) else None
    return [r for r in records if isinstance(r, dict) and "row" in r] if isinstance(records, list) else []


def _plots_for(check: dict[str, Any], row: Any) -> list[tuple[int, dict[str, Any]]]:
    plots = check.get("plots") if isinstance(check.get("plots"), list) else []
    return [(i, p) for i, p in enumerate(plots, start=1)
            if isinstance(p, dict) and isinstance(p.get("data"), dict) and p["data"].get("row") == row]


def _rows_with_plots(check: dict[str, Any]) -> list[Any]:
    plots = check.get("plots") if isinstance(check.get("plots"), list) else []
    rows = [p["data"].get("row") for p in plots if isinstance(p, dict) and isinstance(p.get("data"), dict)]
    return list(dict.fromkeys(r for r in rows if r is not None))


def contributions(check: dict[str, Any]) -> list[dict[str, Any]]:
    """What a check adds to the case files: its own ``case_file`` declaration (results.json),
    else what its type declared before results.json carried one."""
    declared = check.get("case_file")
    if isinstance(declared, list):
        return [c for c in declared if isinstance(c, dict) and isinstance(c.get("role"), str)]
    return DECLARED_BEFORE.get(str(check.get("type")), [])


def decision_meaning(decision: Any, results: dict[str, Any]) -> str | None:
    """"favourable" / "unfavourable" for a binary decision, when the policy said which is which."""
    data = results.get("inputs", {}).get("data", {}) if isinstance(results.get("inputs"), dict) else {}
    favourable = data.get("favorable_decision") if isinstance(data, dict) else None
    if decision is None or favourable is None:
        return None
    return "favourable" if decision == favourable else "unfavourable"


def case_files(results: dict[str, Any], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One case per explained row, in row order: what each check found for it.

    A check says what it contributes (``case_file`` in results.json: a role and a table per
    contribution). The rows of the "decision" contributions are the case files when there are
    any (other checks, e.g. recourse over a sample, only add to those rows), else every row
    a check contributes. The report draws the first :data:`MAX_CASES` of them.

    ``checks`` are the report's checks in order (their 1-based position numbers the figures).
    """
    cases: dict[Any, dict[str, Any]] = {}

    def case(row: Any) -> dict[str, Any]:
        return cases.setdefault(row, {"row": row, "score": None, "decision": None, "reasons": [],
                                      "explanation": None, "waterfalls": [], "counterfactuals": [],
                                      "anchors": [], "profiles": [], "sources": []})

    for index, check in enumerate(checks, start=1):
        if check.get("status") in ("error", "skipped"):
            continue
        source = {"id": check.get("id"), "number": f"{CHECKS_SECTION}.{index}", "index": index}
        roles = {c["role"] for c in contributions(check)}
        for contribution in contributions(check):
            role, table = contribution["role"], contribution.get("table")
            if role == "decision":
                for record in _records(check, table):
                    c = case(record["row"])
                    c["score"], c["decision"] = record.get("score"), record.get("decision")
                    c["explanation"] = record
                    c["sources"].append(source)
            elif role == "reasons":
                for record in _records(check, table):
                    case(record["row"])["reasons"].append(record)
            elif role == "recourse":
                for record in _records(check, table):
                    c = case(record["row"])
                    if c["score"] is None:
                        c["score"] = record.get("score_before")
                    if c["decision"] is None:
                        c["decision"] = record.get("decision")
                    changes = record.get("changes") if isinstance(record.get("changes"), dict) else {}
                    c["counterfactuals"].append({**source, "record": record, "changes": [
                        {"feature": f, "before": v[0], "after": v[1]} for f, v in changes.items()
                        if isinstance(v, (list, tuple)) and len(v) == 2]})
                    c["sources"].append(source)
            elif role == "rule":
                for record in _records(check, table):
                    c = case(record["row"])
                    if c["decision"] is None:
                        c["decision"] = record.get("decision")
                    c["anchors"].append({**source, "record": record})
                    c["sources"].append(source)
            elif role == "charts":
                # the charts of a check that also gives the decision are that decision's own
                # explanation (a waterfall); other checks' per-row charts are what-if profiles
                slot = "waterfalls" if "decision" in roles else "profiles"
                for row in _rows_with_plots(check):
                    c = case(row)
                    c[slot] += [{**source, "plot": p, "plot_index": i} for i, p in _plots_for(check, row)]
                    c["sources"].append(source)
    explained = [row for row, c in cases.items() if c["explanation"] is not None]
    keys = explained if explained else list(cases)
    ordered = [cases[k] for k in sorted(keys, key=lambda r: (0, r, "") if isinstance(r, (int, float)) else (1, 0, str(r)))]
    for c in ordered:
        c["meaning"] = decision_meaning(c["decision"], results)
    return ordered
