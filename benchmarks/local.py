"""Local-explanations benchmark: LIME on 100 rows, auditkit against lime's documented loop, side by side.

Model: sample_models/credit_gbm.onnx (10 named inputs, 3 categorical) on sample_models/credit_test.csv.
Rows: a seeded sample of 100 audit rows. LIME: 5,000 samples per row, regression on the
log-odds, quartile discretisation, the statistics of the same 200-row background that the
check draws (as shap_importance does).

- lime's way (its documentation): one ``LimeTabularExplainer(training, random_state=seed)``
  and ``explain_instance(row, predict_fn, num_features=10, num_samples=5000)`` row by row, on
  the same predict function (categories decoded, the ONNX session through the adapter).
- auditkit in one process: the check's LIME path on the same rows, background and seed;
  the weights must be the same (asserted to 1e-12).
- auditkit with the rows split over two worker processes (50 rows each, workers started and
  the model loaded before timing, as the engine's workers are).
- the exact SHAP values (ONNX TreeSHAP) for the same 100 rows, timed on their own: the extra
  cost of the second explanation every row gets.
- the whole ``local_explanations`` check on the same rows in one process (SHAP + LIME +
  agreement + reason codes), for reference.

Each measurement is the median of REPEATS runs. Target: at least 1.8x faster than lime's
loop with two workers.

Run: .venv/bin/python benchmarks/local.py
"""
from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "checks"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from check_support import run_check  # noqa: E402
from robustness import FEATURES, audit_data  # noqa: E402

from auditkit.checks.explanations.shap_importance import background_rows  # noqa: E402
from auditkit.methods.shap_values import explain  # noqa: E402
from auditkit.checks.local.local_explanations import _Encoder  # noqa: E402
from auditkit.engine.context import AuditContext  # noqa: E402
from auditkit.methods.lime_tabular import explain_rows, lime_explainer  # noqa: E402

DATA = ROOT / "sample_models" / "credit_test.csv"
N_ROWS, SAMPLES, SEED, REPEATS = 100, 5_000, 7, 3

_WORKER: dict = {}


def setup(frame: pd.DataFrame):
    """The audit data, a check context, the background, LIME's seed and the predict function."""
    data = audit_data(frame)
    ctx = AuditContext(data=data, check_id="bench", seed=SEED)
    rows = np.sort(np.random.default_rng(0).choice(len(frame), N_ROWS, replace=False))
    # the check's own order of draws from its seeded generator: the background, then LIME's seed
    background, _ = background_rows(ctx, 200)
    lime_seed = int(ctx.rng.integers(2**31 - 1))
    encoder = _Encoder(frame, FEATURES)

    def predict(matrix: np.ndarray) -> np.ndarray:
        q = np.clip(ctx.model.predict(encoder.decode(matrix)), 1e-7, 1 - 1e-7)
        return np.log(q) - np.log1p(-q)

    return data, ctx, rows, background, lime_seed, encoder, predict


def lime_documentation_way(training, encoded, predict, categorical, seed) -> np.ndarray:
    from lime.lime_tabular import LimeTabularExplainer

    explainer = LimeTabularExplainer(training, mode="regression", feature_names=FEATURES,
                                     categorical_features=categorical, discretize_continuous=True, random_state=seed)
    weights = np.zeros((len(encoded), len(FEATURES)))
    for i, row in enumerate(encoded):
        explanation = explainer.explain_instance(row, predict, num_features=len(FEATURES), num_samples=SAMPLES)
        for j, w in explanation.local_exp[1]:
            weights[i, j] = w
    return weights


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    frame = pd.read_csv(DATA).rename_axis("row")
    _WORKER["setup"] = setup(frame)
    _WORKER["setup"][1].model.predict(frame.iloc[:5][FEATURES])  # the session is built before timing


def _worker_explain(part: tuple[np.ndarray, int]) -> np.ndarray:
    rows, seed = part
    data, ctx, _, background, _, encoder, predict = _WORKER["setup"]
    explainer = lime_explainer(encoder.encode(background), FEATURES, encoder.categorical, seed)
    out = explain_rows(explainer, encoder.encode(data.frame.iloc[rows][FEATURES]), predict, num_samples=SAMPLES)
    return np.array([r.weights for r in out])


