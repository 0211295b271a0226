"""Schedules of billing, upserted after migrate (by `manage.py bootstrap`)."""

from __future__ import annotations

from django_q.models import Schedule


def upsert_schedules() -> None:
    Schedule.objects.update_or_create(
        name="settle credits of ended jobs",
        defaults={
            "func": "billing.tasks.settle_ended_jobs",
            "schedule_type": Schedule.MINUTES,
            "minutes": 60,
            "repeats": -1,
        },
    )
