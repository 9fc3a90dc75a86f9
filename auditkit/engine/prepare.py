"""From a validated policy to :class:`AuditData`: load data and model, sample, predict once.

Everything here runs before any check: a problem with an input is a ``UserError`` (exit 2)
raised here, and nothing has been run or written yet.
"""
from __future__ import annotations

import platform
import sys
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.core.decisions import decide
from auditkit.adapters.base import AdapterSpec, ModelAdapter, infer_format, load_adapter, sha256_of
from auditkit.data.load import Table, data_sha256, dataset_note, dataset_schema, is_dataset, read_table
from auditkit.data.partitions import read_dataset_sample
from auditkit.data.roles import resolve_roles, text_in_numeric
from auditkit.data.sample import keyed_stratified_positions
from auditkit.engine.context import AuditData
from auditkit.errors import AuditkitError, DataError, ModelLoadError, PolicyError, Source
from auditkit.policy.load import LoadedPolicy

REPORTED_PACKAGES = ("auditkit", "numpy", "pandas", "scikit-learn", "scipy", "onnxruntime", "shap", "lime",
                     "fairlearn", "skops", "pydantic", "jinja2", "weasyprint", "matplotlib", "pyarrow")


@dataclass
class Prepared:
    data: AuditData
    adapter: ModelAdapter
    inputs: dict[str, Any]  # the results.json "inputs" block
    seed: int
    parts: list[Any] | None = None  # a dataset prepared by partition on Dask: the partitions' futures


def _same_label(values: pd.Series, label: Any) -> pd.Series:
    """``values == label``, forgiving the CSV's type (1 vs "1" vs 1.0)."""
    if pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        try:
            return values.astype(np.float64) == float(label)
        except (TypeError, ValueError):
            return pd.Series(False, index=values.index)
    as_text = values.astype(object).where(values.notna(), None)
    text = str(label)
    return as_text.map(lambda v: v is not None and (str(v) == text or _num_equal(v, label)))


def _num_equal(a: Any, b: Any) -> bool:
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def environment() -> dict[str, Any]:
    packages = {}
    for name in REPORTED_PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {"python": platform.python_version(), "implementation": sys.implementation.name,
            "platform": platform.platform(terse=True), "packages": packages}


def inputs_record(loaded: LoadedPolicy, adapter: Any, model_spec: Any, roles: Any, *, task: str,
                  positive_class: Any, threshold: float | None, rows_in_file: int, columns: int, rows_used: int,
                  favorable: Any, favorable_decision: int, favorable_class: str | None, notes: list[str],
                  reference: pd.DataFrame | None) -> dict[str, Any]:
    """results.json's ``inputs``: what was audited, the same whether the data was read whole or
    by partition (engine/partitioned.py)."""
    return {
        "model": {**{k: v for k, v in adapter.describe().items() if k != "input_features"},
                  "path": _display_path(loaded.model_path), "task": task,
                  "positive_class": None if positive_class is None else str(positive_class),
                  "threshold": threshold, "pinned": bool(model_spec.sha256)},
        "data": {"path": _display_path(loaded.data_path), "sha256": data_sha256(loaded.data_path),
                 "rows": rows_in_file, "columns": columns, "rows_used": rows_used,
                 "target": roles.target, "protected": roles.protected, "features": roles.features,
                 "ignore": roles.ignore, **({"text": roles.text} if roles.text else {}),
                 "favorable_label": None if favorable is None else str(favorable),
                 # the decision that benefits the person: 0/1 (binary), a class (multiclass), none (a regression)
                 "favorable_decision": {"multiclass": favorable_class, "regression": None}.get(task, favorable_decision),
                 "query": loaded.policy.data.query, "sample": loaded.policy.data.sample,
                 "notes": notes},
        "reference": ({"path": _display_path(loaded.reference_path), "sha256": sha256_of(loaded.reference_path),
                       "rows": int(len(reference))} if reference is not None and loaded.reference_path else None),
        "policy_path": _display_path(loaded.path),
        "policy_sha256": loaded.sha256,
        "environment": environment(),
    }


def _favorable_class(favorable: Any, task: str, classes: list[Any] | None, scores: Any,
                     loaded: LoadedPolicy) -> str | None:
    """A multiclass model's favourable class (``data.favorable_label``) as the string its
    decisions are compared with; it must be one of the model's classes (exit 2 naming the key)."""
    if favorable is None or task != "multiclass":
        return None
    known = [str(c) for c in (classes or range(np.shape(scores)[1]))]
    for name in known:
        if name == str(favorable) or _num_equal(name, favorable):
            return name
    raise PolicyError(f"data.favorable_label {favorable!r} is not a class of the model; classes: {', '.join(known)}",
                      source=loaded.source("data.favorable_label"))


