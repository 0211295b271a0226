"""The usage page (a chart of GPU seconds per day and a table) and its CSV export."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.views import user_menu
from core.charts import CHART_HEIGHT, vertical_bars
from core.errors import DomainError
from usage import reports
from usage.api import csv_response

BAR_WIDTH = 14


def _query(request: HttpRequest) -> reports.Query:
    return reports.parse_query(
        request.user,
        start=request.GET.get("from", ""),
        end=request.GET.get("to", ""),
        group_by=request.GET.get("group_by", "day"),
        user=request.GET.get("user", ""),
    )


@login_required
def usage_page(request: HttpRequest) -> HttpResponse:
    error = ""
    try:
        query = _query(request)
    except DomainError as exc:
        error = exc.detail
        query = reports.parse_query(request.user)
    data = reports.report(query)
    by_day = (
        data
        if query.group_by == "day"
        else reports.report(reports.Query(query.start, query.end, "day", query.user_ids))
    )
    context = {
        **user_menu(request),
        "data": data,
        "query": query,
        "error": error,
        "chart": _chart(query.start, query.end, {row["key"]: row["gpu_seconds"] for row in by_day["rows"]}),
        "chart_height": CHART_HEIGHT,
        "selected_user": request.GET.get("user", ""),
        "users": list(get_user_model().objects.order_by("username").values_list("username", flat=True)[:500])
        if request.user.is_admin
        else [],
        "export_query": request.GET.urlencode(),
    }
    return render(request, "usage/usage.html", context, status=400 if error else 200)


@login_required
def usage_csv(request: HttpRequest) -> HttpResponse:
    try:
        query = _query(request)
    except DomainError as exc:
        return HttpResponse(exc.detail, status=exc.status, content_type="text/plain; charset=utf-8")
    return csv_response(reports.report(query))


def _chart(start: date, end: date, values: dict[str, float]) -> dict:
    """Bars of billed GPU seconds, one per day of the range (days without jobs at zero)."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    amounts = [round(values.get(day.isoformat(), 0.0), 1) for day in days]
    return vertical_bars(amounts, [day.strftime("%m-%d") for day in days], bar_width=BAR_WIDTH)
