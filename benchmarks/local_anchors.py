"""Anchors benchmark: the ``anchors`` check against the anchor authors' package (``anchor-exp``).

Model: sample_models/credit_gbm.onnx (GradientBoostingClassifier pipeline, 10 named inputs,
3 of them categorical), decision = score >= 0.5. Audit data: the first 5,000 rows of
sample_models/credit_test.csv without a missing input (anchor-exp's quartiles are NaN on a
column with a missing value); both tools draw their perturbations from those same 5,000 rows
(auditkit: the audit data is its background below ``background_size``; anchor-exp: its
``train_data``). Rows: a seeded sample of 20 of them. The same search settings for both:
tau (precision target) 0.95, delta 0.1, epsilon 0.1 (anchor-exp's ``tau`` argument), batch
size 100, beam width 2, at most 6 predicates.

- anchor-exp (BSD licence, ``AnchorTabularExplainer(...).explain_instance``): categories
  label-encoded as it asks, numeric features cut at its quartiles; its classifier is a plain
  onnxruntime session (categories decoded back to their names), counted in model rows. Run
  twice: with its defaults, which accept an anchor once its KL lower bound passes
  tau - epsilon_stop (0.05), and with ``epsilon_stop=0`` (the bound must reach tau, as in
  auditkit).
- auditkit: the ``anchors`` check in this process (its readable quartile edges; the ONNX
  model through the adapter), after a warm-up run.

Every anchor of both tools is judged the same way, independently of both: precision is
re-estimated on 10,000 fresh draws per anchor from D(z | A) written from the anchor paper's
definition (rows of the 5,000 with replacement; an anchored category set to the row's, an
anchored number outside the anchor's interval replaced by a value of the 5,000 inside it;
the same seed for both tools' anchors of a row), predicted by a plain onnxruntime session;
coverage is counted exactly over the 5,000 rows. auditkit's anchors are read back from the
text it reports (its numbers are exact); anchor-exp's from its predicate indices and exact
quartiles (its names round to 2 decimals). Times: wall clock of each tool's whole run (the
explainer built and every row explained), best of 3 (the same anchors each time).

Run (anchor-exp is in the `bench` extra): pip install -e '.[bench]'; python benchmarks/local_anchors.py
"""
from __future__ import annotations

import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from local_counterfactuals import CATEGORICAL, DATA, FEATURES, NUMERIC, Verifier, audit_data  # noqa: E402

from check_support import run_check  # noqa: E402  (tests/checks, put on the path by local_counterfactuals)

N_AUDIT, N_ROWS, N_FRESH, SEED, TIMINGS = 5_000, 20, 10_000, 11, 3
TAU, DELTA, EPSILON, BATCH, BEAM, MAX_SIZE = 0.95, 0.1, 0.1, 100, 2, 6

# an anchor as both tools are judged: feature -> ("eq", value) or ("range", low, high), i.e. low < x <= high
Conditions = dict[str, tuple[Any, ...]]


# ----------------------------------------------------------------------------- judged independently


def fresh_precision(verifier: Verifier, pool: pd.DataFrame, x: pd.Series, conditions: Conditions, decision: int,
                    seed: int) -> float:
    """Share of N_FRESH draws from D(z | A) that get the row's decision."""
    rng = np.random.default_rng(seed)
    z = pool.iloc[rng.integers(0, len(pool), N_FRESH)].reset_index(drop=True)
    for feature, condition in conditions.items():
        if condition[0] == "eq":
            z[feature] = x[feature]
            continue
        _, low, high = condition
        values = z[feature].to_numpy(dtype=np.float64, copy=True)
        column = pool[feature].to_numpy(dtype=np.float64)
        options = column[(column > low) & (column <= high)]
        outside = ~((values > low) & (values <= high))
        values[outside] = options[rng.integers(0, len(options), int(outside.sum()))]
        z[feature] = values
    return float(np.mean((verifier.score(z) >= 0.5).astype(int) == decision))


def exact_coverage(frame: pd.DataFrame, conditions: Conditions) -> float:
    mask = np.ones(len(frame), dtype=bool)
    for feature, condition in conditions.items():
        column = frame[feature]
        if condition[0] == "eq":
            mask &= (column.astype(str) == str(condition[1])).to_numpy()
        else:
            mask &= ((column > condition[1]) & (column <= condition[2])).to_numpy()
    return float(mask.mean())


def parse_auditkit(predicates: list[str]) -> Conditions:
    """``income > 52,000``, ``purpose = car``: the reported text, exact, merged per feature."""
    out: Conditions = {}
    for text in predicates:
        feature, op, value = re.fullmatch(r"(.+?) (<=|>|=) (.+)", text).groups()  # type: ignore[union-attr]
        if op == "=":
            out[feature] = ("eq", value)
            continue
        number = float(value.replace(",", ""))
        _, low, high = out.get(feature, ("range", -np.inf, np.inf))
        out[feature] = ("range", max(low, number), high) if op == ">" else ("range", low, min(high, number))
    return out


