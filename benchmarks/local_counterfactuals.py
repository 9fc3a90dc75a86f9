"""Counterfactuals benchmark: the ``counterfactuals`` check against DiCE (``random`` and ``genetic``).

Model: sample_models/credit_gbm.onnx (GradientBoostingClassifier pipeline, 10 named inputs,
3 of them categorical) on sample_models/credit_test.csv, every row as audit data; decision 1
(predicted default) is the unfavourable one. Rows: 100 declined rows without a missing input
(DiCE takes no NaN), a seeded sample. The same constraints for every tool:

- immutable: zip_region (a proxy for race; moving house is not recourse) and n_late_payments
  (a payment history cannot be undone); the protected attributes are not model inputs;
- directions: income, credit_history_years and employment_years may only increase;
- bounds: each numeric feature within its observed minimum and maximum over the audit data;
  categories among those observed.

DiCE (dice-ml, MIT licence; model-agnostic ``random`` and ``genetic`` methods, one
counterfactual per row, its defaults otherwise) predicts through the same onnxruntime session
as auditkit's adapter (categorical inputs passed as strings, as the ONNX pipeline takes them);
the constraints reach it as ``features_to_vary`` and a per-row ``permitted_range`` (a direction
is a range that starts at the row's value), so it is called once per row. Every counterfactual
of every tool is checked independently: predicted again by a plain onnxruntime session (the
decision must be 0) and checked against every constraint (immutables, directions, bounds,
categories, integer columns integral); one that fails counts as not found. Distances for
every tool: the check's own, L1 in units of each numeric feature's median absolute deviation
plus 1 per changed category. Times: wall clock of the search alone (auditkit: the whole check,
best of 3, after the registry is loaded; DiCE: its generate_counterfactuals calls, once).
Targets: auditkit's recourse rate at least DiCE's, its median number of changed features no
more than DiCE's, and at least 5x faster than DiCE's faster method.

Run (dice-ml is in the `bench` extra): pip install -e '.[bench]'; python benchmarks/local_counterfactuals.py
"""
from __future__ import annotations

import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

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
N_ROWS, SEED, TIMINGS = 100, 7, 3
FEATURES = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
            "n_open_accounts", "home_ownership", "purpose", "zip_region"]
NUMERIC = FEATURES[:7]
CATEGORICAL = FEATURES[7:]
IMMUTABLE = ["zip_region", "n_late_payments"]
DIRECTIONS = {"income": "increase", "credit_history_years": "increase", "employment_years": "increase"}
MUTABLE = [f for f in FEATURES if f not in IMMUTABLE]


def audit_data(frame: pd.DataFrame) -> AuditData:
    spec = AdapterSpec(format="onnx", path=str(MODEL), feature_names=tuple(FEATURES))
    adapter = load_adapter(spec)
    scores = adapter.predict(frame[FEATURES])
    return AuditData(frame=frame, features=FEATURES, target="defaulted", protected=["sex", "race", "age_band"],
                     task="binary", scores=scores, decisions=(scores >= 0.5).astype(np.int64),
                     y=frame["defaulted"].to_numpy(float), score_kind=adapter.score_kind, adapter_spec=spec,
                     threshold=0.5, favorable_decision=0, classes=adapter.classes)


class Verifier:
    """Independent of auditkit: a plain onnxruntime session, and the constraints written out."""

    def __init__(self, frame: pd.DataFrame):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])
        self.inputs = {i.name: i.type for i in self.session.get_inputs()}
        self.lo = {f: float(frame[f].min()) for f in NUMERIC}
        self.hi = {f: float(frame[f].max()) for f in NUMERIC}
        self.categories = {f: set(frame[f].dropna().astype(str)) for f in CATEGORICAL}
        self.integer = {f: pd.api.types.is_integer_dtype(frame[f].dtype) for f in NUMERIC}
        self.mad = {f: float((frame[f] - frame[f].median()).abs().median()) for f in NUMERIC}

    def score(self, X: pd.DataFrame) -> np.ndarray:
        feeds = {}
        for name, kind in self.inputs.items():
            column = X[name]
            if kind == "tensor(string)":
                feeds[name] = column.astype(str).to_numpy(dtype=object).reshape(-1, 1)
            else:
                feeds[name] = column.to_numpy(dtype=np.float32).reshape(-1, 1)
        _, probabilities = self.session.run(None, feeds)
        return np.array([p[1] for p in probabilities], dtype=np.float64)

    def check(self, row: pd.Series, cf: pd.Series) -> tuple[bool, int, float]:
        """(valid, features changed, distance) of a counterfactual for a declined row."""
        ok = True
        changed, distance = 0, 0.0
        for f in FEATURES:
            before, after = row[f], cf[f]
            if f in NUMERIC:
                before, after = float(before), float(after)
                if abs(after - before) < 1e-9:
                    continue
                ok &= self.lo[f] - 1e-9 <= after <= self.hi[f] + 1e-9
                ok &= not self.integer[f] or float(after).is_integer()
                ok &= DIRECTIONS.get(f) != "increase" or after > before
                distance += abs(after - before) / self.mad[f]
            else:
                if str(after) == str(before):
                    continue
                ok &= str(after) in self.categories[f]
                distance += 1.0
            ok &= f not in IMMUTABLE
            changed += 1
        ok &= changed > 0
        ok &= bool(self.score(pd.DataFrame([cf[FEATURES]]))[0] < 0.5)  # decision 0: approved
        return bool(ok), changed, distance


