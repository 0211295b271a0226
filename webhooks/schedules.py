"""Schedules of webhooks, upserted after migrate (by `manage.py bootstrap`)."""

from __future__ import annotations

from django_q.models import Schedule


def upsert_schedules() -> None:
    Schedule.objects.update_or_create(
        name="send due webhook retries",
        defaults={
            "func": "webhooks.tasks.deliver_due",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
