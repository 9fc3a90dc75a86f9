"""``OnnxTreeExplainer``: translate the trees, check them against onnxruntime, explain with shap."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final, Union

import numpy as np
import numpy.typing as npt
import onnx

from auditkit.methods.onnx_trees.node import FloatArray, find_tree_ensemble
from auditkit.methods.onnx_trees.runtime import onnxruntime_raw_scores
from auditkit.methods.onnx_trees.tracing import Feeds, TreeInputRunner
from auditkit.methods.onnx_trees.translate import predict_raw, translate

_SHAP_MAX_NODES: Final = 32767  # shap/cext/tree_shap.h: `struct Node { short cl, cr, cd, ... }`


def tree_explainer(translated: dict[str, Any], background: npt.NDArray[Any]) -> Any:
    """shap's interventional TreeExplainer on a translated model (see :func:`translate`)."""
    import shap

    return shap.TreeExplainer(translated, data=background, feature_perturbation="interventional",
                              model_output="raw")


class OnnxTreeExplainer:
    """Exact interventional TreeSHAP for an ONNX tree-ensemble model.

    Parameters
    ----------
    model_path : str or os.PathLike
        An ONNX file with one tree-ensemble node (possibly behind preprocessing).
    background_feeds : mapping
        Graph input name -> array: the background rows that absent features are drawn
        from (100-1000 rows is typical; time grows linearly with it).
    check_tolerance : float, default 1e-4
        The translated trees' raw scores must equal onnxruntime's on the background within
        this (absolute, scaled by ``max(1, |score|)``: onnxruntime sums in float32).

    Attributes
    ----------
    info : TreeNodeInfo
    translated : dict
        The shap model dict (see :func:`translate`).
    background : ndarray of shape (n_background, n_transformed)
    column_sources : list of str or None
        The graph input behind each transformed column (see :func:`transformed_features`).
    groups : list of str or None
        The distinct sources in column order: the columns of :meth:`grouped`.
    expected_value : float or ndarray
        Mean raw score over the background: the base value of every explanation.

    Raises
    ------
    NotImplementedError
        Untranslatable node (see :func:`translate`), or translated trees that disagree with
        onnxruntime on the background.
    """

    def __init__(self, model_path: Union[str, os.PathLike[str]], background_feeds: Feeds, *,
                 check_tolerance: float = 1e-4):
        model_bytes = Path(model_path).read_bytes()
        self.model = onnx.load_from_string(model_bytes)
        info = find_tree_ensemble(self.model)
        if info is None:
            raise ValueError(f"{model_path} has no tree-ensemble node")
        self.info = info
        self.translated = translate(self.model)
        self._runner = TreeInputRunner(self.model, info)
        self.background = self._runner.matrix(background_feeds)
        self.column_sources = self._runner.sources(background_feeds)
        self.groups = None if self.column_sources is None else list(dict.fromkeys(self.column_sources))

        ours = predict_raw(self.translated, self.background)
        theirs = onnxruntime_raw_scores(self.model, self.background)
        gap = np.abs(ours - theirs) / np.maximum(1.0, np.abs(theirs))
        if gap.size and float(gap.max()) > check_tolerance:
            raise NotImplementedError(
                f"{model_path}: the translated trees disagree with onnxruntime on the background "
                f"(max scaled difference {float(gap.max()):.3g} > {check_tolerance}); this layout of "
                f"{info.op_type} (post_transform {info.post_transform}) is not supported")
        largest = max(len(t["children_left"]) for t in self.translated["trees"])
        if largest > _SHAP_MAX_NODES:
            raise NotImplementedError(
                f"{model_path}: a tree has {largest} nodes; shap's interventional TreeSHAP indexes "
                f"nodes with 16-bit integers (at most {_SHAP_MAX_NODES})")
        self._explainer = tree_explainer(self.translated, self.background)
        self.expected_value = self._explainer.expected_value

    def features(self, feeds: Feeds) -> npt.NDArray[Any]:
        """The tree-input matrix for ``feeds`` (cast to the node's comparison dtype)."""
        return self._runner.matrix(feeds)

    def shap_values(self, feeds: Feeds) -> tuple[FloatArray, Any]:
        """SHAP values of the raw score for the rows of ``feeds``.

        Every row's values are computed alone, so splitting the rows into blocks (over
        processes, say) gives the same values.

        Parameters
        ----------
        feeds : mapping
            Graph input name -> array, one row per explained sample.

        Returns
        -------
        values : ndarray of shape (n, n_transformed), or (n, n_transformed, n_outputs)
            ``base_value + values.sum(axis=1)`` is the raw score of each row.
        base_value : float or ndarray of shape (n_outputs,)
        """
        return self.shap_values_matrix(self.features(feeds)), self.expected_value

    def shap_values_matrix(self, X: npt.ArrayLike) -> FloatArray:
        """SHAP values for rows already in tree-input form (see :meth:`features`)."""
        X = np.asarray(X).astype(self.translated["input_dtype"])
        return np.asarray(self._explainer.shap_values(X))

    def grouped(self, values: npt.ArrayLike) -> FloatArray:
        """Sum SHAP values over the columns of each original graph input.

        Parameters
        ----------
        values : ndarray of shape (n, n_transformed[, n_outputs])

        Returns
        -------
        ndarray of shape (n, n_groups[, n_outputs])
            Columns in the order of :attr:`groups`. Shapley values are additive, so each
            entry is the exact attribution of that input (e.g. all its one-hot columns).
        """
        if self.column_sources is None or self.groups is None:
            raise ValueError("which graph input each tree-input column comes from could not be inferred "
                             "from this graph, so values cannot be grouped")
        values = np.asarray(values, dtype=np.float64)
        if values.shape[1] != len(self.column_sources):
            raise ValueError(f"values have {values.shape[1]} columns, the trees read {len(self.column_sources)}")
        member = np.zeros((len(self.column_sources), len(self.groups)))
        for j, source in enumerate(self.column_sources):
            member[j, self.groups.index(source)] = 1.0
        return np.moveaxis(np.tensordot(values, member, axes=([1], [0])), -1, 1)
