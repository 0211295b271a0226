"""Runner supervision: JOB_RUNNERS job runners stay alive, whatever dies.

- A runner (`jobs.runner.Runner`) is one long django-q2 task, `jobs.tasks.run_engine`. It holds
  a lease of RUNNER_LEASE seconds; then it hands over: it drops its presence key, starts a
  successor (`ensure_runners(force=True)`) and finishes the jobs it holds without claiming more.
- Presence: while it dispatches, a runner refreshes `RUNNER_KEY + <its id>` in Redis every second
  with a PRESENCE_TTL expiry; `alive_runners()` counts these keys.
- `ensure_runners()` enqueues `run_engine` until JOB_RUNNERS are present. It runs every minute
  (a q2 schedule), on a submit (one submit every RUNNER_CHECK_SECONDS at most), when a qcluster
  worker spawns, and in every runner every few seconds (a peer died with its cluster).
- A runner that dies leaves its RUNNING jobs with a stale heartbeat: after RUNNER_STALE_AFTER
  seconds another runner adopts them (`jobs.steps.adopt_stale_jobs`) and reconciles each with
  its node.
- A worker that stops hands its jobs over at once (`Runner.hand_over_now`): on SIGTERM to its
  process (systemd's KillMode=control-group) or when its cluster is stopping (`cluster_stopping`,
  set by `manage.py qcluster`'s master on SIGTERM/SIGINT), the runner stops following, marks its
  jobs as nobody's and sets HANDOVER_KEY; every other runner looks at that key each second and
  adopts them then, without waiting RUNNER_STALE_AFTER.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time

import redis
from django.conf import settings
from django_q.tasks import async_task

from core.redis_client import shared_redis

logger = logging.getLogger("comfyportal.jobs")

RUNNER_KEY = f"{settings.REDIS_PREFIX}:runner:"
PRESENCE_TTL = 6  # seconds a runner counts as alive after its last loop turn
# One starter at a time, and not more often than every few seconds: whoever sets this key.
RUNNER_CHECK_KEY = f"{settings.REDIS_PREFIX}:runner-starter"
RUNNER_CHECK_SECONDS = 5
RUN_ENGINE_TASK = "jobs.tasks.run_engine"  # by name: q2 imports it in the worker that runs it
# Set by a runner that handed its jobs over; the others adopt them when its value changes.
HANDOVER_KEY = f"{settings.REDIS_PREFIX}:runner-handover"

# "This cluster is stopping": one byte of shared memory, created at import in the qcluster
# master (apps load before it forks), so that its sentinel and every worker forked from it see
# the same byte. A plain byte, never a lock: the master sets it from its main loop and a signal
# handler may read it, so nothing here can block (django-q2's own Event can, see
# comfyportal/management/commands/qcluster.py).
_cluster_stopping = multiprocessing.RawValue("b", 0)


def cluster_stopping() -> bool:
    return bool(_cluster_stopping.value)


def set_cluster_stopping() -> None:
    _cluster_stopping.value = 1


def alive_runners() -> int:
    try:
        return sum(1 for _ in shared_redis().scan_iter(match=RUNNER_KEY + "*", count=100))
    except redis.RedisError:
        return 0


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
        async_task(RUN_ENGINE_TASK, task_name="job runner", timeout=settings.Q_CLUSTER["timeout"])
    if missing:
        logger.info("started %d job runner(s)", missing)
    return missing


def pass_on_runner_task() -> None:
    """A runner task reached a worker of a stopping cluster: put it back for another cluster
    (this cluster's pusher stops within a second, so it cannot take it again for long)."""
    async_task(RUN_ENGINE_TASK, task_name="job runner", timeout=settings.Q_CLUSTER["timeout"])
    logger.info("cluster stopping: runner task passed on to another worker")


def on_worker_spawned(sender, proc_name: str = "", **kwargs) -> None:
    """A qcluster worker process started (a cluster booted or recycled a worker).

    Check for runners now and again once a dead runner's presence has expired, so that a
    restarted cluster brings runners back within seconds instead of at the next schedule.
    """

    def check():
        time.sleep(1)
        if cluster_stopping():
            return
        ensure_runners()
        time.sleep(PRESENCE_TTL + 1)
        ensure_runners()

    threading.Thread(target=check, daemon=True, name="ensure-runners").start()
