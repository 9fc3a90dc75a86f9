"""core.decisions: the contract's decision rule, and the only place it is written."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from auditkit.core.decisions import decide

PACKAGE = Path(__file__).resolve().parents[2] / "auditkit"


def test_decision_is_one_at_and_above_the_threshold():
    assert decide([0.2, 0.4999, 0.5, 0.9], 0.5).tolist() == [0, 0, 1, 1]
    assert decide(np.array([[-1.0, 0.0], [2.0, -0.1]]), 0.0).tolist() == [[0, 1], [1, 0]]
    assert decide([0.3], 0.5).dtype == np.int64


def test_nan_score_decides_zero():
    assert decide([np.nan, 1.0], 0.5).tolist() == [0, 1]


def test_no_module_writes_the_rule_itself():
    """`score >= threshold` in code (not in a docstring) anywhere but core/decisions.py is a
    second copy of the contract's rule (issue #17 found it at 20 places in 11 files)."""
    rule = re.compile(r">=\s*(?:self\.|ctx\.data\.|data\.)?threshold\b")
    copies = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "decisions.py" and path.parent.name == "core":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if rule.search(code) and "`" not in code and '"' not in code:
                copies.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    assert copies == []
