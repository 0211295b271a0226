"""The job lifecycle in one place: every status change goes through `transition()` (or, for
dispatch handing many queued jobs to nodes at once, `claim()`).

A transition is a conditional UPDATE (`WHERE id = … AND status = from`), so of two
processes racing to move a job only one wins, and an illegal move is an error, never a
silent overwrite. Each committed change also updates the job metrics (jobs.metrics).
"""

from __future__ import annotations

from django.utils import timezone

from core.bulk_update import update_each
from jobs import metrics
from jobs.models import Job
from jobs.signals import job_status_changed

S = Job.Status
ALLOWED: dict[str, set[str]] = {
    S.QUEUED: {S.RUNNING, S.CANCELLED, S.ERROR},
    S.RUNNING: {S.DONE, S.ERROR, S.CANCELLED, S.QUEUED},
    S.DONE: set(),
    S.ERROR: set(),
    S.CANCELLED: set(),
}


class IllegalTransition(Exception):
    pass


def transition(
    job_id, *, from_status: str, to_status: str, extra_filter: dict | None = None, held: Job | None = None, **fields
) -> bool:
    """Move a job from one status to another; False if it was no longer in `from_status`.

    `held`: the caller's copy of the job (with its workflow), so that metrics need not read
    the row back. Raises IllegalTransition for a move the lifecycle does not allow.
    """
    _ensure_allowed(from_status, to_status)
    if to_status in Job.FINISHED:
        fields.setdefault("finished_at", timezone.now())
        fields.setdefault("runner_id", "")
        if to_status == S.DONE:
            fields.setdefault("progress", 1.0)
    if to_status == S.QUEUED:
        fields.update(
            node=None,
            prompt_id="",
            client_id="",
            runner_id="",
            heartbeat_at=None,
            started_at=None,
            submitted_at=None,
            node_finished_at=None,
            progress=0.0,
            progress_text="",
        )
    updated = Job.objects.filter(pk=job_id, status=from_status, **(extra_filter or {})).update(
        status=to_status, **fields
    )
    if updated != 1:
        return False
    if to_status in Job.FINISHED:
        metrics.job_finished(job_id, to_status, fields, held=held)
    elif to_status == S.QUEUED:
        metrics.job_requeued()
    job_status_changed.send(sender=Job, job_ids=[job_id], status=to_status, held=held)
    return True


def claim(assignments: dict, *, runner_id: str, now) -> None:
    """QUEUED → RUNNING for many jobs in one UPDATE: {job id: (node id, prompt id, client id)}.

    A job no longer QUEUED (cancelled, or claimed by another dispatcher) is left alone: read
    back which were claimed by their prompt ids."""
    _ensure_allowed(S.QUEUED, S.RUNNING)
    claimed = update_each(
        Job,
        assignments,
        ("node", "prompt_id", "client_id"),
        where="status = %s",
        where_params=[S.QUEUED],
        set_also={
            "status": S.RUNNING,
            "started_at": now,
            "heartbeat_at": now,
            "runner_id": runner_id,
            "progress": 0.0,
            "progress_text": "",
            "error": "",
        },
    )
    metrics.jobs_started(claimed)
    if claimed:
        # Which of them this UPDATE claimed, receivers tell by the prompt id each was given.
        prompts = {job_id: values[1] for job_id, values in assignments.items()}
        job_status_changed.send(sender=Job, job_ids=list(assignments), status=S.RUNNING, held=None, prompts=prompts)


def _ensure_allowed(from_status: str, to_status: str) -> None:
    if to_status not in ALLOWED[from_status]:
        raise IllegalTransition(f"a job cannot go from {from_status} to {to_status}")
