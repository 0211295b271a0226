"""How webhooks reacts to jobs' signals; WebhooksConfig.ready() connects these receivers."""

from __future__ import annotations

from django.db import transaction
from django_q.tasks import async_task

from webhooks.delivery import EVENT_OF_STATUS, jobs_wanting_events


def job_status_changed(sender, job_ids, status, held=None, claimed=None, **kwargs) -> None:
    """Jobs changed status: once committed, a worker makes and sends their deliveries."""
    event = EVENT_OF_STATUS.get(status)
    if event is None:
        return
    wanted = jobs_wanting_events(job_ids, held=held, claimed=claimed)
    if wanted:
        transaction.on_commit(lambda: async_task("webhooks.tasks.job_event", wanted, event))
