"""A Parquet dataset audited by partition on Dask: each worker reads and predicts on its files,
and no process ever holds every column of every row.

When every check of the run is row-parallel (:func:`row_parallel`), ``--executor dask`` with a
Parquet dataset (no ``data.sample``, no ``data.query``) prepares the audit like this:

- the parent reads the dataset's schema and row counts from the file footers, loads the model
  (its bytes checked) and resolves the column roles; it reads no row;
- one task per file (:func:`process_partition`) reads the columns the checks need, predicts,
  and keeps on its worker a summary per check registered with one that serves the run
  (``RowSummary``: ``data_integrity``, :mod:`auditkit.methods.integrity`; ``performance``
  without a row bootstrap, ``group_fairness`` of a classifier and ``impact_ratio``: counts per
  combination of the protected groups, per distinct score and exact sums,
  :mod:`auditkit.methods.performance_counts`, :mod:`~auditkit.methods.fairness_counts`,
  :mod:`~auditkit.methods.impact_counts`) and, only when another check needs them, the rows'
  compact columns (protected attributes, target, scores, decisions, labels); the parent
  gathers only counts (missing targets, non-finite scores, the target's classes) and
  validates them as :func:`auditkit.engine.prepare.prepare` does, before any check runs;
- each check then runs as one task (:func:`run_partitioned_task`) on its partitions' summaries,
  combined (each cut down on its own worker to that check's summary: :func:`for_check`), or on
  the compact blocks concatenated in row order.

Every figure is then the local executor's: the local executor computes the same summaries from
every row, and they combine exactly (counts, sets, exact sums). A summarised check's worker
holds counts, never the rows; a gathered check's holds the compact columns of every row (about
40 bytes a row with three protected attributes), never the features.
"""
from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from auditkit.core.decisions import decide
from auditkit.data.partitions import Partition, dataset_partitions, read_partition
from auditkit.engine.context import AuditData
from auditkit.engine.worker import CheckTask, TaskOutcome, execute
from auditkit.errors import DataError, ModelLoadError, Source

# checks that read only the protected attributes, the target and the base predictions: they run
# on their summaries when these serve the run (RowSummary.serves), else on the partitions'
# compact blocks, concatenated
GATHERED: Final = frozenset({"performance", "group_fairness", "impact_ratio"})


def row_parallel(check_type: str) -> bool:
    """A check that can run on a dataset prepared by partition: it reads only the compact
    columns, or it is registered with a summary that combines across partitions."""
    from auditkit.core.registry import get_registry

    return check_type in GATHERED or get_registry().get(check_type).summary is not None


def partitioned_reason(loaded: Any, executor: str, task_types: list[str]) -> str | None:
    """Why this run cannot be prepared by partition (None: it can)."""
    from auditkit.adapters.base import infer_format
    from auditkit.data.load import is_dataset

    policy = loaded.policy
    if executor != "dask":
        return "not the dask executor"
    if not is_dataset(loaded.data_path):
        return "data.path is not a Parquet dataset"
    if policy.data.sample is not None:
        return "data.sample is set (the sample is read, then audited whole)"
    if policy.data.query:
        return "data.query is set"
    if infer_format(policy.model.path, policy.model.format) == "predictions":
        return "the model is recorded predictions"
    others = sorted({t for t in task_types if not row_parallel(t)})
    if others or not task_types:
        return f"checks that need every row in one process: {', '.join(others)}" if others else "no check"
    return None


@dataclass(frozen=True)
class PartPlan:
    """What every partition task needs (the same for all)."""

    read: list[str] | None  # the columns to read; None: every column (a summarised check needs them)
    keep: list[str]  # the columns kept for the checks that read the frame
    shell: AuditData  # the audit data without a row (features, target, model, reference)
    summarised: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)  # (check id, type, params)
    plugins: tuple[str, ...] = ()
    rows: bool = True  # a check reads the rows' compact columns (else every check reads summaries)


