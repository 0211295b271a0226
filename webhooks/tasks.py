"""django-q2 tasks of webhooks (enqueued by webhooks.receivers, scheduled by webhooks.schedules)."""

from __future__ import annotations

from django_q.tasks import async_task

from webhooks import delivery


def job_event(job_ids: list[str], event: str) -> int:
    """Jobs changed status: make their deliveries and send each in a task of its own."""
    ids = delivery.record_event(job_ids, event)
    for delivery_id in ids:
        async_task("webhooks.tasks.deliver", delivery_id)
    return len(ids)


def deliver(delivery_id: int) -> str | None:
    return delivery.attempt(delivery_id)


def deliver_due() -> int:
    """Every minute: send the deliveries whose retry is due."""
    due = delivery.due_deliveries()
    for delivery_id in due:
        async_task("webhooks.tasks.deliver", delivery_id)
    return len(due)
