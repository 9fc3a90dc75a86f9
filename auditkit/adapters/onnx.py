"""ONNX models through onnxruntime.

Two input layouts are understood: one 2-D tensor (columns in the order of the policy's
``data.features``) or one named input per column, as skl2onnx writes for mixed-type
pipelines. Probabilities may come as a tensor or as a ZipMap (a list of dicts); a ZipMap's
input tensor is exposed as an extra graph output so that probabilities arrive as one array
rather than one Python dict per row. Label-only classifiers and regressors work too.

A model whose weights live in external data files gets them in the parent, once: each
location is resolved against the model file's directory (never the current directory, and
never outside that directory), each file is read once and hashed, and workers receive one
complete serialized model. The pin covers only the .onnx file, so a pinned model with
external data is refused.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditkit.adapters.base import AdapterSpec, ModelAdapter, ModelBytes, sha256_bytes
from auditkit.errors import DataError, ModelLoadError, Source

_NUMPY_OF = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": object,
}


def _short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor of a graph that can hold external data: initializers (dense and sparse)
    and node attributes, in subgraphs too (onnx's own walk is private API)."""
    for tensor in graph.initializer:
        yield tensor
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("sparse_tensor"):
                yield attr.sparse_tensor.values
                yield attr.sparse_tensor.indices
            for sparse in attr.sparse_tensors:
                yield sparse.values
                yield sparse.indices
            if attr.HasField("g"):
                yield from _tensors(attr.g)
            for sub in attr.graphs:
                yield from _tensors(sub)


def _external_tensors(model: Any) -> list[Any]:
    from onnx.external_data_helper import uses_external_data

    found = [t for t in _tensors(model.graph) if uses_external_data(t)]
    for function in model.functions:
        for node in function.node:
            for attr in node.attribute:
                if attr.HasField("t") and uses_external_data(attr.t):
                    found.append(attr.t)
    return found


def embed_external_data(spec: AdapterSpec) -> AdapterSpec:
    """The spec with its payload made self-contained: the model's external data, read from
    beside the model file, embedded. Unchanged for a model without external data."""
    assert spec.payload is not None and spec.path is not None
    if b"location" not in spec.payload.data:
        return spec  # every external data entry names its "location": no need to parse a large model twice
    try:
        import onnx

        model = onnx.load_from_string(spec.payload.data)
    except Exception:
        return spec  # onnxruntime will say what is wrong with the file
    tensors = _external_tensors(model)
    if not tensors:
        return spec
    from onnx.external_data_helper import ExternalDataInfo

    path = Path(spec.path)
    source = Source(spec.policy_file, spec.policy_key)
    try:
        infos = [ExternalDataInfo(t) for t in tensors]
    except ValueError as exc:  # a negative offset or length
        raise ModelLoadError(f"{path}: invalid external data entry: {_short(exc)}", source=source) from None
    locations = sorted({info.location for info in infos})
    if spec.sha256:
        raise ModelLoadError(
            f"{path} keeps its weights in external data files ({', '.join(locations)}), which model.sha256 does not "
            "cover (it pins only the .onnx file): embed the weights with onnx.save_model(model, path, "
            "save_as_external_data=False) and pin the new file, or drop model.sha256",
            source=Source(spec.policy_file, "model.sha256"))
    contents = {location: _read_external(path, location, source) for location in locations}
    for tensor, info in zip(tensors, infos):
        data = contents[info.location]
        start = info.offset or 0
        end = len(data) if info.length is None else start + info.length
        if start > len(data) or end > len(data):
            raise ModelLoadError(f"{path}: tensor '{tensor.name}' wants bytes {start:,} to {end:,} of external data "
                                 f"file '{info.location}', which holds {len(data):,}", source=source)
        tensor.raw_data = data[start:end]
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    try:
        embedded = model.SerializeToString()
    except Exception as exc:  # protobuf cannot serialize a model over 2 GB
        raise ModelLoadError(f"{path} with its external data cannot be held as one model: {_short(exc)}",
                             source=source) from None
    digests = tuple((location, sha256_bytes(contents[location])) for location in locations)
    payload = ModelBytes(data=embedded, sha256=sha256_bytes(embedded), file_sha256=spec.payload.file_sha256,
                         external_data=digests)
    return replace(spec, payload=payload)


