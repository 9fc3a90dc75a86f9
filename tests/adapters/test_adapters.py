"""Every model format answers predict(X) with the same scores as the model it came from."""
from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.errors import DataError, ModelLoadError

NUMERIC = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
           "n_open_accounts"]


@pytest.fixture(scope="module")
def test_rows(samples) -> pd.DataFrame:
    return pd.read_csv(samples / "credit_test.csv").iloc[:2000]


def _joblib(path):
    import joblib

    return joblib.load(path)


def test_onnx_per_column_inputs_with_zipmap_equal_the_sklearn_pipeline(samples, test_rows):
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx")))
    assert adapter.input_features[:2] == ["income", "debt_ratio"] and len(adapter.input_features) == 10
    assert adapter.task == "binary" and adapter.score_kind == "probability" and "ZipMap" in adapter.kind
    scores = adapter.predict(test_rows)
    reference = _joblib(samples / "credit_gbm.joblib").predict_proba(test_rows[adapter.input_features])[:, 1]
    assert reference.std() > 0.05  # non-trivial scores
    assert_allclose(scores, reference, atol=1e-5)  # float32 inside onnxruntime
    assert adapter.rows_predicted == len(test_rows)


def test_onnx_single_matrix_input_with_probability_tensor_equals_the_pickle(samples, test_rows):
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_logreg.onnx"),
                                       feature_names=tuple(NUMERIC)))
    assert adapter.input_features is None and adapter.matrix_input and adapter.input_width == 7
    pickled = load_adapter(AdapterSpec(format="pickle", path=str(samples / "credit_logreg.pkl"), trust_pickle=True,
                                       feature_names=tuple(NUMERIC)))
    assert_allclose(adapter.predict(test_rows), pickled.predict(test_rows), atol=1e-5)


def test_onnx_batches_give_the_same_scores_as_one_call(samples, test_rows):
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx")))
    assert_allclose(adapter.predict(test_rows, batch_size=333), adapter.predict(test_rows), rtol=0, atol=0)


def test_onnx_label_only_model_gives_decisions_as_scores(samples, test_rows, tmp_path):
    model = onnx.load(samples / "credit_logreg.onnx")
    label_name = model.graph.output[0].name
    keep = [o for o in model.graph.output if o.name == label_name]
    del model.graph.output[:]
    model.graph.output.extend(keep)
    path = tmp_path / "labels.onnx"
    onnx.save(model, path)
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(path), feature_names=tuple(NUMERIC)))
    assert adapter.score_kind == "label"
    full = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_logreg.onnx"),
                                    feature_names=tuple(NUMERIC)))
    assert set(np.unique(adapter.predict(test_rows))) <= {0.0, 1.0}
    assert_allclose(adapter.predict(test_rows), (full.predict(test_rows) >= 0.5).astype(float))


def test_onnx_regressor_returns_values(samples, test_rows):
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_rate_gbr.onnx")))
    assert adapter.task == "regression" and adapter.score_kind == "value"
    values = adapter.predict(test_rows)
    assert values.shape == (len(test_rows),)
    assert np.corrcoef(values, test_rows["interest_rate"])[0, 1] > 0.5  # it predicts the rate


def test_onnx_multiclass_zipmap_gives_probability_columns_in_class_order(tmp_path):
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(X, y)
    path = tmp_path / "iris.onnx"
    path.write_bytes(to_onnx(clf, X[:1].astype(np.float32)).SerializeToString())
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(path), feature_names=("a", "b", "c", "d")))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    assert adapter.task == "multiclass" and adapter.classes == [0, 1, 2]
    assert_allclose(adapter.predict(frame), clf.predict_proba(X), atol=1e-5)


def test_skops_loads_with_an_explicit_list_of_trusted_types(samples, test_rows):
    refused = pytest.raises(ModelLoadError, match="does not trust by default")
    with refused:
        load_adapter(AdapterSpec(format="skops", path=str(samples / "credit_rf.skops")))
    adapter = load_adapter(AdapterSpec(format="skops", path=str(samples / "credit_rf.skops"),
                                       trusted_types=("numpy.dtype", "sklearn.tree._tree.Tree")))
    joblib_model = _joblib(samples / "credit_rf.joblib")
    assert_allclose(adapter.predict(test_rows), joblib_model.predict_proba(test_rows[adapter.input_features])[:, 1])


def test_pickle_is_refused_unless_pinned_or_trusted(samples):
    path = samples / "credit_logreg.pkl"
    with pytest.raises(ModelLoadError) as refused:
        load_adapter(AdapterSpec(format="pickle", path=str(path)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "arbitrary code" in refused.value.hint and digest in refused.value.hint
    pinned = load_adapter(AdapterSpec(format="pickle", path=str(path), sha256=digest))
    assert pinned.score_kind == "probability"
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        load_adapter(AdapterSpec(format="pickle", path=str(path), sha256="0" * 64, trust_pickle=True))


def test_text_in_a_numeric_onnx_input_names_the_column_and_row(samples, test_rows):
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx")))
    bad = test_rows.copy()
    bad["income"] = bad["income"].astype(object)
    bad.loc[bad.index[5], "income"] = "unknown"
    with pytest.raises(DataError, match=r"column 'income'.*'unknown'.*row 5"):
        adapter.predict(bad)


def test_missing_values_reach_the_model_as_nan(samples, test_rows):
    adapter = load_adapter(AdapterSpec(format="onnx", path=str(samples / "credit_gbm.onnx")))
    rows = test_rows[test_rows.employment_years.isna()].head(20)
    assert len(rows) > 0
    reference = _joblib(samples / "credit_gbm.joblib").predict_proba(rows[adapter.input_features])[:, 1]
    assert_allclose(adapter.predict(rows), reference, atol=1e-5)
