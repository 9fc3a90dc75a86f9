"""Engine benchmark: what a check's ``duration_s`` measures, and the engine's overhead.

Default (issue #17, "start-up paid once per audit"): the demo audit (policies/credit_scoring.yaml
on sample_models/credit_test.csv, 20,150 rows, 18 checks) run by the CLI, `auditkit run
--workers 1` (so that each check has the machine to itself, as the library calls do), with
the workers' preload of the plan's modules and without it (AUDITKIT_NO_PRELOAD=1: each worker
imports scikit-learn, scipy, shap, lime... inside the first check that needs them, and counts
it in that check's time), --repeat times each, interleaved. Prints every check's
``duration_s`` from results.json both ways (best of the repeats), each run's wall time, and
three speed ratios, each check's ``duration_s`` from a real run against the plain library
call timed in this process between the runs (best of the repeats):

  A. group_fairness ("approval-parity": sex, race and sex x race, 1,000 bootstrap resamples,
     every rate, interval and test) vs one fairlearn MetricFrame pass over the same three
     groupings with the same rates and no bootstrap (benchmarks/fairness.py's), on the same
     decisions of the same model. Goal: the check >= 5x faster.
  B. shap_importance ("attributions": exact TreeSHAP on the ONNX file, 2,000 rows, 200
     background rows) vs shap.TreeExplainer (interventional, 2,000 rows, 200 background rows
     of the same files) on the scikit-learn model the ONNX file was exported from
     (sample_models/credit_gbm.joblib, its own preprocessing applied first). Goal: <= 1.05x.
  C. counterfactuals ("recourse-burden": 300 declined applicants) vs DiCE's faster method
     (``random``, benchmarks/local_counterfactuals.py's call) with the same constraints on the
     first --dice-rows of the same 300 rows (rows with a missing input left out: DiCE takes no
     NaN), its time per row scaled to 300 rows. Goal: the check >= 5x faster. Without dice-ml
     (the `bench` extra) C is left out.

--overhead (issue #3): wall time of `auditkit run` for 20,000 and 100,000 rows and 1 and 2
workers, the time spent inside checks, and the engine's overhead = wall time - the checks'
ideal makespan; target < 2 s + 5% of check time. Reports other than results.json are
rendered in a separate line (rendering is not engine overhead).

Run: .venv/bin/python benchmarks/engine.py [--repeat 2] [--dice-rows 30] [--overhead]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_models"
AUDITKIT = [sys.executable, "-m", "auditkit"]
sys.path.insert(0, str(Path(__file__).resolve().parent))

FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
            "n_open_accounts", "home_ownership", "purpose", "zip_region"]
NO_PRELOAD = "AUDITKIT_NO_PRELOAD"


def _policy(data: Path, out: Path, directory: Path) -> Path:
    text = (ROOT / "policies" / "credit_scoring.yaml").read_text()
    text = text.replace("../sample_models/credit_test.csv", str(data))
    text = text.replace("../sample_models/", str(SAMPLES) + "/")
    text = text.replace("../reports/credit_scoring", str(out))
    path = directory / f"policy-{data.stem}-{out.name}.yaml"
    path.write_text(text)
    return path


def _run(policy: Path, workers: int | None, formats: str, env: dict[str, str] | None = None) -> tuple[float, dict]:
    command = [*AUDITKIT, "run", str(policy), "--format", formats]
    if workers is not None:
        command += ["--workers", str(workers)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True,
                               env={**os.environ, "COLUMNS": "80", **(env or {})})
    wall = time.perf_counter() - started
    if completed.returncode not in (0, 1):
        raise SystemExit(f"auditkit exited {completed.returncode}:\n{completed.stdout}\n{completed.stderr}")
    out_dir = Path(policy.read_text().split("output_dir: ")[1].split()[0])
    return wall, json.loads((out_dir / "results.json").read_text())


def _seconds(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


# --------------------------------------------------------------------------- the libraries
class Libraries:
    """The plain library calls of the three ratios, on the demo's data and model."""

    def __init__(self) -> None:
        from auditkit.adapters.base import AdapterSpec, load_adapter

        self.frame = pd.read_csv(SAMPLES / "credit_test.csv").rename_axis("row")
        self.train = pd.read_csv(SAMPLES / "credit_train.csv")
        adapter = load_adapter(AdapterSpec(format="onnx", path=str(SAMPLES / "credit_gbm.onnx"),
                                           feature_names=tuple(FEATURES)))
        self.scores = adapter.predict(self.frame[FEATURES])
        self.decisions = (self.scores >= 0.5).astype(int)  # the policy's threshold
        rng = np.random.default_rng(0)
        self.shap_rows = self.frame.iloc[np.sort(rng.choice(len(self.frame), 2_000, replace=False))][FEATURES]
        self.shap_background = self.train.iloc[np.sort(rng.choice(len(self.train), 200, replace=False))][FEATURES]

    def metric_frame(self) -> float:
        """One fairlearn MetricFrame pass over sex, race and sex x race (benchmarks/fairness.py's)."""
        from fairness import _metric_frames

        y = self.frame["defaulted"].to_numpy()
        return _seconds(lambda: _metric_frames(self.frame, y, self.decisions))

    def tree_explainer(self) -> float:
        """shap.TreeExplainer on the scikit-learn GBM the ONNX file was exported from: its
        preprocessing, the explainer and the values of 2,000 rows, timed together."""
        import joblib
        import shap

        pipeline = joblib.load(SAMPLES / "credit_gbm.joblib")
        prep, gbm = pipeline[:-1], pipeline[-1]

        def work() -> None:
            rows, background = prep.transform(self.shap_rows), prep.transform(self.shap_background)
            explainer = shap.TreeExplainer(gbm, data=np.asarray(background, dtype=np.float64),
                                           feature_perturbation="interventional", model_output="raw")
            explainer.shap_values(np.asarray(rows, dtype=np.float64))
        return _seconds(work)

    def dice_per_row(self, rows: list[int]) -> tuple[float, int]:
        """DiCE random's seconds per row on these rows (without a missing input), and how many."""
        from local_counterfactuals import NUMERIC, Verifier, run_dice

        immutable = ["zip_region", "n_late_payments"]  # the demo policy's recourse-burden check
        directions = {"credit_history_years": "increase", "employment_years": "increase"}
        complete = [r for r in rows if self.frame.loc[r, FEATURES].notna().all()]
        verifier = Verifier(self.frame)
        bounds = {f: [verifier.lo[f], verifier.hi[f]] for f in NUMERIC}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, seconds = run_dice(self.frame, self.frame.loc[complete, FEATURES], "random", bounds, verifier,
                                  mutable=[f for f in FEATURES if f not in immutable], directions=directions)
        return seconds / len(complete), len(complete)


