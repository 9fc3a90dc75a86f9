"""Reading, validating and atomically writing result files."""
from __future__ import annotations

import json
import os
import secrets
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from auditkit.errors import UserError

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
