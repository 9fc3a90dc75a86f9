"""Imported by the forkserver, before it forks any worker: the plan's modules, once per audit.

The forkserver's preload takes module names only, so this module does its work when it is
imported: it imports every module named in ``AUDITKIT_PRELOAD_MODULES`` (comma-separated,
set by the parent from the plan, see :mod:`auditkit.engine.preload`), looked up on the
parent's ``sys.path`` (``AUDITKIT_PRELOAD_PATH``), and loads the check registry, so that
workers start with them. A module that fails to import is skipped without
a word: the check that needs it meets the same error and reports it as its own ``error``
(the forkserver's own preload would stop at anything but an ImportError, and every check
with it). Ctrl-C still stops it.
"""
from __future__ import annotations

import importlib
import os
import sys

from auditkit.engine.preload import PRELOAD_ENV, PRELOAD_PATH_ENV


def preload(names: list[str]) -> list[str]:
    """Import each module of ``names``; return those that could not be imported."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # not only ImportError: a failing import must not stop the server
            failed.append(name)
    return failed


def _preload_from_environment() -> None:
    names = [n.strip() for n in os.environ.get(PRELOAD_ENV, "").split(",") if n.strip()]
    if not names:
        return
    # the parent's import path, where its check modules were found (a worker gets it from
    # multiprocessing; the server, started as `python -c`, only has the working directory)
    for entry in os.environ.get(PRELOAD_PATH_ENV, "").split(os.pathsep):
        if entry and entry not in sys.path:
            sys.path.append(entry)
    preload(names)
    try:
        from auditkit.core.registry import get_registry

        get_registry()  # every check module once, not once per worker
    except Exception:  # each worker loads it again, and reports what fails
        pass


_preload_from_environment()
