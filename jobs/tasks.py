"""django-q2 tasks. Thin: each calls one service.

`run_engine` is the long one: a Runner that dispatches and follows jobs for RUNNER_LEASE
seconds, then hands over to a successor. `ensure_runners` keeps JOB_RUNNERS of them alive
(scheduled every minute, and called on submit when none answers).
"""

from __future__ import annotations

import asyncio
import logging

import redis
from django.conf import settings
from django_q.tasks import async_task

from core.gc_tuning import freeze_startup_objects
from core.redis_client import shared_redis
from jobs.runner import RUNNER_KEY, Runner

logger = logging.getLogger("comfyportal.jobs")


def run_engine() -> None:
    freeze_startup_objects()  # this worker process now serves the runner's event loop
    asyncio.run(Runner().serve(lease=settings.RUNNER_LEASE))  # hands over to a successor itself


def alive_runners() -> int:
    try:
        return sum(1 for _ in shared_redis().scan_iter(match=RUNNER_KEY + "*", count=100))
    except redis.RedisError:
        return 0


# One starter at a time, and not more often than every few seconds: whoever sets this key.
RUNNER_CHECK_KEY = f"{settings.REDIS_PREFIX}:runner-starter"
RUNNER_CHECK_SECONDS = 5


def ensure_runners(*, force: bool = False) -> int:
    """Start runners until JOB_RUNNERS are alive. Returns how many were started. `force`:
    check now, whoever checked last (or the caller has already taken the turn)."""
    if settings.Q_CLUSTER.get("sync"):
        return 0  # unit tests drive the runner directly
    try:
        if not shared_redis().set(RUNNER_CHECK_KEY, 1, nx=True, ex=RUNNER_CHECK_SECONDS) and not force:
            return 0
    except redis.RedisError:
        return 0
    missing = max(0, settings.JOB_RUNNERS - alive_runners())
    for _ in range(missing):
        async_task("jobs.tasks.run_engine", task_name="job runner", timeout=settings.Q_CLUSTER["timeout"])
    if missing:
        logger.info("started %d job runner(s)", missing)
    return missing


def cleanup_retention() -> int:
    from jobs.retention import delete_expired

    return delete_expired()


def on_worker_spawned(sender, proc_name: str = "", **kwargs) -> None:
    """A qcluster worker process started (a cluster booted or recycled a worker).

    Check for runners now and again once a dead runner's presence has expired, so that a
    restarted cluster brings runners back within seconds instead of at the next schedule.
    """
    import threading
    import time

    from jobs.runner import PRESENCE_TTL

    def check():
        time.sleep(1)
        ensure_runners()
        time.sleep(PRESENCE_TTL + 1)
        ensure_runners()

    threading.Thread(target=check, daemon=True, name="ensure-runners").start()
