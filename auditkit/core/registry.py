"""The one registry: check ``type`` -> implementation, params schema, metrics, docs.

Checks are plain functions marked with :func:`check`. The registry learns the built-in ones by
walking the ``auditkit.checks`` package (one module per check type, in the folder of its
family), third-party ones from the entry-point group ``auditkit.checks`` and from the modules
named in ``AUDITKIT_PLUGINS`` (comma-separated); never from import side effects. Adding a
built-in check is one new module.
"""
from __future__ import annotations

import importlib
import inspect
import os
import pkgutil
import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Optional

from pydantic import BaseModel, ConfigDict, model_validator

from auditkit.errors import did_you_mean

if TYPE_CHECKING:
    from auditkit.engine.context import AuditContext
    from auditkit.policy.models import Policy
    from auditkit.results.model import CheckOutput

ENTRY_POINT_GROUP = "auditkit.checks"
BUILTIN_PACKAGE = "auditkit.checks"
PLUGINS_ENV = "AUDITKIT_PLUGINS"
Family = Literal["performance", "data", "explanations", "local", "fairness", "robustness", "influence"]
_MARK = "__auditkit_check__"
#: What a check's table can be in a case file: the row's score and decision ("decision", whose
#: rows are the case files), its reasons ("reasons": row, rank, text), the change that flips it
#: ("recourse": row, found, changes, score_before, score_after), a rule that holds around it
#: ("rule": row, rule, precision, coverage), and per-row charts ("charts").
CASE_FILE_ROLES = ("decision", "reasons", "recourse", "rule", "charts")


class CheckParams(BaseModel):
    """Base of every check's params model: frozen, unknown keys rejected.

    ``renamed`` maps a parameter's former name to its current one: policies written with the
    old name still load (the policy loader warns), so a rename has a deprecation path.
    """

    # allow_inf_nan=False: a NaN bound or level would silently switch a computation off
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    renamed: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _accept_former_names(cls, values: Any) -> Any:
        if not (isinstance(values, dict) and cls.renamed):
            return values
        values = dict(values)
        for old, new in cls.renamed.items():
            if old in values:
                if new in values:
                    raise ValueError(f"'{old}' is the former name of '{new}': give '{new}' only")
                values[new] = values.pop(old)
        return values

    @classmethod
    def former_names_in(cls, values: Any) -> list[tuple[str, str]]:
        """(former, current) for each renamed parameter that ``values`` still uses."""
        if not isinstance(values, dict):
            return []
        return [(old, new) for old, new in cls.renamed.items() if old in values]


@dataclass(frozen=True)
class CheckType:
    """What the registry knows of one check type."""

    type: str
    family: str
    func: Callable[["AuditContext", Any], "CheckOutput"]
    params: type[CheckParams]
    metrics: tuple[str, ...]  # names; "name[*]" is one per attribute/feature/level
    needs_model: bool = False  # queries the model beyond the base predictions
    needs_target: bool = False
    example: dict[str, Any] = field(default_factory=dict)
    # (params, policy) -> metric names this configuration produces, for threshold validation
    produces: Optional[Callable[[Any, "Policy"], list[str]]] = None
    # (finding, check result as in results.json) -> one plain-language sentence, or None
    reading: Optional[Callable[..., Optional[str]]] = None  # (finding, result[, wording]) -> sentence
    # (params, data) -> None, run in the parent before any check starts: raise CheckError
    # (naming the params key as ``params.<key>: ...``) for params that do not fit the data,
    # so a bad row id or column exits 2 with nothing run instead of ending as ``error``
    validate: Optional[Callable[[Any, Any], None]] = None
    # what the check adds to the report's case files (one page per explained row): pairs of
    # (role, table) with role one of CASE_FILE_ROLES; "charts" needs no table (plots whose
    # data names a row)
    case_file: tuple[tuple[str, str | None], ...] = ()
    # what a reader must know of the method before trusting its figures, said once per type
    # (the report's limitations list them for the types an audit ran)
    caveats: tuple[str, ...] = ()
    # modules to import in the workers before any check starts, beyond those the check's source
    # imports (which the engine finds itself, see auditkit/engine/preload.py): for imports its
    # source does not show (importlib, a plugin's own lazy loading)
    preload: tuple[str, ...] = ()
    # a check that can run on a dataset summarised partition by partition (the Dask executor on
    # a Parquet dataset): summarise(frame, data, params) -> a summary of those rows, and
    # combine(summaries of consecutive blocks, in row order) -> the summary of them all, exactly;
    # the check then finds the summary of every row in ``ctx.data.row_summaries[ctx.check_id]``
    summary: Optional["RowSummary"] = None
    # probes or models each input as a number or a category (grids, noise, perturbations,
    # surrogate or proxy models): meaningless on free text, so the engine skips it, with the
    # reason, when every model input is declared text (data.text)
    probes_inputs: bool = False

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.func) or ""
        return doc.split("\n\n", 1)[0].replace("\n", " ")

    @property
    def documentation(self) -> str:
        return inspect.getdoc(self.func) or ""

    def metric_patterns(self, params: Any = None, policy: "Policy | None" = None) -> list[str]:
        if self.produces is not None and params is not None and policy is not None:
            return list(self.produces(params, policy))
        return list(self.metrics)


