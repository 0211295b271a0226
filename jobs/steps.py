"""The database steps of running a job, each one small and testable alone.

Plain blocking functions: the runner and its followers call them off the event loop, through
the runner's database thread (`Runner.db`). Talking to the node is `jobs.transfer`'s business.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.bulk_update import update_each
from jobs import cursors, files, lifecycle, metrics
from jobs.models import FailedAttempt, Job, JobFile
from jobs.notify import wake_dispatch
from jobs.presenters import for_presenting, present_job
from nodes.health import mark_offline
from workflows.spec import file_fields

logger = logging.getLogger("comfyportal.jobs")
S = Job.Status


def load_job(job_id) -> Job | None:
    return Job.objects.select_related("workflow", "node", "user").filter(pk=job_id).first()


def payload_for(job_id) -> dict | None:
    job = for_presenting(Job.objects.filter(pk=job_id)).first()
    return None if job is None else {"user_id": job.user_id, "job": present_job(job)}


def cancel_was_requested(job_id) -> bool:
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def write_running_state(progress: dict[str, tuple[float, str]], submitted: dict | None = None) -> None:
    """The latest progress of many running jobs, {job id: (fraction, text)}, in one UPDATE (each
    with the next number of its owner's event sequence, see jobs.cursors), and when their nodes
    accepted them and under which client id, {job id: (datetime, client id)}, in another."""
    if progress:
        owners = dict(Job.objects.filter(pk__in=list(progress), status=S.RUNNING).values_list("pk", "user_id"))
        with transaction.atomic():
            seqs = cursors.take_for_jobs({str(pk): user_id for pk, user_id in owners.items()})
            update_each(
                Job,
                {
                    job_id: (fraction, text[:200], seqs[job_id])
                    for job_id, (fraction, text) in progress.items()
                    if job_id in seqs
                },
                ("progress", "progress_text", "seq"),
                where="status = %s",
                where_params=[S.RUNNING],
            )
    if submitted:
        update_each(
            Job,
            {job_id: (at, client_id) for job_id, (at, client_id) in submitted.items()},
            ("submitted_at", "client_id"),
            where="status = %s AND submitted_at IS NULL",
            where_params=[S.RUNNING],
        )


def heartbeat(*, runner_id: str, job_ids: list[str]) -> list[str]:
    """Refresh the heartbeat of the jobs we follow; return those whose owner asked to cancel."""
    if not job_ids:
        return []
    mine = Job.objects.filter(pk__in=job_ids, status=S.RUNNING, runner_id=runner_id)
    mine.update(heartbeat_at=timezone.now())
    return [str(pk) for pk in mine.filter(cancel_requested=True).values_list("pk", flat=True)]


def release_jobs(*, runner_id: str) -> int:
    """A stopping runner gives up the RUNNING jobs it holds: nobody's (`runner_id=""`), they are
    adopted by the next runner that looks (`adopt_stale_jobs`), with no wait for a stale
    heartbeat. Their prompts run on: the adopter follows them again on their nodes."""
    released = Job.objects.filter(status=S.RUNNING, runner_id=runner_id).update(runner_id="")
    if released:
        logger.info("runner %s handed %d job(s) over", runner_id, released)
    return released


def adopt_stale_jobs(*, runner_id: str, following: list[str] = (), limit: int = 100) -> list[Job]:
    """Take over RUNNING jobs nobody follows: handed over by a stopping runner, or with no
    heartbeat for RUNNER_STALE_AFTER seconds (their runner died, or, a safety net, this runner
    lost track of one).

    Each is claimed with a conditional update on the old owner and heartbeat, so two
    runners never adopt the same job.
    """
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.RUNNER_STALE_AFTER)
    stale = list(
        Job.objects.filter(status=S.RUNNING)
        .filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True) | Q(runner_id=""))
        .exclude(pk__in=following)
        .values_list("pk", "runner_id", "heartbeat_at")[:limit]
    )
    adopted = []
    for pk, old_runner, old_beat in stale:
        if Job.objects.filter(pk=pk, status=S.RUNNING, runner_id=old_runner, heartbeat_at=old_beat).update(
            runner_id=runner_id, heartbeat_at=now
        ):
            why = f"runner {old_runner} went silent" if old_runner else "handed over"
            logger.info("job %s adopted by runner %s (%s)", pk, runner_id, why)
            adopted.append(pk)
    return list(Job.objects.filter(pk__in=adopted).select_related("workflow", "node", "user"))


def finish_and_present(
    job: Job,
    *,
    status: str,
    message: str,
    results: list[tuple] = (),
    submitted_at=None,
    node_finished_at=None,
    gpu_seconds: float | None = None,
) -> dict | None:
    """Store a job's results (bytes, source ref[, facts]), end it, and return the event to publish.

    One database step for the runner: the end of a job is a single hop off its event loop.
    `job` is the runner's copy (claimed with its workflow and node); `submitted_at`, when the
    node accepted the prompt, is written with the ending (the progress batch that also
    carries it skips jobs that have ended); so is `node_finished_at`, when its node finished
    the prompt (then the runner's next step need not record it). The usage figures are written with it too: the
    node's execution time of this attempt (`gpu_seconds`; only this attempt's, so a job that
    failed over is counted once), its wait in the queue, and its outputs.
    """
    # One transaction: the result rows, their bytes counted, the status with its event number.
    # Its metrics are sent by a writer thread once it commits, not by this (the runner's) thread.
    stored = []
    try:
        with metrics.in_background(), transaction.atomic():
            stored = files.store_results(job=job, results=results)
            ending = {"finished_at": timezone.now(), **usage_of(job, stored, gpu_seconds)}
            if submitted_at is not None:
                ending["submitted_at"] = submitted_at
            if node_finished_at is not None:
                ending["node_finished_at"] = node_finished_at
            ended = finish(job.pk, status=status, message=message, held=job, **ending)
    except Exception:
        for record in stored:  # rolled back: no row points at their files
            files.delete_stored(record)
        raise
    if not ended or len(stored) != len(results):
        return payload_for(job.pk)  # someone else ended it, or collected some results: read what the row says
    # We have just written the ending: present it without reading the job back.
    job.status, job.finished_at, job.cancel_requested = status, ending["finished_at"], False
    job.error = message[:5000]
    if status == S.DONE:
        job.progress = 1.0
    return {"user_id": job.user_id, "job": present_job(job, position=False, results=stored)}


def usage_of(job: Job, stored: list[JobFile], gpu_seconds: float | None) -> dict:
    """The usage columns of a job ending now: GPU time, queue wait, outputs."""
    queue_seconds = None
    if job.started_at is not None and job.created_at is not None:
        queue_seconds = max(0.0, (job.started_at - job.created_at).total_seconds())
    return {
        "gpu_seconds": round(gpu_seconds, 3) if gpu_seconds is not None else None,
        "queue_seconds": round(queue_seconds, 3) if queue_seconds is not None else None,
        "output_count": len(stored),
        "output_bytes": sum(record.size for record in stored),
    }


def finish(job_id, *, status: str, message: str, held: Job | None = None, **fields) -> bool:
    """End a RUNNING job (DONE, ERROR or CANCELLED). False if someone else ended it first.
    `fields`: more columns to set in the same UPDATE (finished_at defaults to now); `held`:
    the caller's copy of the job, if it has one (see lifecycle.transition)."""
    fields["error"] = message[:5000]
    ended = lifecycle.transition(
        job_id, from_status=S.RUNNING, to_status=status, cancel_requested=False, held=held, **fields
    )
    if ended:
        logger.info("job %s %s %s", job_id, status, message[:200], extra={"job": str(job_id), "status": status})
    return ended


def requeue_or_fail(job_id, *, runner_id: str, reason: str) -> None:
    """The node failed the job (not the job's fault): queue it again, or give up after the max."""
    job = Job.objects.select_related("node").filter(pk=job_id, status=S.RUNNING).first()
    if job is None:
        return
    attempt = job.attempts + 1
    FailedAttempt.objects.create(
        job=job,
        number=attempt,
        node_name=job.node.name if job.node_id and job.node else "",
        started_at=job.started_at,
        ended_at=timezone.now(),
        reason=reason[:500],
    )
    if attempt >= settings.JOB_MAX_ATTEMPTS:
        finish(job_id, status=S.ERROR, message=f"Gave up after {attempt} attempts; last: {reason}")
        return
    if lifecycle.transition(
        job_id,
        from_status=S.RUNNING,
        to_status=S.QUEUED,
        attempts=F("attempts") + 1,
        error=f"Attempt {attempt} failed ({reason}); waiting for another node.",
    ):
        logger.info("job %s requeued (attempt %s): %s", job_id, attempt, reason, extra={"job": str(job_id)})
        wake_dispatch()


def node_failed(node_id: int, message: str) -> None:
    mark_offline(node_id, message)


def has_file_inputs(job: Job) -> bool:
    return bool(file_fields(job.workflow.spec))


def inputs_to_send(job_id) -> dict[str, tuple[JobFile, bytes]] | None:
    """The job's input files with their bytes, or None if its owner asked to cancel it.

    One database step before a job is sent, so that dispatch to POST /prompt stays short.
    """
    job = (
        Job.objects.select_related("workflow")
        .filter(pk=job_id)
        .only("cancel_requested", "inputs", "workflow__spec")
        .first()
    )
    if job is None or job.cancel_requested:
        return None
    return _input_records(job)


def _input_records(job: Job) -> dict[str, tuple[JobFile, bytes]]:
    wanted = {
        field_id: job.inputs.get(field_id) for field_id in file_fields(job.workflow.spec) if job.inputs.get(field_id)
    }
    by_id = {str(r.pk): r for r in JobFile.objects.filter(pk__in=list(wanted.values()))}
    out = {}
    for field_id, file_id in wanted.items():
        record = by_id.get(str(file_id))
        if record is not None:
            out[field_id] = (record, files.read_bytes(record))
    return out
