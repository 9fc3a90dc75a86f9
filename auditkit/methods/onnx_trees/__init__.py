"""Exact interventional TreeSHAP for ONNX tree ensembles.

An ONNX file holds its trees in one ``ai.onnx.ml`` node: ``TreeEnsembleClassifier``,
``TreeEnsembleRegressor`` (opsets 1-3) or ``TreeEnsemble`` (opset 5). This package
translates that node into the dict model that ``shap.TreeExplainer`` accepts and explains
the trees' raw score with ``feature_perturbation="interventional"``. One module per job:

* :mod:`.node`: find the tree-ensemble node of a graph and decode its attributes;
* :mod:`.forest`: read the node's trees into flat arrays, and how its weight columns make
  the raw score that SHAP explains (per classifier layout);
* :mod:`.translate`: rewrite those trees as shap's custom tree dict (:func:`translate`), and
  walk them independently of shap (:func:`predict_raw`);
* :mod:`.runtime`: the node's raw score as onnxruntime computes it, the reference the
  translation is checked against (:func:`onnxruntime_raw_scores`);
* :mod:`.tracing`: the matrix the node reads, computed by the graph upstream of it, and which
  graph input each of its columns comes from (:func:`transformed_features`);
* :mod:`.explainer`: :class:`OnnxTreeExplainer`, the glue: translate, check against
  onnxruntime, hand the trees to shap, group values back onto the graph's inputs.
"""
from __future__ import annotations

from auditkit.methods.onnx_trees.explainer import OnnxTreeExplainer
from auditkit.methods.onnx_trees.node import TreeNodeInfo, find_tree_ensemble
from auditkit.methods.onnx_trees.runtime import onnxruntime_raw_scores
from auditkit.methods.onnx_trees.tracing import tensor_features, transformed_features
from auditkit.methods.onnx_trees.translate import predict_raw, translate

__all__ = [
    "OnnxTreeExplainer",
    "TreeNodeInfo",
    "find_tree_ensemble",
    "onnxruntime_raw_scores",
    "predict_raw",
    "tensor_features",
    "transformed_features",
    "translate",
]
