"""The plot kinds of results.json: what a check may put in a plot's ``data``, per kind.

A check builds plot data; ``charts/`` draws it from results.json alone, so the two sides must
agree on names. Each kind is a ``TypedDict`` here (``Required`` keys and optional ones), and
:func:`validate_plot_data` refuses a key the kind does not know — a check that wrote
``xlabel`` where the chart reads ``x_label`` would otherwise lose its axis title silently.
The JSON Schema of every kind (:func:`plot_schemas`) comes from these same types.

Intervals carry their level: ``level`` (0.95 by default) is what the legend says.
"""
# No "from __future__ import annotations": TypedDict reads Required[...] from evaluated annotations.
from typing import Any, Final, Literal, Optional, Union

# typing_extensions' TypedDict: pydantic reads it on every Python (typing's only from 3.12)
from typing_extensions import Required, TypedDict

Number = Union[float, int, None]


class ThresholdLine(TypedDict, total=False):
    min: Number
    max: Number
    label: str


class HLine(TypedDict, total=False):
    y: Required[Number]
    label: str


class Marker(TypedDict, total=False):
    x: Required[Number]
    y: Required[Number]


class Series(TypedDict, total=False):
    name: str
    x: Required[list[Any]]
    y: Required[list[Number]]
    y_low: list[Number]  # the interval band, at the plot's level
    y_high: list[Number]
    style: Literal["thin", "bold", "dashed", "dotted"]


class BarData(TypedDict, total=False):
    labels: Required[list[Any]]
    values: Required[list[Number]]
    ci_low: list[Number]
    ci_high: list[Number]
    level: float  # the intervals' confidence level
    x_label: str  # the categories' axis
    y_label: str  # the values' axis
    n: Optional[int]
    horizontal: bool
    thresholds: Union[ThresholdLine, list[ThresholdLine]]  # one line across, or one per bar
    threshold_label: str
    # the section of each bar (e.g. its protected attribute): bars drawn in labelled sections
    sections: list[str]
    # per-group rate charts (group_fairness): which bars enter the ratio, and which metrics
    # the engine draws threshold lines for (one name for the chart, or one per bar)
    included: list[bool]
    attribute: str
    rate: str
    ratio_metric: Union[str, list[str]]
    difference_metric: Union[str, list[str]]


class LineData(TypedDict, total=False):
    series: Required[list[Series]]
    x_label: str
    y_label: str
    n: Optional[int]
    level: float
    x_ticks: list[Any]
    thresholds: Union[ThresholdLine, list[ThresholdLine]]
    hline: HLine
    markers: list[Marker]
    markers_label: str
    row: Any  # the data row a per-row chart is about


class HistData(TypedDict, total=False):
    edges: list[Number]  # len(counts) + 1 bin edges
    counts: list[Number]
    labels: list[Any]  # without edges, a histogram of categories: drawn as bars
    values: list[Number]
    x_label: str
    y_label: str
    n: Optional[int]


class HeatmapData(TypedDict, total=False):
    labels: Required[list[Any]]
    values: Required[list[list[Number]]]
    n: Optional[int]


class ScatterData(TypedDict, total=False):
    x: Required[list[Number]]
    y: Required[list[Number]]
    x_label: str
    y_label: str
    n: Optional[int]


class BeeswarmData(TypedDict, total=False):
    rows: Required[list[dict[str, Any]]]
    x_label: str
    n: Optional[int]


class WaterfallData(TypedDict, total=False):
    labels: Required[list[str]]
    values: Required[list[Number]]
    base: Required[Number]
    output: Number
    side_values: list[Number]
    side_label: str
    x_label: str
    row: Any
    threshold: Number
    threshold_label: str


PLOT_KINDS: Final[dict[str, type]] = {
    "bar": BarData, "line": LineData, "hist": HistData, "heatmap": HeatmapData, "scatter": ScatterData,
    "beeswarm": BeeswarmData, "waterfall": WaterfallData,
}

#: Names written by earlier versions, read as the current ones.
FORMER_KEYS: Final = {"xlabel": "x_label", "ylabel": "y_label"}


class PlotDataError(ValueError):
    """A check built plot data that its kind does not describe (a bug in the check)."""


def _keys(kind_type: type) -> tuple[frozenset[str], frozenset[str]]:
    hints = kind_type.__annotations__
    required = frozenset(getattr(kind_type, "__required_keys__", ()))
    return frozenset(hints), required


def validate_plot_data(kind: str, data: dict[str, Any]) -> None:
    """Raise :class:`PlotDataError` for an unknown kind, a missing required key or an unknown key."""
    kind_type = PLOT_KINDS.get(kind)
    if kind_type is None:
        raise PlotDataError(f"unknown plot kind {kind!r}; kinds: {', '.join(PLOT_KINDS)}")
    known, required = _keys(kind_type)
    missing = sorted(required - set(data))
    if missing:
        raise PlotDataError(f"{kind} plot data lacks {', '.join(missing)}")
    unknown = sorted(set(data) - known)
    if unknown:
        raise PlotDataError(f"{kind} plot data has keys its kind does not know: {', '.join(unknown)} "
                            f"(known: {', '.join(sorted(known))})")


def canonical_plot_data(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with former key names replaced by the current ones."""
    if not any(key in data for key in FORMER_KEYS):
        return data
    return {FORMER_KEYS.get(key, key): value for key, value in data.items()}


def plot_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON Schema of each kind's ``data``, generated from the types above, and the
    definitions they refer to (``#/$defs/plot_<Name>``, to be placed in the schema's $defs)."""
    from pydantic import TypeAdapter

    kinds: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for kind, kind_type in PLOT_KINDS.items():
        schema = TypeAdapter(kind_type).json_schema(ref_template="#/$defs/plot_{model}")
        for name, definition in schema.pop("$defs", {}).items():
            definitions[f"plot_{name}"] = definition
        schema.pop("title", None)
        kinds[kind] = schema
    return kinds, definitions


def schema_definitions() -> dict[str, Any]:
    """The results schema's ``$defs`` entries for plots: ``plot`` (one branch per kind) and
    the ``plot_*`` types its kinds use.

    Keys a kind does not list are tolerated by the schema (results.json files written by
    earlier versions stay readable); :func:`validate_plot_data` refuses them when a check
    builds a plot.
    """
    kinds, definitions = plot_schemas()
    branches = [{"type": "object", "required": ["kind", "title", "data"],
                 "properties": {"kind": {"const": kind}, "title": {"type": "string"}, "data": data}}
                for kind, data in kinds.items()]
    # a kind this version does not know (a newer writer's) stays readable: reports say so
    branches.append({"type": "object", "required": ["kind", "title", "data"],
                     "properties": {"kind": {"type": "string", "not": {"enum": list(kinds)}},
                                    "title": {"type": "string"}, "data": {"type": "object"}}})
    return {"plot": {"oneOf": branches}, **dict(sorted(definitions.items()))}


def with_plot_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` (the results schema) with its plot definitions generated afresh."""
    definitions = {k: v for k, v in schema["$defs"].items() if not k.startswith("plot")}
    return {**schema, "$defs": {**definitions, **schema_definitions()}}


if __name__ == "__main__":  # python -m auditkit.results.plots: regenerate the shipped schema's plot part
    import json
    from pathlib import Path

    path = Path(__file__).with_name("results-v1.schema.json")
    schema = with_plot_definitions(json.loads(path.read_text(encoding="utf-8")))
    path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
