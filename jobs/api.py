"""Jobs, uploads and files for their owners; all jobs and stats for admins."""

from __future__ import annotations

from typing import Annotated

from ninja import File, Form, Query, Router
from ninja.files import UploadedFile

from accounts.auth import AdminAuth, JWTAuth, SessionAuth
from core.errors import InvalidInput
from core.openapi import ErrorOut, list_of_pattern, one_of_pattern
from core.pagination import PageParams
from jobs import files, idempotency, services, stats, submit_files
from jobs.models import Job, JobFile
from jobs.pictures import download_name, name_extension
from jobs.presenters import file_url, for_presenting, present_job, present_jobs
from jobs.schemas import JobIn, JobOut, JobPageOut, ShareIn, TypedJobIn, UploadOut
from jobs.serving import content_disposition, file_response
from workflows.services import get_active_workflow

router = Router(tags=["jobs"])
STATUSES = {choice for choice, _ in Job.Status.choices}
UPLOAD_KINDS = [kind for kind in JobFile.Kind if kind != JobFile.Kind.RESULT]  # what a user may upload
# The filters are read case-insensitively; their declared patterns say exactly that (core/openapi.py).
StatusFilter = Annotated[str, Query(pattern=list_of_pattern(sorted(STATUSES)), description="Comma-separated statuses")]


@router.post(
    "/uploads",
    response={201: UploadOut, 404: ErrorOut},
    summary="Upload an image, a mask, a video or a sound (multipart `file`, `kind`)",
    description="`kind` is `image`, `mask`, `video` or `audio`. Video and sound are decoded whole "
    "(PyAV) and refused with 400/413 naming `file` when they are not what `kind` says, are cut "
    "off, or are over the site's limits (MEDIA_UPLOAD_MAX_*). A workflow field's own limits "
    "(max_seconds, max_frames…) are checked when the job is submitted, or here already when "
    "`workflow` (its slug) and `field` (the field id) are given; `kind` then defaults to the field's type.",
)
def upload(
    request,
    file: File[UploadedFile],
    kind: Annotated[str, Form(pattern=one_of_pattern(UPLOAD_KINDS))] = "",
    workflow: Form[str] = "",
    field: Form[str] = "",
):
    limits = None
    if workflow or field:
        spec_field = _upload_field(workflow, field)
        if kind and kind.lower() != spec_field["type"]:
            raise InvalidInput(
                f"kind: field '{field}' takes a {spec_field['type']} upload, not {kind.lower()}.",
                errors={"kind": f"must be '{spec_field['type']}' for this field"},
            )
        kind, limits = spec_field["type"], spec_field
    kind = kind or "image"
    files.check_sent_size(file.size, kind)
    record = files.store_upload(
        owner=request.user, data=file.read(), kind=kind, filename=file.name or "", limits=limits
    )
    timed = record.kind in ("VIDEO", "AUDIO")
    return 201, {
        "id": str(record.pk),
        "kind": record.kind,
        "width": record.width,
        "height": record.height,
        "content_type": record.content_type,
        "size": record.size,
        "duration": record.duration if timed else None,
        "frame_count": record.frame_count if record.kind == "VIDEO" else None,
        "sample_rate": (record.sample_rate or None) if timed else None,
        "preview_url": file_url(record, thumb=True) if files.has_preview(record) else "",
    }


