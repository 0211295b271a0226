"""Jobs, uploads and files for their owners; all jobs and stats for admins."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse
from ninja import File, Form, Query, Router
from ninja.files import UploadedFile

from accounts.auth import AdminAuth, JWTAuth, SessionAuth
from core.errors import InvalidInput, TooLarge
from core.pagination import PageParams
from jobs import files, idempotency, services, stats
from jobs.models import Job
from jobs.presenters import for_presenting, present_job, present_jobs
from jobs.schemas import JobIn, JobOut, JobPageOut, TypedJobIn, UploadOut

router = Router(tags=["jobs"])
STATUSES = {choice for choice, _ in Job.Status.choices}


@router.post("/uploads", response={201: UploadOut}, summary="Upload an image or a mask (multipart `file`, `kind`)")
def upload(request, file: File[UploadedFile], kind: Form[str] = "image"):
    if file.size and file.size > settings.UPLOAD_MAX_BYTES:
        raise TooLarge(
            f"file: {file.size} bytes is more than the {settings.UPLOAD_MAX_BYTES} allowed.",
            errors={"file": "too large"},
        )
    record = files.store_upload(owner=request.user, data=file.read(), kind=kind, filename=file.name or "")
    return 201, {
        "id": str(record.pk),
        "kind": record.kind,
        "width": record.width,
        "height": record.height,
        "content_type": record.content_type,
        "size": record.size,
    }


@router.post(
    "/jobs",
    response={201: JobOut, 200: JobOut},
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


def _submitted(job):
    """201 with a new job; 200 with the job an earlier request with the same Idempotency-Key made."""
    if getattr(job, "replayed", False):
        return 200, present_job(services.get_job_for_user(job.user, job.pk))
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
def list_jobs(request, page: Query[PageParams], status: str = "", workflow: str = ""):
    jobs = _filtered(Job.objects.filter(user=request.user), status, workflow)
    jobs = for_presenting(jobs).order_by("-created_at")
    result = page.paginate(jobs)
    return {"count": result["count"], "items": present_jobs(result["items"])}


@router.get("/jobs/{job_id}", response=JobOut)
def get_job(request, job_id: str):
    return present_job(services.get_job_for_user(request.user, job_id))


@router.post("/jobs/{job_id}/cancel", response=JobOut)
def cancel_job(request, job_id: str):
    job = services.cancel_job(job=services.get_job_for_user(request.user, job_id))
    return present_job(services.get_job_for_user(request.user, job.pk))


@router.post("/jobs/{job_id}/retry", response={201: JobOut}, summary="Run again with the same inputs")
def retry_job(request, job_id: str):
    job = services.retry_job(user=request.user, job=services.get_job_for_user(request.user, job_id))
    return 201, present_job(services.get_job_for_user(request.user, job.pk))


@router.delete("/jobs/{job_id}", response={204: None})
def delete_job(request, job_id: str):
    services.delete_job(job=services.get_job_for_user(request.user, job_id))
    return 204, None


@router.get(
    "/files/{file_id}", auth=[JWTAuth(), SessionAuth()], summary="A file's bytes (`?variant=thumb` for the thumbnail)"
)
def get_file(request, file_id: str, variant: str = ""):
    record = services.get_file_for_user(request.user, file_id)
    field = record.thumbnail if variant == "thumb" and record.thumbnail else record.file
    content_type = record.content_type if field is record.file else _thumb_type(field.name)
    response = FileResponse(field.open("rb"), content_type=content_type)
    name = record.original_name or f"{record.pk}{_ext(field.name)}"
    response["Content-Disposition"] = f'inline; filename="{_ascii(name)}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response


@router.delete("/files/{file_id}", response={204: None}, auth=[JWTAuth(), SessionAuth()])
def delete_file(request, file_id: str):
    services.delete_file(record=services.get_file_for_user(request.user, file_id))
    return 204, None


admin_router = Router(tags=["admin: jobs"], auth=AdminAuth())


@admin_router.get("/jobs", response=JobPageOut)
def admin_list_jobs(request, page: Query[PageParams], status: str = "", workflow: str = "", user: str = ""):
    jobs = _filtered(Job.objects.all(), status, workflow)
    if user:
        jobs = jobs.filter(user__username=user)
    jobs = for_presenting(jobs).order_by("-created_at")
    result = page.paginate(jobs)
    return {"count": result["count"], "items": present_jobs(result["items"], position=False)}


@admin_router.get("/stats", summary="Load, generation times and errors")
def admin_stats(request):
    return stats.overview()


def _thumb_type(name: str) -> str:
    return "image/webp" if name.endswith(".webp") else "image/jpeg" if name.endswith(".jpg") else "image/png"


def _ext(name: str) -> str:
    return name[name.rfind(".") :] if "." in name else ""


def _ascii(name: str) -> str:
    return "".join(ch if ch.isascii() and ch not in '"\\' else "_" for ch in name)
