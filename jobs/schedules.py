"""Schedules declared in code and upserted after migrate (by `manage.py bootstrap`)."""

from __future__ import annotations

from django_q.models import Schedule

from jobs.supervision import ensure_runners

SCHEDULES = [
    # (name, function, minutes)
    ("keep job runners alive", "jobs.tasks.ensure_runners", 1),
    ("delete expired results", "jobs.tasks.cleanup_retention", 60),  # and unused uploads
]


def upsert_schedules() -> None:
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name, defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": minutes, "repeats": -1}
        )
    ensure_runners()