def run_auditkit(data: AuditData, rows: list[int]) -> tuple[list[pd.Series | None], float, dict[str, Any]]:
    params = {"rows": rows, "sample": len(rows), "immutable": IMMUTABLE, "directions": DIRECTIONS}
    times = []
    for _ in range(TIMINGS):
        started = time.perf_counter()
        output = run_check("counterfactuals", data, params, seed=SEED)
        times.append(time.perf_counter() - started)
    by_row = {r["row"]: r for r in output.tables["counterfactuals"]}
    cfs: list[pd.Series | None] = []
    for row in rows:
        record = by_row[row]
        if not record["found"]:
            cfs.append(None)
            continue
        cf = data.frame.loc[row, FEATURES].copy()
        for feature, (_, after) in record["changes"].items():
            cf[feature] = after
        cfs.append(cf)
    return cfs, min(times), {r: by_row[r] for r in rows}


def run_dice(frame: pd.DataFrame, queries: pd.DataFrame, method: str, bounds: dict[str, list[float]],
             scorer: Verifier, *, mutable: list[str] = MUTABLE,
             directions: dict[str, str] = DIRECTIONS) -> tuple[list[pd.Series | None], float]:
    """DiCE's counterfactuals for each row of ``queries`` (None where it finds none) and the
    time of its generate_counterfactuals calls (benchmarks/engine.py passes the demo policy's
    constraints)."""
    import dice_ml

    class Model:
        """The ONNX GBM as DiCE's sklearn backend wants it: predict_proba on a raw frame."""

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            score = scorer.score(X)
            return np.column_stack([1 - score, score])

        def predict(self, X: pd.DataFrame) -> np.ndarray:
            return (scorer.score(X) >= 0.5).astype(np.int64)

    complete = frame[FEATURES].dropna().copy()
    complete["decision"] = (scorer.score(complete) >= 0.5).astype(np.int64)
    data = dice_ml.Data(dataframe=complete, continuous_features=NUMERIC, outcome_name="decision")
    explainer = dice_ml.Dice(data, dice_ml.Model(model=Model(), backend="sklearn"), method=method)
    cfs: list[pd.Series | None] = []
    elapsed = 0.0
    for i in range(len(queries)):
        query = queries.iloc[[i]]
        permitted = {f: list(bounds[f]) for f in NUMERIC if f in mutable}
        for f, direction in directions.items():
            value = float(query[f].iloc[0])
            permitted[f] = [value, bounds[f][1]] if direction == "increase" else [bounds[f][0], value]
        kwargs: dict[str, Any] = {"random_seed": SEED + i} if method == "random" else {}
        np.random.seed(SEED + i)
        random.seed(SEED + i)
        started = time.perf_counter()
        try:
            result = explainer.generate_counterfactuals(query, total_CFs=1, desired_class=0,
                                                        features_to_vary=mutable, permitted_range=permitted,
                                                        verbose=False, **kwargs)
            found = result.cf_examples_list[0].final_cfs_df
        except Exception as exc:  # DiCE raises when it finds nothing for some inputs
            found = None
            print(f"  dice {method}: row {i}: {type(exc).__name__}: {str(exc)[:100]}", file=sys.stderr)
        elapsed += time.perf_counter() - started
        cfs.append(None if found is None or len(found) == 0 else found.iloc[0])
    return cfs, elapsed


