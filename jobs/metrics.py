"""What /metrics counts about jobs: updated in Redis when jobs start and end (jobs.lifecycle
calls these), so the figures are cumulative and shared by every process.

Each status change costs one pipelined Redis call after the change is committed: in the thread
of its database step, or, for a job's ending by its runner (`in_background()`), in a writer
thread of the process that sends whatever is pending in one pipeline, so that the runner's
database thread never waits for Redis. A failure is logged, never raised: metrics must not
break a job.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import os
import queue
import threading

from django.db import transaction

from core.redis_client import shared_redis
from core.redis_metrics import Counter, Histogram
from jobs.models import Job

logger = logging.getLogger("comfyportal.jobs")

DURATION_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600]
WAIT_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900]

JOBS_STARTED = Counter("comfyportal_jobs_started", "Jobs handed to a node (a requeued job counts again).")
JOBS_REQUEUED = Counter("comfyportal_jobs_requeued", "Jobs queued again because their node failed them.")
JOBS_FINISHED = Counter("comfyportal_jobs_finished", "Jobs that ended, by status and workflow.", ["status", "workflow"])
JOB_ERRORS = Counter("comfyportal_job_errors", "Jobs that ended in ERROR, by kind.", ["kind"])
JOB_DURATION = Histogram(
    "comfyportal_job_duration_seconds", "Run time of jobs that ended DONE.", DURATION_BUCKETS, ["workflow"]
)
QUEUE_WAIT = Histogram(
    "comfyportal_queue_wait_seconds", "Time from submit to a node slot (last start), of ended jobs.", WAIT_BUCKETS
)
DISPATCH_LATENCY = Histogram(
    "comfyportal_dispatch_latency_seconds",
    "Time from submit to the node accepting the prompt, of ended jobs.",
    WAIT_BUCKETS,
)
JOB_METRICS = [JOBS_STARTED, JOBS_REQUEUED, JOBS_FINISHED, JOB_ERRORS, JOB_DURATION, QUEUE_WAIT, DISPATCH_LATENCY]


def error_kind(message: str) -> str:
    if message.startswith("ComfyUI rejected"):
        return "rejected"
    if message.startswith("ComfyUI error"):
        return "execution"
    if message.startswith("Gave up after"):
        return "node_lost"
    if message.startswith("Timed out"):
        return "timeout"
    return "other"


def jobs_started(count: int) -> None:
    if count:
        transaction.on_commit(lambda: _record(lambda pipe: JOBS_STARTED.inc(pipe, amount=count)))


def job_requeued() -> None:
    transaction.on_commit(lambda: _record(lambda pipe: JOBS_REQUEUED.inc(pipe)))


def job_finished(job_id, status: str, fields: dict, *, held: Job | None = None) -> None:
    """Count a job that has just ended with `fields` written, and observe its times: from
    `held`, the caller's copy of the job, or else read from its row."""
    if held is not None:
        row = (
            status,
            held.workflow.slug,
            fields.get("error", ""),
            held.created_at,
            held.started_at,
            fields.get("submitted_at", held.submitted_at),
            fields.get("finished_at"),
        )
        transaction.on_commit(lambda: _record(lambda pipe: _observe_finished(pipe, row)))
    else:
        # Sent by the committing thread, whose database connection reads the row.
        transaction.on_commit(lambda: _send([lambda pipe: _observe_finished(pipe, _read_row(job_id))]))


def _read_row(job_id) -> tuple | None:
    return (
        Job.objects.filter(pk=job_id)
        .values_list("status", "workflow__slug", "error", "created_at", "started_at", "submitted_at", "finished_at")
        .first()
    )


def _observe_finished(pipe, row: tuple | None) -> None:
    if row is None:  # deleted meanwhile
        return
    status, workflow, error, created, started, submitted, finished = row
    JOBS_FINISHED.inc(pipe, [status, workflow])
    if status == Job.Status.ERROR:
        JOB_ERRORS.inc(pipe, [error_kind(error)])
    if started is not None:
        QUEUE_WAIT.observe(pipe, (started - created).total_seconds())
        if status == Job.Status.DONE and finished is not None:
            JOB_DURATION.observe(pipe, (finished - started).total_seconds(), [workflow])
    if submitted is not None:
        DISPATCH_LATENCY.observe(pipe, (submitted - created).total_seconds())


_background = contextvars.ContextVar("job_metrics_in_background", default=False)


@contextlib.contextmanager
def in_background():
    """Updates committed inside this block are sent by the writer thread, not the caller's."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def _record(update) -> None:
    if _background.get():
        _writer.put(update)
    else:
        _send([update])


def _send(updates: list) -> None:
    try:
        pipe = shared_redis().pipeline(transaction=False)
        for update in updates:
            update(pipe)
        pipe.execute()
    except Exception as exc:  # a metric must never break a job
        logger.warning("could not update job metrics: %s", exc)


class _Writer:
    """One daemon thread per process that sends queued updates, all pending in one pipeline."""

    MAX_PENDING = 10_000  # while Redis is away: beyond this, updates are dropped, not kept

    def __init__(self):
        self._lock = threading.Lock()
        self._pid = None
        self._queue: queue.Queue = queue.Queue()

    def put(self, update) -> None:
        self._ensure_running()
        try:
            self._queue.put_nowait(update)
        except queue.Full:
            logger.warning("job metrics dropped: %d updates wait for Redis already", self.MAX_PENDING)

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was queued before is sent (or failed); False on a timeout."""
        if self._pid != os.getpid():
            return True
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return False
        return done.wait(timeout)

    def _ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # first use in this process (a forked child starts afresh)
                self._queue = queue.Queue(maxsize=self.MAX_PENDING)
                threading.Thread(target=self._run, args=(self._queue,), name="job-metrics", daemon=True).start()
                self._pid = os.getpid()

    @staticmethod
    def _run(pending: queue.Queue) -> None:
        while True:
            batch = [pending.get()]
            with contextlib.suppress(queue.Empty):
                while len(batch) < 1000:
                    batch.append(pending.get_nowait())
            updates = [item for item in batch if not isinstance(item, threading.Event)]
            if updates:
                _send(updates)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()


_writer = _Writer()
flush = _writer.flush
atexit.register(flush)
