"""The job lifecycle in one place: every status change goes through `transition()` (or, for
dispatch handing many queued jobs to nodes at once, `claim()`).

A transition is a conditional UPDATE (`WHERE id = … AND status = from`), so of two
processes racing to move a job only one wins, and an illegal move is an error, never a
silent overwrite. Each change takes the next number of its owner's event sequence in the
same transaction (jobs.cursors: what /ws/jobs/ resumes from). Each committed change also
updates the job metrics (jobs.metrics).
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from core.bulk_update import can_return_updated, update_each, update_each_returning
from jobs import cursors, metrics
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
    the row back (its `seq` is set to the change's number). Raises IllegalTransition for a
    move the lifecycle does not allow.
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
    user_id = held.user_id if held is not None else owner_of(job_id)
    if user_id is None:
        return False
    # Inside a caller's transaction (a job's ending with its results) no savepoint, two round
    # trips fewer: an error here fails the caller's whole transaction, as it should.
    with transaction.atomic(savepoint=False):
        seq = cursors.update_with_next(
            Job.objects.filter(pk=job_id, status=from_status, **(extra_filter or {})),
            user_id,
            status=to_status,
            **fields,
        )
    if seq is None:
        return False
    if held is not None:
        held.seq = seq
    if to_status in Job.FINISHED:
        metrics.job_finished(job_id, to_status, fields, held=held)
    elif to_status == S.QUEUED:
        metrics.job_requeued()
    job_status_changed.send(sender=Job, job_ids=[job_id], status=to_status, held=held)
    return True


def owner_of(job_id) -> int | None:
    return Job.objects.filter(pk=job_id).values_list("user_id", flat=True).first()


def record_change(job_id, *, user_id: int, where: dict | None = None, **fields) -> bool:
    """A change of a job's row its owner sees, outside the status lifecycle (a cancel
    request), if the row matches `where`: written with the next number of the owner's event
    sequence. False if the row did not match."""
    with transaction.atomic():
        seq = cursors.take(user_id)
        return Job.objects.filter(pk=job_id, **(where or {})).update(seq=seq, **fields) == 1


def claim(assignments: dict, *, runner_id: str, now, owners: dict | None = None) -> list[Job]:
    """QUEUED → RUNNING for many jobs in one UPDATE: {job id: (node id, prompt id, client id)};
    `owners`: {job id: user id} when the caller knows them (else read). Call inside a
    transaction (dispatch's): the owners' event counters stay locked until it commits.

    Returns the jobs claimed, in the order of `assignments`, every field loaded as the UPDATE
    left it (the database answers it with them: no read back). A job no longer QUEUED
    (cancelled, or claimed by another dispatcher) is left alone and not returned."""
    _ensure_allowed(S.QUEUED, S.RUNNING)
    if not assignments:
        return []
    if owners is None:
        owners = dict(Job.objects.filter(pk__in=list(assignments)).values_list("pk", "user_id"))
    # Ids as dispatch may hold them: UUIDs, their text, or SQLite's hex form.
    owners = {_uuid(job_id): user_id for job_id, user_id in owners.items()}
    seqs = cursors.take_for_jobs({job_id: owners[_uuid(job_id)] for job_id in assignments if _uuid(job_id) in owners})
    assignments = {job_id: values for job_id, values in assignments.items() if job_id in seqs}
    rows = {job_id: (*values, seqs[job_id]) for job_id, values in assignments.items()}
    columns = ("node", "prompt_id", "client_id", "seq")
    claim_only_queued = {"where": "status = %s", "where_params": [S.QUEUED]}
    running = {
        "status": S.RUNNING,
        "started_at": now,
        "heartbeat_at": now,
        "runner_id": runner_id,
        "progress": 0.0,
        "progress_text": "",
        "error": "",
    }
    if can_return_updated():
        claimed = update_each_returning(Job, rows, columns, set_also=running, **claim_only_queued)
    else:  # which of them this UPDATE claimed, told by the prompt id each was given
        update_each(Job, rows, columns, set_also=running, **claim_only_queued)
        claimed = list(
            Job.objects.filter(
                pk__in=list(assignments), status=S.RUNNING, prompt_id__in=[v[1] for v in assignments.values()]
            )
        )
    order = {_uuid(job_id): position for position, job_id in enumerate(assignments)}
    claimed.sort(key=lambda job: order[job.pk])
    metrics.jobs_started(len(claimed))
    if claimed:
        job_status_changed.send(
            sender=Job, job_ids=[job.pk for job in claimed], status=S.RUNNING, held=None, claimed=claimed
        )
    return claimed


def _uuid(job_id) -> uuid.UUID:
    return job_id if isinstance(job_id, uuid.UUID) else uuid.UUID(str(job_id))


def _ensure_allowed(from_status: str, to_status: str) -> None:
    if to_status not in ALLOWED[from_status]:
        raise IllegalTransition(f"a job cannot go from {from_status} to {to_status}")
