"""Figures for the admin dashboard and /api/admin/stats (the same ones /metrics exports)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F
from django.db.models.functions import TruncHour
from django.utils import timezone

from jobs.models import Job
from nodes.models import ComfyNode


def overview(*, now=None) -> dict:
    now = now or timezone.now()
    since = now - timedelta(hours=24)
    per_status = dict(Job.objects.values_list("status").annotate(n=Count("id")))
    hourly = (
        Job.objects.filter(created_at__gte=since)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(jobs=Count("id"))
        .order_by("hour")
    )
    errors = dict(
        Job.objects.filter(finished_at__gte=since, status=Job.Status.ERROR)
        .annotate(hour=TruncHour("finished_at"))
        .values_list("hour")
        .annotate(n=Count("id"))
    )
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    per_workflow = (
        Job.objects.filter(status=Job.Status.DONE, finished_at__gte=since, started_at__isnull=False)
        .annotate(d=duration)
        .values("workflow__slug")
        .annotate(avg=Avg("d"), n=Count("id"))
        .order_by("workflow__slug")
    )
    hours = [(since + timedelta(hours=i + 1)).replace(minute=0, second=0, microsecond=0) for i in range(24)]
    by_hour = {row["hour"]: row["jobs"] for row in hourly}
    return {
        "jobs_by_status": {s: per_status.get(s, 0) for s, _ in Job.Status.choices},
        "hours": [h.isoformat() for h in hours],
        "jobs_per_hour": [by_hour.get(h, 0) for h in hours],
        "errors_per_hour": [errors.get(h, 0) for h in hours],
        "avg_seconds_per_workflow": [
            {
                "workflow": row["workflow__slug"],
                "jobs": row["n"],
                "avg_seconds": round(row["avg"].total_seconds(), 2) if row["avg"] else None,
            }
            for row in per_workflow
        ],
        "nodes": [
            {
                "name": n.name,
                "status": n.status,
                "is_active": n.is_active,
                "queue": n.live_queue,
                "max_queue": n.max_queue,
                "vram_free": n.vram[0],
                "vram_total": n.vram[1],
                "model_files": n.model_count,
                "models_stale": n.inventory_stale,
                "models_held": n.held_model_keys,
            }
            for n in ComfyNode.objects.filter(remove_when_drained=False)
        ],
    }
