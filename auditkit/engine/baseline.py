"""The baseline run that relative thresholds (``max_decrease`` / ``max_increase``) compare with.

``report.baseline`` in the policy (relative to the policy file) or ``--baseline`` names a
results.json of an earlier audit. It is read, hashed and validated before anything runs; a
relative bound with no baseline at all is a policy error (exit 2), unless ``--no-baseline``
says so on purpose (a first release has nothing to compare with): the relative bounds are
then recorded as not assessed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditkit.results.io import ResultsFile, read_results
from auditkit.errors import PolicyError, Source, UserError
from auditkit.policy.load import LoadedPolicy
from auditkit.results.model import Metric
from auditkit.thresholds import BaselineLookup


@dataclass(frozen=True)
class Baseline:
    """A baseline run's results, its checks by id."""

    file: ResultsFile
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path, *, source: Source | None = None) -> "Baseline":
        file = read_results(path, role="baseline", source=source)
        return cls(file, {c["id"]: c for c in file.results["checks"]})

    def lookup(self, check_id: str, check_type: str) -> BaselineLookup:
        """The figures of check ``check_id`` in the baseline, metric by metric, or why not."""
        check = self.checks.get(check_id)

        def figure(metric: str) -> tuple[Metric | None, str | None]:
            if check is None:
                return None, f"the baseline has no check '{check_id}'"
            if check.get("type") != check_type:
                return None, f"check '{check_id}' is of type {check.get('type')} in the baseline, {check_type} now"
            recorded = check["metrics"].get(metric)
            if recorded is None:
                ended = f" (it ended as {check['status']})" if check.get("status") in ("error", "skipped") else ""
                return None, f"the baseline's check '{check_id}' has no {metric}{ended}"
            ci = recorded.get("ci")
            interval = (ci[0], ci[1]) if isinstance(ci, list) and None not in ci else None
            return Metric(recorded.get("value"), ci=interval), None

        return figure

    def record(self, out_dir: Path) -> dict[str, Any]:
        """What results.json says about the baseline (``inputs.baseline``): enough to find it
        again and to prove it is the same file (``auditkit verify`` checks the hash)."""
        results = self.file.results
        return {"path": display_path(self.file.path), "path_from_output": path_from(out_dir, self.file.path),
                "sha256": self.file.sha256, "policy_name": results.get("policy_name"),
                "started_at": results.get("started_at"), "auditkit_version": results.get("auditkit_version"),
                "run_id": results.get("run_id")}


def relative_bounds(loaded: LoadedPolicy) -> list[str]:
    """The policy keys of every relative bound, in policy order."""
    keys = []
    for i, spec in enumerate(loaded.policy.checks):
        for metric, threshold in spec.thresholds.items():
            for bound in ("max_decrease", "max_increase"):
                if getattr(threshold, bound) is not None:
                    keys.append(f"checks[{i}].thresholds.{metric}.{bound}")
    return keys


def resolve_baseline(loaded: LoadedPolicy, override: Path | None = None, *, no_baseline: bool = False,
                     required: bool = True) -> Baseline | None:
    """The baseline run: ``--baseline`` (``override``), else ``report.baseline``, else none.

    ``required``: a policy with relative bounds and no baseline is an error (``auditkit run``);
    ``auditkit validate`` only checks a declared one.
    """
    if no_baseline:
        if override is not None:
            raise UserError("--baseline and --no-baseline contradict each other; give one")
        return None
    if override is not None:
        return Baseline.read(Path(override), source=Source(None, "--baseline"))
    declared = loaded.resolve(loaded.policy.report.baseline)
    if declared is not None:
        return Baseline.read(declared, source=loaded.source("report.baseline"))
    keys = relative_bounds(loaded)
    if required and keys:
        more = f" (and {len(keys) - 1} more)" if len(keys) > 1 else ""
        raise PolicyError(f"a relative bound needs a baseline run to compare with{more}",
                          source=loaded.source(keys[0]),
                          hint="set report.baseline to an earlier results.json or pass --baseline RESULTS.json; "
                               "--no-baseline records the relative bounds as not assessed (a first release)")
    return None


def display_path(path: Path) -> str:
    """A path as results.json shows it: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def path_from(out_dir: Path, path: Path) -> str:
    """``path`` relative to the output directory, where results.json is written: a checkout
    moved as a whole (a CI workspace in another directory) still finds its inputs."""
    try:
        return os.path.relpath(Path(path).resolve(), Path(out_dir).resolve())
    except ValueError:  # another drive (Windows): no relative path exists
        return str(Path(path).resolve())
