"""Metric names (DESIGN.md): a figure that exists once per attribute, feature or level is
named ``metric[key]``; a threshold on ``metric`` applies to every ``metric[...]``."""
from __future__ import annotations


def metric_matches(name: str, pattern: str) -> bool:
    """``selection_rate_ratio`` and ``selection_rate_ratio[sex]`` both match ``selection_rate_ratio[*]``."""
    if pattern.endswith("[*]"):
        stem = pattern[:-3]
        return name == stem or (name.startswith(stem + "[") and name.endswith("]"))
    return name == pattern


def threshold_applies(threshold_key: str, metric_name: str) -> bool:
    """A threshold on ``x`` applies to ``x`` and to every ``x[...]``; on ``x[a]`` only to ``x[a]``."""
    return metric_name == threshold_key or (
        "[" not in threshold_key and metric_name.startswith(threshold_key + "[") and metric_name.endswith("]"))
