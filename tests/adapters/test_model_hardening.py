"""A pinned model loads only the bytes that were pinned, and its output is checked before any check.

Issue #13, items 1, 2 and 6:

1. joblib's legacy format (``NDArrayWrapper``, ``ZNDArrayWrapper``, the "ZF" container) makes
   joblib read a sibling file that the pin does not cover: refused, whatever the compression.
2. The parent reads the model file once, hashes those bytes, checks the pin and loads those
   bytes; workers receive the bytes and never open the path. ONNX external data is read from
   beside the model, never outside its directory, and refused under a pin.
6. The base prediction's shape, finiteness and probability range are validated once (exit 2);
   inside a check, a wrong shape ends that check as ``error`` with a message, not an IndexError.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import hostile_models
from auditkit.adapters.base import AdapterSpec, load_adapter
from auditkit.errors import ModelLoadError
from auditkit.results.io import validate_results
from support import credit_policy, write_policy

CLI_TESTS = str(Path(__file__).resolve().parents[1] / "cli")  # the bad-input helpers live there
if CLI_TESTS not in sys.path:
    sys.path.insert(0, CLI_TESTS)
from test_cli_bad_input import LOGREG_FEATURES, assert_refused  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class OpensMarker:
    """Unpickles as ``open(marker, "w")``: the marker file exists once a pickle of it was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def malicious_pickle(marker: Path) -> bytes:
    return pickle.dumps(OpensMarker(marker))


def model_policy(samples: Path, out_dir: Path, model: Path, checks: list[dict[str, Any]],
                 **model_keys: Any) -> dict[str, Any]:
    """The credit data scored by ``model`` (a pickle on the 7 numeric features unless said)."""
    return credit_policy(samples, out_dir, model={"path": str(model), **model_keys},
                         data={"features": LOGREG_FEATURES, "sample": 600}, checks=checks)


PERMUTATION = {"id": "perm", "type": "permutation_importance",
               "params": {"n_repeats": 2, "max_rows": 200, "features": ["debt_ratio", "income"]}}
PERFORMANCE = {"id": "perf", "type": "performance", "params": {"metrics": ["roc_auc"], "bootstrap": 20}}


def run(cli: Callable[..., Any], directory: Path, policy: dict[str, Any], *args: str) -> Any:
    return cli("run", write_policy(directory, policy), *args)


def results_of(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / "results.json").read_text())


def metric_values(results: dict[str, Any]) -> dict[str, Any]:
    return {c["id"]: {name: m["value"] for name, m in c["metrics"].items()} for c in results["checks"]}


# --------------------------------------------------------------------------- 1. joblib's legacy format


def _side_file_opening(directory: Path, marker: Path) -> None:
    """side.npy: an object array whose np.load(allow_pickle=True) creates ``marker``."""
    np.save(directory / "side.npy", np.array([OpensMarker(marker)], dtype=object), allow_pickle=True)


def _wrapper() -> Any:
    from joblib.numpy_pickle_compat import NDArrayWrapper

    return NDArrayWrapper("side.npy", np.ndarray)


def _legacy_uncompressed(path: Path) -> None:
    path.write_bytes(pickle.dumps(_wrapper()))


def _legacy_zlib(path: Path) -> None:
    import joblib

    joblib.dump(_wrapper(), path, compress=("zlib", 3))  # a wrapper is not an array: pickled as it is


def _legacy_gzip(path: Path) -> None:
    import joblib

    joblib.dump(_wrapper(), path, compress=("gzip", 3))


def _legacy_zfile_container(path: Path) -> None:
    from joblib.numpy_pickle_compat import write_zfile

    with open(path, "wb") as handle:
        write_zfile(handle, pickle.dumps(_wrapper()))


def _legacy_via_reexport(path: Path) -> None:
    # joblib.numpy_pickle re-exports the wrapper: the same class under another module name
    # (protocol 2 names classes as text lines, so the module can be renamed in place)
    data = pickle.dumps(_wrapper(), protocol=2)
    assert b"joblib.numpy_pickle_compat\n" in data
    path.write_bytes(data.replace(b"joblib.numpy_pickle_compat\n", b"joblib.numpy_pickle\n"))


def _legacy_class_fetched_by_getattr(path: Path) -> None:
    # getattr(import_module("joblib.numpy_pickle_compat"), "NDArrayWrapper"): no find_class names
    # the wrapper, so only the unpickler's BUILD backstop sees it
    path.write_bytes(
        b"\x80\x02cbuiltins\ngetattr\n(cimportlib\nimport_module\n(Vjoblib.numpy_pickle_compat\ntRVNDArrayWrapper\ntR"
        b")\x81}(Vfilename\nVside.npy\nVsubclass\ncnumpy\nndarray\nVallow_mmap\n\x88ub.")


