"""Geometry of the small SVG bar charts the pages draw (the dashboard, the usage page)."""

from __future__ import annotations

CHART_HEIGHT = 120  # px of the bar area in the SVG
GAP = 4  # px between bars


def vertical_bars(values: list[float], labels: list[str], *, bar_width: int) -> dict:
    """One bar per value, scaled to the largest (all at zero height if every value is 0)."""
    top = max(values, default=0) or 1
    bars = []
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        height = round(CHART_HEIGHT * value / top, 1)
        bars.append(
            {
                "x": i * (bar_width + GAP),
                "y": CHART_HEIGHT - height,
                "height": height,
                "value": value,
                "label": label,
                "width": bar_width,
                "text_y": CHART_HEIGHT - height - 2,
            }
        )
    return {
        "bars": bars,
        "width": max(len(bars), 1) * (bar_width + GAP),
        "max": max(values, default=0),
        "total": sum(values),
    }
