"""What the worker processes import before any check starts: the modules the plan's checks import.

Workers fork from a forkserver, so what the forkserver imports is imported once per audit and
shared by every worker. Checks import their heavy libraries (scikit-learn, scipy, shap, lime)
inside their functions, so that ``auditkit checks`` or a run of two checks does not load them
all; without a preload the first check of each worker to need one pays its import (seconds)
and counts it in its ``duration_s``. The parent knows the plan before it loads any data, so it
names the plan's modules here and the forkserver imports them while the parent loads the data
(:mod:`auditkit.engine.forkserver_preload`).

A check type's modules are found by reading its source, not by running it: every import of
its module, at any depth (functions included, ``if TYPE_CHECKING:`` blocks excluded),
following the modules of its own package that hold computations (for auditkit: ``checks``
and ``methods``), plus any a check declares with ``@check(preload=...)`` for imports its
source does not show. Standard-library modules are left out. ``from X import y`` is
preloaded as ``X.y``: importing it imports ``X``, and ``X.y`` too where it is a submodule
(``from scipy import stats``); where ``y`` is a name inside ``X`` that import fails harmlessly.

Set ``AUDITKIT_NO_PRELOAD=1`` to preload nothing beyond the engine's own modules (for
``benchmarks/engine.py``, which measures checks with and without it).
"""
from __future__ import annotations

import ast
import importlib.util
import os
import sys
from functools import lru_cache
from importlib.machinery import ModuleSpec, PathFinder
from typing import Final, Iterable

from auditkit.core.registry import CheckType

#: The environment variable through which the parent hands the list to the forkserver.
PRELOAD_ENV: Final = "AUDITKIT_PRELOAD_MODULES"
#: ... and its ``sys.path``, which Python 3.11's forkserver receives but does not apply.
PRELOAD_PATH_ENV: Final = "AUDITKIT_PRELOAD_PATH"
#: Set to 1 to switch the plan's preload off (the forkserver imports only the engine).
DISABLE_ENV: Final = "AUDITKIT_NO_PRELOAD"
# Within auditkit, the packages that hold a check's computation. The rest (engine, adapters,
# results) is imported by every worker already, or runs before the check's clock starts.
_AUDITKIT_FOLLOWED: Final = ("auditkit.checks", "auditkit.methods")


def preload_disabled() -> bool:
    return os.environ.get(DISABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def modules_to_preload(check_types: Iterable[CheckType]) -> list[str]:
    """The modules to import in the forkserver for checks of these types, in first-seen order.

    Each type's own module comes first (the registry imports it in every worker anyway), then
    the third-party modules its code imports and those it declares.
    """
    if preload_disabled():
        return []
    names: dict[str, None] = {}
    for check_type in check_types:
        module = check_type.func.__module__
        names[module] = None
        for name in (*imports_of(module), *check_type.preload):
            names[name] = None
    return list(names)


@lru_cache(maxsize=None)
def imports_of(module: str) -> tuple[str, ...]:
    """Non-standard-library modules that ``module`` imports anywhere in its source, following
    the modules that hold computations: auditkit's ``checks`` and ``methods``, and for a
    plugin, its own package (see the module docstring)."""
    root = module.split(".")[0]
    followed = _AUDITKIT_FOLLOWED + ((root,) if root != "auditkit" else ())
    seen: set[str] = set()
    found: dict[str, None] = {}
    stack = [module]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        for name in _imports_in_source(current):
            top = name.split(".")[0]
            if any(name == f or name.startswith(f + ".") for f in followed):
                stack.append(_module_part(name))
            elif top not in ("auditkit", root, "__future__") and top not in sys.stdlib_module_names:
                found[name] = None
    return tuple(found)


def _module_part(name: str) -> str:
    """``a.b.c`` if it is a module of the followed package, else ``a.b`` (``c`` a name in it)."""
    return name if _locate(name) is not None else name.rsplit(".", 1)[0]


def _locate(module: str) -> ModuleSpec | None:
    """The module's spec, found on disk without importing it or its packages (the parent
    must not pay for what a check's module imports at its top)."""
    parts = module.split(".")
    loaded = sys.modules.get(parts[0])
    try:
        spec = loaded.__spec__ if loaded is not None else importlib.util.find_spec(parts[0])
    except (ImportError, ValueError, AttributeError):
        return None
    for i in range(1, len(parts)):
        if spec is None or spec.submodule_search_locations is None:
            return None
        spec = PathFinder.find_spec(".".join(parts[: i + 1]), list(spec.submodule_search_locations))
    return spec


def _imports_in_source(module: str) -> list[str]:
    spec = _locate(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return []
    try:
        with open(spec.origin, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=spec.origin)
    except (OSError, SyntaxError, ValueError):
        return []
    package = module if spec.submodule_search_locations is not None else module.rpartition(".")[0]
    names: list[str] = []
    for node in _walk_outside_type_checking(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            if base:
                names.extend(f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names)
    return names


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    if node.level - 1 > len(parts) - 1:
        return ""
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def _walk_outside_type_checking(tree: ast.AST) -> Iterable[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:`` (annotations, never imported), in
    source order."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        children: list[ast.AST] = []
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                children.extend(child.orelse)
            else:
                children.append(child)
        stack.extend(reversed(children))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
