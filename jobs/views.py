"""Pages: starting a job from the workflow form, my jobs (live progress), one job, the results
gallery, and their POST actions."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.views import user_menu
from core.errors import Conflict, InvalidInput, NotFound, PaymentRequired, TooLarge, TooManyRequests
from core.pagination import keyset_page
from jobs import cursors, reuse, services
from jobs.files import store_upload
from jobs.models import Job, JobFile
from jobs.pictures import workflows_with_results
from jobs.presenters import for_presenting, job_durations, present_file, present_job, present_jobs
from workflows.display import shown_workflow
from workflows.model_choices import form_schema
from workflows.models import Workflow
from workflows.services import get_active_workflow, workflows_taking_an_image
from workflows.spec import FILE_FIELD_TYPES
from workflows.texts import text_in
from workflows.views import FILE_WIDGETS, KEEP_SUFFIX, RANDOM_SUFFIX, render_workflow_form

JOBS_PER_PAGE = 25
TRIES_SHOWN = 6  # a workflow's page lists the user's last few jobs of it
FILES_PER_PAGE = 48
# What a gallery tile reads: not the workflow's graph and spec, nor the job's inputs (large JSON).
GALLERY_FIELDS = (
    *(f.name for f in JobFile._meta.concrete_fields if f.name not in ("owner", "job")),
    "owner_id",
    "job_id",
    "job__id",
    "job__status",
    "job__workflow__id",
    "job__workflow__slug",
    "job__workflow__name",
    "job__workflow__names",
)
PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"
STATUSES = [value for value, _label in Job.Status.choices]


@login_required
@require_GET
def workflow_page(request: HttpRequest, slug: str) -> HttpResponse:
    """A workflow's form with the user's last tries of it beside (under, on a phone), updated
    live. `?again=<job id>` fills the form with that job's inputs, `?input=<file id>` puts that
    picture in its image field; `?partial=tries` (htmx) is the tries list alone."""
    workflow = _active_workflow_or_404(slug)
    if request.htmx and request.GET.get("partial") == "tries":
        return _render(request, "jobs/_tries.html", {"workflow": workflow, "tries": _tries(request.user, workflow)})
    live_cursor = None if request.htmx else cursors.current(request.user.pk)  # before the tries (see job_detail)
    schema = form_schema(workflow)
    values = None
    if request.GET.get("again"):
        job = _job_or_404(request, request.GET["again"])
        values = reuse.form_values_of(job, schema["fields"], request.user)
    elif request.GET.get("input"):
        try:
            values = reuse.form_values_with_picture(request.user, request.GET["input"], workflow.spec, schema["fields"])
        except NotFound as exc:
            raise Http404(exc.detail) from exc
    # htmx (a try's "Run again with changes") gets the form alone: the tries stay as they are.
    page_context = {} if request.htmx else {"tries": _tries(request.user, workflow), "live_cursor": live_cursor}
    return render_workflow_form(
        request, workflow, values=values, schema=schema, page="jobs/workflow_page.html", page_context=page_context
    )


@login_required
@require_http_methods(["GET", "POST"])
def submit_from_form(request: HttpRequest, slug: str) -> HttpResponse:
    """The workflow form's POST: start the job, or show the form again with what is wrong (a
    GET, e.g. reloading that answer, goes back to the form). With htmx the form stays, values
    kept, ready for the next try, and the tries beside it reload (the `job-submitted` event);
    without, the browser goes to the job's page."""
    if request.method == "GET":
        return redirect("workflow_form", slug=slug)
    workflow = _active_workflow_or_404(slug)
    inputs, values, errors = _read_submission(request, form_schema(workflow)["fields"])
    form_error = ""
    if not errors:
        try:
            job = services.submit_job(user=request.user, workflow_slug=slug, inputs=inputs)
        except InvalidInput as exc:
            errors = dict(exc.errors or {}) or {"": exc.detail}
        except (TooManyRequests, NotFound, Conflict, PaymentRequired) as exc:
            form_error = exc.detail
        else:
            if not request.htmx:
                return redirect("job_detail", job_id=job.pk)
            notice = _("Started: its progress and results appear in “Your results”.")
            response = render_workflow_form(request, workflow, values=values, notice=notice)
            response["HX-Trigger"] = json.dumps({"job-submitted": {"id": str(job.pk)}})
            return response
    return render_workflow_form(request, workflow, values=values, errors=errors, form_error=form_error)


