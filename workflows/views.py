"""Pages: the workflow catalogue and the form generated from a workflow's UI schema."""

from __future__ import annotations

from itertools import groupby

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from accounts.views import user_menu
from core.errors import InvalidInput, NotFound, TooLarge, TooManyRequests
from jobs.files import store_upload
from jobs.services import submit_job
from workflows.services import active_workflows, get_active_workflow
from workflows.ui_schema import ui_schema

FILE_WIDGETS = {"image": "IMAGE", "mask": "MASK"}
KEEP_SUFFIX = "__upload"  # hidden input that carries an upload id across a re-rendered form
RANDOM_SUFFIX = "__random"  # the seed's "random" checkbox


@login_required
@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    workflows = list(active_workflows())
    groups = [
        {"category": category, "workflows": list(items)}
        for category, items in groupby(workflows, key=lambda w: w.category or "")
    ]
    return _render(request, "workflows/catalogue.html", {"groups": groups, "count": len(workflows)})


@login_required
@require_http_methods(["GET", "POST"])
def workflow_form(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        workflow = get_active_workflow(slug)
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    schema = ui_schema(workflow.spec)
    values = {f["id"]: f.get("default") for f in schema["fields"]}
    errors: dict[str, str] = {}
    form_error = ""
    if request.method == "POST":
        inputs, values, errors = _read_submission(request, schema["fields"])
        if not errors:
            try:
                job = submit_job(user=request.user, workflow_slug=slug, inputs=inputs)
            except InvalidInput as exc:
                errors = dict(exc.errors or {}) or {"": exc.detail}
            except TooManyRequests as exc:
                form_error = exc.detail
            except NotFound as exc:
                form_error = exc.detail
            else:
                url = reverse("job_detail", args=[job.pk])
                return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    field_ids = {f["id"] for f in schema["fields"]}
    context = {
        "workflow": workflow,
        "schema": schema,
        "fields": [_bound(f, values.get(f["id"]), errors.get(f["id"], "")) for f in schema["fields"]],
        "form_errors": [form_error] if form_error else [],
        "other_errors": [f"{k}: {v}" if k else v for k, v in errors.items() if k not in field_ids],
        "has_errors": bool(errors or form_error),
    }
    template = "workflows/form.html#workflow-form" if request.htmx else "workflows/form.html"
    # htmx swaps only 2xx answers; a plain post says what went wrong in its status.
    status = 200 if request.htmx or not (errors or form_error) else (400 if errors else 429)
    return _render(request, template, context, status=status)


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
            if upload is not None and upload.size:
                try:
                    record = store_upload(
                        owner=request.user, data=upload.read(), kind=FILE_WIDGETS[widget], filename=upload.name
                    )
                except (TooLarge, InvalidInput) as exc:
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


def _bound(field: dict, value, error: str) -> dict:
    """A schema field with what the template shows: its value (as text), error, upload preview."""
    widget = field["widget"]
    bound = {**field, "error": error, "value": value}
    if widget == "seed":
        is_random = value in (None, "", -1, "-1")
        bound.update(random=is_random, value="" if is_random else str(value))
    elif widget == "checkbox":
        bound["value"] = bool(value)
    elif widget in FILE_WIDGETS:
        bound["upload_id"] = value or ""
        bound["value"] = ""
    else:
        bound["value"] = "" if value is None else str(value)
    if widget in ("number", "slider") and not field.get("step"):
        bound["step"] = 1 if field["type"] == "int" else "any"
    bound["input_id"] = f"id_{field['id']}"
    return bound


def _render(request: HttpRequest, template: str, context: dict, **kwargs) -> HttpResponse:
    return render(request, template, {**user_menu(request), **context}, **kwargs)
