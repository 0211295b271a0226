"""django-q2 tasks, each a thin entry point (scheduled or enqueued by its dotted name).

How runners are kept alive is described in `jobs.supervision`.
"""

from __future__ import annotations

import asyncio

from django.conf import settings

from core.gc_tuning import freeze_startup_objects
from jobs import idempotency, supervision
from jobs.retention import delete_expired
from jobs.runner import Runner


def run_engine() -> None:
    """One job runner: dispatches and follows jobs for RUNNER_LEASE seconds, then hands over."""
    freeze_startup_objects()  # this worker process now serves the runner's event loop
    asyncio.run(Runner().serve(lease=settings.RUNNER_LEASE))


def ensure_runners() -> int:
    """Scheduled every minute: start runners until JOB_RUNNERS are alive."""
    return supervision.ensure_runners()


def cleanup_retention() -> int:
    """Hourly: expired results, and Idempotency-Keys past their window."""
    return delete_expired() + idempotency.forget_expired()
