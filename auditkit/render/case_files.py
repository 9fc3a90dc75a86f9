"""Case files: everything the local checks say about one explained row, gathered per row.

A case officer answering "why was I declined, and what can I do?" needs one page per
decision, not four check sections: the reasons (``local_explanations``), the nearest
actionable change (``counterfactuals``), a rule that holds around the case (``anchors``) and
the what-if profiles (``ceteris_paribus``). Built from results.json alone, like the rest of
the report.
"""
from __future__ import annotations

from typing import Any

LOCAL_TYPES = ("local_explanations", "counterfactuals", "anchors", "ceteris_paribus")
#: Pages of case files at most; the rest are in results.json.
MAX_CASES = 25


def _records(check: dict[str, Any], table: str) -> list[dict[str, Any]]:
    tables = check.get("tables") if isinstance(check.get("tables"), dict) else {}
    records = tables.get(table) if isinstance(tables, dict) else None
    return [r for r in records if isinstance(r, dict) and "row" in r] if isinstance(records, list) else []


def _plots_for(check: dict[str, Any], row: Any) -> list[tuple[int, dict[str, Any]]]:
    plots = check.get("plots") if isinstance(check.get("plots"), list) else []
    return [(i, p) for i, p in enumerate(plots, start=1)
            if isinstance(p, dict) and isinstance(p.get("data"), dict) and p["data"].get("row") == row]


def decision_meaning(decision: Any, results: dict[str, Any]) -> str | None:
    """"favourable" / "unfavourable" for a binary decision, when the policy said which is which."""
    data = results.get("inputs", {}).get("data", {}) if isinstance(results.get("inputs"), dict) else {}
    favourable = data.get("favorable_decision") if isinstance(data, dict) else None
    if decision is None or favourable is None:
        return None
    return "favourable" if decision == favourable else "unfavourable"


def case_files(results: dict[str, Any], checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One case per explained row, in row order: what each local check found for it.

    The explained rows are those of the ``local_explanations`` checks when there is one (the
    other local checks add what they found for those rows), else every row a local check
    covers. The report draws the first :data:`MAX_CASES` of them.

    ``checks`` are the report's checks in order (their 1-based position numbers the figures).
    """
    cases: dict[Any, dict[str, Any]] = {}

    def case(row: Any) -> dict[str, Any]:
        return cases.setdefault(row, {"row": row, "score": None, "decision": None, "reasons": [],
                                      "explanation": None, "waterfalls": [], "counterfactuals": [],
                                      "anchors": [], "profiles": [], "sources": []})

    for index, check in enumerate(checks, start=1):
        kind = check.get("type")
        if kind not in LOCAL_TYPES or check.get("status") in ("error", "skipped"):
            continue
        source = {"id": check.get("id"), "number": f"3.{index}", "index": index}
        if kind == "local_explanations":
            for record in _records(check, "explanations"):
                c = case(record["row"])
                c["score"], c["decision"] = record.get("score"), record.get("decision")
                c["explanation"] = record
                c["reasons"] = [r for r in _records(check, "reasons") if r["row"] == record["row"]]
                c["waterfalls"] += [{**source, "plot": p, "plot_index": i} for i, p in _plots_for(check, record["row"])]
                c["sources"].append(source)
        elif kind == "counterfactuals":
            for record in _records(check, "counterfactuals"):
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
        elif kind == "anchors":
            for record in _records(check, "anchors"):
                c = case(record["row"])
                if c["decision"] is None:
                    c["decision"] = record.get("decision")
                c["anchors"].append({**source, "record": record})
                c["sources"].append(source)
        else:  # ceteris_paribus
            rows = {r["row"] for r in _records(check, "rows")}
            rows |= {p["data"].get("row") for p in (check.get("plots") or [])
                     if isinstance(p, dict) and isinstance(p.get("data"), dict) and p["data"].get("row") is not None}
            for row in rows:
                c = case(row)
                c["profiles"] += [{**source, "plot": p, "plot_index": i} for i, p in _plots_for(check, row)]
                c["sources"].append(source)
    # The rows a local_explanations check explains are the audit's case files; the other local
    # checks may cover many more rows (e.g. recourse over a sample) and only add to those.
    explained = [row for row, c in cases.items() if c["explanation"] is not None]
    keys = explained if explained else list(cases)
    ordered = [cases[k] for k in sorted(keys, key=lambda r: (0, r, "") if isinstance(r, (int, float)) else (1, 0, str(r)))]
    for c in ordered:
        c["meaning"] = decision_meaning(c["decision"], results)
    return ordered
