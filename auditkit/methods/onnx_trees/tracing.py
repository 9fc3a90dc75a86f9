"""Input tracing: the matrix a tree node reads, computed by the part of the graph upstream of it,
and which graph input each of its columns derives from (per-column provenance through the graph)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import onnx
from onnx import helper, numpy_helper

from auditkit.methods.onnx_trees.node import ML_DOMAIN, TreeNodeInfo, find_tree_ensemble, input_dtype
from auditkit.methods.onnx_trees.runtime import session

Feeds = Mapping[str, Any]

_ROW_WISE: Final = {  # ops whose output column j depends on input column j (with broadcasting)
    "": {"Abs", "Add", "And", "Cast", "CastLike", "Ceil", "Clip", "Div", "Equal", "Exp", "Floor", "Greater",
         "GreaterOrEqual", "Identity", "IsInf", "IsNaN", "Less", "LessOrEqual", "Log", "Max", "Mean", "Min",
         "Mod", "Mul", "Neg", "Not", "Or", "Pow", "Reciprocal", "Relu", "Round", "Sigmoid", "Sign", "Sqrt",
         "Sub", "Sum", "Tanh", "Where", "Xor"},
    ML_DOMAIN: {"Binarizer", "Imputer", "Scaler"},
}
_RESHAPING: Final = {"Flatten", "Reshape", "Squeeze", "Unsqueeze"}  # keep the row-major element order

Sources = list[frozenset[str]]  # per column (last axis) of a tensor: the graph inputs it depends on


def _ancestors(graph: onnx.GraphProto, target: str) -> list[onnx.NodeProto]:
    producer = {out: node for node in graph.node for out in node.output if out}
    keep: set[int] = set()
    stack = [target]
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in producer:
            continue
        seen.add(name)
        node = producer[name]
        keep.add(id(node))
        stack.extend(i for i in node.input if i)
    return [n for n in graph.node if id(n) in keep]


class TreeInputRunner:
    """Runs the part of a graph that computes the tree node's input matrix."""

    def __init__(self, model: onnx.ModelProto, info: TreeNodeInfo):
        self.model = model
        self.info = info
        self.nodes = _ancestors(model.graph, info.input_name)
        initializers = {i.name for i in model.graph.initializer}
        produced = {o for n in self.nodes for o in n.output}
        needed = {i for n in self.nodes for i in n.input} | {info.input_name}
        self.inputs = [i for i in model.graph.input
                       if i.name in needed and i.name not in initializers and i.name not in produced]
        self.dtype = input_dtype(info)
        self._matrix_session: Any = None

    def _submodel(self, outputs: Sequence[str]) -> onnx.ModelProto:
        declared = {v.name: v for v in [*self.model.graph.value_info, *self.model.graph.output]}
        graph = helper.make_graph(
            list(self.nodes), "tree_input", list(self.inputs),
            [declared[o] if o in declared else onnx.ValueInfoProto(name=o) for o in outputs],
            initializer=list(self.model.graph.initializer))
        sub = helper.make_model(graph, opset_imports=list(self.model.opset_import))
        sub.ir_version = self.model.ir_version
        return sub

    def _feeds(self, feeds: Feeds) -> dict[str, Any]:
        missing = [i.name for i in self.inputs if i.name not in feeds]
        if missing:
            raise ValueError(f"feeds lack the graph input(s) {missing}; the trees need "
                             f"{[i.name for i in self.inputs]}")
        return {i.name: feeds[i.name] for i in self.inputs}

    def matrix(self, feeds: Feeds) -> npt.NDArray[Any]:
        """The tree-input matrix for ``feeds``, cast to the node's comparison dtype."""
        if not self.nodes:  # the trees read a graph input directly
            value = np.asarray(self._feeds(feeds)[self.info.input_name])
        else:
            if self._matrix_session is None:
                self._matrix_session = session(self._submodel([self.info.input_name]))
            value = self._matrix_session.run([self.info.input_name], self._feeds(feeds))[0]
        value = np.asarray(value)
        return value.reshape(value.shape[0], -1).astype(self.dtype)

    def sources(self, feeds: Feeds) -> list[str] | None:
        """Which graph input each tree-input column derives from, or ``None`` if mixed/unknown.

        Propagates per-column provenance through the graph; tensor widths come from running
        every intermediate tensor on two rows of ``feeds``.
        """
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for n in self.nodes for a in n.attribute):
            return None  # control flow (If, Loop, Scan): subgraphs read tensors not listed as inputs
        probe = {}
        for name, value in self._feeds(feeds).items():
            value = np.asarray(value)
            probe[name] = np.repeat(value[:1], 2, axis=0) if value.ndim else value
        try:
            produced = [o for n in self.nodes for o in n.output if o]
            values = dict(zip(produced, session(self._submodel(produced)).run(produced, probe))) if produced else {}
        except Exception:  # a tensor that is not a plain tensor (sequence, map): no inference
            return None
        shapes: dict[str, tuple[int, ...]] = {k: np.asarray(v).shape for k, v in values.items()}
        constants = {i.name: numpy_helper.to_array(i) for i in self.model.graph.initializer}
        sources: dict[str, Sources] = {}
        for name, value in probe.items():
            width = int(np.asarray(value).shape[-1]) if np.asarray(value).ndim > 1 else 1
            label = [name] if width == 1 else [f"{name}[{j}]" for j in range(width)]
            sources[name] = [frozenset([s]) for s in label]
            shapes[name] = np.asarray(value).shape
        for name, array in constants.items():
            shapes.setdefault(name, array.shape)
            sources.setdefault(name, [frozenset()] * (array.shape[-1] if array.ndim else 1))
        for node in self.nodes:
            if node.op_type == "Constant" and node.domain == "":
                constants[node.output[0]] = np.asarray(values[node.output[0]])
            result = _propagate(node, sources, shapes, constants)
            for out in node.output:
                if out:
                    sources[out] = result(shapes[out])
        columns = sources[self.info.input_name]
        if len(columns) != int(np.prod(shapes[self.info.input_name][1:], dtype=np.int64)) or \
                any(len(s) != 1 for s in columns):
            return None
        return [next(iter(s)) for s in columns]