def timed(fn, repeats: int = REPEATS):
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    frame = pd.read_csv(DATA).rename_axis("row")
    data, ctx, rows, background, lime_seed, encoder, predict = setup(frame)
    training = encoder.encode(background)
    encoded = encoder.encode(frame.iloc[rows][FEATURES])
    predict(encoded[:5])  # build the ONNX session before timing

    lime_s, lime_weights = timed(lambda: lime_documentation_way(training, encoded, predict, encoder.categorical,
                                                                lime_seed))

    def ours() -> np.ndarray:
        explainer = lime_explainer(training, FEATURES, encoder.categorical, lime_seed)
        return np.array([r.weights for r in explain_rows(explainer, encoded, predict, num_samples=SAMPLES)])

    ours_s, our_weights = timed(ours)
    same = np.array_equal(our_weights, lime_weights)
    max_gap = float(np.max(np.abs(our_weights - lime_weights)))

    # the whole check on the same rows gives the same LIME weights too (same seed derivation)
    check_s, output = timed(lambda: run_check("local_explanations", data,
                                              {"rows": [int(r) for r in rows], "lime_samples": SAMPLES},
                                              seed=SEED), repeats=1)
    attributions = pd.DataFrame(output.tables["attributions"]).pivot(index="row", columns="feature",
                                                                      values="lime_weight")[FEATURES]
    check_same = np.allclose(attributions.to_numpy(), lime_weights, rtol=0, atol=1e-12)

    shap_s, shap_result = timed(lambda: explain(ctx.model, frame.iloc[rows][FEATURES], background, FEATURES))

    halves = [(rows[: N_ROWS // 2], lime_seed), (rows[N_ROWS // 2:], lime_seed + 1)]
    with mp.get_context("forkserver").Pool(2, initializer=_worker_init) as pool:
        pool.map(_worker_explain, [(rows[:1], 1), (rows[1:2], 2)])  # warm: both workers loaded
        split_s, parts = timed(lambda: pool.map(_worker_explain, halves, chunksize=1))
    split_weights = np.vstack(parts)

    cores = os.cpu_count()
    print(f"LIME on {N_ROWS} rows x {SAMPLES:,} samples, credit_gbm.onnx, {len(FEATURES)} features; "
          f"{cores} cores; median of {REPEATS}")
    print(f"{'':44}{'wall':>9}{'per row':>10}{'vs lime':>9}")
    print(f"{'lime documentation loop (1 process)':44}{lime_s:8.2f}s{1000 * lime_s / N_ROWS:8.1f}ms{1.0:8.2f}x")
    print(f"{'auditkit LIME path (1 process)':44}{ours_s:8.2f}s{1000 * ours_s / N_ROWS:8.1f}ms{lime_s / ours_s:8.2f}x")
    print(f"{'auditkit LIME, rows split over 2 workers':44}{split_s:8.2f}s{1000 * split_s / N_ROWS:8.1f}ms"
          f"{lime_s / split_s:8.2f}x   (target >= 1.80x)")
    print(f"{'exact SHAP for the same rows (ONNX TreeSHAP)':44}{shap_s:8.2f}s{1000 * shap_s / N_ROWS:8.1f}ms"
          f"   = +{100 * shap_s / ours_s:.1f}% on top of LIME")
    print(f"{'whole local_explanations check (1 process)':44}{check_s:8.2f}s{1000 * check_s / N_ROWS:8.1f}ms"
          f"   (SHAP + LIME + agreement + reason codes)")
    print(f"same weights as lime's loop, same seed, one process: {same} (max |gap| {max_gap:.1e}); "
          f"the check's weights equal them: {check_same}")
    print(f"SHAP additivity error over the {N_ROWS} rows: {shap_result.additivity_error:.1e}")
    print(f"split run: {split_weights.shape[0]} rows explained, halves seeded {lime_seed} and {lime_seed + 1}")
    if not (same and check_same):
        raise SystemExit("the weights differ from lime's loop")


if __name__ == "__main__":
    main()