@dataclass
class PartResult:
    frame: pd.DataFrame  # the kept columns, indexed by row position in the dataset
    scores: np.ndarray
    decisions: np.ndarray | None
    y: np.ndarray | None
    rows: int
    bad_scores: int
    target_missing: int
    target_classes: set[str]
    positives: int
    stray: tuple[str, str, int] | None  # text in a numeric feature column (roles.text_in_numeric)
    summaries: dict[str, Any]


@dataclass(frozen=True)
class SummaryFailed:
    """A check's summary that could not be made on a partition's rows: the check's error."""

    error: BaseException


def split_tasks(tasks: list[Any], shell: AuditData) -> tuple[list[tuple[str, str, dict[str, Any]]], list[Any]]:
    """(the checks summarised by partition, the checks run on the gathered compact columns)."""
    from auditkit.core.registry import get_registry

    summarised, gathered = [], []
    for task in tasks:
        kind = get_registry().get(task.type)
        try:
            serves = kind.summary is not None and kind.summary.serves(shell, kind.params.model_validate(task.params))
        except Exception:  # invalid params: the check's task reports them
            serves = False
        if serves:
            summarised.append((task.check_id, task.type, task.params))
        else:
            gathered.append(task)
    return summarised, gathered


def process_partition(plan: PartPlan, partition: Partition) -> PartResult:
    """Read one file's columns, predict on its rows, keep the compact block and the summaries."""
    from auditkit.adapters.base import load_adapter
    from auditkit.core.registry import get_registry
    from auditkit.data.roles import text_in_numeric
    from auditkit.engine.context import _ADAPTERS
    from auditkit.engine.prepare import _same_label

    shell = plan.shell
    register_plugins(plan.plugins)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # as the parent predicts: a thread count must not change a score
    except Exception:
        pass
    frame = read_partition(partition, plan.read)
    stray = text_in_numeric(frame, shell.features)
    adapter = _ADAPTERS.get(shell.adapter_spec)
    if adapter is None:
        adapter = _ADAPTERS[shell.adapter_spec] = load_adapter(shell.adapter_spec)
    adapter.positive_class = shell.positive_class
    scores = np.asarray(adapter.predict_base(frame[shell.features]), dtype=np.float64)
    decisions: np.ndarray | None
    if shell.task == "binary":
        decisions = decide(scores, shell.threshold)
    elif shell.task == "multiclass":
        classes = adapter.classes or list(range(scores.shape[1]))
        decisions = np.asarray(classes, dtype=object)[np.argmax(scores, axis=1)]
    else:
        decisions = None
    y = None
    target_missing, classes_seen, positives = 0, set(), 0
    if shell.target is not None:
        target = frame[shell.target]
        target_missing = int(target.isna().sum())
        if shell.task in ("binary", "multiclass"):
            classes_seen = set(target.dropna().astype(str).unique()[:1000])
        if shell.task == "binary":
            is_positive = _same_label(target, shell.positive_class)
            positives = int(is_positive[target.notna()].sum())
            y = np.where(target.isna(), np.nan, is_positive.astype(np.float64))
        elif shell.task == "multiclass":
            y = target.astype(object).where(target.notna(), None).map(lambda v: None if v is None else str(v)).to_numpy()
        else:
            y = target.to_numpy(dtype=np.float64, na_value=np.nan)
    registry = get_registry()
    summaries: dict[str, Any] = {}
    # the partition's rows as the checks see audit data: its summaries are made from them
    rows = replace(shell, frame=frame, scores=scores, decisions=decisions, y=y)
    for check_id, check_type, params in plan.summarised:
        kind = registry.get(check_type)
        try:
            summaries[check_id] = kind.summary.summarise(frame, rows, kind.params.model_validate(params))  # type: ignore[union-attr]
        except Exception as exc:  # e.g. params.bins on a text column: that check's error, not the run's
            summaries[check_id] = SummaryFailed(exc)
    bad_scores, n_rows = int(np.size(scores) - np.isfinite(scores).sum()), len(frame)
    if not plan.rows:  # every check reads summaries: the worker keeps no row (copies: a slice keeps them all)
        frame, scores = frame.iloc[:0].copy(), scores[:0].copy()
        decisions = None if decisions is None else decisions[:0].copy()
        y = None if y is None else y[:0].copy()
    return PartResult(frame=_compact(frame[plan.keep]), scores=scores, decisions=decisions, y=y, rows=n_rows,
                      bad_scores=bad_scores, target_missing=target_missing,
                      target_classes=classes_seen, positives=positives, stray=stray, summaries=summaries)


