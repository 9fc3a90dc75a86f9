"""Reading, validating and atomically writing result files."""
from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from auditkit.errors import Source, UserError
from auditkit.results.model import RESULTS_SCHEMA_VERSION

SCHEMA_FILE = "results-v1.schema.json"


def write_synced(path: Path, payload: bytes) -> None:
    """Create ``path`` (it must not exist) holding ``payload``, flushed and fsynced.

    The one place result files reach the disk, so a full disk (ENOSPC, raised by the write
    or by the fsync) surfaces here whatever the format.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a reader sees no file or a complete one.

    Temporary file in the same directory (``os.replace`` is atomic only within one file
    system), flushed and fsynced before the rename.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        write_synced(tmp, payload)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps(results: dict[str, Any]) -> str:
    # allow_nan=False: the contract has no NaN; to_jsonable has already turned them into null.
    return json.dumps(results, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


@lru_cache(maxsize=1)
def results_schema() -> dict[str, Any]:
    text = resources.files("auditkit.results").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def validate_results(results: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` when ``results`` breaks the shipped schema."""
    import jsonschema

    jsonschema.validate(results, results_schema())


def load_results(path: Path) -> dict[str, Any]:
    """Read a results.json for re-rendering; a clear UserError when it is not one."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"results file not found: {path}")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable results.json ({exc})") from None
    import jsonschema

    try:
        validate_results(results)
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise UserError(f"{path}: not an auditkit results file: at {where}: {exc.message}") from None
    return results


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

    try:
        validate_results(results)
    except jsonschema.ValidationError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ResultsFileError(f"{role} results file {path} is not a valid auditkit results.json: at {at}: "
                               f"{exc.message}", source=source) from None
    return ResultsFile(path=path, results=results, sha256=hashlib.sha256(raw).hexdigest())
