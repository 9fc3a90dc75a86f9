"""The audit run: validate, prepare once, plan, execute, judge, assemble results."""
from __future__ import annotations

import inspect
import os
import re
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from auditkit import __version__
from auditkit.engine.context import derive_seed
from auditkit.engine.cross_checks import cross_findings
from auditkit.engine.executors import Event, Executor, InlineExecutor, LocalExecutor
from auditkit.engine.limits import default_memory_mb
from auditkit.engine.preload import modules_to_preload
from auditkit.engine.prepare import Prepared, prepare
from auditkit.core.registry import get_registry
from auditkit.core.wording import wording_of
from auditkit.engine.rundir import create_run_directory, remove_run_directory
from auditkit.engine.worker import CheckTask, TaskOutcome
from auditkit.errors import CheckError, OutputError, PolicyError, Source, UserError, did_you_mean
from auditkit.policy.load import LoadedPolicy
from auditkit.policy.models import Policy
from auditkit.adapters.predictions import NO_MODEL_REASON
from auditkit.engine.baseline import Baseline, path_from, resolve_baseline
from auditkit.results.multiplicity import apply_statistics
from auditkit.results.model import AuditResult, CheckOutput, CheckResult, new_run_id, to_jsonable, worst_status
from auditkit.thresholds import check_status, evaluate, exit_code


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


@dataclass
class RunOptions:
    out: Path | None = None
    formats: list[str] | None = None
    workers: int | None = None
    executor: str = "local"  # local | dask | inline (debugging)
    scheduler: str | None = None  # --scheduler: a Dask scheduler's address (dask executor)
    only: list[str] = field(default_factory=list)
    fail_on: str = "fail"
    seed: int | None = None
    trust_pickle: bool = False
    command: str = ""
    baseline: Path | None = None  # --baseline: overrides report.baseline
    no_baseline: bool = False  # --no-baseline: relative bounds are not assessed
    debug: bool = False  # workers write to this process's stderr instead of the run's log file


@dataclass
class AuditRun:
    results: dict[str, Any]
    exit_code: int
    out_dir: Path
    prepared: Prepared


def check_writable(directory: Path, *, source: Source | None = None) -> None:
    """Prove the output directory can be written, without creating it (nothing is run yet)."""
    probe = directory
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"output directory {directory} is not writable: {probe} is not a directory",
                          source=source)
    if probe == directory:
        try:
            with tempfile.NamedTemporaryFile(dir=directory, prefix=".auditkit-probe-", delete=True):
                pass
        except OSError as exc:
            raise OutputError(f"output directory {directory} is not writable: {exc.strerror or exc}",
                              source=source) from None
    elif not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"output directory {directory} is not writable: {probe} does not allow it", source=source)


def ensure_writable(directory: Path, *, source: Source | None = None) -> None:
    """Create the output directory and prove it is writable."""
    check_writable(directory, source=source)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"output directory {directory} cannot be created: {exc.strerror or exc}",
                          source=source) from None
    check_writable(directory, source=source)


def plan(loaded: LoadedPolicy, *, seed: int, only: list[str]) -> list[CheckTask]:
    ids = [c.check_id for c in loaded.policy.checks]
    for wanted in only:
        if wanted not in ids:
            raise UserError(f"--only {wanted}: no check with that id in the policy; {did_you_mean(wanted, ids)}")
    tasks = []
    for spec in loaded.policy.checks:
        if only and spec.check_id not in only:
            continue
        params = loaded.params[spec.check_id]
        tasks.append(CheckTask(check_id=spec.check_id, type=spec.type, params=params.model_dump(mode="json"),
                               seed=derive_seed(seed, spec.check_id), timeout_s=spec.timeout_s,
                               memory_mb=spec.memory_mb, retries=spec.retries))
    return tasks


def validate_against_data(loaded: LoadedPolicy, tasks: list[CheckTask], prepared: Prepared) -> None:
    """Params that name rows or columns are checked against the loaded data before any check
    runs: a bad one is an input error (exit 2, nothing run), not a check that ends as error."""
    registry = get_registry()
    index = {c.check_id: i for i, c in enumerate(loaded.policy.checks)}
    for task in tasks:
        check_type = registry.get(task.type)
        if check_type.validate is None or (prepared.data.predictions_mode and check_type.needs_model):
            continue
        try:
            check_type.validate(loaded.params[task.check_id], prepared.data)
        except CheckError as exc:
            key = f"checks[{index[task.check_id]}].params"
            match = re.match(r"params\.([A-Za-z_][A-Za-z0-9_]*)", exc.message)
            if match and f"{key}.{match.group(1)}" in loaded.positions:
                key = f"{key}.{match.group(1)}"
            raise PolicyError(f"check '{task.check_id}' ({task.type}): {exc.message}", source=loaded.source(key),
                              hint=exc.hint) from None


