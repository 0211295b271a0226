"""Admin workflow API: upload (multipart), errors, versions, (de)activate, delete, draft-spec."""

from __future__ import annotations

import json
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import EXAMPLES, example_json, make_job

pytestmark = pytest.mark.django_db


def files(slug="image-filters", **spec_changes):
    spec = {**example_json(slug, "spec.json"), **spec_changes}
    return {
        "workflow": SimpleUploadedFile("workflow.json", (EXAMPLES / slug / "workflow.json").read_bytes()),
        "spec": SimpleUploadedFile("spec.json", json.dumps(spec).encode()),
    }


def test_uploaded_workflow_is_runnable_at_once(admin_api, alice_api):
    created = admin_api.multipart("/api/admin/workflows", files("scale-crop"))
    assert created.status_code == 201, created.json()
    catalogue = alice_api.get("/api/workflows").json()
    assert "scale-crop" in [w["slug"] for group in catalogue for w in group["workflows"]]
    detail = alice_api.get("/api/workflows/scale-crop").json()
    assert detail["ui_schema"]["fields"]
    from tests.jobs.test_jobs_api import png_bytes, upload

    image = upload(alice_api, png_bytes()).json()["id"]
    assert alice_api.post("/api/jobs", {"workflow": "scale-crop", "inputs": {"image": image}}).status_code == 201


def test_bad_upload_lists_every_problem(admin_api):
    response = admin_api.multipart(
        "/api/admin/workflows",
        {
            "workflow": SimpleUploadedFile("workflow.json", b'{"nodes": [], "links": []}'),
            "spec": SimpleUploadedFile("spec.json", b"{not json"),
        },
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "UI format" in detail or "UI-format" in detail or "ui format" in detail.lower()
    assert "spec" in detail


def test_an_upload_with_many_problems_lists_the_first_20(admin_api):
    spec = example_json("image-filters", "spec.json")
    spec["inputs"] += [
        {"id": f"extra_{i}", "label": "x", "type": "int", "bind": [{"node": "999", "input": "x"}]} for i in range(100)
    ]
    body = {
        "workflow": SimpleUploadedFile("workflow.json", (EXAMPLES / "image-filters" / "workflow.json").read_bytes()),
        "spec": SimpleUploadedFile("spec.json", json.dumps(spec).encode()),
    }
    response = admin_api.multipart("/api/admin/workflows", body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert len(errors) == 20
    assert re.search(r"\| and \d+ more$", response.json()["detail"]), response.json()["detail"][-200:]
    assert len(response.content) < 20_000


def test_same_version_is_409_and_new_version_replaces(admin_api, alice_api):
    assert admin_api.multipart("/api/admin/workflows", files()).status_code == 201
    assert admin_api.multipart("/api/admin/workflows", files()).status_code == 409
    newer = admin_api.multipart("/api/admin/workflows", files(version="1.1.0", name="Filters v2"))
    assert newer.status_code == 201
    assert alice_api.get("/api/workflows/image-filters").json()["version"] == "1.1.0"
    versions = {w["version"]: w["is_active"] for w in admin_api.get("/api/admin/workflows").json()}
    assert versions == {"1.0.1": False, "1.1.0": True}


def test_deactivate_hides_and_delete_is_409_when_jobs_use_it(admin_api, alice_api, alice):
    created = admin_api.multipart("/api/admin/workflows", files()).json()
    assert admin_api.patch(f"/api/admin/workflows/{created['id']}", {"is_active": False}).json()["is_active"] is False
    assert alice_api.get("/api/workflows/image-filters").status_code == 404
    from workflows.models import Workflow

    make_job(alice, Workflow.objects.get(pk=created["id"]), status="DONE")
    conflict = admin_api.delete(f"/api/admin/workflows/{created['id']}")
    assert conflict.status_code == 409 and "deactivate" in conflict.json()["detail"]


def test_draft_spec_proposes_a_valid_spec(admin_api):
    response = admin_api.multipart(
        "/api/admin/workflows/draft-spec",
        {
            "workflow": SimpleUploadedFile("workflow.json", (EXAMPLES / "sd15-txt2img" / "workflow.json").read_bytes()),
        },
    )
    assert response.status_code == 200
    spec = response.json()["spec"]
    assert {f["type"] for f in spec["inputs"]} >= {"text", "seed"}


def test_users_cannot_upload(alice_api):
    assert alice_api.multipart("/api/admin/workflows", files()).status_code == 403