def _legacy_zndarraywrapper(path: Path) -> None:
    from joblib.numpy_pickle_compat import ZNDArrayWrapper

    wrapper = ZNDArrayWrapper("side.z", (np.ndarray, (0,), b"b"), (1, (1,), np.dtype("float64"), False))
    path.write_bytes(pickle.dumps(wrapper))


@pytest.mark.parametrize("write_model, fmt, names", [
    pytest.param(_legacy_uncompressed, "joblib", "NDArrayWrapper", id="ndarraywrapper"),
    pytest.param(_legacy_zlib, "joblib", "NDArrayWrapper", id="ndarraywrapper-zlib-compressed"),
    pytest.param(_legacy_gzip, "joblib", "NDArrayWrapper", id="ndarraywrapper-gzip-compressed"),
    pytest.param(_legacy_zfile_container, "joblib", "joblib < 0.10", id="zf-container"),
    pytest.param(_legacy_via_reexport, "joblib", "joblib.numpy_pickle.NDArrayWrapper", id="re-exported-name"),
    pytest.param(_legacy_zndarraywrapper, "joblib", "ZNDArrayWrapper", id="zndarraywrapper"),
    pytest.param(_legacy_class_fetched_by_getattr, "joblib", "builds joblib's NDArrayWrapper", id="class-by-getattr"),
    pytest.param(_legacy_uncompressed, "pickle", "NDArrayWrapper", id="pickle-format"),
])
def test_pinned_legacy_joblib_file_is_refused_and_its_sibling_never_loaded(cli, samples, tmp_path, write_model, fmt,
                                                                          names):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    marker = tmp_path / "MARKER"
    _side_file_opening(model_dir, marker)
    model = model_dir / f"legacy.{'pkl' if fmt == 'pickle' else 'joblib'}"
    write_model(model)
    out_dir = tmp_path / "out"
    policy = model_policy(samples, out_dir, model, [PERFORMANCE], sha256=sha256(model))
    assert_refused(run(cli, tmp_path, policy), out_dir, "model.path", str(model), "legacy format", names,
                   "sibling files", "model.sha256", "skops", max_lines=1)
    assert not marker.exists(), "the sibling file was unpickled"


@pytest.mark.parametrize("compress", [0, 3, ("gzip", 3), ("lzma", 3)], ids=["plain", "zlib", "gzip", "lzma"])
def test_current_joblib_files_load_from_their_bytes_whatever_the_compression(samples, tmp_path, compress):
    import joblib

    estimator = pickle.loads((samples / "credit_logreg.pkl").read_bytes())
    path = tmp_path / "model.joblib"
    joblib.dump(estimator, path, compress=compress)
    adapter = load_adapter(AdapterSpec(format="joblib", path=str(path), sha256=sha256(path),
                                       feature_names=tuple(LOGREG_FEATURES)))
    rows = pd.read_csv(samples / "credit_test.csv", nrows=300)
    expected = estimator.predict_proba(rows[LOGREG_FEATURES])[:, 1]
    assert expected.std() > 0.01  # non-trivial scores
    assert_allclose(adapter.predict(rows), expected, rtol=0, atol=0)  # the same estimator, bit for bit


# --------------------------------------------------------------------------- 2. time of check, time of use


class _SwapAfterHashing:
    """Stands in for ``hashlib`` in auditkit.adapters.base: the moment the model's pinned digest
    has been computed, the model file on disk is replaced (the race of issue #13, made certain)."""

    def __init__(self, digest: str, swap: Callable[[], None]) -> None:
        self.digest, self.swap, self.swapped = digest, swap, False

    def sha256(self, *args: Any) -> Any:
        outer, real = self, hashlib.sha256(*args)

        class Hasher:
            def update(self, data: bytes) -> None:
                real.update(data)

            def hexdigest(self) -> str:
                value = real.hexdigest()
                if value == outer.digest and not outer.swapped:
                    outer.swapped = True
                    outer.swap()
                return value

        return Hasher()


def _pinned_logreg(samples: Path, tmp_path: Path) -> Path:
    model = tmp_path / "model" / "logreg.pkl"
    model.parent.mkdir()
    model.write_bytes((samples / "credit_logreg.pkl").read_bytes())
    return model


