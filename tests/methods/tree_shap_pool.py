"""Rows explained over a process pool, for the test that every row's SHAP values are computed
alone (and for benchmarks/explain_treeshap.py's timing on 2 processes). The engine does not
split a check's rows: its parallelism is one check per worker.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from auditkit.methods.onnx_trees import OnnxTreeExplainer
from auditkit.methods.onnx_trees.explainer import tree_explainer

_WORKER: dict[str, Any] = {}


def _worker_init(translated: dict[str, Any], background: npt.NDArray[Any]) -> None:
    _WORKER["explainer"] = tree_explainer(translated, background)


def _worker_shap(X: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    return np.asarray(_WORKER["explainer"].shap_values(X))


def _mp_context() -> Any:
    # fork reuses the parent's imported shap and the built trees (no pickling, no re-import);
    # the children never touch onnxruntime, whose threads do not survive a fork.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


def pooled_shap_values(explainer: OnnxTreeExplainer, feeds: Any, n_jobs: int) -> npt.NDArray[np.float64]:
    """``explainer.shap_values(feeds)[0]``, the rows split into ``n_jobs`` contiguous blocks, one
    process each."""
    X = explainer.features(feeds).astype(explainer.translated["input_dtype"])
    if n_jobs == 1 or len(X) < 2 * n_jobs:
        return explainer.shap_values_matrix(X)
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=_mp_context(), initializer=_worker_init,
                             initargs=(explainer.translated, explainer.background)) as pool:
        parts = list(pool.map(_worker_shap, np.array_split(X, n_jobs)))
    return np.concatenate(parts, axis=0)
