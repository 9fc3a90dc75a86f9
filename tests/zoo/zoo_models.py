"""Small models of every kind a user brings, trained on the sample credit data and saved the
ways users save them (ONNX through skl2onnx / onnxmltools, joblib, skops).

Each model is a scikit-learn Pipeline of the shared preprocessing (median imputer on the
numerics, one-hot on the categoricals) and one estimator, exported with one named ONNX input
per column, as skl2onnx writes mixed-type pipelines. XGBoost and LightGBM come from the
``zoo`` extra; their ONNX converters are registered with skl2onnx from onnxmltools.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

NUMERIC = ["income", "debt_ratio", "credit_history_years", "n_late_payments", "loan_amount", "employment_years",
           "n_open_accounts"]
CATEGORICAL = ["home_ownership", "purpose", "zip_region"]
FEATURES = NUMERIC + CATEGORICAL
TRAIN_ROWS = 1500
AUDIT_ROWS = 240


def frame_of(df: pd.DataFrame) -> pd.DataFrame:
    """Numerics as float64, categoricals as object str (what sklearn and skl2onnx expect)."""
    out = df.copy()
    for c in NUMERIC:
        out[c] = out[c].astype("float64")
    for c in CATEGORICAL:
        out[c] = out[c].astype(object)
    return out


def preprocessor(*, scale: bool) -> Any:
    """Trees need no scaling (and a float32 scaler in ONNX moves values across thresholds)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.pipeline import make_pipeline

    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler()) if scale \
        else SimpleImputer(strategy="median")
    return ColumnTransformer([
        ("num", numeric, NUMERIC),
        ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
    ])


def _estimators(task: str = "binary") -> dict[str, Callable[[], Any]]:
    """One small estimator per kind for ``task`` (binary, multiclass or regression): the same
    kinds in every task, the linear kind a logistic regression or a ridge regression."""
    from sklearn import ensemble
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    regression = task == "regression"
    suffix = "Regressor" if regression else "Classifier"

    def xgb() -> Any:
        import xgboost

        return getattr(xgboost, f"XGB{suffix}")(n_estimators=25, max_depth=3, learning_rate=0.3, random_state=0,
                                                n_jobs=1, **({"base_score": 0.3} if task == "binary" else {}))

    def lgbm() -> Any:
        import lightgbm

        return getattr(lightgbm, f"LGBM{suffix}")(n_estimators=25, num_leaves=8, random_state=0, n_jobs=1, verbose=-1)

    def sk(name: str, **params: Any) -> Callable[[], Any]:
        return lambda: getattr(ensemble, name + suffix)(**params)

    return {
        "xgboost": xgb,
        "lightgbm": lgbm,
        "random_forest": sk("RandomForest", n_estimators=15, max_depth=5, random_state=0, n_jobs=1),
        "extra_trees": sk("ExtraTrees", n_estimators=15, max_depth=5, random_state=0, n_jobs=1),
        "hist_gradient_boosting": sk("HistGradientBoosting", max_iter=20, max_depth=3, random_state=0),
        "gradient_boosting": sk("GradientBoosting", n_estimators=20, max_depth=3, random_state=0),
        "logistic_regression": (lambda: Ridge(alpha=1.0)) if regression else (lambda: LogisticRegression(max_iter=1000)),
        "mlp": (lambda: MLPRegressor(hidden_layer_sizes=(8,), max_iter=600, random_state=0)) if regression
        else (lambda: MLPClassifier(hidden_layer_sizes=(8,), max_iter=400, random_state=0)),
    }


KINDS = list(_estimators())
TREE_KINDS = {"xgboost", "lightgbm", "random_forest", "extra_trees", "hist_gradient_boosting", "gradient_boosting"}
# what exact SHAP explains for each binary classifier (DESIGN.md: the model's raw output)
UNITS = {"xgboost": "log-odds", "lightgbm": "log-odds", "random_forest": "probability",
         "extra_trees": "probability", "hist_gradient_boosting": "log-odds", "gradient_boosting": "log-odds",
         "logistic_regression": "log-odds", "mlp": "log-odds"}


