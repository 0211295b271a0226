"""Geometry of the small SVG bar charts the pages draw (the dashboard, the usage page).

A vertical chart is drawn at its own size (no scaling, so that its 12 px labels stay 12 px):
the bars sit in a plot area with room on the left for the value axis (its ticks and name) and
below for the category labels and the axis name.
"""

from __future__ import annotations

CHART_HEIGHT = 120  # px of the bar area in the SVG
GAP = 4  # px between bars
AXIS_LEFT = 64  # px left of the bars: the value axis's name (turned) and its tick labels
AXIS_TOP = 16  # px above the bars: the value written over the tallest bar
AXIS_BOTTOM = 40  # px under the bars: the category labels, then the axis name


def vertical_bars(values: list[float], labels: list[str], *, bar_width: int) -> dict:
    """One bar per value, scaled to the largest (all at zero height if every value is 0), with
    the coordinates of the axes: `plot_*` (the bar area in the SVG), `y_ticks` (0, half and the
    top value), and the SVG's full `svg_width` × `svg_height`."""
    top = max(values, default=0) or 1
    bars = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = round(CHART_HEIGHT * value / top, 1)
        bars.append(
            {
                "x": i * (bar_width + GAP),
                "center": i * (bar_width + GAP) + bar_width / 2,
                "y": CHART_HEIGHT - height,
                "height": height,
                "value": value,
                "label": label,
                "width": bar_width,
                "text_y": CHART_HEIGHT - height - 3,
            }
        )
    width = max(len(bars), 1) * (bar_width + GAP)
    highest = max(values, default=0)
    ticks = [0, highest / 2, highest] if highest else [0]
    return {
        "bars": bars,
        "width": width,
        "max": highest,
        "total": sum(values),
        "plot_left": AXIS_LEFT,
        "plot_top": AXIS_TOP,
        "plot_height": CHART_HEIGHT,
        "svg_width": AXIS_LEFT + width,
        "svg_height": AXIS_TOP + CHART_HEIGHT + AXIS_BOTTOM,
        "label_y": CHART_HEIGHT + 15,
        "x_title_x": width / 2,
        "x_title_y": CHART_HEIGHT + AXIS_BOTTOM - 4,
        "y_title_x": -(AXIS_LEFT - 14),
        "y_title_y": CHART_HEIGHT / 2,
        "y_ticks": [{"y": round(CHART_HEIGHT - CHART_HEIGHT * t / top, 1), "value": _tick(t)} for t in ticks],
    }


def _tick(value: float):
    return int(value) if float(value).is_integer() else round(value, 1)
