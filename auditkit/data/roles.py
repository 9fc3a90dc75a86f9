"""Which column plays which role: features, target, protected, ignored, recorded predictions."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from auditkit.errors import DataError, Source, did_you_mean
from auditkit.policy.models import DataSpec, ModelSpec


@dataclass(frozen=True)
class Roles:
    features: list[str]
    target: str | None
    protected: list[str]
    ignore: list[str]
    score_column: str | None
    prediction_column: str | None
    text: list[str] = field(default_factory=list)  # data.text: free-text model inputs


def _require(columns: list[str], name: str, key: str, path: str, policy_file: str | None) -> None:
    if name not in columns:
        raise DataError(f"column '{name}' is not in {path}; {did_you_mean(name, columns)}",
                        source=Source(policy_file, key))


def resolve_roles(data: DataSpec, model: ModelSpec, columns: list[str], *, data_path: str,
                  model_inputs: list[str] | None, policy_file: str | None) -> Roles:
    """Resolve column roles as DESIGN.md says; every named column must exist."""
    def need(name: str, key: str) -> None:
        _require(columns, name, key, data_path, policy_file)

    if data.target is not None:
        need(data.target, "data.target")
    for i, name in enumerate(data.protected):
        need(name, f"data.protected[{i}]")
    for i, name in enumerate(data.ignore):
        need(name, f"data.ignore[{i}]")
    for i, name in enumerate(data.proxies):
        need(name, f"data.proxies[{i}]")
    if model.score_column is not None:
        need(model.score_column, "model.score_column")
    if model.prediction_column is not None:
        need(model.prediction_column, "model.prediction_column")

    if data.features is not None:
        for i, name in enumerate(data.features):
            need(name, f"data.features[{i}]")
        features = list(data.features)
        if model_inputs is not None:
            missing = [c for c in model_inputs if c not in features]
            if missing:
                raise DataError(f"the model needs input columns {missing}, which data.features leaves out",
                                source=Source(policy_file, "data.features"))
    elif model_inputs is not None:
        for name in model_inputs:
            if name not in columns:
                raise DataError(
                    f"the model needs column '{name}', which is not in {data_path}; {did_you_mean(name, columns)}",
                    source=Source(policy_file, "data.path"))
        features = list(model_inputs)
    else:
        excluded = set(data.ignore) | set(data.protected) | {data.target, model.score_column, model.prediction_column}
        features = [c for c in columns if c not in excluded]
    if data.target is not None and data.target in features:
        raise DataError(f"the target '{data.target}' is also a feature", source=Source(policy_file, "data.features"))
    for i, name in enumerate(data.text):
        need(name, f"data.text[{i}]")
        if name not in features:  # text the model never reads has no tokens to attribute or swap
            raise DataError(f"data.text names '{name}', which is not a model input (features: {', '.join(features)})",
                            source=Source(policy_file, f"data.text[{i}]"))
    return Roles(features=features, target=data.target, protected=list(data.protected), ignore=list(data.ignore),
                 score_column=model.score_column, prediction_column=model.prediction_column, text=list(data.text))


def text_in_numeric(frame: pd.DataFrame, columns: list[str]) -> tuple[str, str, int] | None:
    """A column that is numbers with a few stray texts: (column, the text, its row), or None.

    A column where nearly every value parses as a number but some do not is a numeric
    feature with text in it ("n/a", "12,5", "unknown"): it would otherwise be read as
    categorical and silently fed to the model as such.
    """
    for name in columns:
        series = frame[name]
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
            continue
        present = series.dropna()
        if len(present) == 0:
            continue
        # a text column shows itself in its first values; only a mostly-numeric one is parsed in full
        head = pd.to_numeric(present.iloc[:500], errors="coerce")
        if head.notna().mean() < 0.9:
            continue
        parsed = pd.to_numeric(present, errors="coerce")
        ok = parsed.notna()
        if ok.mean() >= 0.95 and not ok.all():
            bad_index = present.index[~ok.to_numpy()][0]
            return name, str(series.loc[bad_index]), int(bad_index)
    return None
