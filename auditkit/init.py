"""``auditkit init``: a starter policy from a model and a dataset, with guesses flagged for review.

The policy it writes must be one that ``auditkit validate`` accepts and ``auditkit run`` runs:
so the target is guessed from the model as well as from column names (a column the model does
not take whose values are its classes), the battery fits the model (performance and data
integrity; with protected columns, group fairness, proxy detection and local explanations),
and the written policy is checked against its inputs before ``init`` reports success.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from auditkit.adapters.base import AdapterSpec, ModelAdapter, infer_format, load_adapter
from auditkit.data.load import read_table
from auditkit.errors import UserError
from auditkit.results.io import atomic_write_text

PROTECTED_HINTS = re.compile(
    r"(^|_)(sex|gender|race|ethnic\w*|age|age_?band|age_?cat\w*|religion|disab\w*|marital\w*|nationality|"
    r"national_origin|pregnan\w*|sexual_orientation|citizenship|color|colour)($|_)", re.IGNORECASE)
TARGET_HINTS = re.compile(r"^(target|label|y|y_true|class|outcome|default(ed)?|is_recid|two_year_recid|hired|"
                          r"approved|diagnosis|churn(ed)?|is_fraud|fraud|survived|response)$", re.IGNORECASE)
# an outcome named like this is a harm: the person benefits from the other decision
RISK_HINTS = re.compile(r"(default|recid|fraud|churn|risk|bad|delinq|reject|declin|deni|malignan|disease|arrest|"
                        r"fail)", re.IGNORECASE)
ID_HINTS = re.compile(r"(^|_)(id|uuid|key|name|first|last|dob|ssn|email|phone)$", re.IGNORECASE)
MAX_GROUPS = 20  # a protected column with more distinct values is banded (numeric) or left out


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def _input_width(adapter: ModelAdapter | None) -> int | None:
    """How many columns a model that takes a plain matrix expects, when it says so."""
    if adapter is None or adapter.input_features is not None:
        return None
    width = getattr(adapter, "input_width", None)
    if width is None:
        width = getattr(getattr(adapter, "estimator", None), "n_features_in_", None)
    return int(width) if isinstance(width, (int, np.integer)) else None


def _holds_only(series: pd.Series, labels: list[Any]) -> bool:
    """Every value of ``series`` is one of ``labels`` (compared as text: 1, "1" and 1.0 alike)."""
    present = series.dropna()
    if present.nunique() < 2:
        return False
    wanted = {str(label) for label in labels} | {_as_number_text(label) for label in labels}
    return all(str(v) in wanted or _as_number_text(v) in wanted for v in present.unique())


def _as_number_text(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(int(number)) if number.is_integer() else str(number)


def _guess_target(frame: pd.DataFrame, adapter: ModelAdapter | None, ignore: set[str],
                  review: list[str]) -> str | None:
    """The outcome column: by name, else the only column outside the model's inputs whose
    values are the model's classes."""
    columns = list(frame.columns)
    inputs = set(adapter.input_features or []) if adapter is not None else set()
    by_name = [c for c in columns if TARGET_HINTS.match(c) and c not in inputs]
    if by_name:
        review.append(f"target guessed as '{by_name[0]}' (from its name)")
        return by_name[0]
    if adapter is not None and adapter.classes:
        candidates = [c for c in columns if c not in inputs and c not in ignore and _holds_only(frame[c], adapter.classes)]
        if len(candidates) == 1:
            classes = ", ".join(map(str, adapter.classes[:6]))
            review.append(f"target guessed as '{candidates[0]}': the only column the model does not take whose "
                          f"values are its classes ({classes})")
            return candidates[0]
        if len(candidates) > 1:
            review.append(f"no target chosen: {', '.join(candidates[:6])} all hold the model's classes; "
                          "pass --target")
            return None
    review.append("no target column recognised: add data.target (or pass --target) to run label-based checks")
    return None


def _favorable_label(target: str | None, positive: Any, adapter: ModelAdapter | None) -> Any:
    """The positive class, unless the target names a harm (``defaulted``): then the other class."""
    if target is None or not RISK_HINTS.search(target):
        return positive
    classes = list(adapter.classes or []) if adapter is not None else []
    others = [c for c in classes if str(c) != str(positive)]
    if len(others) == 1:
        return others[0]
    return 0 if str(positive) == "1" else positive