def _display_path(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def prepare(loaded: LoadedPolicy, *, seed: int | None = None, trust_pickle: bool = False,
            threads_per_worker: int = 1) -> Prepared:
    policy = loaded.policy
    policy_file = str(loaded.path)
    run_seed = policy.seed if seed is None else seed
    model_spec = policy.model
    fmt = infer_format(model_spec.path, model_spec.format)
    if fmt == "predictions" and model_spec.score_column is None and model_spec.prediction_column is None:
        raise PolicyError("format: predictions needs score_column and/or prediction_column",
                          source=loaded.source("model"))

    # -- data
    # A Parquet dataset with data.sample (and no data.query, which needs every row) is sampled
    # without reading it whole: its columns come from the files' footers now, its rows once the
    # target (the strata) is known, below.
    lazy_sample = (policy.data.sample is not None and not policy.data.query and is_dataset(loaded.data_path))
    if lazy_sample:
        files, schema = dataset_schema(loaded.data_path, source=loaded.source("data.path"))
        table = Table(frame=schema.empty_table().to_pandas(), path=loaded.data_path,
                      notes=[dataset_note(loaded.data_path, len(files))])
        table.frame.columns = [str(c) for c in table.frame.columns]
    else:
        table = read_table(loaded.data_path, policy_file=policy_file, na_values=policy.data.na_values,
                           encoding=policy.data.encoding)
    frame = table.frame
    rows_in_file = len(frame)
    columns_in_file = int(table.frame.shape[1])
    notes = list(table.notes)
    if policy.data.query:
        try:
            frame = frame.query(policy.data.query, engine="python")
        except Exception as exc:
            raise DataError(f"data.query {policy.data.query!r} cannot be evaluated: {type(exc).__name__}: "
                            f"{' '.join(str(exc).split())[:200]}", source=loaded.source("data.query")) from None
        notes.append(f"data.query kept {len(frame):,} of {rows_in_file:,} rows")
    if len(frame) == 0 and not lazy_sample:
        if policy.data.query:  # point at the query, the cause, not at the file
            raise DataError(f"no rows left: data.query {policy.data.query!r} kept 0 of {rows_in_file:,} rows of "
                            f"{loaded.data_path}", source=loaded.source("data.query"))
        raise DataError(f"no rows in the file: {loaded.data_path}", source=loaded.source("data.path"))

    # -- model
    adapter_spec = AdapterSpec(
        format=fmt, path=str(loaded.model_path) if loaded.model_path else None, sha256=model_spec.sha256,
        trust_pickle=trust_pickle, trusted_types=tuple(model_spec.trusted_types),
        feature_names=tuple(policy.data.features) if policy.data.features else None,
        positive_class=model_spec.positive_class, intra_op_threads=threads_per_worker,
        policy_file=policy_file)
    adapter = load_adapter(adapter_spec)
    adapter_spec = adapter.spec  # carries the model bytes read and checked here: workers load only those

    roles = resolve_roles(policy.data, model_spec, list(frame.columns), data_path=str(loaded.data_path),
                          model_inputs=adapter.input_features, policy_file=policy_file)
    task = model_spec.task or adapter.task
    sampled_note = None
    if lazy_sample:
        assert policy.data.sample is not None
        strata_column = roles.target if (roles.target is not None and task != "regression") else None
        sampled, rows_in_file, _ = read_dataset_sample(loaded.data_path, strata_column=strata_column, seed=run_seed,
                                                       n_wanted=policy.data.sample,
                                                       source=loaded.source("data.path"))
        frame = sampled.frame
        if rows_in_file == 0:
            raise DataError(f"no rows in the file: {loaded.data_path}", source=loaded.source("data.path"))
        if len(frame) < rows_in_file:
            sampled_note = _sampled_note(len(frame), rows_in_file, strata_column, run_seed)
    stray = text_in_numeric(frame, roles.features)
    if stray is not None:
        column, text, row = stray
        raise DataError(f"column '{column}' is numeric but holds text: {text!r} in row {row}",
                        source=Source(str(loaded.data_path), column),
                        hint="fix the value, declare it missing with data.na_values, or drop the column")
    if fmt == "onnx" and getattr(adapter, "matrix_input", False):
        width = getattr(adapter, "input_width", None)
        if width is not None and width != len(roles.features):
            raise ModelLoadError(
                f"the ONNX model's input takes {width} columns, but {len(roles.features)} features were resolved "
                f"({', '.join(roles.features[:8])}{', ...' if len(roles.features) > 8 else ''})",
                source=loaded.source("data.features"),
                hint="list the model's input columns, in order, under data.features")
    if fmt != "predictions" and adapter.input_features is None:
        adapter_spec = replace(adapter_spec, feature_names=tuple(roles.features))
        adapter.spec = adapter_spec  # type: ignore[attr-defined]

    positive_class = model_spec.positive_class
    if positive_class is None and task == "binary":
        positive_class = adapter.positive_class_label() if adapter.classes else 1
    adapter.positive_class = positive_class

    # -- target
    y: np.ndarray | None = None
    if roles.target is not None:
        target = frame[roles.target]
        present = target.dropna()
        if len(present) == 0:
            raise DataError(f"target '{roles.target}' has no values", source=loaded.source("data.target"))
        if task in ("binary", "multiclass"):
            distinct = present.astype(str).unique()
            if len(distinct) < 2:
                raise DataError(f"target '{roles.target}' has a single class ({distinct[0]}) in the audit data; "
                                f"a classifier needs at least two", source=loaded.source("data.target"))
        if task == "binary":
            is_positive = _same_label(present, positive_class)
            if not is_positive.any():
                raise DataError(f"positive_class {positive_class!r} never occurs in target '{roles.target}' "
                                f"(values: {', '.join(map(str, sorted(distinct)[:10]))})",
                                source=loaded.source("model.positive_class"))
            if len(distinct) > 2:
                raise DataError(f"target '{roles.target}' has {len(distinct)} classes but the task is binary",
                                source=loaded.source("model.task"))
        elif task == "regression":
            if not pd.api.types.is_numeric_dtype(target.dtype):
                raise DataError(f"target '{roles.target}' must be numeric for a regression", source=loaded.source("data.target"))

    # -- sample
    # the same rows as the lazy sample of a dataset above: keyed by each row's position (and the
    # seed), so a CSV, one Parquet file or a dataset of any number of files give the same sample
    if sampled_note is not None:
        notes.append(sampled_note)
    elif policy.data.sample is not None and policy.data.sample < len(frame) and not lazy_sample:
        strata = frame[roles.target] if (roles.target is not None and task != "regression") else None
        positions = keyed_stratified_positions(strata, len(frame), run_seed, policy.data.sample)
        notes.append(_sampled_note(len(positions), len(frame), roles.target if strata is not None else None,
                                   run_seed))
        frame = frame.iloc[positions]

    # -- predictions, once
    threshold = model_spec.threshold
    decisions: np.ndarray | None
    if fmt == "predictions":
        scores, decisions, score_kind, threshold = _recorded_predictions(frame, roles, positive_class, threshold, loaded)
        adapter.score_kind = score_kind  # type: ignore[misc]
    else:
        try:
            scores = adapter.predict_base(frame[roles.features])  # shape, finite, [0, 1]: exit 2 if not
        except AuditkitError:
            raise
        except Exception as exc:
            raise ModelLoadError(
                f"the model failed to predict on the audit data: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                source=loaded.source("model.path")) from None
        score_kind = adapter.score_kind
        if task == "binary":
            if threshold is None:
                threshold = 0.0 if score_kind == "decision_function" else 0.5
            decisions = decide(scores, threshold)
        elif task == "multiclass":
            classes = adapter.classes or list(range(scores.shape[1]))
            decisions = np.asarray(classes, dtype=object)[np.argmax(scores, axis=1)]
        else:
            decisions = None
    n_bad = int(np.size(scores) - np.isfinite(np.asarray(scores, dtype=np.float64)).sum())
    if n_bad:
        notes.append(f"{n_bad:,} base scores are not finite numbers")

    if roles.target is not None:
        target = frame[roles.target]
        if task == "binary":
            y = np.where(target.isna(), np.nan, _same_label(target, positive_class).astype(np.float64))
        elif task == "multiclass":
            y = target.astype(object).where(target.notna(), None).map(lambda v: None if v is None else str(v)).to_numpy()
        else:
            y = target.to_numpy(dtype=np.float64, na_value=np.nan)
        n_missing = int(target.isna().sum())
        if n_missing:
            notes.append(f"{n_missing:,} rows have no value of target '{roles.target}'; label-based figures leave them out")

    reference = None
    if loaded.reference_path is not None:
        reference_table = read_table(loaded.reference_path, key="data.reference", policy_file=policy_file,
                                     na_values=policy.data.na_values, encoding=policy.data.encoding)
        reference = reference_table.frame
        notes.extend(f"reference: {note}" for note in reference_table.notes)

    data = audit_data(loaded, adapter, adapter_spec, roles, frame=frame, task=task, scores=scores, decisions=decisions,
                      y=y, score_kind=score_kind, positive_class=positive_class, threshold=threshold,
                      reference=reference, rows_in_file=rows_in_file, notes=notes)

    inputs = inputs_record(loaded, adapter, model_spec, roles, task=task, positive_class=positive_class,
                           threshold=threshold, rows_in_file=rows_in_file, columns=columns_in_file,
                           rows_used=int(len(frame)), favorable=policy.data.favorable_label,
                           favorable_decision=data.favorable_decision, favorable_class=data.favorable_class,
                           notes=notes, reference=reference)
    return Prepared(data=data, adapter=adapter, inputs=inputs, seed=run_seed)


def audit_data(loaded: LoadedPolicy, adapter: ModelAdapter, adapter_spec: AdapterSpec, roles: Any, *,
               frame: pd.DataFrame, task: str, scores: Any, decisions: Any, y: Any, score_kind: str,
               positive_class: Any, threshold: float | None, reference: pd.DataFrame | None, rows_in_file: int,
               notes: list[str], shape_scores: Any = None) -> AuditData:
    """The audit data as every check sees it, with the favourable decision (binary) or class
    (multiclass) the policy names: for the whole data here, and without a row for a dataset
    prepared by partition (:mod:`auditkit.engine.partitioned`; ``shape_scores``: some rows'
    scores, the number of a multiclass model's classes when it names none)."""
    policy = loaded.policy
    favorable = policy.data.favorable_label
    favorable_decision = 1
    if favorable is not None and task == "binary":
        favorable_decision = 1 if (str(favorable) == str(positive_class) or _num_equal(favorable, positive_class)) else 0
    favorable_class = _favorable_class(favorable, task, adapter.classes, scores if shape_scores is None else shape_scores,
                                       loaded)
    return AuditData(
        frame=frame, features=roles.features, target=roles.target, protected=roles.protected, task=task,  # type: ignore[arg-type]
        scores=np.asarray(scores, dtype=np.float64), decisions=decisions, y=y, score_kind=score_kind,
        adapter_spec=adapter_spec, positive_class=positive_class, threshold=threshold,
        favorable_decision=favorable_decision, favorable_class=favorable_class, classes=adapter.classes,
        reference=reference,
        model_info=adapter.describe(), input_dtypes=_input_kinds(adapter), rows_in_file=rows_in_file, notes=notes,
        proxies=list(policy.data.proxies), text=list(roles.text),
        alpha=policy.statistics.alpha, power=policy.statistics.power)


def _sampled_note(n_sampled: int, n_total: int, strata: str | None, seed: int) -> str:
    return (f"sampled {n_sampled:,} of {n_total:,} rows (data.sample, stratified by {strata or 'nothing'}, "
            f"seed {seed})")


def _input_kinds(adapter: ModelAdapter) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for name, onnx_type, _ in getattr(adapter, "_inputs", []):
        if getattr(adapter, "matrix_input", False):
            for feature in adapter.spec.feature_names or ():  # type: ignore[attr-defined]
                kinds[feature] = "string" if onnx_type == "tensor(string)" else "numeric"
        else:
            kinds[name] = "string" if onnx_type == "tensor(string)" else "numeric"
    return kinds


def _recorded_predictions(frame: pd.DataFrame, roles: Any, positive_class: Any, threshold: float | None,
                          loaded: LoadedPolicy) -> tuple[np.ndarray, np.ndarray, str, float | None]:
    """Scores and decisions from the data's own columns (predictions mode)."""
    scores = None
    if roles.score_column is not None:
        column = frame[roles.score_column]
        numeric = pd.to_numeric(column, errors="coerce")
        if (numeric.isna() & column.notna()).any():
            bad = column[numeric.isna() & column.notna()].iloc[0]
            raise DataError(f"score_column '{roles.score_column}' must be numeric, found {str(bad)!r}",
                            source=loaded.source("model.score_column"))
        scores = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    if roles.prediction_column is not None:
        column = frame[roles.prediction_column]
        if column.isna().any():
            raise DataError(f"prediction_column '{roles.prediction_column}' has {int(column.isna().sum())} missing "
                            "decisions", source=loaded.source("model.prediction_column"))
        label = 1 if positive_class is None else positive_class
        decisions = _same_label(column, label).to_numpy().astype(np.int64)
        if scores is None:
            return decisions.astype(np.float64), decisions, "label", threshold
        return scores, decisions, "score", threshold
    assert scores is not None
    if threshold is None:
        finite = scores[np.isfinite(scores)]
        if len(finite) and (finite.min() < 0 or finite.max() > 1):
            raise PolicyError(
                f"score_column '{roles.score_column}' ranges from {finite.min():g} to {finite.max():g}; set "
                "model.threshold (decision = 1 when score >= threshold) or give model.prediction_column",
                source=loaded.source("model"))
        threshold = 0.5
    decisions = decide(scores, threshold)
    return scores, decisions, "score", threshold