def judge(loaded: LoadedPolicy, task: CheckTask, outcome: TaskOutcome, prepared: Prepared,
          baseline: Baseline | None = None) -> CheckResult:
    """Turn a check's output into a result with findings and a status."""
    spec = next(c for c in loaded.policy.checks if c.check_id == task.check_id)
    check_type = get_registry().get(task.type)
    result = CheckResult(id=task.check_id, type=task.type, family=check_type.family, status="error",
                         duration_s=outcome.duration_s, params=task.params, seed=task.seed,
                         description=spec.description or check_type.description,
                         case_file=[{"role": role, "table": table} for role, table in check_type.case_file])
    if outcome.output is None:
        result.error = outcome.error or "the check returned nothing"
        return result
    output = outcome.output
    result.metrics, result.tables, result.plots = output.metrics, output.tables, output.plots
    result.notes = list(output.notes)
    if output.skipped is not None:
        result.status = "skipped"
        result.skip_reason = output.skipped
        if output.skipped not in result.notes:
            result.notes.insert(0, output.skipped)
        return result
    result.findings = evaluate(output.metrics, spec.thresholds,
                               baseline.lookup(task.check_id, task.type) if baseline is not None else None)
    result.status = check_status(result.findings)
    if result.status == "error":  # the check ran, but a figure a threshold needs is missing: say which
        result.error = "; ".join(f.message for f in result.findings if f.status == "error")
    _draw_thresholds(result)
    if check_type.reading is not None:
        as_json = to_jsonable(result.to_dict())
        words = wording_of({"report": report_header(loaded.policy), "inputs": prepared.inputs})
        takes_words = len(inspect.signature(check_type.reading).parameters) >= 3
        for finding in result.findings:
            if finding.status in ("fail", "warn"):
                try:
                    finding_json = to_jsonable(finding.to_dict())
                    finding.reading = (check_type.reading(finding_json, as_json, words) if takes_words
                                       else check_type.reading(finding_json, as_json))
                except Exception:  # a sentence is a courtesy: never lose a result over it
                    finding.reading = None
    return result


def _draw_thresholds(result: CheckResult) -> None:
    """Turn thresholds on a ratio or difference of rates into lines on the per-group rate chart.

    A ratio threshold ``min: r`` means every included group's rate is at least r x the
    highest; a difference threshold ``max: d`` means at least the highest minus d. A chart
    whose bars name their own metrics (one section per attribute) gets a line per section,
    from the highest rate of that section.
    """
    for plot in result.plots:
        data = plot.data
        values = data.get("values", [])
        included = data.get("included", [])
        ratio, difference = data.get("ratio_metric"), data.get("difference_metric")
        per_bar = isinstance(ratio, list) or isinstance(difference, list)
        ratios = ratio if isinstance(ratio, list) else [ratio] * len(values)
        differences = difference if isinstance(difference, list) else [difference] * len(values)
        lines: list[dict[str, Any] | None] = [None] * len(values)
        for key in dict.fromkeys(zip(ratios, differences)):
            members = [i for i, pair in enumerate(zip(ratios, differences)) if pair == key]
            rates = [values[i] for i in members
                     if i < len(included) and included[i] and values[i] is not None]
            if not rates:
                continue
            line = None
            for finding in result.findings:
                if finding.metric == key[0] and finding.min is not None:
                    line = {"min": finding.min * max(rates), "label": f"{finding.min:g} x highest"}
                elif finding.metric == key[1] and finding.max is not None:
                    line = {"min": max(rates) - finding.max, "label": f"highest - {finding.max:g}"}
                if line is not None:
                    break  # one line per chart or section: the first threshold that applies
            for i in members:
                lines[i] = line
        drawn = [line for line in lines if line is not None]
        if not drawn:
            continue
        data["threshold_label"] = drawn[0]["label"]
        data["thresholds"] = [line or {} for line in lines] if per_bar else drawn[0]


def _executor(options: RunOptions, workers: int, threads: int, run_dir: Path, memory_mb: int | None = None) -> Executor:
    if options.executor == "inline":
        return InlineExecutor()
    if options.executor == "dask":
        from auditkit.engine.dask_executor import DaskExecutor

        return DaskExecutor(workers, scheduler=options.scheduler, workdir=run_dir, debug=options.debug,
                            memory_mb=memory_mb)
    return LocalExecutor(workers, threads, workdir=run_dir, worker_output=options.debug)


