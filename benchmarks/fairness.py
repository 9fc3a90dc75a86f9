"""Fairness benchmark (issue #4): group_fairness against fairlearn, side by side in one run.

On 100,000 rows with two attributes (2 and 5 groups) and their intersection:
  A. auditkit's group_fairness with 1,000 stratified bootstrap resamples (every rate, every
     ratio and difference, every interval, the significance tests);
  B. one fairlearn MetricFrame pass over the same three groupings with the same rates, no
     bootstrap;
  C. fairlearn's own bootstrap, MetricFrame(n_boot=N) at a small N, extrapolated to 1,000.
Targets: A at least 5x faster than B, and at least 1,000x faster than C.

Run: .venv/bin/python benchmarks/fairness.py
"""
from __future__ import annotations

import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import (MetricFrame, false_negative_rate, false_positive_rate, selection_rate,
                               true_negative_rate, true_positive_rate)
from sklearn.metrics import accuracy_score, precision_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "checks"))

from check_support import binary_data, run_check  # noqa: E402

N = 100_000
SMALL_BOOT = 3


def _data() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"sex": rng.choice(["F", "M"], N),
                          "race": rng.choice(["A", "B", "C", "D", "E"], N, p=[0.5, 0.2, 0.15, 0.1, 0.05])})
    y = (rng.random(N) < 0.3).astype(float)
    scores = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, N) - 0.05 * (frame.race == "B"), 0, 1)
    return frame, y, scores


def _metric_frames(frame: pd.DataFrame, y: np.ndarray, decisions: np.ndarray, **kwargs) -> None:
    metrics = {"selection_rate": selection_rate, "true_positive_rate": true_positive_rate,
               "false_positive_rate": false_positive_rate, "false_negative_rate": false_negative_rate,
               "true_negative_rate": true_negative_rate,
               "positive_predictive_value": partial(precision_score, zero_division=np.nan),
               "accuracy": accuracy_score}
    for features in (frame["sex"], frame["race"], frame[["sex", "race"]]):
        mf = MetricFrame(metrics=metrics, y_true=y, y_pred=decisions, sensitive_features=features, **kwargs)
        mf.ratio(), mf.difference()


def main() -> None:
    frame, y, scores = _data()
    decisions = (scores >= 0.5).astype(int)
    data = binary_data(y, scores, frame=frame, protected=["sex", "race"], favorable_decision=1)
    params = {"attributes": ["sex", "race"], "intersections": [["sex", "race"]], "bootstrap": 1000}

    run_check("group_fairness", data, params)  # warm imports
    started = time.perf_counter()
    output = run_check("group_fairness", data, params)
    ours = time.perf_counter() - started
    assert output.metrics["selection_rate_ratio[race]"].ci is not None

    started = time.perf_counter()
    _metric_frames(frame, y, decisions)
    one_pass = time.perf_counter() - started

    started = time.perf_counter()
    _metric_frames(frame, y, decisions, n_boot=SMALL_BOOT, ci_quantiles=[0.025, 0.975], random_state=0)
    boot_small = time.perf_counter() - started
    boot_1000 = boot_small / SMALL_BOOT * 1000

    print(f"rows {N:,}; groupings: sex (2), race (5), sex & race (10)")
    print(f"A auditkit group_fairness, 1,000 bootstrap resamples : {ours:8.3f} s")
    print(f"B fairlearn MetricFrame, one pass, no bootstrap      : {one_pass:8.3f} s   B/A = {one_pass / ours:7.1f}x (target >= 5x)")
    print(f"C fairlearn MetricFrame(n_boot={SMALL_BOOT}) measured          : {boot_small:8.3f} s")
    print(f"  extrapolated to n_boot=1,000                       : {boot_1000:8.1f} s   C/A = {boot_1000 / ours:7.0f}x (target >= 1,000x)")


if __name__ == "__main__":
    main()
