"""The jobs API without nodes: uploads, submit validation, quotas, access, cancel and delete."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from jobs.models import Job, JobFile
from tests.factories import make_job, make_workflow, upload_example

pytestmark = pytest.mark.django_db


def png_bytes(size=(64, 48), color=(200, 30, 30), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def upload(api, data: bytes, kind="image", name="x.png"):
    return api.multipart("/api/uploads", {"file": SimpleUploadedFile(name, data), "kind": kind})


def test_upload_image_reports_size_and_type(alice_api):
    response = upload(alice_api, png_bytes((80, 60)))
    assert response.status_code == 201
    body = response.json()
    assert (body["width"], body["height"], body["content_type"]) == (80, 60, "image/png")
    assert JobFile.objects.get(pk=body["id"]).kind == "IMAGE"


@pytest.mark.parametrize(
    "data,name,fragment",
    [
        (b"hello, not an image", "x.png", "not"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "x.png", ""),
        (png_bytes()[:60], "cut.png", ""),
    ],
)
def test_bad_uploads_are_400_naming_the_file(alice_api, data, name, fragment):
    response = upload(alice_api, data, name=name)
    assert response.status_code == 400
    assert response.json()["detail"].startswith("file:")


def test_upload_over_the_byte_limit_is_413(alice_api, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = upload(alice_api, png_bytes((300, 300), color=(1, 2, 3)) + b"\0" * 2000)
    assert response.status_code == 413
    assert "file" in response.json()["detail"]


def test_upload_over_the_pixel_limit_is_400(alice_api, settings):
    settings.UPLOAD_MAX_PIXELS = 100
    response = upload(alice_api, png_bytes((20, 20)))
    assert response.status_code == 400
    assert "pixels" in response.json()["detail"]


def test_upload_kind_must_be_known(alice_api):
    assert upload(alice_api, png_bytes(), kind="document").status_code == 400


def test_submit_creates_a_queued_job_with_the_real_seed(alice_api):
    upload_example("image-filters")
    image = upload(alice_api, png_bytes()).json()["id"]
    response = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"image": image}})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "QUEUED" and body["position"] == 1
    job = Job.objects.get(pk=body["id"])
    assert job.inputs["image"] == image
    assert JobFile.objects.get(pk=image).job_id == job.pk


def test_submit_leaves_the_workflow_graph_unread(alice_api, monkeypatch):
    """Real graphs are tens of kilobytes of JSON; only building the prompt (in the runner) reads it."""
    from workflows.models import Workflow

    make_workflow(slug="tiny")
    decoded = []
    real_from_db = Workflow.from_db
    monkeypatch.setattr(
        Workflow,
        "from_db",
        classmethod(
            lambda cls, db, names, values: decoded.append(tuple(names)) or real_from_db.__func__(cls, db, names, values)
        ),
    )
    response = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}})
    assert response.status_code == 201, response.json()
    assert decoded and all("graph" not in names for names in decoded)


def test_submit_with_bad_inputs_names_each_field(alice_api):
    upload_example("image-filters")
    response = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"blur_radius": 500, "nope": 1}})
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "image" in errors and "blur_radius" in errors and "nope" in errors
    assert "31" in errors["blur_radius"]


def test_a_thousand_unknown_inputs_get_a_short_answer(alice_api):
    """The answer lists the first 20 problems and counts the rest: it never outgrows the request."""
    upload_example("image-filters")
    inputs = {f"unknown_{i:04d}": 1 for i in range(1000)}
    response = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": inputs})
    assert response.status_code == 400
    assert len(response.content) < 4000
    body = response.json()
    assert len(body["errors"]) == 20
    assert "unknown_0000" in body["errors"]
    assert body["detail"].endswith("; and 981 more")  # 1,000 unknown ids and the missing image


def test_a_huge_unknown_field_name_is_not_echoed_whole(alice_api):
    upload_example("image-filters")
    response = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"x" * 100_000: 1}})
    assert response.status_code == 400
    assert len(response.content) < 4000
    assert any(field.startswith("xxx") for field in response.json()["errors"])


def test_submit_with_someone_elses_upload_is_refused(alice_api, bob_api):
    upload_example("image-filters")
    bobs = upload(bob_api, png_bytes()).json()["id"]
    response = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"image": bobs}})
    assert response.status_code == 400
    assert "upload not found" in response.json()["errors"]["image"]


def test_unknown_workflow_is_404(alice_api):
    response = alice_api.post("/api/jobs", {"workflow": "nope", "inputs": {}})
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_queued_limit_gives_429_naming_it(alice, alice_api):
    make_workflow()
    alice.max_queued_jobs = 2
    alice.save()
    for _ in range(2):
        assert alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}}).status_code == 201
    response = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}})
    assert response.status_code == 429
    assert response.json()["detail"].startswith("max_queued_jobs")
    assert response["Retry-After"]


def test_daily_limit_gives_429_naming_it(alice, alice_api):
    workflow = make_workflow()
    alice.daily_job_limit = 1
    alice.save()
    make_job(alice, workflow, status=Job.Status.DONE)
    response = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {}})
    assert response.status_code == 429
    assert response.json()["detail"].startswith("daily_job_limit")


def test_other_users_job_and_file_are_404(alice, bob_api, alice_api):
    job = make_job(alice, make_workflow())
    image = upload(alice_api, png_bytes()).json()["id"]
    for path in (f"/api/jobs/{job.pk}", f"/api/files/{image}"):
        assert bob_api.get(path).status_code == 404
    assert bob_api.post(f"/api/jobs/{job.pk}/cancel").status_code == 404
    assert bob_api.delete(f"/api/jobs/{job.pk}").status_code == 404
    assert alice_api.get(f"/api/files/{image}").status_code == 200
    assert bob_api.get("/api/jobs/not-a-uuid").status_code == 404


def test_admin_may_read_any_file(alice_api, admin_api):
    image = upload(alice_api, png_bytes()).json()["id"]
    response = admin_api.get(f"/api/files/{image}")
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert admin_api.get(f"/api/files/{image}", variant="thumb").status_code == 200


def test_cancel_queued_then_delete(alice, alice_api):
    job = make_job(alice, make_workflow())
    response = alice_api.post(f"/api/jobs/{job.pk}/cancel")
    assert response.json()["status"] == "CANCELLED"
    assert alice_api.post(f"/api/jobs/{job.pk}/cancel").status_code == 409
    assert alice_api.delete(f"/api/jobs/{job.pk}").status_code == 204
    assert not Job.objects.filter(pk=job.pk).exists()


def test_cancel_running_asks_the_runner(alice, alice_api):
    job = make_job(alice, make_workflow(), status=Job.Status.RUNNING)
    body = alice_api.post(f"/api/jobs/{job.pk}/cancel").json()
    assert body["status"] == "RUNNING" and body["cancel_requested"] is True
    assert alice_api.delete(f"/api/jobs/{job.pk}").status_code == 409


def test_list_my_jobs_filters_and_pages(alice, bob, alice_api):
    workflow = make_workflow()
    for status in ("QUEUED", "DONE", "DONE"):
        make_job(alice, workflow, status=status)
    make_job(bob, workflow)
    body = alice_api.get("/api/jobs", status="done").json()
    assert body["count"] == 2 and all(j["status"] == "DONE" for j in body["items"])
    assert alice_api.get("/api/jobs", page_size=1).json()["count"] == 3
    assert alice_api.get("/api/jobs", status="bogus").status_code == 400


def test_retry_copies_inputs(alice, alice_api):
    upload_example("image-filters")
    image = upload(alice_api, png_bytes()).json()["id"]
    first = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"image": image}}).json()
    Job.objects.filter(pk=first["id"]).update(status="ERROR")
    again = alice_api.post(f"/api/jobs/{first['id']}/retry")
    assert again.status_code == 201
    new_image = again.json()["inputs"]["image"]
    assert new_image != image and JobFile.objects.get(pk=new_image).sha256 == JobFile.objects.get(pk=image).sha256


def test_workflow_catalogue_and_ui_schema(alice_api):
    upload_example("image-filters")
    catalogue = alice_api.get("/api/workflows").json()
    assert any(w["slug"] == "image-filters" for group in catalogue for w in group["workflows"])
    detail = alice_api.get("/api/workflows/image-filters").json()
    assert detail["ui_schema"]["fields"][0]["id"] == "image"
    assert alice_api.get("/api/workflow-spec/v1.json").json()["title"]