def _group_attributes(frame: pd.DataFrame, protected: list[str], review: list[str]) -> tuple[list[str], dict[str, list[float]]]:
    """Protected columns usable as groups, and bin edges for the numeric ones with many values."""
    usable: list[str] = []
    bins: dict[str, list[float]] = {}
    for name in protected:
        column = frame[name]
        distinct = column.nunique(dropna=True)
        if distinct <= MAX_GROUPS:
            usable.append(name)
        elif pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(column.dtype):
            edges = sorted({float(np.round(q)) for q in column.quantile([0.25, 0.5, 0.75]).dropna()})
            if edges:
                usable.append(name)
                bins[name] = edges
                review.append(f"'{name}' has {distinct} values: grouped at its quartiles {edges} "
                              f"(edit checks[].params.bins to use your bands)")
        else:
            review.append(f"'{name}' has {distinct} distinct values: left out of the fairness checks "
                          "(band it, or list it with bins)")
    return usable, bins


TEXT_MIN_WORDS = 5  # a string input whose values average this many words is free text, not a category


def _free_text_inputs(frame: pd.DataFrame, inputs: list[str] | None) -> list[str]:
    """The model inputs that hold free text: string values of TEXT_MIN_WORDS words or more on average."""
    found = []
    for name in inputs or []:
        if name in frame.columns and not pd.api.types.is_numeric_dtype(frame[name].dtype):
            words = frame[name].dropna().astype(str).str.count(r"\w+")
            if len(words) and float(words.mean()) >= TEXT_MIN_WORDS:
                found.append(name)
    return found


def _battery(*, task: str | None, target: str | None, has_model: bool, features: list[str],
             groups: list[str], bins: dict[str, list[float]], text: list[str] | None = None) -> list[dict[str, Any]]:
    checks: list[dict[str, Any]] = []
    text = text or []
    only_text = bool(text) and set(features) <= set(text)  # checks that probe inputs would be skipped
    if target:
        if task in (None, "binary"):
            thresholds: dict[str, Any] = {"roc_auc": {"min": 0.7}}
        elif task == "multiclass":
            thresholds = {"accuracy": {"min": 0.7}}
        else:
            thresholds = {"r2": {"min": 0.5}}
        checks.append({"id": "performance", "type": "performance", "params": {"bootstrap": 1000},
                       "thresholds": thresholds})
    checks.append({"id": "data-quality", "type": "data_integrity",
                   "thresholds": {"duplicate_rows": {"max": 0, "severity": "warn"},
                                  "max_missing_share": {"max": 0.05, "severity": "warn"},
                                  "infinite_cells": {"max": 0}}})
    if groups and task in (None, "binary"):
        params: dict[str, Any] = {"attributes": groups, "min_group_size": 30, "bootstrap": 1000}
        if bins:
            params["bins"] = bins
        checks.append({"id": "group-fairness", "type": "group_fairness", "params": params,
                       "thresholds": {"selection_rate_ratio": {"min": 0.8},
                                      "equalized_odds_difference": {"max": 0.1, "severity": "warn"}}})
    if groups and features and not only_text:
        checks.append({"id": "proxies", "type": "proxy_detection", "params": {"attributes": groups},
                       "thresholds": {"max_single_feature_auc": {"max": 0.7, "severity": "warn"}}})
    if groups and has_model and task in (None, "binary") and not only_text:
        checks.append({"id": "explained-cases", "type": "local_explanations", "params": {"sample": 5}})
    if len(text) == 1 and has_model:
        checks.append({"id": "words", "type": "token_attributions", "params": {"max_rows": 200, "shap_rows": 20},
                       "thresholds": {"identity_attribution_share": {"max": 0.05, "severity": "warn"}}})
        checks.append({"id": "identity-terms", "type": "identity_substitution",
                       "thresholds": {"flip_rate": {"max": 0.01}}})
        checks.append({"id": "typos", "type": "text_noise",
                       "thresholds": {"flip_rate": {"max": 0.05, "severity": "warn"}}})
    return checks