# ----------------------------------------------------------------------------- the two tools


def run_auditkit(frame: pd.DataFrame, rows: list[int]) -> tuple[dict[int, dict[str, Any]], float]:
    data = audit_data(frame)
    params = {"rows": rows, "sample": len(rows), "threshold": TAU, "delta": DELTA, "epsilon": EPSILON,
              "batch_size": BATCH, "beam_size": BEAM, "max_anchor_size": MAX_SIZE}
    run_check("anchors", data, {**params, "rows": rows[:1], "max_samples": 1_000})  # warm-up: adapter, imports
    times = []
    for _ in range(TIMINGS):
        started = time.perf_counter()
        output = run_check("anchors", data, params, seed=SEED)
        times.append(time.perf_counter() - started)
    return {r["row"]: r for r in output.tables["anchors"]}, min(times)


def run_anchor_exp(frame: pd.DataFrame, rows: list[int], verifier: Verifier,
                   epsilon_stop: float) -> tuple[dict[int, dict[str, Any]], float]:
    from anchor import anchor_tabular

    categories = {f: sorted(frame[f].astype(str).unique()) for f in CATEGORICAL}
    index = {f: FEATURES.index(f) for f in FEATURES}
    encoded = frame[FEATURES].copy()
    for f in CATEGORICAL:
        encoded[f] = encoded[f].astype(str).map({c: k for k, c in enumerate(categories[f])})
    train = encoded.to_numpy(dtype=np.float64)
    predicted = [0]

    def classify(X: np.ndarray) -> np.ndarray:
        decoded = pd.DataFrame(X, columns=FEATURES)
        for f in CATEGORICAL:
            decoded[f] = np.asarray(categories[f], dtype=object)[X[:, index[f]].astype(int)]
        predicted[0] += len(X)
        return (verifier.score(decoded) >= 0.5).astype(int)

    class Explainer(anchor_tabular.AnchorTabularExplainer):  # keeps the predicate indices that names() rounds
        def add_names_to_exp(self, data_row: Any, hoeffding_exp: dict[str, Any], mapping: dict[int, Any]) -> None:
            hoeffding_exp["predicates"] = [mapping[i] for i in hoeffding_exp["feature"]]
            super().add_names_to_exp(data_row, hoeffding_exp, mapping)

    def explain_all() -> tuple[dict[int, Any], dict[int, int]]:
        np.random.seed(SEED)  # anchor-exp draws from numpy's global generator: every timing finds the same anchors
        explainer = Explainer(["0", "1"], FEATURES, train, {index[f]: categories[f] for f in CATEGORICAL})
        explained, rows_predicted = {}, {}
        for row in rows:
            before = predicted[0]
            explained[row] = explainer.explain_instance(
                train[frame.index.get_loc(row)], classify, threshold=TAU, delta=DELTA, tau=EPSILON,
                batch_size=BATCH, beam_size=BEAM, max_anchor_size=MAX_SIZE, epsilon_stop=epsilon_stop)
            rows_predicted[row] = predicted[0] - before
        return explained, rows_predicted

    times = []
    for _ in range(TIMINGS):
        started = time.perf_counter()
        explained, rows_predicted = explain_all()
        times.append(time.perf_counter() - started)
    # its quartile edges, as lime's QuartileDiscretizer cuts them (x in bin b: edges[b-1] < x <= edges[b])
    edges = {f: np.unique(np.percentile(train[:, index[f]], [25, 50, 75])) for f in NUMERIC}
    out: dict[int, dict[str, Any]] = {}
    for row, exp in explained.items():
        conditions: Conditions = {}
        for f_index, op, v in exp.exp_map["predicates"]:
            f = FEATURES[f_index]
            if op == "eq":
                conditions[f] = ("eq", categories[f][int(v)])
                continue
            _, low, high = conditions.get(f, ("range", -np.inf, np.inf))
            cut = float(edges[f][int(v)])
            conditions[f] = ("range", max(low, cut), high) if op == "geq" else ("range", low, min(high, cut))
        out[row] = {"conditions": conditions, "names": exp.names(), "precision": float(exp.precision()),
                    "coverage": float(exp.coverage()), "n_samples": rows_predicted[row]}
    return out, min(times)


# ----------------------------------------------------------------------------- side by side


