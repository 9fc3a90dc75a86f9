"""The error tree.

::

    AuditkitError
    ├── UserError              bad input: exit code 2, nothing is run
    │   ├── PolicyError        the policy file (syntax, keys, types, thresholds)
    │   │   └── UnknownCheckError
    │   ├── DataError          the data file or its columns
    │   ├── ModelLoadError     the model file (missing, corrupt, untrusted, wrong shape)
    │   └── OutputError        the output directory
    └── CheckError             raised inside a check: that check ends as ``error``

Every ``UserError`` names where the problem is (``source``: file, key, line, column) and
what was expected against what was found, so the CLI prints one line and exits 2.
"""
from __future__ import annotations

from dataclasses import dataclass
from difflib import get_close_matches
from typing import Iterable


class AuditkitWarning(UserWarning):
    """Warnings auditkit itself emits (turned into errors in our own test-suite)."""


@dataclass(frozen=True)
class Source:
    """Where in an input the problem lies."""

    path: str | None = None
    key: str | None = None
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        if self.key:
            where = f"{where} {self.key}" if where else self.key
        return where


class AuditkitError(Exception):
    """Base of every error auditkit raises on purpose."""

    def __init__(self, message: str, *, source: Source | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.hint = hint

    def __str__(self) -> str:
        where = str(self.source) if self.source else ""
        text = f"{where}: {self.message}" if where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class UserError(AuditkitError):
    """An input is invalid; nothing is run (exit code 2)."""


class PolicyError(UserError):
    """The policy file is invalid."""


class UnknownCheckError(PolicyError):
    """A check type that is not registered."""


class DataError(UserError):
    """The data file or one of its columns is invalid."""


class ModelLoadError(UserError):
    """The model cannot be loaded or does not fit the data."""


class OutputError(UserError):
    """The output directory cannot be written."""


class CheckError(AuditkitError):
    """A check cannot compute its result; that check ends with status ``error``."""


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name closest to a misspelt one, if any is close enough."""
    matches = get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return matches[0] if matches else None


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``"did you mean 'x'?"`` or the list of valid names."""
    valid = sorted(set(valid))
    best = closest(name, valid)
    if best is not None:
        return f"did you mean '{best}'?"
    shown = ", ".join(valid[:12]) + (", ..." if len(valid) > 12 else "")
    return f"valid: {shown}"