@login_required
@require_GET
def my_jobs(request: HttpRequest) -> HttpResponse:
    partial = "#job-list" if request.htmx and request.GET.get("partial") == "list" else ""
    live_cursor = None if partial else cursors.current(request.user.pk)  # read before the jobs
    status = request.GET.get("status", "").upper()
    jobs = Job.objects.filter(user=request.user)
    if status in STATUSES:
        jobs = jobs.filter(status=status)
    # The page's ids first, from the (user, created_at) index alone, then their rows with what
    # they show: a deep page skips thousands of ids, not thousands of joined rows.
    page = Paginator(jobs.order_by("-created_at").values_list("pk", flat=True), JOBS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    ids = list(page.object_list)
    rows = {job.pk: job for job in for_presenting(Job.objects.filter(pk__in=ids))}
    context = {
        "page": page,
        "jobs": _present_page(rows[pk] for pk in ids if pk in rows),
        "status": status if status in STATUSES else "",
        "statuses": Job.Status.choices,
        "live_cursor": live_cursor,
    }
    return _render(request, "jobs/list.html" + partial, context)


@login_required
@require_GET
def job_detail(request: HttpRequest, job_id) -> HttpResponse:
    partial = request.GET.get("partial") if request.htmx else ""
    # The page's live script resumes /ws/jobs/ from here: whatever changes after this read
    # reaches the page, even if it happens before the socket opens.
    live_cursor = None if partial else cursors.current(request.user.pk)
    job = _job_or_404(request, job_id)
    if partial == "row":
        return _render(request, "jobs/list.html#job-row", {"job": _present(job)})
    if partial == "try":
        return _render(request, "jobs/_try.html", {"job": _present(job)})
    context = {
        "job": _present(job),
        "inputs": _shown_inputs(job),
        "live_cursor": live_cursor,
        # "Use as input" offers the workflows taking a picture, for the owner's own pictures only
        "image_workflows": _image_workflows() if job.user_id == request.user.pk else [],
    }
    if partial == "panel":
        return _render(request, "jobs/detail.html#job-panel", context)
    return _render(request, "jobs/detail.html", context)


@login_required
@require_POST
def cancel(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    try:
        job = services.cancel_job(job=job)
    except Conflict as exc:
        return _done(request, job, error=exc.detail)
    return _done(request, job)


@login_required
@require_POST
def retry(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    try:
        new_job = services.retry_job(user=request.user, job=job)
    except (InvalidInput, TooManyRequests, NotFound, Conflict, PaymentRequired) as exc:
        return _done(request, job, error=exc.detail)
    url = reverse("job_detail", args=[new_job.pk])
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


@login_required
@require_POST
def delete(request: HttpRequest, job_id) -> HttpResponse:
    job = _job_or_404(request, job_id)
    try:
        services.delete_job(job=job)
    except Conflict as exc:
        return _done(request, job, error=exc.detail)
    if request.htmx:
        return HttpResponse("")  # the row is swapped for nothing
    return redirect(_next_url(request, default=reverse("my_jobs"), avoid=reverse("job_detail", args=[job_id])))


@login_required
@require_POST
def share(request: HttpRequest, job_id) -> HttpResponse:
    """The owner's toggle: show this job's results as the workflow's example picture, or stop."""
    try:
        services.set_shareable(user=request.user, job_id=job_id, shareable=request.POST.get("shareable") == "1")
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    job = _job_or_404(request, job_id)
    if request.htmx:
        return _render(request, "jobs/_share.html", {"job": _present(job)})
    return redirect(reverse("job_detail", args=[job.pk]))


@login_required
@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    """The user's results, newest first, a page at a time by cursor (`?before=` / `?after=`):
    as fast on the hundredth page of a long history as on the first (docs/performance.md)."""
    # Only a finished job's results: the partial results of a failed one are not the user's pictures.
    language = get_language()
    results = (
        JobFile.objects.filter(owner=request.user, kind=JobFile.Kind.RESULT, job__status=Job.Status.DONE)
        .select_related("job__workflow")
        .only(*GALLERY_FIELDS)
    )
    selected = request.GET.get("workflow", "")
    if selected:
        results = results.filter(job__workflow__slug=selected)
    kinds = JobFile.Media.choices
    selected_kind = request.GET.get("kind", "")
    if selected_kind not in dict(kinds):
        selected_kind = ""
    if selected_kind:
        results = results.filter(media=selected_kind)
    job_url, delete_url = reverse("job_detail", args=[PLACEHOLDER_ID]), reverse("file_delete", args=[PLACEHOLDER_ID])
    page = keyset_page(
        results, size=FILES_PER_PAGE, before=request.GET.get("before", ""), after=request.GET.get("after", "")
    )
    items = [
        {
            **present_file(record),
            "job_id": str(record.job_id) if record.job_id else "",
            "workflow_name": record.job.workflow.name_in(language) if record.job_id else "",
            "created_at": record.created_at,
            "name": record.original_name or f"{record.pk}",
            # the URLs of a tile, made here without a resolver call each (48 tiles a page)
            "job_url": job_url.replace(PLACEHOLDER_ID, str(record.job_id)) if record.job_id else "",
            "delete_url": delete_url.replace(PLACEHOLDER_ID, str(record.pk)),
        }
        for record in page.items
    ]
    context = {
        "page": page,
        "items": items,
        "workflows": workflows_with_results(request.user, language),
        "selected": selected,
        "kinds": kinds,
        "selected_kind": selected_kind,
        "image_workflows": _image_workflows() if items else [],
        "full_path": request.get_full_path(),
    }
    return _render(request, "jobs/gallery.html", context)


@login_required
@require_POST
def delete_file(request: HttpRequest, file_id) -> HttpResponse:
    try:
        record = services.get_file_for_user(request.user, file_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    try:
        services.delete_file(record=record)
    except Conflict as exc:
        if request.htmx:
            return HttpResponse(exc.detail, status=409)
        messages.error(request, exc.detail)
    if request.htmx:
        return HttpResponse("")
    return redirect(_next_url(request, default=reverse("gallery")))


def _read_submission(request: HttpRequest, fields: list[dict]) -> tuple[dict, dict, dict]:
    """Return (inputs for submit_job, values to show again, upload errors by field id).

    New files are stored with store_upload right away, so that a form re-rendered with errors
    keeps them (as upload ids in hidden inputs) and the user does not pick them again.
    """
    post, inputs, values, errors = request.POST, {}, {}, {}
    for field in fields:
        fid, widget = field["id"], field["widget"]
        if widget in FILE_WIDGETS:
            upload = request.FILES.get(fid)
            kept = post.get(fid + KEEP_SUFFIX, "").strip()
            if kept and not (upload is not None and upload.size):
                try:  # a file of an earlier job (run again, use as input, a second try)
                    kept = reuse.upload_for_new_job(request.user, kept, field["type"])
                except (TooLarge, InvalidInput) as exc:
                    errors[fid] = (exc.errors or {}).get("file") or exc.detail
                    continue
            if upload is not None and upload.size:
                try:  # a video or sound is checked against this field's own limits too
                    record = store_upload(
                        owner=request.user,
                        data=upload.read(),
                        kind=FILE_WIDGETS[widget],
                        filename=upload.name,
                        limits=field,
                    )
                except (TooLarge, InvalidInput, TooManyRequests) as exc:
                    errors[fid] = (exc.errors or {}).get("file") or exc.detail
                    continue
                kept = str(record.pk)
            values[fid] = kept
            if kept:
                inputs[fid] = kept
        elif widget == "checkbox":
            values[fid] = inputs[fid] = fid in post
        elif widget == "seed":
            if post.get(fid + RANDOM_SUFFIX):
                values[fid] = inputs[fid] = -1
            else:
                values[fid] = post.get(fid, "")
                inputs[fid] = values[fid].strip() or -1
        elif fid in post:
            values[fid] = inputs[fid] = post[fid]
    return inputs, values, errors


def _active_workflow_or_404(slug: str) -> Workflow:
    try:
        return get_active_workflow(slug)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


def _tries(user, workflow: Workflow) -> list[dict]:
    """The user's last jobs of this workflow (any version), newest first."""
    jobs = Job.objects.filter(user=user, workflow__slug=workflow.slug).order_by("-created_at")[:TRIES_SHOWN]
    return _present_page(for_presenting(jobs))


def _job_or_404(request: HttpRequest, job_id) -> Job:
    try:
        return services.get_job_for_user(request.user, job_id)
    except NotFound as exc:
        raise Http404(exc.detail) from exc


def _done(request: HttpRequest, job: Job, *, error: str = "") -> HttpResponse:
    """After an action on a job: its refreshed row for htmx, else back where the user came from."""
    if request.htmx:
        job = services.get_job_for_user(request.user, job.pk)
        return _render(request, "jobs/list.html#job-row", {"job": _present(job), "row_error": error})
    if error:
        messages.error(request, error)
    return redirect(_next_url(request, default=reverse("job_detail", args=[job.pk])))


def _present(job: Job) -> dict:
    """present_job plus the datetimes as objects, so templates format them in the user's
    language, and who may share its results (jobs/_share.html)."""
    return {**present_job(job), **_datetimes(job), "owner_id": job.user_id}


def _present_page(jobs) -> list[dict]:
    """A page of jobs as _present shows each, their queue positions read in one query."""
    jobs = list(jobs)
    return [{**shown, **_datetimes(job)} for job, shown in zip(jobs, present_jobs(jobs), strict=True)]


def _datetimes(job: Job) -> dict:
    """The job's times as datetimes (formatted by templates/jobs/_time.html) and how long it
    waited and ran."""
    return {
        "created": job.created_at,
        "started": job.started_at,
        "finished": job.finished_at,
        **job_durations(job),
    }


def _next_url(request: HttpRequest, *, default: str, avoid: str = "") -> str:
    """The form's `next` if it is a local URL (never an open redirect), else `default`."""
    url = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}, require_https=request.is_secure())
    return url if url and safe and not (avoid and url.startswith(avoid)) else default


def _shown_inputs(job: Job) -> list[dict]:
    """The job's inputs in spec order, with labels; image and mask ids become thumbnails, video
    and sound ids players."""
    fields = {f.get("id"): f for f in (job.workflow.spec or {}).get("inputs", [])}
    language = get_language()
    shown = []
    for field_id, value in job.inputs.items():
        field = fields.get(field_id, {})
        kind = field.get("type", "")
        choice_label = (field.get("choice_labels") or {}).get(str(value)) if kind == "choice" else None
        shown.append(
            {
                "id": field_id,
                "label": text_in(field.get("label"), language) or field_id,
                "type": kind,
                "value": text_in(choice_label, language) or value if choice_label else value,
                "file_url": f"/api/files/{value}?variant=thumb" if kind in FILE_FIELD_TYPES and value else "",
                # video and sound inputs play on the page (the preview is the poster)
                "media_url": f"/api/files/{value}" if kind in ("video", "audio") and value else "",
            }
        )
    return shown


def _render(request: HttpRequest, template: str, context: dict, **kwargs) -> HttpResponse:
    return render(request, template, {**user_menu(request), **context}, **kwargs)


def _image_workflows() -> list:
    """The workflows a picture result can be used in, named in the reader's language."""
    return sorted((shown_workflow(w) for w in workflows_taking_an_image()), key=lambda w: w.name.casefold())