def test_model_file_swapped_right_after_hashing_is_never_loaded(cli, samples, tmp_path, monkeypatch):
    model = _pinned_logreg(samples, tmp_path)
    digest = sha256(model)
    control_out = tmp_path / "control"
    control = run(cli, tmp_path, model_policy(samples, control_out, model, [PERFORMANCE, PERMUTATION], sha256=digest),
                  "--executor", "inline")
    assert control.exit_code == 0, control.stderr

    monkeypatch.setattr("auditkit.engine.context._ADAPTERS", {})  # nothing cached by the control run
    marker = tmp_path / "MARKER"
    swapper = _SwapAfterHashing(digest, lambda: model.write_bytes(malicious_pickle(marker)))
    monkeypatch.setattr("auditkit.adapters.base.hashlib", swapper)
    out_dir = tmp_path / "out"
    result = run(cli, tmp_path, model_policy(samples, out_dir, model, [PERFORMANCE, PERMUTATION], sha256=digest),
                 "--executor", "inline")
    assert swapper.swapped  # the file on disk was malicious from the moment it was hashed
    assert not marker.exists(), "the swapped-in pickle was loaded"
    assert result.exit_code == 0, result.stderr
    results = results_of(out_dir)
    assert results["inputs"]["model"]["sha256"] == digest
    assert metric_values(results) == metric_values(results_of(control_out))  # the original model's figures


def _swap_for_malicious(model: Path, marker: Path) -> None:
    model.write_bytes(malicious_pickle(marker))


def _delete(model: Path, marker: Path) -> None:
    model.unlink()


@pytest.mark.parametrize("executor", ["inline", "local"])
@pytest.mark.parametrize("after_prepare", [
    pytest.param(_swap_for_malicious, id="swapped-for-a-malicious-pickle"),
    pytest.param(_delete, id="deleted"),
])
def test_checks_load_the_checked_bytes_never_the_model_path(cli, samples, tmp_path, monkeypatch, executor,
                                                              after_prepare):
    from auditkit.engine import run as engine_run

    model = _pinned_logreg(samples, tmp_path)
    digest = sha256(model)
    control_out = tmp_path / "control"
    policy = model_policy(samples, control_out, model, [PERFORMANCE, PERMUTATION], sha256=digest)
    assert run(cli, tmp_path, policy, "--executor", executor, "--workers", "2").exit_code == 0

    marker = tmp_path / "MARKER"
    real_prepare = engine_run.prepare

    def prepare_then_tamper(*args: Any, **kwargs: Any) -> Any:
        prepared = real_prepare(*args, **kwargs)
        after_prepare(model, marker)  # the model file is changed before any check runs
        return prepared

    monkeypatch.setattr(engine_run, "prepare", prepare_then_tamper)
    monkeypatch.setattr("auditkit.engine.context._ADAPTERS", {})  # the inline run must not reuse the control's adapter
    out_dir = tmp_path / "out"
    result = run(cli, tmp_path, model_policy(samples, out_dir, model, [PERFORMANCE, PERMUTATION], sha256=digest),
                 "--executor", executor, "--workers", "2")
    assert not marker.exists(), "a check loaded the file from disk"
    assert result.exit_code == 0, result.stdout + result.stderr
    results = results_of(out_dir)
    assert [c["status"] for c in results["checks"]] == ["info", "info"]  # no threshold declared: reported, not assessed
    assert metric_values(results) == metric_values(results_of(control_out))


def test_a_process_refuses_model_bytes_that_are_not_the_checked_ones(samples):
    from dataclasses import replace

    path = samples / "credit_logreg.pkl"
    adapter = load_adapter(AdapterSpec(format="pickle", path=str(path), sha256=sha256(path)))
    payload = adapter.spec.payload
    assert payload is not None and payload.sha256 == sha256(path) and payload.data == path.read_bytes()
    tampered = replace(adapter.spec, payload=replace(payload, data=payload.data + b"."))
    with pytest.raises(ModelLoadError, match="refusing to load them") as refused:
        load_adapter(tampered)
    assert str(path) in str(refused.value) and hashlib.sha256(payload.data + b".").hexdigest() in str(refused.value)


def test_each_process_builds_the_adapter_once_from_the_carried_bytes(samples, tmp_path):
    from auditkit.engine.context import AuditContext

    model = _pinned_logreg(samples, tmp_path)
    parent = load_adapter(AdapterSpec(format="pickle", path=str(model), sha256=sha256(model),
                                      feature_names=tuple(LOGREG_FEATURES)))
    model.unlink()  # a worker has only the spec
    frame = pd.read_csv(samples / "credit_test.csv", nrows=50)

    class Data:
        adapter_spec = parent.spec

    first = AuditContext(data=Data(), check_id="a", seed=1).model  # type: ignore[arg-type]
    assert AuditContext(data=Data(), check_id="b", seed=2).model is first  # type: ignore[arg-type]
    assert first is not parent
    assert_allclose(first.predict(frame), parent.predict(frame), rtol=0, atol=0)


