"""``auditkit init``: a starter policy from a model and a dataset, with guesses flagged for review."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any


from auditkit.adapters.base import AdapterSpec, infer_format, load_adapter
from auditkit.data.load import read_table
from auditkit.errors import UserError
from auditkit.results.io import atomic_write_text

PROTECTED_HINTS = re.compile(
    r"(^|_)(sex|gender|race|ethnic\w*|age|age_?band|age_?cat\w*|religion|disab\w*|marital\w*|nationality|"
    r"national_origin|pregnan\w*|sexual_orientation|citizenship|color|colour)($|_)", re.IGNORECASE)
TARGET_HINTS = re.compile(r"^(target|label|y|class|outcome|default(ed)?|is_recid|two_year_recid|hired|approved)$",
                          re.IGNORECASE)
ID_HINTS = re.compile(r"(^|_)(id|uuid|key|name|first|last|dob|ssn|email|phone)$", re.IGNORECASE)


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(path.resolve(), start.resolve())


def write_starter_policy(*, model: Path | None, data: Path, output: Path, target: str | None,
                         trust_pickle: bool, force: bool) -> tuple[Path, list[str]]:
    if output.exists() and not force:
        raise UserError(f"{output} exists; pass --force to overwrite it")
    table = read_table(data, key="--data")
    frame = table.frame
    columns = list(frame.columns)
    review: list[str] = []
    if target is not None and target not in columns:
        raise UserError(f"--target {target}: not a column of {data}")
    if target is None:
        target = next((c for c in columns if TARGET_HINTS.match(c)), None)
        if target:
            review.append(f"target guessed as '{target}'")
        else:
            review.append("no target column recognised: add data.target to run label-based checks")
    protected = [c for c in columns if PROTECTED_HINTS.search(c) and c != target]
    if protected:
        review.append(f"protected attributes guessed from column names: {', '.join(protected)} "
                      "(add or remove: these are the groups the fairness checks compare)")
    ignore = [c for c in columns if ID_HINTS.search(c) and c not in protected and c != target]
    free_text = [c for c in columns if c not in ignore and c != target and frame[c].dtype == object
                 and frame[c].nunique() > max(50, 0.5 * len(frame))]
    ignore += free_text
    if ignore:
        review.append(f"ignored as identifiers or free text: {', '.join(ignore)}")

    model_block: dict[str, Any]
    task = None
    features: list[str] | None = None
    if model is None:
        model_block = {"format": "predictions", "score_column": "REPLACE_ME", "prediction_column": "REPLACE_ME"}
        review.append("no --model: predictions mode; set model.score_column and/or model.prediction_column")
    else:
        fmt = infer_format(str(model), None)
        adapter = load_adapter(AdapterSpec(format=fmt, path=str(model), trust_pickle=trust_pickle,
                                           policy_key="--model"))
        task = adapter.task
        features = adapter.input_features
        model_block = {"path": _relative(model, output.parent), "format": fmt, "task": task}
        if adapter.sha256 and fmt in ("pickle", "joblib"):
            model_block["sha256"] = adapter.sha256
            review.append("model.sha256 pins the pickle you passed: keep it only if you trust that file")
        if task == "binary":
            model_block["positive_class"] = adapter.positive_class_label() if adapter.classes else 1
            model_block["threshold"] = 0.0 if adapter.score_kind == "decision_function" else 0.5
            review.append("positive_class/threshold: check the class whose score is audited and the cut-off used")
    if features is None:
        features = [c for c in columns if c not in set(ignore) | set(protected) | {target}]
    data_block: dict[str, Any] = {"path": _relative(data, output.parent)}
    if target:
        data_block["target"] = target
    data_block["protected"] = protected
    data_block["features"] = features
    if ignore:
        data_block["ignore"] = ignore
    if task == "binary":
        data_block["favorable_label"] = model_block.get("positive_class", 1)
        review.append("data.favorable_label: the decision that benefits the person (for a risk score, usually 0)")

    checks: list[dict[str, Any]] = [
        {"id": "data-quality", "type": "data_integrity",
         "thresholds": {"duplicate_rows": {"max": 0, "severity": "warn"},
                        "max_missing_share": {"max": 0.05, "severity": "warn"}}},
    ]
    if target:
        if task in (None, "binary"):
            thresholds = {"roc_auc": {"min": 0.7}}
        elif task == "multiclass":
            thresholds = {"accuracy": {"min": 0.7}}
        else:
            thresholds = {"r2": {"min": 0.5}}
        checks.insert(0, {"id": "performance", "type": "performance", "params": {"bootstrap": 1000},
                          "thresholds": thresholds})
    policy = {"version": 1, "name": f"Audit of {model.name if model else 'recorded decisions'} on {data.name}",
              "seed": 42, "model": model_block, "data": data_block, "checks": checks,
              "report": {"title": f"Audit of {model.name if model else data.name}",
                         "formats": ["html", "pdf", "json", "junit", "md"]}}
    from io import StringIO

    from ruamel.yaml import YAML

    yaml = YAML()
    yaml.default_flow_style = None
    yaml.width = 100
    buffer = StringIO()
    buffer.write("# Starter policy written by `auditkit init`. Review every line marked in the terminal output.\n")
    buffer.write("# `auditkit checks` lists every check type; `auditkit schema` gives editors the JSON Schema.\n")
    yaml.dump(policy, buffer)
    output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(output, buffer.getvalue())
    return output, review
