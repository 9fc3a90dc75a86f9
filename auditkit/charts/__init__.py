"""Charts: plot data from results.json drawn as inline SVG (never re-computed)."""
from __future__ import annotations

from auditkit.charts.svg import PLOT_KINDS, plot_to_svg

__all__ = ["PLOT_KINDS", "plot_to_svg"]
