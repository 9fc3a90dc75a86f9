"""Reading a results.json that is an input of a command (diff, verify, a baseline)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditkit.errors import Source, UserError
from auditkit.results.model import RESULTS_SCHEMA_VERSION


class ResultsFileError(UserError):
    """A results.json given as an input cannot be used (missing, unreadable, another schema)."""


@dataclass(frozen=True)
class ResultsFile:
    """A results.json as read: its content and the SHA-256 of the bytes parsed."""

    path: Path
    results: dict[str, Any]
    sha256: str


def read_results(path: str | Path, *, role: str = "results", source: Source | None = None) -> ResultsFile:
    """Read, hash and validate a results.json; a :class:`ResultsFileError` naming the file
    (and ``role``: "baseline", "current"...) when it is not one this auditkit can read.

    The schema version is checked before the schema itself, so that a file written by
    another version of the contract is named as such, not as a schema violation.
    """
    path = Path(path)
    if not path.is_file():
        raise ResultsFileError(f"{role} results file not found: {path}", source=source)
    try:
        raw = path.read_bytes()
        results = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsFileError(f"{role} results file {path} is not readable JSON ({exc})", source=source) from None
    if not isinstance(results, dict) or "checks" not in results:
        raise ResultsFileError(f"{role} results file {path} is not an auditkit results.json", source=source)
    version = results.get("schema_version")
    if version != RESULTS_SCHEMA_VERSION:
        writer = results.get("auditkit_version")
        by = f" (written by auditkit {writer})" if isinstance(writer, str) else ""
        raise ResultsFileError(
            f"{role} results file {path} has schema_version {version!r}{by}; this auditkit reads "
            f"schema_version {RESULTS_SCHEMA_VERSION}", source=source)
    import jsonschema

    from auditkit.results.io import validate_results

    try:
        validate_results(results)
    except jsonschema.ValidationError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ResultsFileError(f"{role} results file {path} is not a valid auditkit results.json: at {at}: "
                               f"{exc.message}", source=source) from None
    return ResultsFile(path=path, results=results, sha256=hashlib.sha256(raw).hexdigest())
