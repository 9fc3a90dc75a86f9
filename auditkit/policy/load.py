"""Policy YAML -> validated :class:`LoadedPolicy`, with file:line:column in every error.

The YAML is read with ruamel's round-trip parser only to keep positions; it constructs no
Python objects. Before that, the event stream is scanned and anything but plain data is
refused: explicit tags (``!!python/object``...), anchors and aliases. Duplicate keys are
errors. The file size is capped.
"""
from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent, ScalarEvent

from auditkit.core.metric_names import metric_matches
from auditkit.core.registry import CheckParams, Registry, get_registry
from auditkit.errors import PolicyError, Source, UnknownCheckError, did_you_mean
from auditkit.policy.models import Policy

MAX_POLICY_BYTES = 1_000_000
# A real policy nests about 6 levels (checks[i].params.intersections[j]); the YAML composer
# recurses once per level, so a few hundred nested brackets would end in a RecursionError.
MAX_POLICY_DEPTH = 32


@dataclass(frozen=True)
class LoadedPolicy:
    policy: Policy
    path: Path
    sha256: str
    params: dict[str, CheckParams]  # check id -> validated params
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)  # "checks[2].params" -> (line, col)
    warnings: list[str] = field(default_factory=list)  # e.g. a parameter given by its former name

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str | None) -> Path | None:
        """A path from the policy, relative to the policy file."""
        if relative is None:
            return None
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    @property
    def model_path(self) -> Path | None:
        return self.resolve(self.policy.model.path)

    @property
    def data_path(self) -> Path:
        resolved = self.resolve(self.policy.data.path)
        assert resolved is not None
        return resolved

    @property
    def reference_path(self) -> Path | None:
        return self.resolve(self.policy.data.reference)

    def output_dir(self, override: str | Path | None = None) -> Path:
        if override is not None:
            return Path(override)
        if self.policy.report.output_dir:
            resolved = self.resolve(self.policy.report.output_dir)
            assert resolved is not None
            return resolved
        return Path("reports") / self.path.stem

    def source(self, key: str) -> Source:
        line_col = self.positions.get(key)
        return Source(str(self.path), key, *(line_col or (None, None)))


# --------------------------------------------------------------------------- YAML


def _read_yaml(path: Path) -> tuple[Any, bytes]:
    if not path.exists():
        raise PolicyError("policy file not found", source=Source(str(path)))
    if not path.is_file():
        raise PolicyError("not a file", source=Source(str(path)))
    size = path.stat().st_size
    if size > MAX_POLICY_BYTES:
        raise PolicyError(f"policy file is {size:,} bytes; the limit is {MAX_POLICY_BYTES:,}", source=Source(str(path)))
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"not UTF-8 text (byte {exc.start})", source=Source(str(path))) from None

    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    depth = 0
    try:
        for event in yaml.parse(text):
            mark = getattr(event, "start_mark", None)
            where = Source(str(path), None, mark.line + 1, mark.column + 1) if mark else Source(str(path))
            if isinstance(event, CollectionStartEvent):
                depth += 1
                if depth > MAX_POLICY_DEPTH:
                    raise PolicyError(f"values nested more than {MAX_POLICY_DEPTH} levels deep; a policy needs "
                                      "far fewer", source=where)
            elif isinstance(event, CollectionEndEvent):
                depth -= 1
            if isinstance(event, AliasEvent) or (isinstance(event, (ScalarEvent, CollectionStartEvent)) and event.anchor):
                raise PolicyError("YAML anchors and aliases are not allowed in a policy; write the value out",
                                  source=where)
            tag = getattr(event, "tag", None)
            if tag is not None and isinstance(event, (ScalarEvent, CollectionStartEvent)):
                implicit = getattr(event, "implicit", None)
                explicit = not (implicit[0] if isinstance(implicit, tuple) else implicit) if isinstance(event, ScalarEvent) \
                    else not getattr(event, "implicit", True)
                if explicit:
                    raise PolicyError(f"explicit YAML tag {tag!r} is not allowed in a policy (plain data only)", source=where)
        doc = yaml.load(text)
    except PolicyError:
        raise
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        if "duplicate key" in str(exc).lower():
            problem = "duplicate key: " + (exc.problem or "").strip()
        where = Source(str(path), None, mark.line + 1, mark.column + 1) if mark else Source(str(path))
        raise PolicyError(f"YAML syntax error: {problem}", source=where) from None
    except YAMLError as exc:
        raise PolicyError(f"YAML error: {exc}", source=Source(str(path))) from None
    return doc, raw


