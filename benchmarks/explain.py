"""Explanation benchmark (issue #5): permutation importance and partial dependence through the
adapter, against scikit-learn's own functions on the same ONNX predict, side by side in one run.

Model: a scikit-learn GradientBoostingClassifier (100 trees, depth 6, 20 features) exported to
ONNX. permutation_importance: 20 features x 5 repeats on 2,000 rows (roc_auc);
partial_dependence: 5 features x 20 grid points x 2,000 rows. Target: at most 1.1x
scikit-learn's time, with the intervals added. The exact-SHAP part of the issue's benchmark
is benchmarks/explain_treeshap.py.

Run: .venv/bin/python benchmarks/explain.py
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "checks"))

from check_support import run_check  # noqa: E402

N_FEATURES, N_ROWS = 20, 2_000


class OnnxEstimator:
    """The ONNX model behind scikit-learn's estimator interface (what a user would wrap)."""

    _estimator_type = "classifier"

    def __init__(self, path: Path, columns: list[str]):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.columns = columns
        self.classes_ = np.array([0, 1])
        self.fitted_ = True

    def fit(self, X, y):  # scikit-learn's API asks for it; the model is already trained
        return self

    def predict_proba(self, X):
        matrix = np.asarray(X[self.columns] if isinstance(X, pd.DataFrame) else X, dtype=np.float32)
        return self.session.run(["probabilities"], {"X": matrix})[0]

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)

    def __sklearn_tags__(self):
        from sklearn.utils import Tags, ClassifierTags, TargetTags

        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags())


def main() -> None:
    from skl2onnx import to_onnx
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.inspection import partial_dependence as sk_pd
    from sklearn.inspection import permutation_importance as sk_pi

    from auditkit.adapters.base import AdapterSpec, load_adapter
    from auditkit.engine.context import AuditData

    X, y = make_classification(n_samples=6_000, n_features=N_FEATURES, n_informative=8, random_state=0)
    columns = [f"f{i}" for i in range(N_FEATURES)]
    model = GradientBoostingClassifier(n_estimators=100, max_depth=6, random_state=0).fit(X[:4000], y[:4000])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gbm.onnx"
        onx = to_onnx(model, X[:1].astype(np.float32), options={id(model): {"zipmap": False}})
        path.write_bytes(onx.SerializeToString())
        frame = pd.DataFrame(X[4000:4000 + N_ROWS], columns=columns).rename_axis("row")
        frame["y"] = y[4000:4000 + N_ROWS]
        spec = AdapterSpec(format="onnx", path=str(path), feature_names=tuple(columns))
        adapter = load_adapter(spec)
        scores = adapter.predict(frame)
        data = AuditData(frame=frame, features=columns, target="y", protected=[], task="binary", scores=scores,
                         decisions=(scores >= 0.5).astype(int), y=frame["y"].to_numpy(float), score_kind="probability",
                         adapter_spec=spec, threshold=0.5, classes=[0, 1])
        estimator = OnnxEstimator(path, columns)
        run_check("permutation_importance", data, {"n_repeats": 2, "max_rows": 100})  # warm up

        started = time.perf_counter()
        run_check("permutation_importance", data, {"metric": "roc_auc", "n_repeats": 5, "max_rows": N_ROWS})
        ours_pi = time.perf_counter() - started
        started = time.perf_counter()
        sk_pi(estimator, frame[columns], frame["y"], scoring="roc_auc", n_repeats=5, random_state=0)
        theirs_pi = time.perf_counter() - started

        features = columns[:5]
        started = time.perf_counter()
        run_check("partial_dependence", data, {"features": features, "grid_resolution": 20, "max_rows": N_ROWS})
        ours_pd = time.perf_counter() - started
        started = time.perf_counter()
        for feature in features:
            sk_pd(estimator, frame[columns], [feature], grid_resolution=20, kind="both", method="brute")
        theirs_pd = time.perf_counter() - started

    print(f"GradientBoostingClassifier 100 trees, depth 6, {N_FEATURES} features, ONNX; {N_ROWS:,} rows")
    print(f"permutation_importance ({N_FEATURES} features x 5 repeats): auditkit {ours_pi:6.2f} s   "
          f"scikit-learn {theirs_pi:6.2f} s   ratio {ours_pi / theirs_pi:5.2f}x (target <= 1.1x)")
    print(f"partial_dependence (5 features x 20 grid, ICE): auditkit {ours_pd:6.2f} s   "
          f"scikit-learn {theirs_pd:6.2f} s   ratio {ours_pd / theirs_pd:5.2f}x (target <= 1.1x)")


if __name__ == "__main__":
    main()
