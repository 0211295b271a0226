"""Pages: the workflow catalogue and the form generated from a workflow's UI schema (the jobs
app serves the form's page, with the user's tries of the workflow beside it, and starts the job
the form posts)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.views import user_menu
from workflows.display import catalogue_groups, shown_workflow
from workflows.model_choices import form_schema
from workflows.models import Workflow
from workflows.pictures import card_pictures, content_type_of, example_of
from workflows.services import active_workflows

# How the form's inputs are named (jobs.views reads a submission by these).
FILE_WIDGETS = {"image": "IMAGE", "mask": "MASK", "video": "VIDEO", "audio": "AUDIO"}  # widget → the upload's kind
KEEP_SUFFIX = "__upload"  # hidden input that carries an upload id across a re-rendered form
RANDOM_SUFFIX = "__random"  # the seed's "random" checkbox


@login_required
@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    workflows = list(active_workflows().defer("graph"))
    pictures = card_pictures(workflows)
    for workflow in workflows:
        workflow.picture = pictures[workflow.pk]
    groups = catalogue_groups(workflows)  # (copies, pictures included) in the reader's language
    return _render(request, "workflows/catalogue.html", {"groups": groups, "count": len(workflows)})


@login_required
@require_GET
def example_picture(request: HttpRequest, slug: str) -> HttpResponse:
    """The example picture an admin uploaded for a workflow (media files are never public)."""
    workflow = example_of(slug)
    if workflow is None:
        raise Http404("No example picture.")
    field = workflow.example_picture
    try:
        handle = field.open("rb")
    except FileNotFoundError as exc:
        raise Http404("No example picture.") from exc
    response = FileResponse(handle, content_type=content_type_of(field.name))
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=86400"  # the card's URL changes with the picture
    return response


def render_workflow_form(
    request: HttpRequest,
    workflow: Workflow,
    *,
    values: dict | None = None,
    errors: dict | None = None,
    form_error: str = "",
    notice: str = "",
    schema: dict | None = None,
    page: str = "workflows/form.html",
    page_context: dict | None = None,
) -> HttpResponse:
    """The form page (for htmx, the form alone) showing `values` (the defaults if None) and
    `errors` by field id. The jobs app serves the page (`page`, a template extending this one,
    with `page_context`: the user's tries beside the form) and shows the form again this way
    after a submission, refused (with what is wrong) or started (with `notice`)."""
    schema = schema or form_schema(workflow)
    if values is None:
        values = {f["id"]: f.get("default") for f in schema["fields"]}
    errors = errors or {}
    field_ids = {f["id"] for f in schema["fields"]}
    context = {
        "workflow": shown_workflow(workflow),  # name and description in the reader's language
        "schema": schema,
        "fields": [_bound(f, values.get(f["id"]), errors.get(f["id"], "")) for f in schema["fields"]],
        "form_errors": [form_error] if form_error else [],
        "other_errors": [f"{k}: {v}" if k else v for k, v in errors.items() if k not in field_ids],
        "has_errors": bool(errors or form_error),
        "notice": notice,
    }
    if request.htmx:
        template = "workflows/form.html#workflow-form"
    else:
        template = page
        context.update(page_context or {})
    # htmx swaps only 2xx answers; a plain post says what went wrong in its status.
    status = 200 if request.htmx or not (errors or form_error) else (400 if errors else 429)
    return _render(request, template, context, status=status)


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
