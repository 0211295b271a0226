"""Use cases for jobs: submit, cancel, retry, delete, and access checks used by API and pages."""

from __future__ import annotations

from django.db import transaction

from core.errors import Conflict, InvalidInput, NotFound, TooManyRequests, field_errors_detail
from jobs import cursors, files, lifecycle, queries
from jobs.models import Job, JobFile, quota_day_start
from jobs.notify import announce_new_job, send_job_event, wake_dispatch
from jobs.presenters import for_presenting, present_job
from jobs.supervision import RUNNER_CHECK_KEY, RUNNER_CHECK_SECONDS, ensure_runners
from workflows.models import Workflow
from workflows.prompt import InputsInvalid, validate_inputs
from workflows.services import get_active_workflow
from workflows.spec import file_fields

S = Job.Status
# A result of an earlier job may feed an image field (img2img on your own output).
ALLOWED_KINDS = {"image": {JobFile.Kind.IMAGE, JobFile.Kind.RESULT}, "mask": {JobFile.Kind.MASK}}


def get_job_for_user(user, job_id) -> Job:
    """The job if `user` owns it (or is an admin); NotFound otherwise, never a hint that it exists."""
    jobs = Job.objects.select_related("workflow", "node", "user").prefetch_related("files")
    try:
        job = jobs.filter(pk=job_id).first()
    except Exception:  # a malformed id
        job = None
    if job is None or (job.user_id != user.pk and not user.is_admin):
        raise NotFound("Job not found.")
    return job


def get_file_for_user(user, file_id) -> JobFile:
    try:
        record = JobFile.objects.filter(pk=file_id).first()
    except Exception:
        record = None
    if record is None or (record.owner_id != user.pk and not user.is_admin):
        raise NotFound("File not found.")
    return record


def _check_uploads(user, spec: dict, values: dict) -> None:
    errors = {}
    for field_id, field_type in file_fields(spec).items():
        upload_id = values.get(field_id)
        if not upload_id:
            continue
        record = None
        try:
            record = JobFile.objects.filter(pk=upload_id, owner=user).first()
        except Exception:
            pass
        if record is None:
            errors[field_id] = "upload not found: upload the file first with POST /api/uploads"
        elif record.kind not in ALLOWED_KINDS[field_type]:
            errors[field_id] = f"must be an upload of kind '{field_type}', not '{record.kind.lower()}'"
        else:
            field = next(f for f in spec["inputs"] if f["id"] == field_id)
            max_pixels = field.get("max_pixels")
            if max_pixels and record.width * record.height > max_pixels:
                errors[field_id] = f"image has {record.width}×{record.height} pixels; at most {max_pixels} allowed"
    if errors:
        raise InvalidInput(field_errors_detail(errors), errors=errors)


def check_quotas(user) -> None:
    """429 naming the limit: too many queued jobs, or today's job count reached."""
    queued, today = queries.count_queued_and_today(user.pk, quota_day_start())
    if queued >= user.effective_max_queued_jobs:
        raise TooManyRequests(
            f"max_queued_jobs: you have {queued} queued jobs (limit {user.effective_max_queued_jobs}); "
            "wait for some to finish.",
            headers={"Retry-After": "30"},
        )
    if today >= user.effective_daily_job_limit:
        raise TooManyRequests(
            f"daily_job_limit: you started {today} jobs today (limit {user.effective_daily_job_limit}).",
            headers={"Retry-After": "3600"},
        )


def submit_job(*, user, workflow_slug: str, inputs: dict, priority: int = 0) -> Job:
    """Validate inputs against the spec, check quotas, create the job QUEUED, wake dispatch."""
    workflow = get_active_workflow(workflow_slug)
    return _create_job(user=user, workflow=workflow, inputs=inputs, priority=priority)


def _create_job(*, user, workflow: Workflow, inputs: dict, priority: int = 0) -> Job:
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs: must be an object of field id → value.", errors={"inputs": "must be an object"})
    try:
        values = validate_inputs(workflow.spec, inputs)
    except InputsInvalid as exc:
        raise InvalidInput(field_errors_detail(exc.errors), errors=exc.errors) from exc
    _check_uploads(user, workflow.spec, values)
    with transaction.atomic():
        queries.lock_user(user.pk)
        check_quotas(user)
        # The user's row is locked above: taking the event number here costs no extra wait.
        job = Job.objects.create(
            user=user, workflow=workflow, inputs=values, priority=priority, seq=cursors.take(user.pk)
        )
        upload_ids = [values[f] for f in file_fields(workflow.spec) if values.get(f)]
        if upload_ids:  # (an empty filter still costs the ORM a compile)
            JobFile.objects.filter(pk__in=upload_ids, job__isnull=True).update(job=job)
        transaction.on_commit(lambda: _announce(job))
    return job


def _announce(job: Job) -> None:
    job.announced = present_job(job, results=[])  # a new job has no results yet
    # Every few seconds, a submit also checks that runners are alive (restarts them if all died).
    if announce_new_job(job.user_id, job.announced, turn_key=RUNNER_CHECK_KEY, turn_seconds=RUNNER_CHECK_SECONDS):
        ensure_runners(force=True)


def presented_new_job(job: Job) -> dict:
    """A job just submitted as the API returns it: what was announced, or (inside an outer
    transaction, before the announcement) computed now."""
    return getattr(job, "announced", None) or present_job(job, results=[])


def publish(job_id) -> None:
    job = for_presenting(Job.objects.filter(pk=job_id)).first()
    if job is not None:
        send_job_event(job.user_id, present_job(job))


def cancel_job(*, job: Job) -> Job:
    """QUEUED → CANCELLED now; RUNNING → interrupt on its node, CANCELLED when the node confirms."""
    if job.status == S.QUEUED and lifecycle.transition(
        job.pk, from_status=S.QUEUED, to_status=S.CANCELLED, error="Cancelled before it started."
    ):
        publish(job.pk)
    elif job.status in (S.QUEUED, S.RUNNING):
        lifecycle.record_change(job.pk, user_id=job.user_id, where={"status": S.RUNNING}, cancel_requested=True)
        wake_dispatch()
        publish(job.pk)
    elif job.status in Job.FINISHED:
        raise Conflict(f"status: the job is already {job.status.lower()}.")
    job.refresh_from_db()
    return job


def retry_job(*, user, job: Job) -> Job:
    """A new job with the same inputs (and the same uploaded files, copied)."""
    inputs = dict(job.inputs)
    for field_id in file_fields(job.workflow.spec):
        upload_id = inputs.get(field_id)
        record = JobFile.objects.filter(pk=upload_id).first() if upload_id else None
        if record is not None:
            copy = files.store_copy(record, owner=user)
            inputs[field_id] = str(copy.pk)
    workflow = job.workflow if job.workflow.is_active else get_active_workflow(job.workflow.slug)
    return _create_job(user=user, workflow=workflow, inputs=inputs, priority=job.priority)


def delete_job(*, job: Job) -> None:
    """Delete a finished job with its files (a running one must be cancelled first)."""
    if job.status in Job.ACTIVE:
        raise Conflict("status: cancel the job before deleting it.")
    files.delete_files(job.files.all())
    job.delete()


def delete_file(*, record: JobFile) -> None:
    if record.job_id and record.job.status in Job.ACTIVE:
        raise Conflict("The file belongs to a job that is still running.")
    files.delete_files([record])