def register_converters() -> None:
    """skl2onnx converts XGBoost and LightGBM inside a pipeline once onnxmltools' converters are registered."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (calculate_linear_classifier_output_shapes,
                                                  calculate_linear_regressor_output_shapes)
    from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
    from lightgbm import LGBMClassifier, LGBMRegressor
    from xgboost import XGBClassifier, XGBRegressor

    classifier_options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
    update_registered_converter(XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
                                convert_xgboost, options=classifier_options)
    update_registered_converter(LGBMClassifier, "LightGbmLGBMClassifier", calculate_linear_classifier_output_shapes,
                                convert_lightgbm, options=classifier_options)
    update_registered_converter(XGBRegressor, "XGBoostXGBRegressor", calculate_linear_regressor_output_shapes,
                                convert_xgboost)
    update_registered_converter(LGBMRegressor, "LightGbmLGBMRegressor", calculate_linear_regressor_output_shapes,
                                convert_lightgbm)


@dataclass
class ZooModel:
    kind: str
    pipeline: Any  # the fitted source model
    onnx_path: Path
    joblib_path: Path
    skops_path: Path | None


def _hgb_missing_as_int() -> None:
    """skl2onnx 1.20 passes HistGradientBoosting's numpy-bool ``missing_go_to_left`` on to
    onnx, which refuses booleans in an ints attribute; hand it the int that ONNX means."""
    from skl2onnx.common import tree_ensemble

    original = tree_ensemble.add_node
    if getattr(original, "zoo_patched", False):
        return

    def add_node(*args: Any, nodes_missing_value_tracks_true: Any = 0, **kwargs: Any) -> Any:
        return original(*args, nodes_missing_value_tracks_true=int(nodes_missing_value_tracks_true), **kwargs)

    add_node.zoo_patched = True  # type: ignore[attr-defined]
    tree_ensemble.add_node = add_node


def to_onnx(pipeline: Any, name: str) -> bytes:
    from skl2onnx import convert_sklearn

    _hgb_missing_as_int()
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC] + [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    final = pipeline.steps[-1][1]
    options = {id(final): {"zipmap": False}} if type(final).__name__ in ("XGBClassifier", "LGBMClassifier") else None
    return convert_sklearn(pipeline, name=name, initial_types=types, options=options,
                           target_opset={"": 17, "ai.onnx.ml": 3}).SerializeToString()


TASKS = ["binary", "multiclass", "regression"]
TIERS = ["high", "low", "medium"]  # the multiclass target's classes, as scikit-learn sorts them


def rate_tier(rate: pd.Series) -> pd.Series:
    """A three-class target from the interest rate (not a model input): about its terciles."""
    return pd.Series(np.where(rate < 7.5, "low", np.where(rate < 10.0, "medium", "high")), index=rate.index)


def task_target(task: str, kind: str, frame: pd.DataFrame) -> pd.Series:
    """The target a ``kind`` model of ``task`` is fitted on: defaulted (0/1), the rate tier
    (strings; XGBoost takes the codes 0..2 only) or the interest rate itself (percent)."""
    if task == "binary":
        return frame["defaulted"]
    if task == "regression":
        return frame["interest_rate"].astype(np.float64)
    tier = rate_tier(frame["interest_rate"])
    return tier.map({c: i for i, c in enumerate(TIERS)}) if kind == "xgboost" else tier


def build(kind: str, train: pd.DataFrame, directory: Path, *, target: str = "defaulted",
          labels: Callable[[pd.Series], pd.Series] | None = None, task: str | None = None) -> ZooModel:
    """Fit a ``kind`` pipeline and save it as ONNX, joblib and (but for XGBoost and LightGBM,
    whose classes skops does not trust) skops. ``task`` picks the target of :func:`task_target`;
    without it, ``target`` (relabelled by ``labels``) for a binary classifier."""
    import joblib
    from sklearn.pipeline import Pipeline

    if kind in ("xgboost", "lightgbm"):
        register_converters()
    if task is None:
        y = train[target] if labels is None else labels(train[target])
    else:
        y = task_target(task, kind, train)
    pipeline = Pipeline([("prep", preprocessor(scale=kind not in TREE_KINDS)),
                         ("model", _estimators(task or "binary")[kind]())])
    pipeline.fit(train[FEATURES], y)
    stem = directory / (kind if task in (None, "binary") else f"{kind}_{task}")
    onnx_path, joblib_path = stem.with_suffix(".onnx"), stem.with_suffix(".joblib")
    onnx_path.write_bytes(to_onnx(pipeline, stem.name))
    joblib.dump(pipeline, joblib_path)
    skops_path = None
    if kind not in ("xgboost", "lightgbm"):
        import skops.io as sio

        skops_path = stem.with_suffix(".skops")
        sio.dump(pipeline, skops_path)
    return ZooModel(kind, pipeline, onnx_path, joblib_path, skops_path)


def load_frames(samples: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    train = frame_of(pd.read_csv(samples / "credit_train.csv").iloc[:TRAIN_ROWS])
    audit = frame_of(pd.read_csv(samples / "credit_test.csv").iloc[:AUDIT_ROWS])
    return train, audit


def grouped_reference(values: np.ndarray, names: list[str]) -> np.ndarray:
    """Reference SHAP values over the transformed columns, summed back to the 10 inputs."""
    out = np.zeros((values.shape[0], len(FEATURES)))
    for j, name in enumerate(names):
        bare = name.split("__", 1)[1]
        owner = next(i for i, f in enumerate(FEATURES) if bare == f or bare.startswith(f + "_"))
        out[:, owner] += values[:, j]
    return out


def category_codes(df: pd.DataFrame, train: pd.DataFrame) -> pd.DataFrame:
    """The 10 inputs as numbers: each categorical column as the position of its category."""
    out = df[NUMERIC].copy()
    for c in CATEGORICAL:
        out[c] = pd.Categorical(df[c], categories=sorted(train[c].unique())).codes.astype(np.float64)
    return out


def build_lightgbm_categorical(train: pd.DataFrame, directory: Path) -> Path:
    """LightGBM with native categorical splits on the coded categoricals, through onnxmltools:
    each split "x in {c1, ..., cm}" becomes a chain of BRANCH_EQ nodes sharing their true child."""
    import lightgbm as lgb
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=16, random_state=0, n_jobs=1, verbose=-1,
                               min_data_per_group=5, cat_smooth=1, cat_l2=1, max_cat_threshold=12)
    model.fit(category_codes(train, train), train["defaulted"], categorical_feature=[7, 8, 9])
    onx = convert_lightgbm(model, initial_types=[("X", FloatTensorType([None, len(FEATURES)]))], zipmap=False,
                           target_opset=15)
    path = directory / "lightgbm_categorical.onnx"
    path.write_bytes(onx.SerializeToString())
    return path