def _read_external(model_path: Path, location: str, source: Source) -> bytes:
    """One external data file, resolved against the model's directory, which it may not leave."""
    directory = model_path.parent.resolve()
    target = (directory / location).resolve()  # follows symlinks: a link out of the directory escapes too
    if not location or Path(location).is_absolute() or not target.is_relative_to(directory):
        raise ModelLoadError(
            f"{model_path}: external data location '{location}' escapes the model's directory {directory}; "
            "external data must sit in that directory or below it", source=source)
    try:
        return target.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{model_path}: cannot read external data file '{location}' (looked for {target}): "
                             f"{exc.strerror or exc}", source=source) from None


class OnnxAdapter(ModelAdapter):
    format = "onnx"

    def __init__(self, spec: AdapterSpec):
        super().__init__()
        import onnxruntime as ort

        assert spec.payload is not None, "load_adapter reads and checks the bytes first"
        self.spec = spec
        self.path = spec.path
        self.sha256 = spec.payload.file_sha256
        self.external_data = [{"location": location, "sha256": digest}
                              for location, digest in spec.payload.external_data]
        path = Path(spec.path or "")
        source = Source(spec.policy_file, spec.policy_key)
        model_bytes = spec.payload.data
        graph_info = self._inspect_graph(model_bytes)
        if graph_info.get("external"):
            # embed_external_data ran in the parent; onnxruntime would look in the current directory
            raise ModelLoadError(f"{path} still refers to external data files; refusing to resolve them here",
                                 source=source)
        if graph_info.get("patched") is not None:
            model_bytes = graph_info["patched"]

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(spec.intra_op_threads))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(model_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for every kind of bad file
            raise ModelLoadError(f"{path} is not a valid ONNX model: {_short(exc)}", source=source) from None

        self._setup_inputs(spec, source)
        self._setup_outputs(graph_info, source)
        self.positive_class = spec.positive_class

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        if self.external_data:
            described["external_data"] = self.external_data
        return described

    # ------------------------------------------------------------------ graph
    @staticmethod
    def _inspect_graph(model_bytes: bytes) -> dict[str, Any]:
        """Class labels, the estimator node type, and a ZipMap-free output if there is a ZipMap."""
        info: dict[str, Any] = {"classes": None, "op_types": [], "patched": None, "zipmap_input": None}
        try:
            import onnx
            from onnx import helper

            model = onnx.load_from_string(model_bytes)
        except Exception:
            return info  # onnxruntime will say what is wrong with the file
        info["external"] = bool(_external_tensors(model))
        nodes = list(model.graph.node)
        info["op_types"] = [n.op_type for n in nodes]
        for node in nodes:
            for attr in node.attribute:
                if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                    info["classes"] = [int(v) for v in attr.ints]
                elif attr.name == "classlabels_strings" and attr.strings:
                    info["classes"] = [v.decode("utf-8") for v in attr.strings]
            if node.op_type == "ZipMap":
                info["zipmap_input"] = node.input[0]
        if info["zipmap_input"] is not None:
            outputs = {o.name for o in model.graph.output}
            if info["zipmap_input"] not in outputs:
                model.graph.output.append(helper.make_tensor_value_info(info["zipmap_input"], onnx.TensorProto.FLOAT, None))
                info["patched"] = model.SerializeToString()
        return info

    def _setup_inputs(self, spec: AdapterSpec, source: Source) -> None:
        inputs = self.session.get_inputs()
        self._inputs = [(i.name, i.type, list(i.shape)) for i in inputs]
        for name, onnx_type, shape in self._inputs:
            if onnx_type not in _NUMPY_OF:
                raise ModelLoadError(f"ONNX input '{name}' has type {onnx_type}, which auditkit cannot feed", source=source)
        single = inputs[0] if len(inputs) == 1 else None
        width = single.shape[1] if single is not None and len(single.shape) == 2 else None
        per_column = len(inputs) > 1 or (single is not None and width == 1 and spec.feature_names is not None
                                         and single.name in spec.feature_names and len(spec.feature_names) == 1)
        if single is not None and not per_column and len(single.shape) == 1:
            per_column = True
        if single is not None and not per_column and single.type == "tensor(string)" and width == 1:
            # one string column (a text model: skl2onnx's TfidfVectorizer input) is fed by its name,
            # as one text per row, whatever the other columns of the data are
            per_column = True
        self.matrix_input = not per_column
        if self.matrix_input:
            assert single is not None
            self.input_width = width if isinstance(width, int) else None
            self.input_features = None  # the graph does not name the columns of a matrix
        else:
            for name, _, shape in self._inputs:
                if len(shape) == 2 and isinstance(shape[1], int) and shape[1] != 1:
                    raise ModelLoadError(
                        f"ONNX input '{name}' has shape {shape}; with several inputs auditkit expects one "
                        f"column per input (shape [N, 1])", source=source)
            self.input_width = None
            self.input_features = [name for name, _, _ in self._inputs]

    def _setup_outputs(self, graph_info: dict[str, Any], source: Source) -> None:
        outputs = self.session.get_outputs()
        label_out = prob_out = value_out = None
        zip_input = graph_info.get("zipmap_input")
        for out in outputs:
            if out.name == zip_input:
                prob_out = out.name
            elif out.type.startswith("seq(map("):
                if prob_out is None:
                    prob_out = out.name
            elif out.type in ("tensor(int64)", "tensor(string)", "tensor(int32)") and label_out is None:
                label_out = out.name
            elif out.type in ("tensor(float)", "tensor(double)") and value_out is None:
                value_out = out.name
        if prob_out is None and label_out is not None and value_out is not None:
            prob_out, value_out = value_out, None
        op_types = graph_info.get("op_types", [])
        estimator = next((t for t in reversed(op_types) if t not in ("ZipMap", "Cast", "Identity", "Concat",
                                                                      "Reshape", "Normalizer")), "graph")
        self.classes = graph_info.get("classes")
        if prob_out is not None:
            self._output = prob_out
            self._zipmap = self.session.get_outputs()[[o.name for o in outputs].index(prob_out)].type.startswith("seq(")
            self.score_kind = "probability"
            kind = "ZipMap probabilities" if (self._zipmap or prob_out == zip_input) else "probability tensor"
        elif value_out is not None:
            self._output, self._zipmap = value_out, False
            self.score_kind = "value"
            kind = "values"
        elif label_out is not None:
            self._output, self._zipmap = label_out, False
            self.score_kind = "label"
            kind = "labels only"
        else:
            raise ModelLoadError("the ONNX graph has no output auditkit understands "
                                 f"(outputs: {[(o.name, o.type) for o in outputs]})", source=source)
        if self.score_kind == "probability":
            n_classes = len(self.classes) if self.classes is not None else None
            self.task = "binary" if n_classes in (None, 2) else "multiclass"
        elif self.score_kind == "label":
            self.task = "binary" if self.classes is None or len(self.classes) == 2 else "multiclass"
        else:
            self.task = "regression"
        layout = (f"one 2-D input '{self._inputs[0][0]}'" if self.matrix_input
                  else f"{len(self._inputs)} named inputs")
        self.kind = f"onnx: {estimator}, {kind}, {layout}"

    # ------------------------------------------------------------------ predict
    def integer_inputs(self) -> list[str]:
        if self.matrix_input:
            name, onnx_type, _ = self._inputs[0]
            integer = np.issubdtype(np.dtype(_NUMPY_OF[onnx_type]), np.integer) if onnx_type != "tensor(string)" else False
            return list(self.spec.feature_names or []) if integer else []
        return [name for name, onnx_type, _ in self._inputs
                if onnx_type != "tensor(string)" and np.issubdtype(np.dtype(_NUMPY_OF[onnx_type]), np.integer)]

    def _count_rounded(self, X: pd.DataFrame, columns: list[str]) -> None:
        for column in columns:
            if column in X.columns and pd.api.types.is_float_dtype(X[column].dtype):
                values = X[column].to_numpy(dtype=np.float64, na_value=np.nan)
                self.rounded_values += int(np.sum(np.isfinite(values) & (values != np.rint(values))))

    def feeds(self, X: pd.DataFrame, feature_names: list[str] | None = None) -> dict[str, Any]:
        """The ONNX inputs for a frame; raises DataError naming the column that cannot be cast.

        An integer input gets each value rounded to the nearest whole number (never truncated:
        8.7 is 9, not 8), counted in ``rounded_values`` so that a check can say so."""
        integer = self.integer_inputs()
        if integer:
            self._count_rounded(X, integer)
        if self.matrix_input:
            name, onnx_type, _ = self._inputs[0]
            columns = feature_names or list(self.spec.feature_names or X.columns)
            return {name: _as_matrix(X, columns, _NUMPY_OF[onnx_type])}
        return {name: _as_column(X, name, _NUMPY_OF[onnx_type]) for name, onnx_type, _ in self._inputs}

    def _predict_batch(self, X: pd.DataFrame) -> npt.NDArray[Any]:
        (out,) = self.session.run([self._output], self.feeds(X))
        if self._zipmap:
            if self.classes is None and out:
                self.classes = list(out[0].keys())
            out = np.array([[row[c] for c in self.classes] for row in out], dtype=np.float64)
        out = np.asarray(out)
        if self.score_kind in ("value", "label") and out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if self.score_kind == "probability" and self.classes is None and out.ndim == 2:
            self.classes = list(range(out.shape[1]))
        if self.score_kind == "probability" and out.size and (np.nanmin(out) < -1e-6 or np.nanmax(out) > 1 + 1e-6):
            # e.g. a linear SVM's "probabilities" output holds margins: not probabilities
            self.score_kind = "decision_function"
        return out


def _as_column(X: pd.DataFrame, name: str, dtype: Any) -> npt.NDArray[Any]:
    if name not in X.columns:
        raise DataError(f"the model needs column '{name}', which the data does not have")
    series = X[name]
    if dtype is object:
        if isinstance(series.dtype, pd.StringDtype):  # already text: no per-value conversion
            return series.to_numpy(dtype=object, na_value="").reshape(-1, 1)
        values = series.astype(object).where(series.notna(), "")
        return np.asarray(values.astype(str), dtype=object).reshape(-1, 1)
    return _numeric(series, name, dtype).reshape(-1, 1)


def _as_matrix(X: pd.DataFrame, columns: list[str], dtype: Any) -> npt.NDArray[Any]:
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise DataError(f"the model needs columns {missing}, which the data does not have")
    if dtype is object:
        return X[columns].astype(str).to_numpy(dtype=object)
    return np.column_stack([_numeric(X[c], c, dtype) for c in columns]) if columns else np.empty((len(X), 0), dtype)


def _numeric(series: pd.Series, name: str, dtype: Any) -> npt.NDArray[Any]:
    if pd.api.types.is_bool_dtype(series.dtype) or pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        converted = pd.to_numeric(series, errors="coerce")
        bad = converted.isna() & series.notna()
        if bad.any():
            first = bad.to_numpy().nonzero()[0][0]
            raise DataError(f"column '{name}' must be numeric for the model, but holds text such as "
                            f"{str(series.iloc[first])!r} (row {series.index[first]})")
        values = converted.to_numpy(dtype=np.float64, na_value=np.nan)
    if np.issubdtype(np.dtype(dtype), np.integer):
        if np.isnan(values).any():
            raise DataError(f"column '{name}' has missing values, but the model's input is an integer tensor")
        return np.rint(values).astype(dtype)  # the nearest whole number; astype alone truncates
    return values.astype(dtype)