def run_audit(loaded: LoadedPolicy, options: RunOptions, *, on_event: Callable[[Event], None] | None = None,
              on_stage: Callable[[str], None] | None = None,
              on_notice: Callable[[str], None] | None = None) -> AuditRun:
    """Everything but printing: returns the results (not yet written) and the exit code."""
    started = time.perf_counter()
    started_at = datetime.now(timezone.utc)
    stage = on_stage or (lambda _message: None)
    cores = available_cores()
    workers = options.workers or cores
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    # One native thread per worker, whatever --workers says: a tree ensemble or a BLAS product
    # summed over a different number of threads rounds differently, and results must not
    # depend on the worker count. Parallelism comes from the workers (workers x 1 <= cores
    # by default).
    threads = 1

    out_dir = loaded.output_dir(options.out)
    # blame what chose the folder: --out, else the policy's key
    out_source = Source(None, "--out") if options.out is not None else loaded.source("report.output_dir")
    check_writable(out_dir, source=out_source)
    baseline = resolve_baseline(loaded, options.baseline, no_baseline=options.no_baseline)
    seed = loaded.policy.seed if options.seed is None else options.seed
    tasks = plan(loaded, seed=seed, only=options.only)

    # The checks that run at once share the machine's memory: each one's default limit is its share.
    memory_default = default_memory_mb(min(workers, max(1, len(tasks))))
    tasks = [replace(task, memory_mb=task.memory_mb or memory_default) for task in tasks]

    # Every temporary file of the run lives in this directory, removed however the run ends.
    run_dir = create_run_directory()
    # on Dask, the largest memory_mb a check sets is each worker's memory limit (dask_executor)
    explicit = [spec.memory_mb for spec in loaded.policy.checks if spec.memory_mb
                and (not options.only or spec.check_id in options.only)]
    executor = _executor(options, workers, threads, run_dir, max(explicit) if explicit else None)
    out_dir_existed = out_dir.exists()
    registry = get_registry()
    try:
        if options.executor == "dask":
            # the scheduler is reached (or a local cluster started) before anything runs: an
            # address that does not answer is bad input, exit 2
            stage(f"connecting to the Dask scheduler at {options.scheduler}" if options.scheduler
                  else f"starting a local Dask cluster of {workers} worker processes")
            executor.start(len(tasks))
            workers = executor.workers
            if getattr(executor, "dashboard_link", None):
                (on_notice or stage)(f"Dask dashboard: {executor.dashboard_link}")  # type: ignore[attr-defined]
        stage("loading data and model")
        if tasks and options.executor != "dask":  # the plan is known: workers import what its checks need while the data loads
            executor.start(len(tasks), modules_to_preload(registry.get(t.type) for t in tasks))
        by_partition = None
        if options.executor == "dask":
            from auditkit.engine.partitioned import partitioned_reason, prepare_partitioned

            by_partition = partitioned_reason(loaded, options.executor, [t.type for t in tasks]) is None
        if by_partition:  # a Parquet dataset and only row-parallel checks: no process reads it whole
            prepared = prepare_partitioned(loaded, tasks, executor.client, seed=seed,  # type: ignore[attr-defined]
                                           trust_pickle=options.trust_pickle, threads_per_worker=threads,
                                           plugins=tuple(registry.plugin_modules))
            executor.parts = prepared.parts  # type: ignore[attr-defined]
        else:
            prepared = prepare(loaded, seed=seed, trust_pickle=options.trust_pickle, threads_per_worker=threads)
        prepared_s = time.perf_counter() - started
        validate_against_data(loaded, tasks, prepared)  # before the output directory is created
        ensure_writable(out_dir, source=out_source)

        stage(f"running {len(tasks)} checks on {workers} worker{'s' if workers != 1 else ''}")
        events = on_event or (lambda _event: None)
        checks_started = time.perf_counter()
        # Checks that must query a model cannot run on recorded decisions: skipped, not run.
        skipped = {t.check_id: TaskOutcome(t.check_id, CheckOutput.skip(NO_MODEL_REASON), None, 0.0) for t in tasks
                   if prepared.data.predictions_mode and registry.get(t.type).needs_model}
        runnable = [t for t in tasks if t.check_id not in skipped]
        ran = executor.run(runnable, prepared.data, run_dir, events) if runnable else []
        checks_wall = time.perf_counter() - checks_started
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            executor.interrupted = True  # stop the workers now, not after their warm-up
        if not out_dir_existed:  # nothing was written: do not leave an empty output directory
            try:
                out_dir.rmdir()
            except OSError:
                pass
        raise
    finally:
        executor.close()
        remove_run_directory(run_dir)
    by_id = {**skipped, **{o.check_id: o for o in ran}}
    outcomes = [by_id[t.check_id] for t in tasks]

    results_list = [judge(loaded, task, outcome, prepared, baseline) for task, outcome in zip(tasks, outcomes)]
    # Group comparisons are corrected across the whole audit, so only once every check has run.
    stats_spec = loaded.policy.statistics
    results_list, statistics = apply_statistics(results_list, correction=stats_spec.multiple_comparisons,
                                                alpha=stats_spec.alpha, power=stats_spec.power)
    statuses = [r.status for r in results_list]
    code = exit_code(statuses, fail_on=options.fail_on)
    finished_at = datetime.now(timezone.utc)
    duration = time.perf_counter() - started
    checks_time = sum(r.duration_s for r in results_list)
    policy = loaded.policy
    audit = AuditResult(
        run_id=new_run_id(started_at), policy_name=policy.name, status=worst_status(statuses), exit_code=code,
        started_at=started_at, finished_at=finished_at, duration_s=duration, seed=seed, checks=results_list,
        inputs={**prepared.inputs, "policy_path_from_output": path_from(out_dir, loaded.path),
                "baseline": baseline.record(out_dir) if baseline is not None else None},
        engine={"executor": options.executor, "workers": workers, "threads_per_worker": threads, "cores": cores,
                **({"scheduler": options.scheduler or "local cluster",
                    "dashboard": getattr(executor, "dashboard_link", None),
                    "scheduler_lost": bool(getattr(executor, "scheduler_lost", False)),
                    # a Parquet dataset read, predicted and summarised file by file on the workers
                    "partitions": len(prepared.parts) if prepared.parts is not None else None,
                    "worker_memory_mb": getattr(executor, "memory_mb", None)}
                   if options.executor == "dask" else {}),
                "prepare_s": round(prepared_s, 3), "checks_wall_s": round(checks_wall, 3),
                "checks_time_s": round(checks_time, 3),
                # the limit of a check without memory_mb (the inline executor enforces none)
                # (the dask executor leaves memory to Dask's per-worker limit)
                "memory_mb_default": None if options.executor in ("inline", "dask") else memory_default,
                "catalogue": catalogue()},
        report=report_header(policy), statistics=statistics,
        command=options.command, fail_on=options.fail_on, interrupted=executor.interrupted,
        auditkit_version=__version__)
    results = audit.to_dict()
    # the post-pass reads the checks as results.json has them, so a re-rendered report derives the same
    audit.cross_findings = results["cross_findings"] = cross_findings(results)
    return AuditRun(results=results, exit_code=code, out_dir=out_dir, prepared=prepared)


