"""The admin dashboard page: node health, load and errors over the last day, time per workflow.

Charts are inline SVG drawn by the template from the bar geometry computed here (no JS).
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from core.charts import CHART_HEIGHT, vertical_bars
from jobs.models import Job
from jobs.stats import overview
from nodes.models import ComfyNode

BAR_WIDTH = 20
HBAR_LABEL = 180  # px for the workflow names left of the horizontal bars
HBAR_LENGTH = 300
HBAR_TITLE = 24  # px under the horizontal bars for the axis name


@staff_member_required
@require_GET
def admin_dashboard(request: HttpRequest) -> HttpResponse:
    stats = overview()
    hours = [datetime.fromisoformat(h) for h in stats["hours"]]
    labels = [h.strftime("%H") for h in hours]
    timed = [w for w in stats["avg_seconds_per_workflow"] if w["avg_seconds"] is not None]
    context = {
        **admin.site.each_context(request),
        "title": _("Dashboard"),
        "stats": stats,
        "by_status": [
            {"status": code, "label": Job.Status(code).label, "count": count}
            for code, count in stats["jobs_by_status"].items()
        ],
        "nodes": [_node(n) for n in stats["nodes"]],
        "jobs_chart": _bars(stats["jobs_per_hour"], labels),
        "errors_chart": _bars(stats["errors_per_hour"], labels),
        "workflow_chart": _hbars([w["avg_seconds"] for w in timed], [w["workflow"] for w in timed]),
        "workflow_rows": stats["avg_seconds_per_workflow"],
        "chart_height": CHART_HEIGHT,
    }
    return render(request, "comfyportal/dashboard.html", context)


def _bars(values: list[float], labels: list[str]) -> dict:
    return vertical_bars(values, labels, bar_width=BAR_WIDTH)


def _hbars(values: list[float], labels: list[str]) -> dict:
    """Geometry of a horizontal bar chart (one row per label), bars scaled to the largest value."""
    top = max(values, default=0) or 1
    rows = [
        {
            "y": i * (BAR_WIDTH + 6),
            "text_y": i * (BAR_WIDTH + 6) + BAR_WIDTH * 0.7,
            "width": round(HBAR_LENGTH * value / top, 1),
            "value": value,
            "label": label,
        }
        for i, (value, label) in enumerate(zip(values, labels, strict=True))
    ]
    height = max(len(rows), 1) * (BAR_WIDTH + 6)
    return {
        "rows": rows,
        "height": height,
        "svg_height": height + HBAR_TITLE,
        "title_y": height + HBAR_TITLE - 6,
        "title_x": HBAR_LABEL + HBAR_LENGTH / 2,
        "bar_height": BAR_WIDTH,
        "label_width": HBAR_LABEL,
        "width": HBAR_LABEL + HBAR_LENGTH + 60,
        "max": max(values, default=0),
    }


def _node(node: dict) -> dict:
    free, total = node.get("vram_free"), node.get("vram_total")
    gib = 1024**3
    labels = dict(ComfyNode.Status.choices)
    return {
        **node,
        "status_label": labels.get(node.get("status"), node.get("status")),
        "vram_free_gib": round(free / gib, 1) if free is not None else None,
        "vram_total_gib": round(total / gib, 1) if total is not None else None,
        "vram_used_pct": round(100 * (total - free) / total) if free is not None and total else None,
    }