@router.post(
    "/jobs",
    response={201: JobOut, 200: JobOut, 402: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Start a workflow",
    description="With an `Idempotency-Key` header (24 h), a retry with the same body answers 200 with the job "
    "the first attempt made; the same key with another body answers 422.",
    openapi_extra={"parameters": [idempotency.OPENAPI_PARAMETER]},
)
def create_job(request, payload: JobIn):
    body = payload.dict()
    idem = idempotency.from_request(request, operation="POST /api/jobs", body=body)
    job = services.submit_job(
        user=request.user,
        workflow_slug=payload.workflow,
        inputs=payload.inputs,
        idempotency=idem,
        webhook_url=services.checked_webhook_url(payload.webhook_url),
    )
    return _submitted(job)


@router.post(
    "/jobs/with-files",
    response={201: JobOut, 200: JobOut, 402: ErrorOut, 404: ErrorOut, 409: ErrorOut},
    summary="Start a workflow, its files sent with it (multipart)",
    description="One request instead of `POST /api/uploads` for each file, then `POST /api/jobs`. "
    "`workflow` is the slug, `inputs` a JSON object of the other fields; each file field of the "
    "workflow's spec (image, mask, video, audio) is a file part named by the field's id. Each file is "
    "checked and stored as `POST /api/uploads` does for that field (400/413/429 naming the field), then "
    "the job is submitted as `POST /api/jobs` does; when the submit is refused, the files are deleted. "
    "With an `Idempotency-Key`, a retry with the same fields and the same file bytes answers 200 with "
    "the first job; other bytes answer 422.",
    openapi_extra={
        "parameters": [idempotency.OPENAPI_PARAMETER],
        "requestBody": {"content": {"multipart/form-data": {"schema": submit_files.OPENAPI_BODY}}},
    },
)
def create_job_with_files(request, workflow: Form[str], inputs: Form[str] = "", webhook_url: Form[str] = ""):
    job = submit_files.submit_with_files(
        user=request.user,
        workflow_slug=workflow,
        inputs_text=inputs,
        parts=request.FILES,
        text_parts=request.POST.keys(),
        webhook_url=webhook_url,
        idempotency_key=request.headers.get(idempotency.HEADER),
    )
    return _submitted(job)


@router.post(
    "/workflows/{slug}/jobs",
    response={201: JobOut, 200: JobOut},
    include_in_schema=False,  # listed once per workflow, typed (comfyportal/openapi_workflows.py)
)
def create_typed_job(request, slug: str, payload: TypedJobIn):
    idem = idempotency.from_request(request, operation=f"POST /api/workflows/{slug}/jobs", body=payload.dict())
    job = services.submit_job(
        user=request.user,
        workflow_slug=slug,
        inputs=payload.inputs,
        idempotency=idem,
        webhook_url=services.checked_webhook_url(payload.webhook_url),
    )
    return _submitted(job)


def _present(user, job_id) -> dict:
    job, results = services.job_to_present_for_user(user, job_id)
    return present_job(job, results=results)


def _submitted(job):
    """201 with a new job; 200 with the job an earlier request with the same Idempotency-Key made."""
    if getattr(job, "replayed", False):
        return 200, _present(job.user, job.pk)
    return 201, services.presented_new_job(job)


def _filtered(jobs, status: str, workflow: str):
    if status:
        wanted = {s.strip().upper() for s in status.split(",") if s.strip()}
        unknown = wanted - STATUSES
        if unknown:
            raise InvalidInput(
                f"status: unknown value(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(STATUSES))}.",
                errors={"status": "unknown value"},
            )
        jobs = jobs.filter(status__in=wanted)
    if workflow:
        jobs = jobs.filter(workflow__slug=workflow)
    return jobs


@router.get("/jobs", response=JobPageOut, summary="My jobs, newest first")
def list_jobs(request, page: Query[PageParams], status: StatusFilter = "", workflow: str = ""):
    jobs = _filtered(Job.objects.filter(user=request.user), status, workflow)
    jobs = for_presenting(jobs).order_by("-created_at")
    result = page.paginate(jobs)
    return {"count": result["count"], "items": present_jobs(result["items"])}


@router.get("/jobs/{job_id}", response=JobOut)
def get_job(request, job_id: str):
    return _present(request.user, job_id)


@router.post("/jobs/{job_id}/cancel", response={200: JobOut, 409: ErrorOut})
def cancel_job(request, job_id: str):
    job = services.cancel_job(job=services.get_job_for_user(request.user, job_id))
    return _present(request.user, job.pk)


@router.post(
    "/jobs/{job_id}/retry",
    response={201: JobOut, 402: ErrorOut, 409: ErrorOut},
    summary="Run again with the same inputs",
)
def retry_job(request, job_id: str):
    job = services.retry_job(user=request.user, job=services.get_job_for_user(request.user, job_id))
    return 201, _present(request.user, job.pk)


@router.patch(
    "/jobs/{job_id}",
    response=JobOut,
    summary="Share a job's results with every user, or stop",
    description="Only the job's owner (an admin gets 404 for someone else's job). The catalogue shows the "
    "newest still picture of a finished shared job on its workflow's card, and every signed-in user may "
    "read the files of a finished shared job.",
)
def share_job(request, job_id: str, payload: ShareIn):
    services.set_shareable(user=request.user, job_id=job_id, shareable=payload.shareable)
    return _present(request.user, job_id)


@router.delete("/jobs/{job_id}", response={204: None, 409: ErrorOut})
def delete_job(request, job_id: str):
    services.delete_job(job=services.get_job_for_user(request.user, job_id))
    return 204, None


@router.get(
    "/files/{file_id}",
    auth=[JWTAuth(), SessionAuth()],
    summary="A file's bytes (`?variant=thumb` for its preview)",
    description="Answers `Range: bytes=…` with 206 and `Content-Range` (416 for a range past the end), "
    "so that video and audio players can seek. The preview of a video is its poster frame, of a "
    "sound its waveform (WebP). `?download=true` asks the browser to save it (`Content-Disposition: "
    "attachment`); a result's name is `<workflow slug>-<job id's first 8>-<n>.<ext>`. Any signed-in "
    "user may read the results of a finished job its owner marked shareable.",
)
def get_file(request, file_id: str, variant: str = "", download: bool = False):
    record = services.get_file_to_view(request.user, file_id)
    if variant == "thumb":
        files.ensure_thumbnail(record)
    field = record.thumbnail if variant == "thumb" and record.thumbnail else record.file
    content_type = record.content_type if field is record.file else _thumb_type(field.name)
    # a result is named after its workflow and job: `<slug>-<job id's first 8>-<n>.png`
    name = (
        download_name(record, slug=record.workflow_slug, results=record.result_count)
        if field is record.file
        else f"{record.pk}-preview{name_extension(field.name)}"
    )
    return file_response(
        request,
        field,
        content_type=content_type,
        etag=record.sha256[:32] + ("-p" if field is not record.file else ""),
        headers={
            "Content-Disposition": content_disposition(name, download=download),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=3600",
        },
    )


@router.delete("/files/{file_id}", response={204: None, 409: ErrorOut}, auth=[JWTAuth(), SessionAuth()])
def delete_file(request, file_id: str):
    services.delete_file(record=services.get_file_for_user(request.user, file_id))
    return 204, None


admin_router = Router(tags=["admin: jobs"], auth=AdminAuth())


@admin_router.get("/jobs", response=JobPageOut)
def admin_list_jobs(request, page: Query[PageParams], status: StatusFilter = "", workflow: str = "", user: str = ""):
    jobs = _filtered(Job.objects.all(), status, workflow)
    if user:
        jobs = jobs.filter(user__username=user)
    jobs = for_presenting(jobs).order_by("-created_at")
    result = page.paginate(jobs)
    return {"count": result["count"], "items": present_jobs(result["items"], position=False)}


@admin_router.get("/stats", summary="Load, generation times and errors")
def admin_stats(request):
    return stats.overview()


def _upload_field(slug: str, field_id: str) -> dict:
    """The file field an upload is meant for (both `workflow` and `field` are needed)."""
    if not slug or not field_id:
        missing = "workflow" if not slug else "field"
        raise InvalidInput(f"{missing}: give both `workflow` and `field`, or neither.", errors={missing: "required"})
    spec = get_active_workflow(slug).spec or {}
    found = next((f for f in spec.get("inputs", []) if f.get("id") == field_id), None)
    if found is None or found.get("type") not in ("image", "mask", "video", "audio"):
        raise InvalidInput(
            f"field: workflow '{slug}' has no file field '{field_id}'.", errors={"field": "not a file field"}
        )
    return found


def _thumb_type(name: str) -> str:
    return "image/webp" if name.endswith(".webp") else "image/jpeg" if name.endswith(".jpg") else "image/png"