def main() -> None:
    try:
        import anchor  # noqa: F401
    except ImportError:
        print("anchor-exp is not installed: pip install -e '.[bench]'", file=sys.stderr)
        raise SystemExit(2)
    whole = pd.read_csv(DATA).rename_axis("row")
    frame = whole[whole[FEATURES].notna().all(axis=1)].iloc[:N_AUDIT]
    rng = np.random.default_rng(SEED)
    rows = sorted(int(r) for r in rng.choice(frame.index.to_numpy(), N_ROWS, replace=False))
    verifier = Verifier(frame)
    decisions = pd.Series((verifier.score(frame[FEATURES]) >= 0.5).astype(int), index=frame.index)

    found = {"auditkit": run_auditkit(frame, rows),
             "anchor-exp": run_anchor_exp(frame, rows, verifier, epsilon_stop=0.05),
             "anchor-exp, stop 0": run_anchor_exp(frame, rows, verifier, epsilon_stop=0.0)}
    judged: dict[str, list[dict[str, float]]] = {tool: [] for tool in found}
    for tool, (anchors, _) in found.items():
        for k, row in enumerate(rows):
            found_row = anchors[row]
            conditions = parse_auditkit(found_row["predicates"]) if tool == "auditkit" else found_row["conditions"]
            judged[tool].append({
                "precision": fresh_precision(verifier, frame, frame.loc[row], conditions, decisions[row], SEED + k),
                "coverage": exact_coverage(frame, conditions), "length": len(conditions),
                "n_samples": found_row["n_samples"]})

    print(f"Anchors for {N_ROWS} rows of {DATA.name} ({len(frame):,} audit rows without a missing input, the "
          f"background of both tools); tau {TAU}, delta {DELTA}, epsilon {EPSILON}, batch {BATCH}, beam {BEAM}, "
          f"at most {MAX_SIZE} predicates")
    print(f"precision re-estimated on {N_FRESH:,} fresh draws from D(z | A) per anchor; coverage exact over the "
          f"{len(frame):,} rows\n")
    ours, theirs = found["auditkit"][0], found["anchor-exp"][0]
    print(f"{'row':>6}  {'auditkit anchor':<58}{'prec':>6}{'cov':>7}   {'anchor-exp anchor':<58}{'prec':>6}{'cov':>7}")
    for k, row in enumerate(rows):
        a, b = judged["auditkit"][k], judged["anchor-exp"][k]
        left = " AND ".join(ours[row]["predicates"]) or "(empty)"
        right = " AND ".join(theirs[row]["names"]) or "(empty)"
        print(f"{row:>6}  {left[:57]:<58}{a['precision']:>6.3f}{a['coverage']:>7.3f}   "
              f"{right[:57]:<58}{b['precision']:>6.3f}{b['coverage']:>7.3f}")

    def summary(tool: str) -> dict[str, float]:
        rows_, seconds = judged[tool], found[tool][1]
        precision = [r["precision"] for r in rows_]
        return {"precision, median": statistics.median(precision), "precision, min": min(precision),
                f"share with precision >= {TAU}": float(np.mean([p >= TAU for p in precision])),
                "coverage, median": statistics.median(r["coverage"] for r in rows_),
                "coverage, mean": statistics.fmean(r["coverage"] for r in rows_),
                "predicates, mean": statistics.fmean(r["length"] for r in rows_),
                "model rows per row, mean": statistics.fmean(r["n_samples"] for r in rows_),
                "seconds, all rows": seconds, "seconds per row": seconds / len(rows_)}

    table = {tool: summary(tool) for tool in found}
    a, b, c = table["auditkit"], table["anchor-exp"], table["anchor-exp, stop 0"]
    print(f"\n{'':34}{'auditkit':>11}{'anchor-exp':>12}{'ratio':>8}{'a-e, stop 0':>13}{'ratio':>8}")
    for name in a:
        def ratio(other: dict[str, float]) -> float:
            return a[name] / other[name] if other[name] else float("nan")

        print(f"{name:<34}{a[name]:>11.4g}{b[name]:>12.4g}{ratio(b):>8.3g}{c[name]:>13.4g}{ratio(c):>8.3g}")
    print("\nratio: auditkit / anchor-exp. anchor-exp accepts an anchor once its KL lower bound passes tau - "
          "epsilon_stop (0.05 by default, its 'anchor-exp' column); 'a-e, stop 0' asks, as auditkit does, for the "
          "bound to reach tau itself.")
    own = statistics.median(r["precision"] for r in ours.values())
    print(f"Own estimates, for reference: median precision auditkit {own:.3f} "
          f"(its KL-bounded samples), anchor-exp {statistics.median(r['precision'] for r in theirs.values()):.3f}; "
          f"anchor-exp's own median coverage {statistics.median(r['coverage'] for r in theirs.values()):.3f} "
          f"(estimated on its samples)")

if __name__ == "__main__":
    main()
