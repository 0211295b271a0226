"""Use cases for jobs: submit, cancel, retry, delete, and access checks used by API and pages."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from core.errors import Conflict, InvalidInput, NotFound, TooManyRequests, field_errors_detail
from core.safe_url import UnsafeUrl, check_url
from jobs import cursors, files, lifecycle, queries, routing, storage
from jobs import idempotency as idempotency_keys
from jobs.idempotency import Idempotency
from jobs.models import Job, JobFile, quota_day_start
from jobs.notify import announce_new_job, send_job_event, wake_dispatch
from jobs.positions import new_job_position
from jobs.presenters import for_presenting, present_job
from jobs.signals import job_created
from jobs.supervision import RUNNER_CHECK_KEY, RUNNER_CHECK_SECONDS, ensure_runners
from nodes.farm import node_views
from workflows.model_choices import offered_models
from workflows.models import Workflow
from workflows.prompt import InputsInvalid, validate_inputs
from workflows.services import get_active_workflow
from workflows.spec import file_fields, workflow_spec

S = Job.Status
# A result of an earlier job may feed an image field (img2img on your own output).
ALLOWED_KINDS = {
    "image": {JobFile.Kind.IMAGE, JobFile.Kind.RESULT},
    "mask": {JobFile.Kind.MASK},
    "video": {JobFile.Kind.VIDEO, JobFile.Kind.RESULT},
    "audio": {JobFile.Kind.AUDIO, JobFile.Kind.RESULT},
}


def get_job_for_user(user, job_id) -> Job:
    """The job if `user` owns it (or is an admin); NotFound otherwise, never a hint that it exists."""
    jobs = Job.objects.select_related("workflow", "node", "user").prefetch_related("files")
    try:
        job = jobs.filter(pk=job_id).first()
    except Exception:  # a malformed id
        job = None
    return _visible(user, job)


def job_to_present_for_user(user, job_id) -> tuple[Job, list[JobFile]]:
    """What presenting the job reads (jobs.queries.job_to_present): the job and its results,
    if `user` owns it (or is an admin); NotFound otherwise, as get_job_for_user."""
    found = queries.job_to_present(job_id)
    _visible(user, found[0] if found else None)
    return found


def _visible(user, job: Job | None) -> Job:
    """`job` if `user` owns it or is an admin; NotFound otherwise (None too), never a hint that it exists."""
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


def get_file_to_view(user, file_id) -> JobFile:
    """A file `user` may see: their own (or any, for an admin), or a result of a finished job its
    owner marked shareable (the catalogue shows those to everyone). Changing a file stays the
    owner's: see get_file_for_user. The record carries its job's status and sharing, its
    workflow's slug and its job's result count (jobs.queries.file_to_view)."""
    record = queries.file_to_view(file_id)
    if record is None:
        raise NotFound("File not found.")
    if record.owner_id == user.pk or user.is_admin:
        return record
    shared = (
        record.kind == JobFile.Kind.RESULT
        and record.job_id is not None
        and bool(record.job_shareable)
        and record.job_status == S.DONE
    )
    if not shared:
        raise NotFound("File not found.")
    return record


def set_shareable(*, user, job_id, shareable: bool) -> Job:
    """The owner lets a job's results be shown to everyone (or stops it). Only the owner: an
    admin may see the job but not share someone else's pictures."""
    try:
        job = Job.objects.filter(pk=job_id, user=user).first()
    except Exception:  # a malformed id
        job = None
    if job is None:
        raise NotFound("Job not found.")
    Job.objects.filter(pk=job.pk).update(shareable=shareable)
    job.shareable = shareable
    return job


def _check_uploads(user, spec: dict, values: dict) -> None:
    errors = {}
    fields = file_fields(spec)
    owned = queries.owned_files(user.pk, {values[field_id] for field_id in fields if values.get(field_id)})
    for field_id, field_type in fields.items():
        upload_id = values.get(field_id)
        if not upload_id:
            continue
        record = owned.get(upload_id)
        if record is None:
            errors[field_id] = "upload not found: upload the file first with POST /api/uploads"
        elif record.kind not in ALLOWED_KINDS[field_type]:
            errors[field_id] = f"must be an upload of kind '{field_type}', not '{record.kind.lower()}'"
        elif record.kind == JobFile.Kind.RESULT and record.media != (field_type if field_type != "mask" else "image"):
            errors[field_id] = f"must be {field_type}; that result is {record.media}"
        else:
            field = next(f for f in spec["inputs"] if f["id"] == field_id)
            problem = upload_limit_problem(field, record)
            if problem:
                errors[field_id] = problem
    if errors:
        raise InvalidInput(field_errors_detail(errors), errors=errors)


def upload_limit_problem(field: dict, record: JobFile | queries.OwnedFile) -> str:
    """Why an upload is over one of its spec field's limits ("" when it is within them)."""
    max_pixels = field.get("max_pixels")
    if max_pixels and record.width * record.height > max_pixels:
        what = "image has" if field.get("type") in ("image", "mask") else "video frames are"
        return f"{what} {record.width}×{record.height} pixels; at most {max_pixels} allowed"
    if field.get("max_bytes") and record.size > field["max_bytes"]:
        return f"file is {record.size} bytes; at most {field['max_bytes']} allowed"
    if field.get("max_seconds") and (record.duration or 0) > field["max_seconds"] + 0.01:
        return f"lasts {record.duration:.1f} s; at most {field['max_seconds']:g} s allowed"
    if field.get("max_frames") and record.frame_count > field["max_frames"]:
        return f"has {record.frame_count} frames; at most {field['max_frames']} allowed"
    return ""