def _width(shape: tuple[int, ...]) -> int:
    return int(shape[-1]) if shape else 1


def _union(columns: Sources) -> frozenset[str]:
    return frozenset().union(*columns) if columns else frozenset()


def _propagate(node: onnx.NodeProto, sources: dict[str, Sources], shapes: dict[str, tuple[int, ...]],
               constants: dict[str, npt.NDArray[Any]]) -> Any:
    """A function from an output's shape to its per-column sources."""
    inputs = [i for i in node.input if i]
    ins = [sources[i] for i in inputs]
    everything = _union([_union(s) for s in ins])
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    op = node.op_type

    def fallback(shape: tuple[int, ...]) -> Sources:
        return [everything] * _width(shape)

    if node.domain == "" and op == "Concat":
        rank = len(shapes[inputs[0]])
        axis = int(attrs.get("axis", 0))
        if rank and axis % rank == rank - 1:
            return lambda shape: [s for cols in ins for s in cols]
        if len({len(s) for s in ins}) == 1:
            return lambda shape: [_union(list(col)) for col in zip(*ins)]
        return fallback
    if node.domain == "" and op in _RESHAPING:
        data = ins[0]
        size = int(np.prod(shapes[inputs[0]], dtype=np.int64))
        k_in = len(data)

        def reshaped(shape: tuple[int, ...]) -> Sources:
            k_out = _width(shape)
            flat = np.arange(size)
            return [_union([data[j] for j in np.unique(flat[c::k_out] % k_in)]) for c in range(k_out)]
        return reshaped
    if op in _ROW_WISE.get(node.domain, set()):
        def row_wise(shape: tuple[int, ...]) -> Sources:
            k = _width(shape)
            out: Sources = []
            for c in range(k):
                parts = [cols[c] if len(cols) == k else (cols[0] if len(cols) == 1 else _union(cols))
                         for cols in ins]
                out.append(_union(parts))
            return out
        return row_wise
    selector = (node.domain == ML_DOMAIN and op == "ArrayFeatureExtractor") or \
        (node.domain == "" and op == "Gather" and len(shapes[inputs[0]]) > 0 and
         int(attrs.get("axis", 0)) % len(shapes[inputs[0]]) == len(shapes[inputs[0]]) - 1)
    if selector and len(inputs) == 2 and inputs[1] in constants:
        picked = [ins[0][int(j)] for j in np.asarray(constants[inputs[1]]).ravel()]
        return lambda shape: picked if len(picked) == _width(shape) else fallback(shape)
    return fallback


def transformed_features(model_bytes: bytes, feeds: Feeds) -> tuple[npt.NDArray[Any], list[str] | None]:
    """The matrix the tree node reads, and which graph input each of its columns comes from.

    The node's input tensor is made a graph output of the part of the graph that computes
    it, and that part is run by onnxruntime on ``feeds`` (e.g. skl2onnx's imputer and
    one-hot encoder branches, one named input per column).

    Parameters
    ----------
    model_bytes : bytes
        A serialised ONNX model with one tree-ensemble node.
    feeds : mapping
        Graph input name -> array, as for ``InferenceSession.run``; inputs the trees do
        not depend on may be left out.

    Returns
    -------
    matrix : ndarray of shape (n, n_transformed)
        Cast to the node's comparison dtype (float32 for float inputs).
    sources : list of str or None
        For each column the graph input it derives from (``name`` for an ``[N, 1]`` input,
        ``name[j]`` for column j of a wider one), found by following each input through the
        graph to the tree node (skl2onnx's ``Concat`` of per-input branches). ``None`` when
        a column mixes inputs (e.g. PCA) or the graph cannot be followed.
    """
    model = onnx.load_from_string(model_bytes)
    info = find_tree_ensemble(model)
    if info is None:
        raise ValueError("the model has no tree-ensemble node")
    runner = TreeInputRunner(model, info)
    return runner.matrix(feeds), runner.sources(feeds)


def tensor_features(model_bytes: bytes, tensor_name: str, feeds: Feeds) -> tuple[npt.NDArray[np.float64], list[str] | None]:
    """The matrix a graph computes as ``tensor_name`` (in float64), and which graph input each
    of its columns comes from: :func:`transformed_features` for any node's input, such as the
    ``LinearClassifier`` of a skl2onnx pipeline with one named input per column."""
    from types import SimpleNamespace

    model = onnx.load_from_string(model_bytes)
    # the runner reads only the tensor's name and its element type (DOUBLE: keep float64)
    target = SimpleNamespace(input_name=tensor_name, input_elem_type=onnx.TensorProto.DOUBLE)
    runner = TreeInputRunner(model, target)  # type: ignore[arg-type]
    return runner.matrix(feeds).astype(np.float64), runner.sources(feeds)
