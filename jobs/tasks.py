"""django-q2 tasks, each a thin entry point (scheduled or enqueued by its dotted name).

How runners are kept alive is described in `jobs.supervision`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from django.conf import settings

from core.gc_tuning import freeze_startup_objects
from jobs import idempotency, storage, supervision
from jobs.retention import delete_expired, delete_unused_uploads
from jobs.runner import Runner


def run_engine() -> None:
    """One job runner: dispatches and follows jobs for RUNNER_LEASE seconds, then hands over.

    SIGTERM to this worker process (systemd stops every process of the unit at once) makes the
    runner hand its jobs over at once; then the process ends, as SIGTERM asked.
    """
    if supervision.cluster_stopping():
        supervision.pass_on_runner_task()
        return
    freeze_startup_objects()  # this worker process now serves the runner's event loop
    if asyncio.run(_serve(Runner())):
        for handler in logging.getLogger().handlers:
            handler.flush()
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


async def _serve(runner: Runner) -> bool:
    """Serve the lease; True if SIGTERM ended it."""
    terminated = False

    def on_sigterm() -> None:
        nonlocal terminated
        terminated = True
        runner.hand_over_now()

    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    except (ValueError, RuntimeError):  # not the main thread (a task run in-process): no signals here
        await runner.serve(lease=settings.RUNNER_LEASE)
        return False
    try:
        await runner.serve(lease=settings.RUNNER_LEASE)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)  # back to the default: an idle worker just ends
    return terminated


def ensure_runners() -> int:
    """Scheduled every minute: start runners until JOB_RUNNERS are alive."""
    return supervision.ensure_runners()


def cleanup_retention() -> int:
    """Hourly: expired results, unused uploads and Idempotency-Keys past their window, then every
    user's storage count checked."""
    deleted = delete_expired() + delete_unused_uploads() + idempotency.forget_expired()
    storage.recount()
    return deleted
