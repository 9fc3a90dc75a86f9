"""The tree node's raw score as onnxruntime computes it: the reference a translation is checked
against, and the sessions that run parts of a graph."""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper

from auditkit.methods.onnx_trees.forest import parse
from auditkit.methods.onnx_trees.node import FloatArray, find_tree_ensemble, input_dtype


def session(model: onnx.ModelProto | bytes) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=options, providers=["CPUExecutionProvider"])


def onnxruntime_raw_scores(model: onnx.ModelProto, X: npt.ArrayLike) -> FloatArray:
    """The tree node's raw score as onnxruntime computes it, for the tree-input matrix ``X``.

    Runs a copy of the node alone with ``post_transform`` set to ``NONE`` and reads the raw
    score(s) that :func:`translate` explains from its output, so the two can be compared.
    Returns shape ``(n,)`` for one output, ``(n, n_outputs)`` otherwise.
    """
    info = find_tree_ensemble(model)
    if info is None:
        raise ValueError("the model has no tree-ensemble node")
    _, layout = parse(info)
    node = onnx.NodeProto()
    node.CopyFrom(info.node)
    for attribute in node.attribute:
        if attribute.name == "post_transform":
            if attribute.type == onnx.AttributeProto.INT:
                attribute.i = 0
            else:
                attribute.s = b"NONE"
    elem = onnx.TensorProto.DOUBLE if input_dtype(info) is np.float64 else onnx.TensorProto.FLOAT
    X = np.asarray(X).astype(np.float64 if elem == onnx.TensorProto.DOUBLE else np.float32)
    # TreeEnsemble (opset 5) returns its input's type; the older ops always return float
    score_type = elem if info.op_type == "TreeEnsemble" else onnx.TensorProto.FLOAT
    outputs = []
    for name in node.output:
        if name == info.score_output:
            outputs.append(helper.make_tensor_value_info(name, score_type, None))
        else:  # a classifier's label
            label_type = onnx.TensorProto.STRING if "classlabels_strings" in info.attributes else onnx.TensorProto.INT64
            outputs.append(helper.make_tensor_value_info(name, label_type, None))
    inputs = [helper.make_tensor_value_info(info.input_name, elem, [None, X.shape[1]])]
    graph = helper.make_graph([node], "tree_only", inputs, outputs)
    single = helper.make_model(graph, opset_imports=list(model.opset_import))
    single.ir_version = model.ir_version
    scores = np.asarray(session(single).run([info.score_output], {info.input_name: X})[0], dtype=np.float64)
    scores = scores.reshape(X.shape[0], -1)
    raw = scores @ layout.from_scores[: scores.shape[1]]
    return raw[:, 0] if raw.shape[1] == 1 else raw