def summarise(name: str, rows: pd.DataFrame, cfs: list[pd.Series | None], seconds: float,
              verifier: Verifier) -> dict[str, Any]:
    changed, distances, invalid = [], [], 0
    for i, cf in enumerate(cfs):
        if cf is None:
            continue
        ok, n_changed, distance = verifier.check(rows.iloc[i], cf)
        if not ok:
            invalid += 1
            continue
        changed.append(n_changed)
        distances.append(distance)
    return {"tool": name, "rows": len(cfs), "returned": sum(cf is not None for cf in cfs), "rejected": invalid,
            "recourse_rate": len(changed) / len(cfs), "median_changed": float(np.median(changed)) if changed else None,
            "mean_changed": float(np.mean(changed)) if changed else None,
            "mean_distance": float(np.mean(distances)) if distances else None,
            "median_distance": float(np.median(distances)) if distances else None, "time_s": seconds}


def main() -> None:
    warnings.filterwarnings("ignore")
    frame = pd.read_csv(DATA).rename_axis("row")
    data = audit_data(frame)
    verifier = Verifier(frame)
    declined = frame.index[(data.decisions == 1) & frame[FEATURES].notna().all(axis=1).to_numpy()]
    rng = np.random.default_rng(SEED)
    rows = sorted(int(r) for r in rng.choice(declined, N_ROWS, replace=False))
    queries = frame.loc[rows, FEATURES]
    bounds = {f: [verifier.lo[f], verifier.hi[f]] for f in NUMERIC}
    get_registry()  # entry points loaded once, outside the timing

    ours, ours_s, records = run_auditkit(data, rows)
    results = [summarise("auditkit counterfactuals", queries, ours, ours_s, verifier)]
    for method in ("random", "genetic"):
        try:
            cfs, seconds = run_dice(frame, queries, method, bounds, verifier)
        except ImportError:
            print("dice-ml is not installed: pip install -e '.[bench]'", file=sys.stderr)
            break
        results.append(summarise(f"DiCE {method}", queries, cfs, seconds, verifier))

    print(f"Counterfactuals for {N_ROWS} declined rows of {DATA.name} ({len(frame):,} audit rows), "
          f"model {MODEL.name}")
    print(f"immutable: {', '.join(IMMUTABLE)}; increase only: {', '.join(DIRECTIONS)}; observed bounds and "
          f"categories; distance = L1 in MADs + 1 per changed category\n")
    header = (f"{'tool':<26}{'rows':>5}{'returned':>9}{'rejected':>9}{'recourse':>9}{'median Δ':>9}"
              f"{'mean Δ':>8}{'mean dist':>10}{'med dist':>9}{'time s':>9}{'speed-up':>9}")
    print(header)
    print("-" * len(header))
    fastest_dice = min((r["time_s"] for r in results[1:]), default=None)

    def fmt(value: Any, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for r in results:
        ratio = fastest_dice / r["time_s"] if fastest_dice else None
        print(f"{r['tool']:<26}{r['rows']:>5}{r['returned']:>9}{r['rejected']:>9}{fmt(r['recourse_rate'], '.2f'):>9}"
              f"{fmt(r['median_changed'], '.1f'):>9}{fmt(r['mean_changed'], '.2f'):>8}"
              f"{fmt(r['mean_distance'], '.3f'):>10}{fmt(r['median_distance'], '.3f'):>9}{r['time_s']:>9.2f}"
              f"{fmt(ratio, '.1f'):>8}x")
    print("\nreturned: counterfactuals the tool reported; rejected: those that failed the independent check "
          "(re-predicted decision or a constraint); recourse: share of rows with a verified one; Δ: features "
          "changed; speed-up: DiCE's faster method's time / this tool's time.")
    agree = [r for r in records.values() if r["found"]]
    mismatch = sum(abs(r["distance"] - verifier.check(queries.loc[r["row"]], ours[rows.index(r["row"])])[2]) > 1e-6
                   for r in agree)
    print(f"auditkit's own reported distances that differ from the independent recomputation: {mismatch}")
    if len(results) == 3:
        mine, dice = results[0], results[1:]
        checks = {
            "recourse rate >= each DiCE method's": all(mine["recourse_rate"] >= d["recourse_rate"] for d in dice),
            "median changed <= each DiCE method's": all(
                d["median_changed"] is None or (mine["median_changed"] or 0) <= d["median_changed"] for d in dice),
            "no rejected auditkit counterfactual": mine["rejected"] == 0,
            ">= 5x faster than DiCE's faster method": fastest_dice is not None and fastest_dice / mine["time_s"] >= 5,
        }
        print()
        for text, ok in checks.items():
            print(f"{'PASS' if ok else 'FAIL'}  {text}")


if __name__ == "__main__":
    main()