def _to_plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_plain(v) for v in node]
    if hasattr(node, "value") and type(node).__name__.endswith("Scalar"):  # ScalarFloat etc. subclass builtins
        return node
    return node


def _positions(node: Any, prefix: str = "", out: dict[str, tuple[int, int]] | None = None) -> dict[str, tuple[int, int]]:
    """Map every key path (``checks[2].params.n_repeats``) to its 1-based (line, column)."""
    out = {} if out is None else out
    if isinstance(node, CommentedMap):
        for key in node:
            path = f"{prefix}.{key}" if prefix else str(key)
            try:
                line, col = node.lc.key(key)
                out[path] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError):
                pass
            _positions(node[key], path, out)
    elif isinstance(node, CommentedSeq):
        for i, item in enumerate(node):
            path = f"{prefix}[{i}]"
            try:
                line, col = node.lc.item(i)
                out[path] = (line + 1, col + 1)
            except (KeyError, TypeError, AttributeError, IndexError):
                pass
            _positions(item, path, out)
    return out


def _key_path(loc: Iterable[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _nearest_position(positions: dict[str, tuple[int, int]], key: str) -> tuple[int | None, int | None]:
    probe = key
    while probe:
        if probe in positions:
            return positions[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return None, None


def _model_at(root: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for suggesting field names)."""
    import typing

    current: Any = root
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        annotation = current.model_fields[part].annotation
        # unwrap Optional[...] / list[...] / dict[str, ...] to the model inside
        for _ in range(3):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                break
            annotation = args[-1] if args else annotation
        current = annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _errors_from(exc: ValidationError, *, path: Path, root_model: type[BaseModel], prefix: tuple[Any, ...],
                 positions: dict[str, tuple[int, int]]) -> list[PolicyError]:
    errors: list[PolicyError] = []
    for err in exc.errors(include_url=False):
        loc = tuple(prefix) + tuple(p for p in err["loc"] if p not in ("function-after",))
        key = _key_path(loc)
        line, col = _nearest_position(positions, key)
        kind = err["type"]
        hint = None
        if kind == "extra_forbidden":
            owner = _model_at(root_model, tuple(err["loc"]))
            valid = list(owner.model_fields) if owner else []
            message = f"unknown key '{loc[-1]}'"
            if valid:
                message += f"; {did_you_mean(str(loc[-1]), valid)}"
        elif kind == "missing":
            message = "required key is missing"
        elif kind in ("literal_error", "enum"):
            message = f"{err['msg'].lower()}, got {_describe(err.get('input'))}"
            expected = err.get("ctx", {}).get("expected", "")
            if isinstance(err.get("input"), str) and expected:
                options = [o.strip(" '\"") for o in expected.replace(" or ", ",").split(",")]
                best = did_you_mean(err["input"], [o for o in options if o])
                if best.startswith("did you mean"):
                    hint = best
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            # "a valid dictionary or instance of Threshold": the class name means nothing in a YAML file
            msg = re.sub(r" or instance of \w+", "", msg)
            message = f"{msg[0].lower() + msg[1:] if msg else msg}"
            if "input" in err and kind not in ("value_error", "assertion_error"):
                message += f", got {_describe(err['input'])}"
        errors.append(PolicyError(message, source=Source(str(path), key, line, col), hint=hint))
    return errors


def _non_finite_numbers(node: Any, path: Path, positions: dict[str, tuple[int, int]],
                        key: str = "") -> list[PolicyError]:
    """DESIGN.md: every number in a policy is finite. A ``.nan`` threshold turns its gate off
    ("0.79 <= nan" is false, so nothing fails) and a ``.nan`` decision threshold decides 0 for
    every row, so NaN and infinity are refused wherever they appear."""
    errors: list[PolicyError] = []
    if isinstance(node, float) and not math.isfinite(node):
        line, col = _nearest_position(positions, key)
        errors.append(PolicyError(f"must be a finite number, got {node!r}", source=Source(str(path), key, line, col)))
    elif isinstance(node, dict):
        for name, value in node.items():
            errors.extend(_non_finite_numbers(value, path, positions, f"{key}.{name}" if key else str(name)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            errors.extend(_non_finite_numbers(value, path, positions, f"{key}[{i}]"))
    return errors


class PolicyErrors(PolicyError):
    """Several policy errors at once (each on its own line)."""

    def __init__(self, errors: list[PolicyError]):
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors), source=None)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def _raise_all(errors: list[PolicyError]) -> None:
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise PolicyErrors(errors)


# --------------------------------------------------------------------------- checks


def _validate_checks(policy: Policy, path: Path, positions: dict[str, tuple[int, int]], registry: Registry,
                     warnings: list[str]) -> tuple[dict[str, CheckParams], list[PolicyError]]:
    errors: list[PolicyError] = []
    params_by_id: dict[str, CheckParams] = {}
    for i, spec in enumerate(policy.checks):
        base = f"checks[{i}]"
        if spec.type not in registry:
            line, col = _nearest_position(positions, f"{base}.type")
            errors.append(UnknownCheckError(
                f"unknown check type '{spec.type}'; {did_you_mean(spec.type, registry.names())}",
                source=Source(str(path), f"{base}.type", line, col),
                hint="`auditkit checks` lists the available types"))
            continue
        check_type = registry.get(spec.type)
        try:
            params = check_type.params.model_validate(spec.params)
        except ValidationError as exc:
            errors.extend(_errors_from(exc, path=path, root_model=check_type.params,
                                       prefix=("checks", i, "params"), positions=positions))
            continue
        params_by_id[spec.check_id] = params
        for former, current in check_type.params.former_names_in(spec.params):
            where = Source(str(path), f"{base}.params.{former}", *_nearest_position(positions, f"{base}.params.{former}"))
            warnings.append(f"{where}: '{former}' is now called '{current}'; the former name will stop working in a "
                            "future version")
        produced = check_type.metric_patterns(params, policy)
        for metric in spec.thresholds:
            if not any(metric_matches(metric, pattern) for pattern in produced):
                key = f"{base}.thresholds.{metric}"
                line, col = _nearest_position(positions, key)
                names = sorted({p[:-3] if p.endswith("[*]") else p for p in produced})
                errors.append(PolicyError(
                    f"check '{spec.check_id}' ({spec.type}) does not produce metric '{metric}'; "
                    f"{did_you_mean(metric, names)}",
                    source=Source(str(path), key, line, col),
                    hint=f"it produces: {', '.join(names)}" if names else None))
    return params_by_id, errors


def _duplicate_ids(raw_checks: Any, path: Path, positions: dict[str, tuple[int, int]]) -> list[PolicyError]:
    errors: list[PolicyError] = []
    if not isinstance(raw_checks, list):
        return errors
    seen: dict[str, int] = {}
    for i, item in enumerate(raw_checks):
        if not isinstance(item, dict):
            continue
        check_id = item.get("id") or item.get("type")
        if not isinstance(check_id, str):
            continue
        if check_id in seen:
            key = f"checks[{i}]"
            line, col = _nearest_position(positions, f"{key}.id" if "id" in item else f"{key}.type")
            errors.append(PolicyError(
                f"duplicate check id '{check_id}' (also checks[{seen[check_id]}]); give each check its own `id`",
                source=Source(str(path), key, line, col)))
        else:
            seen[check_id] = i
    return errors


def load_policy(path: str | Path, *, registry: Registry | None = None) -> LoadedPolicy:
    """Read, parse and validate a policy file; raise :class:`PolicyError` naming file:line:column."""
    path = Path(path)
    doc, raw = _read_yaml(path)
    if doc is None:
        raise PolicyError("the policy file is empty", source=Source(str(path)))
    if not isinstance(doc, CommentedMap):
        found = "a list" if isinstance(doc, CommentedSeq) else f"a single value ({_describe(doc)})"
        raise PolicyError(f"the policy must be a mapping of keys (version, name, model, data, checks), "
                          f"got {found}", source=Source(str(path), None, 1, 1))
    positions = _positions(doc)
    plain = _to_plain(doc)
    _raise_all(_non_finite_numbers(plain, path, positions))
    registry = registry or get_registry()

    dup = _duplicate_ids(plain.get("checks"), path, positions)
    _raise_all(dup)
    try:
        policy = Policy.model_validate(plain)
    except ValidationError as exc:
        _raise_all(_errors_from(exc, path=path, root_model=Policy, prefix=(), positions=positions))
        raise  # unreachable: _raise_all raised
    warnings: list[str] = []
    params, errors = _validate_checks(policy, path, positions, registry, warnings)
    _raise_all(errors)
    return LoadedPolicy(policy=policy, path=path.resolve(), sha256=hashlib.sha256(raw).hexdigest(),
                        params=params, positions=positions, warnings=warnings)