# --------------------------------------------------------------------------- 2. ONNX external data


def _logreg_graph(samples: Path) -> onnx.ModelProto:
    """credit_logreg.pkl as a plain ONNX graph whose weights are initializers (tensors that can be
    stored as external data; the sample ONNX files keep theirs in node attributes)."""
    from onnx import TensorProto, helper, numpy_helper

    pipeline = pickle.loads((samples / "credit_logreg.pkl").read_bytes())
    imputer, scaler, logreg = (step for _, step in pipeline.steps)
    coef = logreg.coef_[0] / scaler.scale_  # z = ((x - mean) / scale) . coef + intercept, folded
    weights = {
        "medians": imputer.statistics_.reshape(1, -1), "W": coef.reshape(-1, 1),
        "b": np.array([logreg.intercept_[0] - float(scaler.mean_ @ coef)]), "one": np.array([1.0]),
        "half": np.array([0.5]), "label_shape": np.array([-1], dtype=np.int64),
    }
    initializers = [numpy_helper.from_array(value.astype(np.float32) if value.dtype == np.float64 else value, name)
                    for name, value in weights.items()]
    nodes = [
        helper.make_node("IsNaN", ["X"], ["missing"]),
        helper.make_node("Where", ["missing", "medians", "X"], ["imputed"]),
        helper.make_node("MatMul", ["imputed", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Sub", ["one", "p"], ["q"]),
        helper.make_node("Concat", ["q", "p"], ["probabilities"], axis=1),
        helper.make_node("Greater", ["p", "half"], ["positive"]),
        helper.make_node("Cast", ["positive"], ["label_column"], to=TensorProto.INT64),
        helper.make_node("Reshape", ["label_column", "label_shape"], ["label"]),
    ]
    graph = helper.make_graph(
        nodes, "logreg", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, len(LOGREG_FEATURES)])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _external_data_model(samples: Path, directory: Path, location: str = "weights.bin") -> Path:
    """The logistic regression with every initializer in one external file beside it."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "logreg_external.onnx"
    onnx.save_model(_logreg_graph(samples), path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    assert (directory / location).stat().st_size > 0
    return path


def _relocate_external_data(path: Path, location: str) -> None:
    """Point every external tensor of ``path`` at ``location`` (written as is, unresolved)."""
    model = onnx.load(path, load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    path.write_bytes(model.SerializeToString())


def test_onnx_external_data_is_read_beside_the_model_and_recorded(cli, samples, tmp_path, monkeypatch):
    model = _external_data_model(samples, tmp_path / "model")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # external data is found beside the model, not in the current directory
    out_dir = tmp_path / "out"
    policy = model_policy(samples, out_dir, model, [PERFORMANCE, PERMUTATION])
    result = run(cli, tmp_path, policy, "--workers", "2")
    assert result.exit_code == 0, result.stdout + result.stderr
    validate_results(results_of(out_dir))  # the schema knows external_data
    described = results_of(out_dir)["inputs"]["model"]
    assert described["external_data"] == [{"location": "weights.bin",
                                            "sha256": sha256(tmp_path / "model" / "weights.bin")}]
    assert described["sha256"] == sha256(model)
    assert metric_values(results_of(out_dir))["perf"]["roc_auc"] > 0.7  # the weights were loaded, not zeros

    inline = tmp_path / "inline.onnx"  # the same graph, its weights inside the .onnx file
    onnx.save_model(_logreg_graph(samples), inline)
    embedded = model_policy(samples, tmp_path / "embedded", inline, [PERFORMANCE, PERMUTATION])
    assert run(cli, tmp_path, embedded, "--workers", "2").exit_code == 0
    assert metric_values(results_of(out_dir)) == metric_values(results_of(tmp_path / "embedded"))


def _escape_by_dotdot(model_dir: Path) -> str:
    (model_dir.parent / "weights.bin").write_bytes((model_dir / "weights.bin").read_bytes())
    return "../weights.bin"


def _escape_by_absolute_path(model_dir: Path) -> str:
    return str(model_dir / "weights.bin")  # even inside the directory: an absolute location is not relative to it


def _escape_by_symlink(model_dir: Path) -> str:
    outside = model_dir.parent / "outside.bin"
    outside.write_bytes((model_dir / "weights.bin").read_bytes())
    os.symlink(outside, model_dir / "link.bin")
    return "link.bin"


@pytest.mark.parametrize("escape", [
    pytest.param(_escape_by_dotdot, id="dot-dot"),
    pytest.param(_escape_by_absolute_path, id="absolute"),
    pytest.param(_escape_by_symlink, id="symlink-out"),
])
def test_onnx_external_data_outside_the_model_directory_is_refused(cli, samples, tmp_path, monkeypatch, escape):
    model = _external_data_model(samples, tmp_path / "model")
    location = escape(model.parent)
    _relocate_external_data(model, location)
    monkeypatch.chdir(model.parent)  # where onnxruntime would have looked
    out_dir = tmp_path / "out"
    assert_refused(run(cli, tmp_path, model_policy(samples, out_dir, model, [PERFORMANCE])), out_dir,
                   "model.path", str(model), f"external data location '{location}' escapes the model's directory",
                   max_lines=1)


def test_pinned_onnx_with_external_data_is_refused(cli, samples, tmp_path):
    model = _external_data_model(samples, tmp_path / "model")
    out_dir = tmp_path / "out"
    policy = model_policy(samples, out_dir, model, [PERFORMANCE], sha256=sha256(model))
    assert_refused(run(cli, tmp_path, policy), out_dir, "model.sha256", str(model), "external data files (weights.bin)",
                   "pins only the .onnx file", "save_as_external_data=False", "drop model.sha256", max_lines=1)


# --------------------------------------------------------------------------- 6. the model's output


def _hostile(cls: type, base_rows: int = 0) -> Callable[[Path], Path]:
    def write(directory: Path) -> Path:
        path = directory / f"{cls.__name__}.pkl"
        path.write_bytes(pickle.dumps(cls(base_rows)))
        return path

    return write


@pytest.mark.parametrize("model_class, expected", [
    pytest.param(hostile_models.FiveColumns, ["returned 5 score columns; expected 2, one per class (0, 1), "
                                              "or a 1-d array of positive-class scores"], id="five-columns"),
    pytest.param(hostile_models.OneRowShort, ["returned 20,149 rows of scores for 20,150 input rows"],
                 id="one-row-short"),
    pytest.param(hostile_models.NaNScores, ["not finite numbers (NaN or infinity) for 2 of 20,150 audit rows, "
                                            "first at row 3"], id="nan-scores"),
    pytest.param(hostile_models.OverOne, ["probabilities outside [0, 1] (from -0.7 to 1.7) for 20,150 of 20,150 "
                                          "audit rows, first at row 0"], id="probability-1.7"),
])
def test_base_prediction_of_the_wrong_shape_or_range_is_refused(cli, samples, tmp_path, model_class, expected):
    model = _hostile(model_class)(tmp_path)
    out_dir = tmp_path / "out"
    policy = model_policy(samples, out_dir, model, [PERFORMANCE], sha256=sha256(model))
    policy["data"].pop("sample")  # every row, so the row numbers are the file's
    assert_refused(run(cli, tmp_path, policy), out_dir, "model.path", f"the model {model} returned", *expected,
                   max_lines=1)


@pytest.mark.parametrize("executor", ["inline", "local"])
@pytest.mark.parametrize("model_class, expected", [
    pytest.param(hostile_models.ShortOffBase, "rows of scores for", id="rows"),
    pytest.param(hostile_models.WideOffBase, "returned 5 score columns; expected 2", id="columns"),
])
def test_wrong_output_shape_inside_a_check_ends_that_check_with_a_message(cli, samples, tmp_path, executor,
                                                                           model_class, expected):
    model = _hostile(model_class, base_rows=600)(tmp_path)
    out_dir = tmp_path / "out"
    policy = model_policy(samples, out_dir, model, [PERFORMANCE, PERMUTATION], sha256=sha256(model))
    result = run(cli, tmp_path, policy, "--executor", executor, "--workers", "2")
    assert result.exit_code == 3, result.stdout + result.stderr
    checks = {c["id"]: c for c in results_of(out_dir)["checks"]}
    assert checks["perf"]["status"] == "info"  # the base prediction was fine (no threshold: not assessed)
    assert checks["perm"]["status"] == "error"
    assert checks["perm"]["error"].startswith(f"ModelOutputError: the model {model} returned ")  # a CheckError
    assert expected in checks["perm"]["error"]
    assert "IndexError" not in checks["perm"]["error"]
