"""``data_integrity``: is the audit data fit to be audited and fed to this model?"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np
import pandas as pd
from pydantic import Field

from auditkit.engine.context import AuditContext, AuditData
from auditkit.methods.integrity import MAX_LISTED, Summary, combine, first_of, is_numeric, summarise
from auditkit.core.registry import CheckParams, RowSummary, check
from auditkit.errors import CheckError
from auditkit.results.model import CheckOutput, Metric, Plot



class DataIntegrityParams(CheckParams):
    columns: Optional[list[str]] = Field(
        None, description="Columns to examine; default: features, target and protected attributes.")
    duplicate_subset: Optional[list[str]] = Field(
        None, description="Columns that define a duplicate row; default: every column of the file.")


def _role(name: str, data: AuditData) -> str:
    roles = []
    if name in data.features:
        roles.append("feature")
    if name == data.target:
        roles.append("target")
    if name in data.protected:
        roles.append("protected")
    return ", ".join(roles) or "other"


_is_numeric = is_numeric


_PLAIN: dict[str, str] = {
    "duplicate_rows": "{value:,.0f} rows of the audit data repeat an earlier row exactly",
    "duplicate_row_share": "{value:.1%} of the audit data's rows repeat an earlier row exactly",
    "max_missing_share": "a column of the audit data is {value:.1%} missing",
    "missing_cells": "{value:,.0f} cells of the audit data are missing",
    "out_of_range_share": "{value:.1%} of the values fall outside the range seen in the reference data",
    "dtype_mismatches": "{value:,.0f} columns have a different type than in the reference data",
    "constant_columns": "{value:,.0f} columns hold a single value",
}


def _reading(finding: dict[str, Any], result: dict[str, Any]) -> str | None:
    template, value = _PLAIN.get(finding["metric"]), finding.get("value")
    if template is None or value is None:
        return None
    bound = (f"the policy allows at most {finding['max']:g}" if finding.get("max") is not None
             else f"the policy requires at least {finding['min']:g}")
    sentence = template.format(value=value)
    return f"{sentence[:1].upper()}{sentence[1:]}; {bound}."


CAVEATS = (
    "Out-of-range values are judged against the reference data's observed range, not against what is valid in the domain.",
)


@check("data_integrity", caveats=CAVEATS, family="data", params=DataIntegrityParams, reading=_reading,
       metrics=["rows", "missing_cells", "max_missing_share", "missing_share[*]", "infinite_cells",
                "infinite_values[*]", "constant_columns",
                "duplicate_columns", "duplicate_rows", "duplicate_row_share", "out_of_range[*]",
                "out_of_range_rows", "out_of_range_share", "dtype_mismatches"],
       summary=RowSummary(lambda frame, data, params: _summarise(frame, data, params), combine),
       example={"thresholds": {"duplicate_rows": {"max": 0}, "missing_share": {"max": 0.05, "severity": "warn"},
                               "infinite_values": {"max": 0},
                               "out_of_range_share": {"max": 0.01}}})
def data_integrity(ctx: AuditContext, params: DataIntegrityParams) -> CheckOutput:
    """Missing values, constant and duplicate columns, duplicate rows, out-of-range values, dtypes.

    ``missing_share[column]`` is the share of empty cells (0 = complete).
    ``infinite_values[column]`` counts cells of a numeric column that hold +inf or -inf (a
    model's arithmetic on them gives inf or NaN); ``infinite_cells`` is their total; the
    column's min and max are taken over its finite values. ``duplicate_rows``
    counts rows identical to an earlier row (over ``params.duplicate_subset``, default every
    column). ``out_of_range[column]`` counts values outside the reference data's range
    (numeric: below its minimum or above its maximum; categorical: a category the reference
    never shows); it needs ``data.reference``. ``dtype_mismatches`` counts model inputs whose
    column type differs from what the model takes (a number column fed to a text input, or
    the reverse). All are counts or shares of the audit rows; lower is better.
    """
    data = ctx.data
    integrity_columns(data, params)
    summary = data.row_summaries.get(ctx.check_id)  # the rows summarised by partition (Dask, a dataset)
    return from_summary(data, params, summary if summary is not None else _summarise(data.frame, data, params))


def _summarise(frame: pd.DataFrame, data: AuditData, params: DataIntegrityParams) -> Summary:
    """The summary of some audit rows (all of them, or a partition's)."""
    columns = params.columns or _default_columns(data)
    columns = [c for c in columns if c in frame.columns]  # named columns are checked by the check itself
    subset = params.duplicate_subset if params.duplicate_subset and set(params.duplicate_subset) <= set(frame.columns) \
        else None
    return summarise(frame, columns, reference=data.reference, duplicate_subset=subset)


def _default_columns(data: AuditData) -> list[str]:
    return list(dict.fromkeys(data.features + ([data.target] if data.target else []) + data.protected))


def integrity_columns(data: AuditData, params: DataIntegrityParams) -> list[str]:
    """The columns examined; raises CheckError for params naming columns the data lacks."""
    columns = params.columns or _default_columns(data)
    unknown = [c for c in columns if c not in data.frame.columns]
    if unknown:
        raise CheckError(f"params.columns names columns that are not in the data: {unknown}")
    subset = params.duplicate_subset
    if subset:
        missing_subset = [c for c in subset if c not in data.frame.columns]
        if missing_subset:
            raise CheckError(f"params.duplicate_subset names columns that are not in the data: {missing_subset}")
    return columns


def from_summary(data: AuditData, params: DataIntegrityParams, summary: Summary) -> CheckOutput:
    """The check's output from the summary of every audit row (:mod:`auditkit.methods.integrity`:
    the whole frame's, or the combined summaries of a dataset's files)."""
    columns = list(summary.columns)
    n = summary.rows
    metrics: dict[str, Metric] = {"rows": Metric(float(n), n=n)}
    notes: list[str] = []
    reference = data.reference
    if reference is None:
        notes.append("no data.reference given: values are not compared with a reference range")

    records: list[dict[str, Any]] = []
    constant, missing_total, infinite_total = [], 0, 0
    for name in columns:
        column = summary.columns[name]
        head = column.head
        missing = column.missing
        missing_total += missing
        share = missing / n if n else None
        metrics[f"missing_share[{name}]"] = Metric(share, n=n)
        distinct = int(len(column.distinct))
        if distinct <= 1:
            constant.append(name)
        record: dict[str, Any] = {"column": name, "role": _role(name, data), "dtype": str(head.dtype),
                                  "missing": missing, "missing_share": share, "unique": distinct,
                                  "constant": distinct <= 1}
        if _is_numeric(head):
            record["infinite"] = column.infinite
            record["min"] = column.low
            record["max"] = column.high
            metrics[f"infinite_values[{name}]"] = Metric(float(column.infinite), n=n)
            infinite_total += column.infinite
        if reference is not None and name in reference.columns:
            ref = reference[name]
            if _is_numeric(head) and _is_numeric(ref):
                record.update(ref_min=float(ref.min()), ref_max=float(ref.max()))
            else:
                unseen = sorted(column.unseen)
                if unseen:
                    record["unseen_categories"] = ", ".join(unseen[:10]) + (" ..." if len(unseen) > 10 else "")
            count = int(column.out_of_range or 0)
            record["out_of_range"] = count
            metrics[f"out_of_range[{name}]"] = Metric(float(count), n=n)
        records.append(record)

    metrics["missing_cells"] = Metric(float(missing_total), n=n * len(columns))
    metrics["infinite_cells"] = Metric(float(infinite_total), n=n)
    if infinite_total:
        notes.append(f"{infinite_total:,} cells hold +inf or -inf: "
                     + ", ".join(f"{r['column']} ({r['infinite']:,})" for r in records if r.get("infinite")))
    shares = [m.value for k, m in metrics.items() if k.startswith("missing_share[") and m.value is not None]
    metrics["max_missing_share"] = Metric(max(shares) if shares else 0.0, n=n)
    metrics["constant_columns"] = Metric(float(len(constant)), n=n)
    if constant:
        notes.append(f"constant columns: {', '.join(constant[:MAX_LISTED])}")

    # duplicate columns: identical values under another name (the first such earlier column)
    duplicates_of: list[dict[str, Any]] = []
    originals: list[str] = []
    for name in columns:
        same = next((earlier for earlier in originals if (earlier, name) in summary.equal_pairs), None)
        if same is not None:
            duplicates_of.append({"column": name, "same_as": same})
        else:
            originals.append(name)
    metrics["duplicate_columns"] = Metric(float(len(duplicates_of)), n=n)

    subset = params.duplicate_subset
    n_dup = summary.duplicates
    metrics["duplicate_rows"] = Metric(float(n_dup), n=n)
    metrics["duplicate_row_share"] = Metric(n_dup / n if n else None, n=n)
    duplicate_table: list[dict[str, Any]] = []
    if n_dup:
        for listed in summary.listed:
            duplicate_table.append({"row": listed[0], "duplicate_of": first_of(summary, listed)})
        notes.append(f"{n_dup:,} rows repeat an earlier row exactly"
                     + (f" (over {', '.join(subset)})" if subset else ""))

    if reference is not None:
        n_out = summary.out_of_range_rows
        metrics["out_of_range_rows"] = Metric(float(n_out), n=n)
        metrics["out_of_range_share"] = Metric(n_out / n if n else None, n=n)

    mismatches = []
    heads = summary.heads
    for name, kind in data.input_dtypes.items():
        if name not in heads.columns:
            continue
        numeric_column = _is_numeric(heads[name])
        if kind == "numeric" and not numeric_column:
            mismatches.append({"column": name, "model_input": "number", "data": str(heads[name].dtype)})
        elif kind == "string" and numeric_column:
            mismatches.append({"column": name, "model_input": "text", "data": str(heads[name].dtype)})
    metrics["dtype_mismatches"] = Metric(float(len(mismatches)), n=len(data.input_dtypes) or None)
    if not data.input_dtypes:
        notes.append("the model does not declare its input types (or there is no model): dtypes checked only "
                     "for readability")

    tables: dict[str, list[dict[str, Any]]] = {"columns": records}
    if duplicate_table:
        tables["duplicate_rows"] = duplicate_table
    if duplicates_of:
        tables["duplicate_columns"] = duplicates_of
    if mismatches:
        tables["dtype_mismatches"] = mismatches
    plots = [Plot("bar", "Missing share by column", {
        "labels": [r["column"] for r in records], "values": [r["missing_share"] for r in records],
        "y_label": "share of rows missing", "n": n})]
    if reference is not None:
        plots.append(Plot("bar", "Values outside the reference range, by column", {
            "labels": [r["column"] for r in records if "out_of_range" in r],
            "values": [r["out_of_range"] for r in records if "out_of_range" in r],
            "y_label": "rows", "n": n}))
    return CheckOutput(metrics=metrics, tables=tables, plots=plots, notes=notes)