def register_plugins(plugins: tuple[str, ...]) -> None:
    from auditkit.core.registry import get_registry

    registry = get_registry()
    for name in plugins:
        try:
            registry.register_module(importlib.import_module(name))
        except Exception:  # registered already; an import error is the check task's to report
            pass


def _compact(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns as categories: a block moves between workers as small codes, not one
    Python string per row (:func:`gather` turns them back into text)."""
    return pd.DataFrame({name: frame[name].astype("category") if frame[name].dtype == object else frame[name]
                         for name in frame.columns}, index=frame.index)


def counts_of(part: PartResult) -> PartResult:
    """A partition's result without its rows: what the parent gathers."""
    return replace(part, frame=part.frame.iloc[:0].copy(), scores=part.scores[:0].copy(),
                   decisions=None if part.decisions is None else part.decisions[:0].copy(),
                   y=None if part.y is None else part.y[:0].copy(), summaries={})


def gather(shell: AuditData, parts: list[PartResult]) -> AuditData:
    """The audit data of every row, as the checks that read the frame see it: the compact
    blocks concatenated in row order."""
    frame = pd.concat([p.frame for p in parts])
    for name in frame.columns:  # text back as text (a missing value reads as NaN, not None: both are missing)
        if shell.frame[name].dtype == object:
            frame[name] = frame[name].astype(object)
    decisions = None if shell.decisions is None else np.concatenate([p.decisions for p in parts])
    y = None if shell.y is None else np.concatenate([p.y for p in parts])
    return replace(shell, frame=frame, scores=np.concatenate([p.scores for p in parts]), decisions=decisions, y=y)


def for_check(part: PartResult, check_id: str) -> PartResult:
    """A block as one check reads it: its summary alone (no row), or its rows without summaries."""
    if check_id in part.summaries:
        return replace(counts_of(part), summaries={check_id: part.summaries[check_id]})
    return replace(part, summaries={})


def with_summary(shell: AuditData, parts: list[PartResult], check_id: str, combine: Any) -> AuditData:
    return replace(shell, row_summaries={check_id: combine([p.summaries[check_id] for p in parts])})


def summary_failure(parts: list[PartResult], check_id: str) -> BaseException | None:
    """The error of the first partition whose summary for the check failed (None: none did)."""
    return next((p.summaries[check_id].error for p in parts if isinstance(p.summaries.get(check_id), SummaryFailed)),
                None)


def run_partitioned_task(task: CheckTask, shell: AuditData, parts: list[PartResult], plugins: tuple[str, ...],
                         run_token: str) -> TaskOutcome:
    """One row-parallel check on a Dask worker, on the partitions' blocks."""
    from auditkit.core.registry import get_registry
    from auditkit.engine.dask_executor import worker_setup

    failed = worker_setup(task, plugins, run_token)
    if failed is not None:
        return failed
    summary = get_registry().get(task.type).summary
    if summary is not None and task.check_id in parts[0].summaries:
        failed_summary = summary_failure(parts, task.check_id)
        if failed_summary is not None:  # the error the check raises on the whole data
            return execute(task, replace(shell, row_summaries={task.check_id: _Raising(failed_summary)}), 1)
        data = with_summary(shell, parts, task.check_id, summary.combine)
    else:
        data = gather(shell, parts)
    return execute(task, data, 1)


class _Raising:
    """A summary whose use raises the partition's error inside the check (so it is reported as
    the check's error, exactly as on the whole data)."""

    def __init__(self, error: BaseException):
        self.error = error

    def __getattr__(self, name: str) -> Any:
        raise self.error


# -- in the parent ------------------------------------------------------------------------


def plan_columns(tasks: list[CheckTask], columns: list[str], features: list[str], target: str | None,
                 protected: list[str]) -> tuple[list[str] | None, list[str]]:
    """(columns to read, columns to keep): every column when a data_integrity check runs."""
    keep = list(dict.fromkeys([*protected, *([target] if target else [])]))
    for task in tasks:
        named = list(task.params.get("attributes") or [])
        named += [part for parts in task.params.get("intersections") or [] for part in parts]
        keep += [name for name in named if name in columns and name not in keep]
    if any(task.type not in GATHERED for task in tasks):  # a summarised check of other columns: every column
        return None, keep
    return list(dict.fromkeys([*features, *keep])), keep


def prepare_partitioned(loaded: Any, tasks: list[CheckTask], client: Any, *, seed: int, trust_pickle: bool,
                        threads_per_worker: int = 1, plugins: tuple[str, ...] = ()) -> Any:
    """:func:`auditkit.engine.prepare.prepare` for a dataset read by partition on ``client``'s
    workers: the same ``Prepared`` (its data holds no row; ``parts`` the partitions' futures)."""
    from auditkit.adapters.base import AdapterSpec, infer_format, load_adapter
    from auditkit.data.load import dataset_note, read_table
    from auditkit.data.roles import resolve_roles
    from auditkit.engine.prepare import Prepared, audit_data, inputs_record

    policy = loaded.policy
    policy_file = str(loaded.path)
    model_spec = policy.model
    partitions, columns = dataset_partitions(loaded.data_path, source=loaded.source("data.path"))
    rows_in_file = sum(p.rows for p in partitions)
    if rows_in_file == 0:
        raise DataError(f"no rows in the file: {loaded.data_path}", source=loaded.source("data.path"))
    fmt = infer_format(model_spec.path, model_spec.format)
    adapter_spec = AdapterSpec(
        format=fmt, path=str(loaded.model_path) if loaded.model_path else None, sha256=model_spec.sha256,
        trust_pickle=trust_pickle, trusted_types=tuple(model_spec.trusted_types),
        feature_names=tuple(policy.data.features) if policy.data.features else None,
        positive_class=model_spec.positive_class, intra_op_threads=threads_per_worker, policy_file=policy_file)
    adapter = load_adapter(adapter_spec)
    adapter_spec = adapter.spec
    roles = resolve_roles(policy.data, model_spec, columns, data_path=str(loaded.data_path),
                          model_inputs=adapter.input_features, policy_file=policy_file)
    if getattr(adapter, "matrix_input", False):
        width = getattr(adapter, "input_width", None)
        if width is not None and width != len(roles.features):
            raise ModelLoadError(
                f"the ONNX model's input takes {width} columns, but {len(roles.features)} features were resolved",
                source=loaded.source("data.features"), hint="list the model's input columns, in order, under data.features")
    if adapter.input_features is None:
        adapter_spec = replace(adapter_spec, feature_names=tuple(roles.features))
        adapter.spec = adapter_spec  # type: ignore[attr-defined]
    task = model_spec.task or adapter.task
    positive_class = model_spec.positive_class
    if positive_class is None and task == "binary":
        positive_class = adapter.positive_class_label() if adapter.classes else 1
    adapter.positive_class = positive_class
    threshold = model_spec.threshold
    if task == "binary" and threshold is None:
        threshold = 0.0 if adapter.score_kind == "decision_function" else 0.5

    reference = None
    if loaded.reference_path is not None:
        reference = read_table(loaded.reference_path, key="data.reference", policy_file=policy_file,
                               na_values=policy.data.na_values, encoding=policy.data.encoding).frame
    favorable = policy.data.favorable_label
    # the data as the checks see it, without a row: params are checked against its columns
    # before anything runs, and the checks' tasks get the rows (or their summaries) from the partitions
    empty = read_partition(partitions[0]).iloc[:0].copy()
    shape_scores = None
    if task == "multiclass" and not adapter.classes and favorable is not None:  # the classes' number, from a row
        shape_scores = adapter.predict_base(read_partition(partitions[0], roles.features).iloc[:1][roles.features])
    shell = audit_data(loaded, adapter, adapter_spec, roles, frame=empty, task=task,
                       scores=np.zeros((0, len(adapter.classes)) if task == "multiclass" and adapter.classes else 0),
                       decisions=np.zeros(0) if task != "regression" else None,
                       y=np.zeros(0) if roles.target is not None else None, score_kind=adapter.score_kind,
                       positive_class=positive_class, threshold=threshold, reference=reference,
                       rows_in_file=rows_in_file, notes=[], shape_scores=shape_scores)

    read, keep = plan_columns(tasks, columns, roles.features, roles.target, roles.protected)
    summarised, gathered = split_tasks(tasks, shell)
    plan = PartPlan(read=read, keep=keep if gathered else [], shell=shell, summarised=summarised, plugins=plugins,
                    rows=bool(gathered))
    plan_future = client.scatter(plan, broadcast=True, hash=False)
    futures = [client.submit(process_partition, plan_future, partition, key=f"auditkit-partition-{i}-{time.time_ns()}",
                             pure=False) for i, partition in enumerate(partitions)]
    counts = []
    for partition, future in zip(partitions, futures):
        try:
            counts.append(client.submit(counts_of, future, pure=False).result())
        except Exception as exc:  # an unreadable file, or a model that fails on its rows
            raise DataError(
                f"{partition.path}: reading it or predicting on its rows failed on a Dask worker: "
                f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}", source=loaded.source("data.path")) from None

    # the input checks prepare() makes on the whole data, from the partitions' counts
    stray = next((c.stray for c in counts if c.stray is not None), None)
    if stray is not None:
        column, text, row = stray
        raise DataError(f"column '{column}' is numeric but holds text: {text!r} in row {row}",
                        source=Source(str(loaded.data_path), column),
                        hint="fix the value, declare it missing with data.na_values, or drop the column")
    notes = [dataset_note(loaded.data_path, len(partitions))]
    if roles.target is not None:
        missing = sum(c.target_missing for c in counts)
        if missing == rows_in_file:
            raise DataError(f"target '{roles.target}' has no values", source=loaded.source("data.target"))
        distinct = sorted(set().union(*(c.target_classes for c in counts)))
        if task in ("binary", "multiclass") and len(distinct) < 2:
            raise DataError(f"target '{roles.target}' has a single class ({distinct[0]}) in the audit data; "
                            f"a classifier needs at least two", source=loaded.source("data.target"))
        if task == "binary":
            if not sum(c.positives for c in counts):
                raise DataError(f"positive_class {positive_class!r} never occurs in target '{roles.target}' "
                                f"(values: {', '.join(distinct[:10])})", source=loaded.source("model.positive_class"))
            if len(distinct) > 2:
                raise DataError(f"target '{roles.target}' has {len(distinct)} classes but the task is binary",
                                source=loaded.source("model.task"))
        elif task == "regression" and not pd.api.types.is_numeric_dtype(empty[roles.target].dtype):
            raise DataError(f"target '{roles.target}' must be numeric for a regression", source=loaded.source("data.target"))
    n_bad = sum(c.bad_scores for c in counts)
    if n_bad:
        notes.append(f"{n_bad:,} base scores are not finite numbers")
    if roles.target is not None and missing:
        notes.append(f"{missing:,} rows have no value of target '{roles.target}'; label-based figures leave them out")
    shell.notes = notes

    inputs = inputs_record(loaded, adapter, model_spec, roles, task=task, positive_class=positive_class,
                           threshold=threshold, rows_in_file=rows_in_file, columns=len(columns),
                           rows_used=rows_in_file, favorable=favorable, favorable_decision=shell.favorable_decision,
                           favorable_class=shell.favorable_class, notes=notes, reference=reference)
    return Prepared(data=shell, adapter=adapter, inputs=inputs, seed=seed, parts=futures)
