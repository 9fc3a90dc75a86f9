"""How much worse a figure may get before ``auditkit diff`` calls it a regression.

``--tolerance`` is repeatable: a bare number is the default for every metric; ``METRIC=X``
applies to a metric (``selection_rate_ratio`` covers each ``selection_rate_ratio[...]``, as a
threshold does), ``CHECK:METRIC=X`` to one check's metric. For one figure the tolerance is,
first found:

1. the most specific ``--tolerance`` rule (check and exact name, check and covering name,
   exact name, covering name);
2. the relative bound the current run's policy declares on it (``max_decrease`` when higher
   is better, ``max_increase`` when lower is): the release gate and the diff then agree;
3. the default ``--tolerance`` (0: any worsening counts).

Tolerances are absolute, in the metric's own units.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from auditkit.compare.directions import Direction
from auditkit.core.metric_names import threshold_applies
from auditkit.errors import UserError

_CHECK_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class Rule:
    check_id: Optional[str]
    metric: str
    value: float


@dataclass(frozen=True)
class Tolerances:
    default: float = 0.0
    rules: tuple[Rule, ...] = field(default_factory=tuple)

    def for_metric(self, check_id: str, metric: str, direction: Optional[Direction],
                   findings: Iterable[dict[str, Any]] = ()) -> tuple[float, str]:
        """The tolerance of one figure and where it came from (the rule, the policy, or default)."""
        ranked = []
        for rule in self.rules:
            if rule.check_id not in (None, check_id) or not threshold_applies(rule.metric, metric):
                continue
            rank = (rule.check_id is None, rule.metric != metric)  # smaller is more specific
            ranked.append((rank, rule))
        if ranked:
            rule = min(ranked, key=lambda item: item[0])[1]
            scope = f"{rule.check_id}:{rule.metric}" if rule.check_id else rule.metric
            return rule.value, f"--tolerance {scope}={rule.value:g}"
        bound = {"higher": "max_decrease", "lower": "max_increase"}.get(direction or "")
        if bound is not None:
            declared = [f[bound] for f in findings if isinstance(f.get(bound), (int, float))]
            if declared:
                return float(min(declared)), f"policy {bound}"
        return self.default, "--tolerance" if self.default else "default (none)"


def _number(text: str, option: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--tolerance {option}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"--tolerance {option}: must be a finite number >= 0, got {text}")
    return value


def parse_tolerances(values: Iterable[str]) -> Tolerances:
    """``--tolerance`` values (each may also be comma-separated) as :class:`Tolerances`."""
    default = 0.0
    rules: list[Rule] = []
    for value in values:
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            if "=" not in part:
                default = _number(part, part)
                continue
            name, _, number = part.rpartition("=")
            name = name.strip()
            check_id = None
            head, colon, rest = name.partition(":")
            if colon and "[" not in head and _CHECK_ID_RE.fullmatch(head):
                check_id, name = head, rest.strip()
            if not name:
                raise UserError(f"--tolerance {part}: name a metric before '=' (METRIC=X or CHECK:METRIC=X)")
            rules.append(Rule(check_id, name, _number(number.strip(), part)))
    return Tolerances(default, tuple(rules))
