"""Find the tree-ensemble node of an ONNX graph and decode what its attributes say."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

ML_DOMAIN: Final = "ai.onnx.ml"
TREE_OPS: Final = ("TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble")
POST_TRANSFORMS: Final = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")  # opset-5 integer order
_AGGREGATES: Final = ("AVERAGE", "SUM", "MIN", "MAX")  # opset-5 integer order

PostTransform = Literal["NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TreeNodeInfo:
    """The tree-ensemble node of an ONNX graph and what its attributes say.

    Attributes
    ----------
    node : onnx.NodeProto
        The node itself.
    op_type : str
        ``TreeEnsembleClassifier``, ``TreeEnsembleRegressor`` or ``TreeEnsemble``.
    ml_opset : int
        The model's ``ai.onnx.ml`` opset version.
    input_name : str
        The tensor the trees read: the (transformed) feature matrix.
    input_elem_type : int or None
        ``onnx.TensorProto`` element type of that tensor when the graph declares it.
    score_output : str
        The node's score / probability output (a classifier's second output).
    attributes : dict
        Every attribute, decoded: strings as ``str``, tensors as numpy arrays.
    post_transform : str
        ``NONE``, ``LOGISTIC``, ``SOFTMAX``, ``SOFTMAX_ZERO`` or ``PROBIT``.
    aggregate_function : str
        ``SUM`` (classifiers always), ``AVERAGE``, ``MIN`` or ``MAX``.
    class_labels : tuple or None
        A classifier's labels (int or str), ``None`` for regressors.
    base_values : tuple of float
        Added to the aggregated scores (empty when absent).
    n_targets : int
        Number of score columns the node produces (classes or targets).
    """

    node: onnx.NodeProto
    op_type: str
    ml_opset: int
    input_name: str
    input_elem_type: int | None
    score_output: str
    attributes: Mapping[str, Any]
    post_transform: PostTransform
    aggregate_function: str
    class_labels: tuple[int | str, ...] | None
    base_values: tuple[float, ...]
    n_targets: int

    @property
    def is_classifier(self) -> bool:
        return self.op_type == "TreeEnsembleClassifier"


def _attribute_value(attribute: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attribute)
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, onnx.TensorProto):
        return numpy_helper.to_array(value)
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode() for v in value]
    return value


def find_tree_ensemble(model: onnx.ModelProto) -> TreeNodeInfo | None:
    """Locate the single tree-ensemble node of a model's main graph.

    Parameters
    ----------
    model : onnx.ModelProto

    Returns
    -------
    TreeNodeInfo or None
        ``None`` when the graph has no tree-ensemble node.

    Raises
    ------
    NotImplementedError
        When the graph holds more than one tree-ensemble node (stacked or voting models).
    """
    nodes = [n for n in model.graph.node if n.domain == ML_DOMAIN and n.op_type in TREE_OPS]
    if not nodes:
        return None
    if len(nodes) > 1:
        names = ", ".join(f"{n.op_type} {n.name!r}" for n in nodes)
        raise NotImplementedError(f"{len(nodes)} tree-ensemble nodes found ({names}); "
                                  "only a model with a single tree ensemble can be translated")
    node = nodes[0]
    attrs = {a.name: _attribute_value(a) for a in node.attribute}
    ml_opset = next((o.version for o in model.opset_import if o.domain == ML_DOMAIN), 1)
    declared = {v.name: v for v in [*model.graph.input, *model.graph.value_info, *model.graph.output]}
    elem_type = None
    if node.input[0] in declared and declared[node.input[0]].type.HasField("tensor_type"):
        elem_type = declared[node.input[0]].type.tensor_type.elem_type or None

    if node.op_type == "TreeEnsemble":
        post = POST_TRANSFORMS[int(attrs.get("post_transform", 0))]
        aggregate = _AGGREGATES[int(attrs.get("aggregate_function", 1))]
        labels = None
        base: tuple[float, ...] = ()
        n_targets = int(attrs["n_targets"])
    else:
        post = str(attrs.get("post_transform", "NONE"))
        aggregate = "SUM" if node.op_type == "TreeEnsembleClassifier" else str(attrs.get("aggregate_function", "SUM"))
        raw_base = attrs.get("base_values_as_tensor", attrs.get("base_values", ()))
        base = tuple(float(b) for b in np.asarray(raw_base, dtype=np.float64).ravel())
        if node.op_type == "TreeEnsembleClassifier":
            raw_labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings") or []
            labels = tuple(raw_labels)
            n_targets = len(labels)
        else:
            labels = None
            n_targets = int(attrs.get("n_targets", 1))
    if post not in POST_TRANSFORMS:
        raise NotImplementedError(f"post_transform {post!r} of {node.op_type} is not supported "
                                  f"(known: {', '.join(POST_TRANSFORMS)})")
    score_output = node.output[1] if node.op_type == "TreeEnsembleClassifier" else node.output[0]
    return TreeNodeInfo(node=node, op_type=node.op_type, ml_opset=ml_opset, input_name=node.input[0],
                        input_elem_type=elem_type, score_output=score_output, attributes=attrs,
                        post_transform=post, aggregate_function=aggregate,  # type: ignore[arg-type]
                        class_labels=labels, base_values=base, n_targets=n_targets)


def input_dtype(info: TreeNodeInfo) -> type[np.floating[Any]]:
    # onnxruntime compares float inputs in float32 (against float thresholds) and double
    # inputs in double; integer inputs are converted to float by the comparison.
    return np.float64 if info.input_elem_type == onnx.TensorProto.DOUBLE else np.float32