@dataclass(frozen=True)
class RowSummary:
    # (rows as a DataFrame, AuditData of those rows, params) -> summary
    summarise: Callable[[Any, Any, Any], Any]
    combine: Callable[[list[Any]], Any]  # summaries of consecutive blocks, in row order -> theirs
    # (AuditData without rows, params) -> whether the summary serves this run (else the check
    # runs on every row's columns, gathered): e.g. not for a row bootstrap, or not for a regressor
    applies: Callable[[Any, Any], bool] | None = None

    def serves(self, data: Any, params: Any) -> bool:
        return self.applies is None or bool(self.applies(data, params))


def check(
    type: str,
    *,
    family: Family,
    params: type[CheckParams],
    metrics: list[str],
    needs_model: bool = False,
    needs_target: bool = False,
    example: dict[str, Any] | None = None,
    produces: Callable[[Any, "Policy"], list[str]] | None = None,
    reading: Callable[..., str | None] | None = None,
    validate: Callable[[Any, Any], None] | None = None,
    case_file: tuple[tuple[str, str | None], ...] = (),
    caveats: tuple[str, ...] = (),
    preload: tuple[str, ...] | list[str] = (),
    summary: RowSummary | None = None,
    probes_inputs: bool = False,
) -> Callable[[Callable[..., "CheckOutput"]], Callable[..., "CheckOutput"]]:
    """Mark a function as the implementation of check ``type`` (registered via entry points)."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", type):
        raise ValueError(f"check type {type!r}: use lower_snake_case")
    unknown_roles = [role for role, _ in case_file if role not in CASE_FILE_ROLES]
    if unknown_roles:
        raise ValueError(f"check {type!r}: case_file roles {unknown_roles}; roles: {', '.join(CASE_FILE_ROLES)}")
    if not (inspect.isclass(params) and issubclass(params, CheckParams)):
        raise TypeError(f"check {type!r}: params must be a CheckParams subclass, got {params!r}")
    if isinstance(preload, str) or not all(
            isinstance(m, str) and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", m) for m in preload):
        raise ValueError(f"check {type!r}: preload must be a list of module names, got {preload!r}")

    def mark(func: Callable[..., "CheckOutput"]) -> Callable[..., "CheckOutput"]:
        signature = inspect.signature(func)
        if len(signature.parameters) != 2:
            raise TypeError(f"check {type!r}: the function must take (ctx, params), got {signature}")
        setattr(func, _MARK, CheckType(
            type=type, family=family, func=func, params=params, metrics=tuple(metrics),
            needs_model=needs_model, needs_target=needs_target, example=example or {}, produces=produces, reading=reading,
            validate=validate, case_file=tuple(case_file), caveats=tuple(caveats), preload=tuple(preload),
            summary=summary,
            probes_inputs=probes_inputs,
        ))
        return func

    return mark


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, CheckType] = {}
        self.plugin_modules: list[str] = []  # modules registered beyond the entry points, for workers

    def register(self, func: Callable[..., Any]) -> CheckType:
        spec = getattr(func, _MARK, None)
        if not isinstance(spec, CheckType):
            raise TypeError(f"{func!r} is not marked with @check")
        existing = self._types.get(spec.type)
        if existing is not None and existing.func is not func:
            raise ValueError(
                f"check type {spec.type!r} is registered twice ({existing.func.__module__} and "
                f"{func.__module__}); registered types: {', '.join(sorted(self._types))}")
        self._types[spec.type] = spec
        return spec

    def register_module(self, module: Any, *, plugin: bool = True) -> None:
        if plugin and module.__name__ not in self.plugin_modules:
            self.plugin_modules.append(module.__name__)
        for value in vars(module).values():
            if callable(value) and isinstance(getattr(value, _MARK, None), CheckType):
                self.register(value)

    def get(self, type_name: str) -> CheckType:
        try:
            return self._types[type_name]
        except KeyError:
            from auditkit.errors import UnknownCheckError

            raise UnknownCheckError(
                f"unknown check type '{type_name}'; {did_you_mean(type_name, self._types)}") from None

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._types

    def types(self) -> list[CheckType]:
        return [self._types[name] for name in sorted(self._types)]

    def names(self) -> list[str]:
        return sorted(self._types)


_REGISTRY: Registry | None = None


def builtin_check_modules() -> list[str]:
    """Every module of the ``auditkit.checks`` package (a check type each), sorted."""
    package = importlib.import_module(BUILTIN_PACKAGE)
    return sorted(info.name for info in pkgutil.walk_packages(package.__path__, prefix=f"{BUILTIN_PACKAGE}.")
                  if not info.ispkg)


def _load(registry: Registry) -> None:
    for name in builtin_check_modules():
        registry.register_module(importlib.import_module(name), plugin=False)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.value.split(":")[0].startswith(f"{BUILTIN_PACKAGE}."):
            continue  # a built-in, found above (an older install may still declare it)
        loaded = ep.load()
        if inspect.ismodule(loaded):
            registry.register_module(loaded, plugin=False)
        else:
            registry.register(loaded)
    for module_name in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        registry.register_module(importlib.import_module(module_name))


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        registry = Registry()
        _load(registry)
        _REGISTRY = registry
    return _REGISTRY
