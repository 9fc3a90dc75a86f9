"""``auditkit verify``: re-run the audit a results.json records and compare every figure.

1. Find the inputs the results record: the policy (``--policy``, else
   ``inputs.policy_path_from_output`` beside the results file, else ``inputs.policy_path``),
   then the model, data and reference data that policy names, and the baseline run when
   relative thresholds used one. Each file's SHA-256 is checked against the record *before*
   anything runs: a changed or missing input is named (:class:`InputChangedError`, exit 2).
2. Re-run with the recorded seed, check selection (``--only``), executor and ``--fail-on``;
   the worker count is the recorded one unless ``--workers`` says otherwise (figures must not
   depend on it: DESIGN.md's reproducibility rule, which this command tests).
3. Compare, check by check, every value of the metrics, findings, tables and plots (and each
   check's status): a figure is a number; labels and statuses are compared too. Durations,
   notes and error texts are not compared (times and paths differ between runs).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from auditkit.results.io import ResultsFile, read_results
from auditkit.core.hashing import sha256_of
from auditkit.errors import UserError

#: The parts of a check compared; "id" and "type" match the checks, the rest are the figures.
COMPARED_PARTS = ("status", "metrics", "findings", "tables", "plots")


class InputChangedError(UserError):
    """An input the results record is missing or no longer has the recorded SHA-256."""


@dataclass(frozen=True)
class VerifyOptions:
    workers: Optional[int] = None
    trust_pickle: bool = False
    policy: Optional[Path] = None  # where the policy is, when it is not where the results say


@dataclass(frozen=True)
class Difference:
    check: str
    path: str  # within the check: metrics.roc_auc.ci[0]
    recorded: Any
    rerun: Any

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "path": self.path, "recorded": self.recorded, "rerun": self.rerun}


@dataclass
class Verification:
    """The outcome: the inputs checked, the re-run's settings, the comparison."""

    results_path: Path
    inputs: list[dict[str, Any]] = field(default_factory=list)  # {"input", "path", "sha256"}
    settings: dict[str, Any] = field(default_factory=dict)
    figures: int = 0  # numbers compared
    figures_identical: int = 0
    values: int = 0  # every compared value (numbers, labels, statuses)
    differences: list[Difference] = field(default_factory=list)
    environment: list[dict[str, Any]] = field(default_factory=list)  # versions that differ from the record

    @property
    def identical(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        return {"results": str(self.results_path), "identical": self.identical, "figures": self.figures,
                "figures_identical": self.figures_identical, "values": self.values, "inputs": self.inputs,
                "settings": self.settings, "environment_differences": self.environment,
                "differences": [d.to_dict() for d in self.differences]}


# ---------------------------------------------------------------------------- inputs


def sha256_file(path: Path) -> str:
    return sha256_of(path)


def _short(digest: Any) -> str:
    return f"{digest[:12]}…" if isinstance(digest, str) else str(digest)


def _check_hash(name: str, path: Path, recorded: Any, key: str) -> dict[str, Any]:
    """The input's record, once its bytes are proven to be the recorded ones."""
    from auditkit.data.load import data_sha256, is_dataset
    from auditkit.errors import DataError

    if is_dataset(path):  # a Parquet dataset: a directory or glob, hashed over its files
        try:
            now = data_sha256(path)
        except DataError:
            raise InputChangedError(f"{name} {path} has no files left: the audit read it (sha256 "
                                    f"{_short(recorded)} in {key})") from None
    elif not path.is_file():
        raise InputChangedError(f"{name} {path} is missing: the audit read it (sha256 {_short(recorded)} in {key})")
    else:
        now = sha256_file(path)
    if now != recorded:
        raise InputChangedError(f"{name} {path} changed since the audit: sha256 {_short(recorded)} recorded "
                                f"({key}), {_short(now)} now",
                                hint="verify re-runs the audit on the inputs it recorded; restore them")
    return {"input": name, "path": str(path), "sha256": now}


def _candidates(results_file: ResultsFile, relative: Any, display: Any) -> list[Path]:
    found = []
    if isinstance(relative, str):
        found.append(Path(os.path.normpath(results_file.path.parent / relative)))
    if isinstance(display, str):
        found.append(Path(display))
    return found


def locate_policy(results_file: ResultsFile, override: Optional[Path]) -> dict[str, Any]:
    """The recorded policy file, its hash checked (``--policy`` first, then where recorded)."""
    inputs = results_file.results["inputs"]
    recorded = inputs["policy_sha256"]
    tried = [Path(override)] if override is not None else _candidates(
        results_file, inputs.get("policy_path_from_output"), inputs.get("policy_path"))
    for path in tried:
        if path.is_file():
            return _check_hash("policy", path, recorded, "inputs.policy_sha256")
    shown = ", ".join(str(p) for p in tried) or "no path is recorded"
    raise InputChangedError(f"policy file not found (tried {shown}; inputs.policy_path)",
                            hint="pass --policy PATH to say where the audit's policy is")


def check_inputs(results_file: ResultsFile, loaded: Any) -> list[dict[str, Any]]:
    """Model, data and reference data named by the (verified) policy, against the record."""
    inputs = results_file.results["inputs"]
    checked = []
    model = inputs.get("model") or {}
    if loaded.model_path is not None and model.get("sha256"):
        checked.append(_check_hash("model", loaded.model_path, model["sha256"], "inputs.model.sha256"))
    checked.append(_check_hash("data", loaded.data_path, inputs["data"]["sha256"], "inputs.data.sha256"))
    reference = inputs.get("reference") or {}
    if loaded.reference_path is not None and reference.get("sha256"):
        checked.append(_check_hash("reference data", loaded.reference_path, reference["sha256"],
                                   "inputs.reference.sha256"))
    return checked


def locate_baseline(results_file: ResultsFile) -> Optional[dict[str, Any]]:
    """The baseline run the relative thresholds compared with, its hash checked; None if none."""
    baseline = results_file.results["inputs"].get("baseline")
    if not isinstance(baseline, dict):
        return None
    tried = _candidates(results_file, baseline.get("path_from_output"), baseline.get("path"))
    for path in tried:
        if path.is_file():
            return _check_hash("baseline results", path, baseline["sha256"], "inputs.baseline.sha256")
    raise InputChangedError(f"baseline results file not found (tried {', '.join(str(p) for p in tried)}; "
                            "inputs.baseline.path)")


# ---------------------------------------------------------------------------- re-run


def _run_options(results: dict[str, Any], loaded: Any, options: VerifyOptions, baseline: Optional[dict[str, Any]],
                 out_dir: Path) -> Any:
    from auditkit.engine.run import RunOptions

    engine = results.get("engine") or {}
    ids = [c["id"] for c in results["checks"]]
    everything = [c.check_id for c in loaded.policy.checks]
    return RunOptions(
        out=out_dir, formats=["json"], workers=options.workers or engine.get("workers"),
        executor=engine.get("executor") if engine.get("executor") in ("local", "inline") else "local",
        only=ids if ids != everything else [], fail_on=results.get("fail_on") or "fail", seed=results["seed"],
        trust_pickle=options.trust_pickle, command="auditkit verify",
        baseline=Path(baseline["path"]) if baseline else None,
        # no baseline recorded: the audit ran without one (--no-baseline, or no relative bound)
        no_baseline=baseline is None)


def rerun(results_file: ResultsFile, options: VerifyOptions,
          on_stage: Callable[[str], None] | None = None) -> tuple[dict[str, Any], Verification]:
    """Check the inputs, re-run the audit; the re-run's results (JSON round-tripped) and the
    verification so far (inputs and settings)."""
    from auditkit.engine.run import run_audit
    from auditkit.policy.load import load_policy

    stage = on_stage or (lambda _message: None)
    verification = Verification(results_path=results_file.path)
    policy = locate_policy(results_file, options.policy)
    loaded = load_policy(policy["path"])
    verification.inputs = [policy, *check_inputs(results_file, loaded)]
    baseline = locate_baseline(results_file)
    if baseline is not None:
        verification.inputs.append(baseline)
    stage("inputs unchanged: " + ", ".join(f"{i['input']} (sha256 {_short(i['sha256'])})" for i in verification.inputs))
    scratch = Path(tempfile.mkdtemp(prefix="auditkit-verify-"))
    try:
        run_options = _run_options(results_file.results, loaded, options, baseline, scratch / "out")
        verification.settings = {"seed": run_options.seed, "workers": run_options.workers,
                                 "executor": run_options.executor, "only": run_options.only,
                                 "recorded_workers": (results_file.results.get("engine") or {}).get("workers")}
        workers = run_options.workers
        stage(f"re-running {len(results_file.results['checks'])} checks (seed {run_options.seed}, "
              f"{workers or 'default'} worker{'' if workers == 1 else 's'})")
        audit = run_audit(loaded, run_options)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    again = json.loads(json.dumps(audit.results, allow_nan=False))
    _same_inputs_read(results_file.results, again)
    return again, verification


def _same_inputs_read(recorded: dict[str, Any], again: dict[str, Any]) -> None:
    """The re-run hashed what it read: it must be what the audit read (a file swapped between
    the check above and the run is caught here)."""
    for name, keys in (("model", ("model", "sha256")), ("data", ("data", "sha256")),
                       ("reference data", ("reference", "sha256"))):
        before, after = recorded["inputs"], again["inputs"]
        for key in keys:
            before = before.get(key) if isinstance(before, dict) else None
            after = after.get(key) if isinstance(after, dict) else None
        if before != after:
            raise InputChangedError(f"the re-run read a different {name}: sha256 {_short(before)} recorded, "
                                    f"{_short(after)} read (inputs.{'.'.join(keys)})")


# ---------------------------------------------------------------------------- compare


def _leaves(node: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _leaves(value, f"{path}[{i}]")
    else:
        yield path, node


def _is_figure(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _figures_of(check: dict[str, Any]) -> dict[str, Any]:
    return {part: check.get(part) for part in COMPARED_PARTS}


def compare_runs(recorded: dict[str, Any], again: dict[str, Any], verification: Verification) -> Verification:
    """Every value of every recorded check against the re-run (exact equality: the same
    inputs and seed must give the same bits)."""
    rerun_checks = {c["id"]: c for c in again["checks"]}
    for check in recorded["checks"]:
        other = rerun_checks.get(check["id"])
        mine = dict(_leaves(_figures_of(check), ""))
        theirs = dict(_leaves(_figures_of(other), "")) if other is not None else {}
        for path, value in mine.items():
            verification.values += 1
            verification.figures += _is_figure(value)
            if path in theirs and _same(value, theirs[path]):
                verification.figures_identical += _is_figure(value)
            else:
                verification.differences.append(Difference(check["id"], path, value, theirs.get(path, "(absent)")))
        for path in theirs.keys() - mine.keys():
            verification.differences.append(Difference(check["id"], path, "(absent)", theirs[path]))
    for check in again["checks"]:
        if check["id"] not in {c["id"] for c in recorded["checks"]}:
            verification.differences.append(Difference(check["id"], "", "(absent)", "(a check the record lacks)"))
    verification.environment = _environment_differences(recorded, again)
    return verification


def _same(a: Any, b: Any) -> bool:
    # 1 and 1.0 are the same figure (JSON does not keep the difference); True is not 1
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b)


def _environment_differences(recorded: dict[str, Any], again: dict[str, Any]) -> list[dict[str, Any]]:
    """Versions that differ between the audit and the re-run (a likely cause of a difference)."""
    out = []
    if recorded.get("auditkit_version") != again.get("auditkit_version"):
        out.append({"name": "auditkit", "recorded": recorded.get("auditkit_version"),
                    "rerun": again.get("auditkit_version")})
    old = (recorded["inputs"].get("environment") or {})
    new = (again["inputs"].get("environment") or {})
    if old.get("python") != new.get("python"):
        out.append({"name": "python", "recorded": old.get("python"), "rerun": new.get("python")})
    packages_old, packages_new = old.get("packages") or {}, new.get("packages") or {}
    for name in sorted(set(packages_old) | set(packages_new)):
        if packages_old.get(name) != packages_new.get(name):
            out.append({"name": name, "recorded": packages_old.get(name), "rerun": packages_new.get(name)})
    return out


def verify(results_path: Path, options: VerifyOptions | None = None,
           on_stage: Callable[[str], None] | None = None) -> Verification:
    """Re-run the audit ``results_path`` records and compare every figure."""
    options = options or VerifyOptions()
    if options.workers is not None and options.workers < 1:
        raise UserError(f"--workers must be at least 1, got {options.workers}")
    results_file = read_results(results_path, role="audit")
    again, verification = rerun(results_file, options, on_stage)
    return compare_runs(results_file.results, again, verification)
