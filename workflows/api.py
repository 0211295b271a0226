"""The catalogue for users; upload, (de)activate and delete for admins; the Spec's JSON Schema."""

from __future__ import annotations

from ninja import File, Form, Router
from ninja.files import UploadedFile

from accounts.auth import AdminAuth
from core.errors import InvalidInput
from core.openapi import ErrorOut
from workflows import services
from workflows.display import catalogue_groups, shown_workflow
from workflows.model_choices import form_schema
from workflows.models import Workflow
from workflows.schemas import (
    AdminWorkflowDetailOut,
    AdminWorkflowOut,
    CategoryOut,
    DraftSpecOut,
    WorkflowDetailOut,
    WorkflowPatchIn,
)
from workflows.spec import spec_json_schema

router = Router(tags=["workflows"])
admin_router = Router(tags=["admin: workflows"], auth=AdminAuth())

MAX_FILE_BYTES = 5 * 1024 * 1024


@router.get("/workflow-spec/v1.json", auth=None, summary="The JSON Schema of Workflow Spec v1.2")
def spec_schema(request):
    return spec_json_schema()


@router.get(
    "/workflows",
    response=list[CategoryOut],
    summary="Active workflows, by category",
    description="Names, descriptions and category names are in the request's language "
    "(`Accept-Language`, or the language chosen on the site), English when a workflow lacks it.",
)
def list_workflows(request):
    return catalogue_groups(services.active_workflows())


@router.get(
    "/workflows/{slug}",
    response=WorkflowDetailOut,
    summary="One workflow with the form to fill",
    description="Its texts (name, description, labels, help, placeholders, choice labels) are in the "
    "request's language (`Accept-Language`, or the language chosen on the site), English when the "
    "workflow lacks it.",
)
def get_workflow(request, slug: str):
    workflow = shown_workflow(services.get_active_workflow(slug))
    workflow.ui_schema = form_schema(workflow)
    return workflow


def _read(upload: UploadedFile, name: str) -> bytes:
    if upload.size and upload.size > MAX_FILE_BYTES:
        raise InvalidInput(f"{name}: the file is larger than {MAX_FILE_BYTES // 1024 // 1024} MB.")
    return upload.read()


@admin_router.get("/workflows", response=list[AdminWorkflowOut])
def admin_list(request):
    return list(Workflow.objects.order_by("slug", "-created_at"))


@admin_router.post(
    "/workflows",
    response={201: AdminWorkflowDetailOut, 409: ErrorOut},
    summary="Upload a workflow (multipart files `workflow`, UI or API format, and `spec`; "
    "optional field `node`: convert with that GPU server's catalogue)",
)
def admin_upload(request, workflow: File[UploadedFile], spec: File[UploadedFile], node: Form[str] = ""):
    return 201, services.upload_workflow(
        workflow_raw=_read(workflow, "workflow"), spec_raw=_read(spec, "spec"), user=request.user, node=node or None
    )


@admin_router.post(
    "/workflows/draft-spec",
    response=DraftSpecOut,
    summary="Propose a spec for a workflow.json, UI or API format (edit it, then upload both; "
    "optional field `node`: convert with that GPU server's catalogue)",
)
def admin_draft_spec(request, workflow: File[UploadedFile], node: Form[str] = ""):
    return services.draft_for_upload(_read(workflow, "workflow"), workflow.name, node or None)


@admin_router.get("/workflows/{int:workflow_id}", response=AdminWorkflowDetailOut)
def admin_get(request, workflow_id: int):
    return services.get_workflow(workflow_id)


@admin_router.patch("/workflows/{int:workflow_id}", response=AdminWorkflowDetailOut)
def admin_patch(request, workflow_id: int, payload: WorkflowPatchIn):
    return services.set_active(workflow=services.get_workflow(workflow_id), is_active=payload.is_active)


@admin_router.delete("/workflows/{int:workflow_id}", response={204: None, 409: ErrorOut})
def admin_delete(request, workflow_id: int):
    services.delete_workflow(workflow=services.get_workflow(workflow_id))
    return 204, None