def write_starter_policy(*, model: Path | None, data: Path, output: Path, target: str | None,
                         trust_pickle: bool, force: bool) -> tuple[Path, list[str]]:
    """Write a starter policy, check it against its inputs, and return (path, review notes).

    Raises UserError when the written policy does not validate (the file is kept, so that the
    user can finish it) or when an argument is wrong.
    """
    if output.exists() and not force:
        raise UserError(f"{output} exists; pass --force to overwrite it")
    table = read_table(data, key="--data")
    frame = table.frame
    columns = list(frame.columns)
    review: list[str] = []
    if target is not None and target not in columns:
        raise UserError(f"--target {target}: not a column of {data}")

    adapter: ModelAdapter | None = None
    if model is not None:
        fmt = infer_format(str(model), None)
        adapter = load_adapter(AdapterSpec(format=fmt, path=str(model), trust_pickle=trust_pickle,
                                           policy_key="--model"))
    inputs = adapter.input_features if adapter is not None else None

    ids = {c for c in columns if ID_HINTS.search(c) and c not in (inputs or [])}
    if target is None:
        target = _guess_target(frame, adapter, ids, review)
    protected = [c for c in columns if PROTECTED_HINTS.search(c) and c != target]
    if protected:
        review.append(f"protected attributes guessed from column names: {', '.join(protected)} "
                      "(add or remove: these are the groups the fairness checks compare)")
    ignore = [c for c in columns if c in ids and c not in protected and c != target]
    free_text = [c for c in columns if c not in ignore and c != target and c not in (inputs or [])
                 and frame[c].dtype == object and frame[c].nunique() > max(50, 0.5 * len(frame))]
    ignore += free_text
    if ignore:
        review.append(f"ignored as identifiers or free text: {', '.join(ignore)}")

    model_block: dict[str, Any]
    task = None
    if adapter is None or model is None:
        model_block = {"format": "predictions", "score_column": "REPLACE_ME", "prediction_column": "REPLACE_ME"}
        review.append("no --model: predictions mode; set model.score_column and/or model.prediction_column")
    else:
        task = adapter.task
        model_block = {"path": _relative(model, output.parent), "format": adapter.format, "task": task}
        if adapter.sha256 and adapter.format in ("pickle", "joblib"):
            model_block["sha256"] = adapter.sha256
            review.append("model.sha256 pins the pickle you passed: keep it only if you trust that file")
        if task == "binary":
            model_block["positive_class"] = adapter.positive_class_label() if adapter.classes else 1
            model_block["threshold"] = 0.0 if adapter.score_kind == "decision_function" else 0.5
            review.append("positive_class/threshold: check the class whose score is audited and the cut-off used")

    features = list(inputs) if inputs is not None else \
        [c for c in columns if c not in set(ignore) | set(protected) | {target}]
    width = _input_width(adapter)
    if width is not None and width != len(features):
        review.append(f"the model takes {width} columns but {len(features)} remain as features: list the model's "
                      "inputs, in order, under data.features")

    data_block: dict[str, Any] = {"path": _relative(data, output.parent)}
    if target:
        data_block["target"] = target
    data_block["protected"] = protected
    data_block["features"] = features
    if ignore:
        data_block["ignore"] = ignore
    text = _free_text_inputs(frame, inputs if inputs is not None else features)
    if text:
        data_block["text"] = text
        review.append(f"declared as free text (data.text): {', '.join(text)}; "
                      + ("text checks added (token_attributions, identity_substitution, text_noise)" if len(text) == 1
                         else "the text checks read one column: add them with params.column"))
    if task == "binary":
        data_block["favorable_label"] = _favorable_label(target, model_block.get("positive_class", 1), adapter)
        review.append(f"data.favorable_label: {data_block['favorable_label']!r} is taken as the decision that "
                      "benefits the person (for a risk score such as default or recidivism, the negative class)")

    groups, bins = _group_attributes(frame, protected, review)
    checks = _battery(task=task, target=target, has_model=adapter is not None, features=features,
                      groups=groups, bins=bins, text=text)
    name = model.name if model else "recorded decisions"
    policy = {"version": 1, "name": f"Audit of {name} on {data.name}",
              "seed": 42, "model": model_block, "data": data_block, "checks": checks,
              "report": {"title": f"Audit of {model.name if model else data.name}",
                         "formats": ["html", "pdf", "json", "junit", "md"]}}
    from io import StringIO

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 120
    yaml.representer.ignore_aliases = lambda *args: True  # policies refuse anchors: write shared lists out
    buffer = StringIO()
    buffer.write("# Starter policy written by `auditkit init`. Review every line marked in the terminal output.\n")
    buffer.write("# `auditkit checks` lists every check type; `auditkit schema` gives editors the JSON Schema.\n")
    yaml.dump(policy, buffer)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buffer.getvalue())
    if model_block.get("format") != "predictions":
        _check_written(output)
    return output, review


def _check_written(output: Path) -> None:
    """What ``auditkit validate`` would say of the written policy (the file stays either way)."""
    from auditkit.engine.run import check_inputs
    from auditkit.policy.load import load_policy

    try:
        check_inputs(load_policy(output))
    except UserError as exc:
        raise UserError(f"wrote {output}, but it does not validate yet; edit it, then run `auditkit validate "
                        f"{output}`: {exc}") from None
