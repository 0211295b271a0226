"""POST /api/workflows/{slug}/jobs: a typed operation per active workflow in the OpenAPI document,
following workflow changes without a restart; the endpoint itself, with idempotency."""

from __future__ import annotations

import pytest

from jobs.models import Job
from tests.factories import make_workflow, upload_example
from tests.jobs.test_jobs_api import png_bytes, upload

pytestmark = pytest.mark.django_db


def openapi(api) -> dict:
    return api.client.get("/api/openapi.json").json()


def test_a_bundled_workflow_has_its_own_typed_operation(anon_api):
    upload_example("image-filters")
    upload_example("scale-crop")
    doc = openapi(anon_api)
    operation = doc["paths"]["/api/workflows/image-filters/jobs"]["post"]
    assert operation["operationId"] == "submit_image_filters"
    assert operation["tags"] == ["workflows: typed jobs"]
    assert [p["name"] for p in operation["parameters"]] == ["Idempotency-Key"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ImageFiltersJobIn"}
    job_in = doc["components"]["schemas"]["ImageFiltersJobIn"]
    assert job_in["required"] == ["inputs"] and "webhook_url" in job_in["properties"]
    assert operation["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobOut"
    }
    assert "JobOut" in doc["components"]["schemas"]
    assert doc["paths"]["/api/jobs"]["post"]["security"] == operation["security"]  # the same bearer auth

    inputs = doc["components"]["schemas"]["ImageFiltersInputs"]
    assert inputs["required"] == ["image"] and inputs["additionalProperties"] is False
    props = inputs["properties"]
    assert props["image"]["type"] == "string" and props["image"]["format"] == "uuid"
    assert {k: props["blur_radius"][k] for k in ("type", "minimum", "maximum", "default")} == {
        "type": ["integer", "null"],  # null: the default
        "minimum": 1,
        "maximum": 31,
        "default": 1,
    }
    assert props["invert"]["type"] == ["number", "null"] and props["invert"]["maximum"] == 1.0
    assert props["blur_radius"]["title"] == "Blur radius"

    scale = doc["components"]["schemas"]["ScaleCropInputs"]["properties"]
    assert scale["method"]["type"] == ["string", "null"] and scale["method"]["enum"][-1] is None
    # The generic route is not listed itself: only the typed operations are.
    assert "/api/workflows/{slug}/jobs" not in doc["paths"]


def test_the_document_follows_workflow_changes(anon_api, admin_api):
    workflow = make_workflow("tiny")
    assert "/api/workflows/tiny/jobs" in openapi(anon_api)["paths"]
    assert admin_api.patch(f"/api/admin/workflows/{workflow.pk}", {"is_active": False}).status_code == 200
    assert "/api/workflows/tiny/jobs" not in openapi(anon_api)["paths"]
    make_workflow("second-one")
    doc = openapi(anon_api)
    assert doc["paths"]["/api/workflows/second-one/jobs"]["post"]["operationId"] == "submit_second_one"
    props = doc["components"]["schemas"]["SecondOneInputs"]["properties"]
    assert props["prefix"] == {"type": ["string", "null"], "maxLength": 40, "default": "tiny", "title": "Prefix"}


def test_the_typed_endpoint_starts_a_job(alice_api):
    upload_example("image-filters")
    image = upload(alice_api, png_bytes()).json()["id"]
    body = {"inputs": {"image": image, "invert": 1.0}}
    first = alice_api.post("/api/workflows/image-filters/jobs", body, HTTP_IDEMPOTENCY_KEY="typed-1")
    assert first.status_code == 201, first.content
    job = first.json()
    assert job["workflow"] == "image-filters" and job["inputs"]["invert"] == 1.0 and job["inputs"]["image"] == image
    again = alice_api.post("/api/workflows/image-filters/jobs", body, HTTP_IDEMPOTENCY_KEY="typed-1")
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    # The same key on the untyped endpoint is another operation: refused, not mixed up.
    other = alice_api.post(
        "/api/jobs", {"workflow": "image-filters", "inputs": body["inputs"]}, HTTP_IDEMPOTENCY_KEY="typed-1"
    )
    assert other.status_code == 422
    assert Job.objects.count() == 1


def test_the_typed_endpoint_names_bad_fields(alice_api):
    upload_example("image-filters")
    response = alice_api.post("/api/workflows/image-filters/jobs", {"inputs": {"blur_radius": 99}})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"image", "blur_radius"}
    missing = alice_api.post("/api/workflows/no-such-thing/jobs", {"inputs": {}})
    assert missing.status_code == 404
