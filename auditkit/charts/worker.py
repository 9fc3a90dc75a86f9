"""``python -m auditkit.charts.worker``: draw the plots given as a JSON list on stdin; write
``[[svg, reason, width_in], ...]`` as JSON on stdout, in the same order.

A helper process of :mod:`auditkit.render.figures`, which draws a report's charts in
parallel: the SVG markup is not yet inlined (:func:`auditkit.charts.svg.inline_chart` does
that in the parent, per place the chart is shown).
"""
from __future__ import annotations

import json
import sys

from auditkit.charts.svg import draw_plot


def main() -> int:
    plots = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    charts = [draw_plot(plot) for plot in plots]
    sys.stdout.write(json.dumps([[c.svg, c.reason, c.width_in] for c in charts]))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