def catalogue() -> list[dict[str, Any]]:
    """Every check type this run could have used, with its family and caveats, so the report's
    "what this policy did not test" and method caveats read from results.json alone and say the
    same when re-rendered where other plugins are installed."""
    return [{"type": t.type, "family": t.family, "caveats": list(t.caveats)}
            for t in sorted(get_registry().types(), key=lambda t: t.type)]


def report_header(policy: Policy) -> dict[str, Any]:
    """What the report's cover, summary and sign-off need from the policy, kept in results.json so
    a report re-rendered from it alone says the same."""
    def names(mapping: dict[Any, str]) -> dict[str, str]:
        return {str(key): value for key, value in mapping.items()}
    signoff = {role: (person.model_dump() if person is not None else None)
               for role, person in policy.report.signoff}
    return {"title": policy.report.title or policy.name, "organization": policy.report.organization,
            "model_name": policy.model.name, "model_version": policy.model.version, "model_owner": policy.model.owner,
            "intended_use": policy.report.intended_use, "subjects": policy.report.subjects, "classification": policy.report.classification,
            "regimes": list(policy.report.regimes), "signoff": signoff,
            "label_names": names(policy.data.label_names), "decision_names": names(policy.model.decision_names),
            "proxies": list(policy.data.proxies)}


def check_inputs(loaded: LoadedPolicy, *, seed: int | None = None, trust_pickle: bool = False,
                 only: list[str] | None = None, out: Path | None = None) -> Prepared:
    """Everything ``run`` checks before it runs a check, and nothing more: the data and model
    load, every column the policy names exists, the model takes the data and its output has
    the expected shape, row-naming params fit the data, the output folder is writable.

    ``auditkit validate`` calls this, so a CI job can gate on inputs before the audit.
    """
    run_seed = loaded.policy.seed if seed is None else seed
    tasks = plan(loaded, seed=run_seed, only=only or [])
    out_source = Source(None, "--out") if out is not None else loaded.source("report.output_dir")
    check_writable(loaded.output_dir(out), source=out_source)
    resolve_baseline(loaded, required=False)  # a declared report.baseline must be a readable results.json
    prepared = prepare(loaded, seed=run_seed, trust_pickle=trust_pickle)
    validate_against_data(loaded, tasks, prepared)
    return prepared