def _dice_available() -> bool:
    try:
        import dice_ml  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- issue #17
def preload(repeat: int, dice_rows: int, workers: int | None) -> None:
    from auditkit.engine.run import available_cores

    libraries = Libraries()
    dice = _dice_available()
    walls: dict[str, list[float]] = {"with": [], "without": []}
    durations: dict[str, dict[str, list[float]]] = {"with": {}, "without": {}}
    library: dict[str, list[float]] = {"metric_frame": [], "tree_explainer": [], "dice_per_row": []}
    checks: list[dict[str, Any]] = []
    loads = [os.getloadavg()[0]]
    dice_n = 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for i in range(repeat):
            for mode in ("with", "without"):
                policy = _policy(SAMPLES / "credit_test.csv", directory / f"out-{mode}-{i}", directory)
                env = {NO_PRELOAD: "1"} if mode == "without" else {NO_PRELOAD: ""}
                wall, results = _run(policy, workers, "json", env)
                walls[mode].append(wall)
                checks = results["checks"]
                for check in checks:
                    durations[mode].setdefault(check["id"], []).append(check["duration_s"])
                if mode == "with" and i == 0:
                    burden_rows = [r["row"] for r in next(c for c in checks if c["id"] == "recourse-burden")
                                   ["tables"]["counterfactuals"]]
            library["metric_frame"].append(libraries.metric_frame())
            library["tree_explainer"].append(libraries.tree_explainer())
            if dice:
                per_row, dice_n = libraries.dice_per_row(burden_rows[:dice_rows])
                library["dice_per_row"].append(per_row)
            loads.append(os.getloadavg()[0])

    best = {mode: {cid: min(values) for cid, values in by_id.items()} for mode, by_id in durations.items()}
    print(f"Demo audit ({len(libraries.frame):,} rows, {len(checks)} checks), `auditkit run` by the CLI, "
          f"{workers or available_cores()} workers, best of {repeat} runs each way, interleaved; "
          f"1-min load average {min(loads):.2f}-{max(loads):.2f} on {os.cpu_count()} CPUs\n")
    print(f"{'check':22} {'type':24} {'preload s':>10} {'none s':>8} {'saved s':>8}")
    for check in checks:
        cid = check["id"]
        with_s, without_s = best["with"][cid], best["without"][cid]
        print(f"{cid:22} {check['type']:24} {with_s:10.2f} {without_s:8.2f} {without_s - with_s:8.2f}")
    total_with, total_without = sum(best["with"].values()), sum(best["without"].values())
    print(f"{'sum of durations':47} {total_with:10.2f} {total_without:8.2f} {total_without - total_with:8.2f}")
    print(f"{'wall time of the run':47} {min(walls['with']):10.2f} {min(walls['without']):8.2f} "
          f"{min(walls['without']) - min(walls['with']):8.2f}")
    print("  (wall times of every run, with: " + ", ".join(f"{w:.1f}" for w in walls["with"])
          + "; without: " + ", ".join(f"{w:.1f}" for w in walls["without"]) + ")")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    fairness, shap_check, burden = best["with"]["approval-parity"], best["with"]["attributions"], \
        best["with"]["recourse-burden"]
    metric_frame, tree_explainer = min(library["metric_frame"]), min(library["tree_explainer"])
    print("\nSpeed ratios, each check's duration_s (preloaded run) vs the library call, best of "
          f"{repeat} each:")
    speedup = metric_frame / fairness
    print(f"A. group_fairness, 1,000 resamples: {fairness:.2f} s; one fairlearn MetricFrame pass: "
          f"{metric_frame:.2f} s -> {speedup:.1f}x faster (goal >= 5x: {verdict(speedup >= 5)}); "
          f"without the preload {metric_frame / best['without']['approval-parity']:.1f}x")
    ratio = shap_check / tree_explainer
    print(f"B. shap_importance on ONNX: {shap_check:.2f} s; shap.TreeExplainer on the scikit-learn model: "
          f"{tree_explainer:.2f} s -> {ratio:.3f}x its time (goal <= 1.05x: {verdict(ratio <= 1.05)}); "
          f"without the preload {best['without']['attributions'] / tree_explainer:.3f}x")
    if library["dice_per_row"]:
        dice_s = min(library["dice_per_row"]) * len(burden_rows)
        speedup = dice_s / burden
        print(f"C. counterfactuals, {len(burden_rows)} rows: {burden:.2f} s; DiCE random: "
              f"{min(library['dice_per_row']):.3f} s/row over {dice_n} of them -> {dice_s:.1f} s for "
              f"{len(burden_rows)} -> {speedup:.1f}x faster (goal >= 5x: {verdict(speedup >= 5)}); "
              f"without the preload {dice_s / best['without']['recourse-burden']:.1f}x")
    else:
        print("C. counterfactuals vs DiCE: dice-ml is not installed (pip install -e '.[bench]')")


