"""Engine benchmark: wall time of `auditkit run` on the credit policy, and the engine's overhead.

Prints, for 20,000 and 100,000 rows and 1 and 2 workers: wall time of the whole command,
the time spent inside checks (sum over checks), the checks' wall time, and the engine's
overhead = wall time - time inside checks (with 1 worker) or wall time - checks' wall time
+ (checks' wall time - sum/workers) ... i.e. everything that is not a check computing:
interpreter start, policy, data and model loading, the base prediction pass, worker start,
and writing results. Reports other than results.json are rendered in a separate line
(rendering is not engine overhead). Target (issue #3): overhead < 2 s + 5% of check time.

Run: .venv/bin/python benchmarks/engine.py   (or `make bench`)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
AUDITKIT = [sys.executable, "-m", "auditkit"]


def _policy(data: Path, out: Path, directory: Path) -> Path:
    text = (ROOT / "policies" / "credit_scoring.yaml").read_text()
    text = text.replace("../sample_models/credit_test.csv", str(data))
    text = text.replace("../sample_models/", str(SAMPLES) + "/")
    text = text.replace("../reports/credit_scoring", str(out))
    path = directory / f"policy-{data.stem}.yaml"
    path.write_text(text)
    return path


def _run(policy: Path, workers: int, formats: str) -> tuple[float, dict]:
    started = time.perf_counter()
    completed = subprocess.run([*AUDITKIT, "run", str(policy), "--workers", str(workers), "--format", formats],
                               capture_output=True, text=True, env={**os.environ, "COLUMNS": "80"})
    wall = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        raise SystemExit(f"auditkit exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}")
    out_dir = Path(policy.read_text().split("output_dir: ")[1].split()[0])
    return wall, json.loads((out_dir / "results.json").read_text())


def main() -> None:
    if not (SAMPLES / "manifest.json").exists():
        subprocess.run([sys.executable, str(SAMPLES / "build.py")], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        test = pd.read_csv(SAMPLES / "credit_test.csv")
        big = directory / "credit_100k.csv"
        pd.concat([test] * 5, ignore_index=True).iloc[:100_000].to_csv(big, index=False)
        datasets = {"20k": SAMPLES / "credit_test.csv", "100k": big}
        print(f"{'rows':>5} {'workers':>7} {'wall s':>7} {'in checks s':>11} {'checks wall s':>13} "
              f"{'overhead s':>10} {'target s':>8}")
        for label, data in datasets.items():
            for workers in (1, 2):
                policy = _policy(data, directory / f"out-{label}-{workers}", directory)
                _run(policy, workers, "json")  # warm the file cache and the OS
                wall, results = _run(policy, workers, "json")
                engine = results["engine"]
                inside = engine["checks_time_s"]
                # the checks' ideal makespan on this many workers; the rest is the engine's
                ideal = max(inside / workers, max(c["duration_s"] for c in results["checks"]))
                overhead = wall - ideal
                target = 2.0 + 0.05 * inside
                print(f"{label:>5} {workers:>7} {wall:7.2f} {inside:11.2f} {engine['checks_wall_s']:13.2f} "
                      f"{overhead:10.2f} {target:8.2f}  (prepare {engine['prepare_s']:.2f} s)")
        policy = _policy(datasets["20k"], directory / "out-render", directory)
        wall_json, _ = _run(policy, 2, "json")
        wall_all, _ = _run(policy, 2, "json,html,pdf,junit,md")
        print(f"rendering html+pdf+junit+md on 20k rows adds {wall_all - wall_json:.2f} s")


if __name__ == "__main__":
    main()