def check_quotas(user, *, node_ids: list[int] = ()) -> tuple[int, dict[int, int]]:
    """429 naming the limit: too many queued jobs, or today's job count reached. Otherwise the
    queue position a job the user submits now takes (jobs.positions) and {node id: our jobs
    holding its slots} for `node_ids` (why the new job waits), read in the same query."""
    queued, today, queued_per_user, busy = queries.queue_and_quotas(user.pk, quota_day_start(), node_ids)
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
    return new_job_position(user.pk, queued, queued_per_user), busy


def checked_webhook_url(url: str | None) -> str:
    """A job's webhook URL if it may be called (core.safe_url), "" for none; 400 naming the rule."""
    if not url:
        return ""
    try:
        return check_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    except UnsafeUrl as exc:
        raise InvalidInput(f"webhook_url: {exc}.", errors={"webhook_url": str(exc)}) from exc


def submit_job(
    *,
    user,
    inputs: dict,
    workflow_slug: str = "",
    workflow: Workflow | None = None,
    priority: int = 0,
    idempotency: Idempotency | None = None,
    **job_fields,
) -> Job:
    """Validate inputs against the spec, check quotas, create the job QUEUED, wake dispatch.

    The workflow is the active one named `workflow_slug` (NotFound if none), or `workflow` when
    the caller has just read it (each read asks Redis whether workflows changed). With
    `idempotency` (jobs.idempotency), a key already used gives its job back with
    `job.replayed` set instead of making another. `job_fields`: more columns of the new job."""
    if workflow is None:
        workflow = get_active_workflow(workflow_slug)
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs: must be an object of field id → value.", errors={"inputs": "must be an object"})
    views = node_views()
    offered = offered_models(workflow, views)
    if offered:
        inputs = routing.fill_model_defaults(workflow, inputs, offered)
    try:
        values = validate_inputs(workflow_spec(workflow), inputs)
    except InputsInvalid as exc:
        raise InvalidInput(field_errors_detail(exc.errors), errors=exc.errors) from exc
    _check_uploads(user, workflow.spec, values)
    model_files = routing.job_model_files(workflow, values, views)
    with transaction.atomic():
        queries.lock_user(user.pk)
        if idempotency is not None and (earlier := idempotency_keys.earlier_job(user.pk, idempotency)) is not None:
            earlier.replayed = True
            return earlier
        position, busy = check_quotas(user, node_ids=[view.pk for view in views])
        storage.check_room_for_job(user)
        # The user's row is locked above: taking the event number here costs no extra wait.
        job = Job(
            user=user,
            workflow=workflow,
            inputs=values,
            priority=priority,
            model_files=model_files,
            seq=cursors.take(user.pk),
            **job_fields,
        )
        queries.insert_job(job)
        job_created.send(sender=Job, job=job, workflow=workflow)
        if idempotency is not None:
            idempotency_keys.remember(user.pk, idempotency, job)
        uploads = {f: str(values[f]) for f in file_fields(workflow.spec) if values.get(f)}
        if uploads:  # (an empty filter still costs the ORM a compile)
            attached = queries.attach_files(job.pk, set(uploads.values()))
            if attached < len(set(uploads.values())):  # used by another job already, or expired
                _check_uploads_still_there(uploads)
        job.farm_views, job.farm_busy = views, busy  # read by this submit: presenting it needs them again
        job.known_position = position  # from the counts taken under the user's lock, just above
        transaction.on_commit(lambda: _announce(job))
    return job


def _check_uploads_still_there(uploads: dict[str, str]) -> None:
    """An unused upload expiring (jobs.retention.delete_unused_uploads) between the check and
    the attachment above: refuse the job rather than run it without its file."""
    there = {str(pk) for pk in JobFile.objects.filter(pk__in=uploads.values()).values_list("pk", flat=True)}
    errors = {field: "upload expired: upload the file again" for field, pk in uploads.items() if pk not in there}
    if errors:
        raise InvalidInput(field_errors_detail(errors), errors=errors)


def _announce(job: Job) -> None:
    job.announced = _present_new(job)
    # Every few seconds, a submit also checks that runners are alive (restarts them if all died).
    if announce_new_job(job.user_id, job.announced, turn_key=RUNNER_CHECK_KEY, turn_seconds=RUNNER_CHECK_SECONDS):
        ensure_runners(force=True)


def presented_new_job(job: Job) -> dict:
    """A job just submitted as the API returns it: what was announced, or (inside an outer
    transaction, before the announcement) computed now."""
    return getattr(job, "announced", None) or _present_new(job)


def _present_new(job: Job) -> dict:
    """A new job (no results yet), with what its submit read: the farm and its queue position."""
    return present_job(
        job,
        results=[],
        farm=getattr(job, "farm_views", None),
        busy=getattr(job, "farm_busy", None),
        known_position=getattr(job, "known_position", None),
    )


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
    storage.check_room_for_job(user)  # before copying, so that a refusal leaves no copies
    inputs = dict(job.inputs)
    for field_id in file_fields(job.workflow.spec):
        upload_id = inputs.get(field_id)
        record = JobFile.objects.filter(pk=upload_id).first() if upload_id else None
        if record is not None:
            copy = files.store_copy(record, owner=user)
            inputs[field_id] = str(copy.pk)
    workflow = job.workflow if job.workflow.is_active else get_active_workflow(job.workflow.slug)
    return submit_job(user=user, workflow=workflow, inputs=inputs, priority=job.priority, webhook_url=job.webhook_url)


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
