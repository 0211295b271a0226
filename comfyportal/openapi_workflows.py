"""A typed operation per active workflow in the OpenAPI document.

`POST /api/workflows/{slug}/jobs` is one view (jobs.api); the document lists it once per active
workflow, at its concrete path, with a request body generated from that workflow's spec
(workflows.input_schema), so that a client generator makes a typed method per workflow. The
document is built for each request from the active workflows, so it follows uploads and
(de)activations without a restart.
"""

from __future__ import annotations

import logging
from typing import Any

from core.openapi import ErrorsDocumentedAPI
from jobs.idempotency import OPENAPI_PARAMETER
from workflows.input_schema import camel, inputs_json_schema
from workflows.services import active_workflows

TAG = "workflows: typed jobs"
logger = logging.getLogger("comfyportal.api")


def add_workflow_operations(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    try:
        workflows = list(active_workflows())
    except Exception as exc:  # no database: the document is still served, without the typed operations
        logger.warning("OpenAPI document without typed workflow operations: %s", exc)
        return
    for workflow in workflows:
        name = camel(workflow.slug)
        components[f"{name}Inputs"] = inputs_json_schema(workflow.spec)
        components[f"{name}JobIn"] = {
            "title": f"{name}JobIn",
            "type": "object",
            "properties": {
                "inputs": {"$ref": f"#/components/schemas/{name}Inputs"},
                "webhook_url": {
                    "type": "string",
                    "maxLength": 2000,
                    "description": "Also POST this job's status events here (see POST /api/webhooks/secret).",
                },
            },
            "required": ["inputs"],
            "additionalProperties": False,
        }
        job = {"application/json": {"schema": {"$ref": "#/components/schemas/JobOut"}}}
        schema.setdefault("paths", {})[f"/api/workflows/{workflow.slug}/jobs"] = {
            "post": {
                "operationId": f"submit_{workflow.slug.replace('-', '_')}",
                "summary": f"Start “{workflow.name}”",
                "description": (workflow.description or "")
                + "\n\nWith an `Idempotency-Key` header, a retry with the same body answers 200 with the job "
                "the first request made.",
                "tags": [TAG],
                "parameters": [OPENAPI_PARAMETER],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}JobIn"}}},
                },
                "responses": {
                    "201": {"description": "The new job", "content": job},
                    "200": {"description": "The job an earlier request with this Idempotency-Key made", "content": job},
                    **ERROR_RESPONSES,
                },
                "security": [{"JWTAuth": []}],
            }
        }


# What a typed submit can answer besides the job, as core.openapi declares for the other operations.
_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
ERROR_RESPONSES = {
    str(status): {"description": description, "content": _ERROR}
    for status, description in (
        (400, "Bad request"),
        (401, "Not authenticated"),
        (402, "The balance does not cover the price (billing on)"),
        (403, "Not allowed (a key without the scope, a blocked user)"),
        (404, "The workflow is no longer active"),
        (409, "Storage full"),
        (413, "Body too large"),
        (422, "Invalid input"),
        (429, "Too many requests"),
    )
}


class PortalNinjaAPI(ErrorsDocumentedAPI):
    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        add_workflow_operations(schema)
        return schema