# --------------------------------------------------------------------------- issue #3
def overhead() -> None:
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
                overhead_s = wall - ideal
                target = 2.0 + 0.05 * inside
                print(f"{label:>5} {workers:>7} {wall:7.2f} {inside:11.2f} {engine['checks_wall_s']:13.2f} "
                      f"{overhead_s:10.2f} {target:8.2f}  (prepare {engine['prepare_s']:.2f} s)")
        policy = _policy(datasets["20k"], directory / "out-render", directory)
        wall_json, _ = _run(policy, 2, "json")
        wall_all, _ = _run(policy, 2, "json,html,pdf,junit,md")
        print(f"rendering html+pdf+junit+md on 20k rows adds {wall_all - wall_json:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of the demo audit each way (best is kept)")
    parser.add_argument("--dice-rows", type=int, default=30, help="rows DiCE is timed on (C)")
    # one worker by default: each check then has the machine to itself, as the library call
    # timed in this process does (two workers on two busy cores would halve what each check gets)
    parser.add_argument("--workers", type=int, default=1, help="auditkit's --workers (default 1)")
    parser.add_argument("--overhead", action="store_true", help="the engine-overhead table of issue #3 instead")
    args = parser.parse_args()
    if not (SAMPLES / "manifest.json").exists():
        subprocess.run([sys.executable, str(SAMPLES / "build.py")], check=True)
    if args.overhead:
        overhead()
    else:
        preload(args.repeat, args.dice_rows, args.workers)


if __name__ == "__main__":
    main()
