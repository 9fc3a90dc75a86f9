"""Robustness benchmark: the whole ``noise_robustness`` check against onnxruntime alone, side by side.

Model: sample_models/credit_gbm.onnx (GradientBoostingClassifier pipeline, 10 named inputs,
3 of them categorical), on the first 20,000 rows of sample_models/credit_test.csv, all of
them used (max_rows=20000). The check: 4 levels x 5 repeats plus each of the 10 features
alone at one level (1 draw) = 30 x 20,000 = 600,000 noisy rows, building the copies, predicting
them through the adapter and computing every figure. The floor: a plain onnxruntime
InferenceSession predicting 600,000 noisy rows in one batch from inputs prepared beforehand.
Both use one thread (a worker's ONNX session runs with intra_op_num_threads=1). Target: the
check within 1.5x of the floor.

Run: .venv/bin/python benchmarks/robustness.py
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "checks"))

from check_support import run_check  # noqa: E402

from auditkit.adapters.base import AdapterSpec, load_adapter  # noqa: E402
from auditkit.engine.context import AuditData  # noqa: E402
from auditkit.core.registry import get_registry  # noqa: E402

MODEL = ROOT / "sample_models" / "credit_gbm.onnx"
DATA = ROOT / "sample_models" / "credit_test.csv"
N_ROWS, LEVELS, REPEATS, TIMINGS = 20_000, [0.01, 0.05, 0.1, 0.2], 5, 3
FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
            "n_open_accounts", "home_ownership", "purpose", "zip_region"]
NUMERIC = FEATURES[:7]


def audit_data(frame: pd.DataFrame) -> AuditData:
    """As the engine prepares it: the base predictions are computed once, before any check runs."""
    spec = AdapterSpec(format="onnx", path=str(MODEL), feature_names=tuple(FEATURES))
    adapter = load_adapter(spec)
    scores = adapter.predict(frame[FEATURES])
    return AuditData(frame=frame, features=FEATURES, target="defaulted", protected=[], task="binary", scores=scores,
                     decisions=(scores >= 0.5).astype(np.int64), y=frame["defaulted"].to_numpy(float),
                     score_kind=adapter.score_kind, adapter_spec=spec, threshold=0.5, classes=adapter.classes)


def floor_feeds(frame: pd.DataFrame, copies: int) -> dict[str, np.ndarray]:
    """The same number of noisy rows as the check predicts, as ready-made ONNX inputs."""
    rng = np.random.default_rng(0)
    n = len(frame)
    feeds: dict[str, np.ndarray] = {}
    for column in FEATURES:
        if column in NUMERIC:
            values = np.tile(frame[column].to_numpy(np.float64), copies)
            values = values + 0.1 * np.nanstd(frame[column].to_numpy(np.float64)) * rng.standard_normal(n * copies)
            feeds[column] = values.astype(np.float32).reshape(-1, 1)
        else:
            feeds[column] = np.tile(frame[column].astype(str).to_numpy(object), copies).reshape(-1, 1)
    return feeds


def main() -> None:
    import onnxruntime as ort

    if "noise_robustness" not in get_registry():  # until the entry point is declared in pyproject.toml
        import auditkit.checks.robustness.noise_robustness as module

        get_registry().register_module(module, plugin=False)
    frame = pd.read_csv(DATA).iloc[:N_ROWS].rename_axis("row")
    data = audit_data(frame)
    params = {"levels": LEVELS, "n_repeats": REPEATS, "max_rows": N_ROWS, "sensitivity_level": 0.1}
    copies = len(LEVELS) * REPEATS + len(FEATURES)
    rows = copies * N_ROWS

    run_check("noise_robustness", data, {**params, "max_rows": 200})  # warm-up: the worker's adapter is built once
    check_times = []
    for _ in range(TIMINGS):
        started = time.perf_counter()
        output = run_check("noise_robustness", data, params, seed=42)
        check_times.append(time.perf_counter() - started)

    feeds = floor_feeds(frame, copies)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
    session.run(None, {k: v[:100] for k, v in feeds.items()})  # warm-up
    floor_times = []
    for _ in range(TIMINGS):
        started = time.perf_counter()
        session.run(None, feeds)
        floor_times.append(time.perf_counter() - started)

    check_s, floor_s = min(check_times), min(floor_times)
    print(f"noise_robustness on {MODEL.name}: {N_ROWS:,} rows, {len(LEVELS)} levels x {REPEATS} repeats "
          f"+ {len(FEATURES)} features x 1 draw = {rows:,} noisy rows; 1 thread; best of {TIMINGS}")
    print(f"{'':32}{'best s':>9}{'median s':>10}")
    print(f"{'check (whole, one worker)':32}{check_s:9.3f}{statistics.median(check_times):10.3f}")
    print(f"{'floor (onnxruntime, 1 batch)':32}{floor_s:9.3f}{statistics.median(floor_times):10.3f}")
    print(f"ratio check / floor: {check_s / floor_s:.2f}x (target <= 1.5x)")
    print("flip rates: " + ", ".join(f"{k} = {m.value:.4f}" for k, m in output.metrics.items()
                                     if k.startswith("flip_rate[")))



def adversarial_against_art(n_rows: int = 200) -> None:
    """Our decision-based search against ART's HopSkipJump on the same rows, bounds and norm (L2),
    on the sample logistic regression (ONNX, 7 numeric inputs), with queries counted."""
    try:
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier
    except ImportError:
        print("adversarial vs ART: skipped (pip install adversarial-robustness-toolbox to compare)")
        return
    from auditkit.adapters.base import AdapterSpec, load_adapter

    numeric = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
               "n_open_accounts"]
    frame = pd.read_csv(ROOT / "sample_models" / "credit_test.csv").iloc[:N_ROWS]
    frame = frame.dropna(subset=numeric).reset_index(drop=True).rename_axis("row")
    spec = AdapterSpec(format="onnx", path=str(ROOT / "sample_models" / "credit_logreg.onnx"),
                       feature_names=tuple(numeric))
    adapter = load_adapter(spec)
    scores = adapter.predict(frame)
    data = AuditData(frame=frame, features=numeric, target="defaulted", protected=["race"], task="binary",
                     scores=scores, decisions=(scores >= 0.5).astype(np.int64),
                     y=frame["defaulted"].to_numpy(float), score_kind="probability", adapter_spec=spec,
                     threshold=0.5, classes=[0, 1])
    started = time.perf_counter()
    ours = run_check("adversarial", data, {"max_rows": n_rows, "epsilon": 0.05}, seed=1)
    ours_s = time.perf_counter() - started
    attacked = sorted({e["row"] for e in ours.tables["examples"]})  # rows for the sanity print only
    low = frame[numeric].min().to_numpy(float)
    scale = (frame[numeric].max() - frame[numeric].min()).to_numpy(float)
    # the same rows as the check: run_check(seed=1) draws its sample first from default_rng(1)
    rows = np.sort(np.random.default_rng(1).choice(len(frame), n_rows, replace=False))
    assert set(attacked) <= set(rows.tolist()), "the two attacks must see the same rows"
    x = ((frame[numeric].to_numpy(float)[rows] - low) / scale).astype(np.float32)
    queries = {"rows": 0}

    def predict(batch: np.ndarray) -> np.ndarray:
        queries["rows"] += len(batch)
        raw = pd.DataFrame(np.asarray(batch, dtype=np.float64) * scale + low, columns=numeric)
        p = adapter.predict(raw)
        return np.column_stack([1 - p, p])

    classifier = BlackBoxClassifier(predict, input_shape=(len(numeric),), nb_classes=2, clip_values=(0.0, 1.0))
    attack = HopSkipJump(classifier, targeted=False, norm=2, max_iter=20, max_eval=1000, init_eval=100, verbose=False)
    started = time.perf_counter()
    x_adv = attack.generate(x)
    art_s = time.perf_counter() - started
    before = predict(x).argmax(axis=1)
    after = predict(x_adv).argmax(axis=1)
    flipped = after != before
    l2 = np.where(flipped, np.linalg.norm(x_adv - x, axis=1), np.inf)
    art_success = float(np.mean(l2 <= 0.05))
    art_median = float(np.median(l2))
    print(f"adversarial on credit_logreg.onnx, {n_rows} rows, L2 in units of each feature's range, budget 0.05:")
    print(f"  auditkit : success {ours.metrics['success_rate_l2'].value:.3f}  median L2 "
          f"{ours.metrics['median_perturbation_l2'].value}  queries/row {ours.metrics['queries_per_row'].value:.0f}"
          f"  time {ours_s:.2f} s")
    print(f"  ART HSJ  : success {art_success:.3f}  median L2 {art_median:.4g}  queries/row "
          f"{queries['rows'] / n_rows:.0f}  time {art_s:.2f} s  (every example re-verified: {int(flipped.sum())} flips)")
    print(f"  query ratio ART / auditkit: {queries['rows'] / n_rows / ours.metrics['queries_per_row'].value:.1f}x "
          f"(target >= 3x); {len(attacked)} examples listed by auditkit")


if __name__ == "__main__":
    main()
    adversarial_against_art()
