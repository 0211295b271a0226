"""POST /api/jobs/with-files: a job and its files in one request, checked and stored as
POST /api/uploads stores them, submitted as POST /api/jobs submits, nothing left behind when
it is refused."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from billing.models import BillingSettings, WorkflowPrice
from jobs import steps
from jobs.models import Job, JobFile
from tests.conftest import Api, make_user, token_for
from tests.factories import upload_example
from tests.jobs.media_samples import mp4
from tests.jobs.test_jobs_api import png_bytes
from tests.jobs.test_upload_decoding import Gate

pytestmark = pytest.mark.django_db
URL = "/api/jobs/with-files"


def picture(data: bytes | None = None, name="in.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data if data is not None else png_bytes(), "image/png")


def submit(api, workflow="image-filters", inputs=None, key: str | None = None, **parts):
    form = {"workflow": workflow, **parts}
    if inputs is not None:
        form["inputs"] = inputs if isinstance(inputs, str) else json.dumps(inputs)
    if key is None:
        return api.multipart(URL, form)
    return api.client.post(URL, form, **api._headers({"HTTP_IDEMPOTENCY_KEY": key}))


def stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture
def filters():
    return upload_example("image-filters")


def test_one_request_stores_the_file_and_submits_the_job(alice_api, filters):
    response = submit(alice_api, inputs={"blur_radius": 3}, image=picture(png_bytes((80, 60))))
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "QUEUED" and body["position"] == 1
    job = Job.objects.get(pk=body["id"])
    record = JobFile.objects.get(pk=job.inputs["image"])
    assert (record.kind, record.owner_id, record.job_id) == ("IMAGE", job.user_id, job.pk)
    assert (record.width, record.height, record.content_type) == (80, 60, "image/png")
    assert record.size == len(record.file.open("rb").read())


def test_the_job_is_the_one_two_requests_make(alice_api, filters):
    data = png_bytes((40, 30), color=(10, 200, 90))
    upload = alice_api.multipart("/api/uploads", {"file": picture(data), "kind": "image"}).json()["id"]
    two = alice_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"image": upload, "invert": 1.0}})
    one = submit(alice_api, inputs={"invert": 1.0}, image=picture(data))
    assert (two.status_code, one.status_code) == (201, 201)
    first, second = Job.objects.get(pk=two.json()["id"]), Job.objects.get(pk=one.json()["id"])
    assert {**first.inputs, "image": None, "seed": None} == {**second.inputs, "image": None, "seed": None}
    sent_first, sent_second = steps.inputs_to_send(first.pk), steps.inputs_to_send(second.pk)
    assert sent_first.keys() == sent_second.keys() == {"image"}
    (record_a, bytes_a), (record_b, bytes_b) = sent_first["image"], sent_second["image"]
    assert bytes_a == bytes_b and (record_a.kind, record_a.size, record_a.sha256) == (
        record_b.kind,
        record_b.size,
        record_b.sha256,
    )


def test_a_video_field_takes_a_video_part(alice_api):
    upload_example("video-convert")
    response = submit(alice_api, "video-convert", video=SimpleUploadedFile("clip.mp4", mp4(), "video/mp4"))
    assert response.status_code == 201, response.json()
    record = JobFile.objects.get(pk=Job.objects.get().inputs["video"])
    assert (record.kind, record.media, record.frame_count, record.size) == ("VIDEO", "video", 8, len(mp4()))


def test_two_file_fields_in_one_request(alice_api):
    upload_example("mask-composite")
    mask = SimpleUploadedFile("m.png", png_bytes(mode="L", color=128), "image/png")
    response = submit(alice_api, "mask-composite", image=picture(), mask=mask)
    assert response.status_code == 201, response.json()
    job = Job.objects.get()
    assert {f.kind for f in job.files.all()} == {"IMAGE", "MASK"}


def test_an_unknown_workflow_is_404(alice_api):
    response = submit(alice_api, "nope", image=picture())
    assert response.status_code == 404 and "nope" in response.json()["detail"]
    assert not JobFile.objects.exists()


@pytest.mark.parametrize("name", ["picture", "blur_radius"])
def test_a_part_named_after_no_file_field_is_400_naming_it(alice_api, filters, name):
    response = submit(alice_api, image=picture(), **{name: picture()})
    assert response.status_code == 400
    assert name in response.json()["errors"] and "no file field" in response.json()["errors"][name]
    assert not JobFile.objects.exists() and not Job.objects.exists()


def test_a_text_part_is_400_naming_it(alice_api, filters):
    response = submit(alice_api, image=picture(), blur_radius="3")
    assert response.status_code == 400 and "put other fields in `inputs`" in response.json()["errors"]["blur_radius"]


@pytest.mark.parametrize("inputs", ["[1, 2]", "not json", '"x"', "null", "[" * 100_000 + "]" * 100_000])
def test_inputs_that_are_not_a_json_object_are_400(alice_api, filters, inputs):
    response = submit(alice_api, inputs=inputs, image=picture())
    assert response.status_code == 400 and response.json()["errors"] == {"inputs": "must be a JSON object"}
    assert not JobFile.objects.exists()


@pytest.mark.parametrize("inputs", ['{"nope": "a\\u0000b"}', '{"a\\u0000": 1}', '{"a": [[{"b": "\\u0000"}]]}'])
def test_a_nul_escaped_in_inputs_is_400(alice_api, filters, inputs):
    response = submit(alice_api, inputs=inputs, image=picture())
    assert response.status_code == 400 and "inputs" in response.json()["errors"]


def test_a_file_field_in_inputs_and_as_a_part_is_400(alice_api, filters):
    upload = alice_api.multipart("/api/uploads", {"file": picture(), "kind": "image"}).json()["id"]
    response = submit(alice_api, inputs={"image": upload}, image=picture())
    assert response.status_code == 400 and "both" in response.json()["errors"]["image"]
    assert JobFile.objects.count() == 1 and not Job.objects.exists()


def test_an_upload_id_in_inputs_still_works(alice_api, filters):
    upload = alice_api.multipart("/api/uploads", {"file": picture(), "kind": "image"}).json()["id"]
    response = submit(alice_api, inputs={"image": upload})
    assert response.status_code == 201 and Job.objects.get().inputs["image"] == upload


def test_a_file_over_the_limit_is_413_naming_the_field(alice_api, filters, settings):
    settings.UPLOAD_MAX_BYTES = 1000
    response = submit(alice_api, image=picture(png_bytes((300, 300), color=(1, 2, 3)) + b"\0" * 2000))
    assert response.status_code == 413
    assert response.json()["detail"].startswith("image:") and "image" in response.json()["errors"]
    assert not JobFile.objects.exists()


def test_a_video_over_its_fields_limit_is_413_naming_the_field(alice_api, settings):
    upload_example("video-convert")
    settings.MEDIA_UPLOAD_MAX_BYTES = 100
    response = submit(alice_api, "video-convert", video=SimpleUploadedFile("clip.mp4", mp4(), "video/mp4"))
    assert response.status_code == 413 and "video" in response.json()["errors"]


@pytest.mark.parametrize(
    "workflow,field,data",
    [
        ("image-filters", "image", b"hello, not an image"),
        ("image-filters", "image", png_bytes()[:60]),
        ("video-convert", "video", png_bytes()),
    ],
)
def test_a_file_that_is_not_what_its_field_says_is_400_naming_it(alice_api, settings, workflow, field, data):
    upload_example(workflow)
    response = submit(alice_api, workflow, **{field: SimpleUploadedFile("x.bin", data)})
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}:") and list(response.json()["errors"]) == [field]
    assert not JobFile.objects.exists() and not stored_files(settings)


def test_a_second_bad_file_leaves_the_first_unstored(alice_api, settings):
    upload_example("mask-composite")
    response = submit(alice_api, "mask-composite", image=picture(), mask=SimpleUploadedFile("m.png", b"nope"))
    assert response.status_code == 400 and "mask" in response.json()["errors"]
    assert not JobFile.objects.exists() and not stored_files(settings)


def test_a_bad_field_value_is_400_and_the_file_is_deleted(alice_api, filters, settings):
    response = submit(alice_api, inputs={"blur_radius": 500}, image=picture())
    assert response.status_code == 400 and "blur_radius" in response.json()["errors"]
    assert not JobFile.objects.exists() and not stored_files(settings)


def test_a_refused_submit_deletes_the_files_it_stored(alice, alice_api, filters, settings):
    alice.max_queued_jobs = 0
    alice.save()
    response = submit(alice_api, image=picture())
    assert response.status_code == 429 and response.json()["detail"].startswith("max_queued_jobs")
    assert not JobFile.objects.exists() and not stored_files(settings)
    alice.refresh_from_db()
    assert alice.storage_used == 0


def test_a_submit_short_of_credits_deletes_the_files_it_stored(alice_api, filters, settings):
    BillingSettings._cached = None
    BillingSettings.objects.create(enabled=True, currency="credits")
    WorkflowPrice.objects.create(workflow_slug="image-filters", per_job=Decimal("1"))
    try:
        response = submit(alice_api, image=picture())
    finally:
        BillingSettings._cached = None
    assert response.status_code == 402
    assert not JobFile.objects.exists() and not stored_files(settings)


def test_an_outsider_without_a_token_is_refused(anon_api, filters):
    assert submit(anon_api, image=picture()).status_code == 401
    assert not JobFile.objects.exists()


def test_an_api_key_needs_both_jobs_write_and_files(alice, filters):
    from accounts import keys

    for scopes, status in ((["jobs:write"], 403), (["files"], 403), (["jobs:write", "files"], 201)):
        _, raw = keys.create_key(user=alice, name=" ".join(scopes), scopes=scopes)
        response = submit(Api(raw), image=picture())
        assert response.status_code == status, (scopes, response.json())
    assert JobFile.objects.count() == 1


def test_a_replay_with_the_same_key_and_bytes_gives_the_first_job(alice_api, filters):
    first = submit(alice_api, inputs={"invert": 1.0}, key="k-1", image=picture())
    again = submit(alice_api, inputs={"invert": 1.0}, key="k-1", image=picture())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Job.objects.count() == 1 and JobFile.objects.count() == 1  # the replay stored nothing


def test_the_same_key_with_other_bytes_is_422(alice_api, filters):
    assert submit(alice_api, key="k-2", image=picture(png_bytes(color=(1, 1, 1)))).status_code == 201
    response = submit(alice_api, key="k-2", image=picture(png_bytes(color=(2, 2, 2))))
    assert response.status_code == 422 and "Idempotency-Key" in response.json()["errors"]
    assert Job.objects.count() == 1 and JobFile.objects.count() == 1


def test_a_replay_racing_the_first_deletes_its_own_files(alice_api, filters, monkeypatch):
    """Both requests passed the early look-up of the key (before decoding); the second finds
    the key under the user's lock in submit_job, answers the first job and keeps no file."""
    from jobs import idempotency, submit_files

    first = submit(alice_api, key="k-3", image=picture())
    early_lookup_missed = SimpleNamespace(for_key=idempotency.for_key, earlier_job=lambda user_id, idem: None)
    monkeypatch.setattr(submit_files, "idempotency", early_lookup_missed)
    again = submit(alice_api, key="k-3", image=picture())
    assert (first.status_code, again.status_code) == (201, 200) and first.json()["id"] == again.json()["id"]
    assert JobFile.objects.count() == 1


def test_the_request_runs_its_queries_once(alice_api, django_assert_num_queries):
    from bench.overhead import create_workflow

    create_workflow()
    assert submit(alice_api, "overhead", image=picture()).status_code == 201  # reads the site's settings, kept after
    # the token's user; the file's row and the user's byte count (on PostgreSQL one statement,
    # elsewhere two and a savepoint's two around them); then POST /api/jobs's own: the farm;
    # the uploads checked; the quotas with the queue position; the event number; the job's
    # row; the uploads attached (and a savepoint's two); where the database has row locks, the
    # user's row locked. One request fewer than POST /api/uploads + POST /api/jobs make, and
    # one user read fewer.
    storing = 1 if connection.vendor == "postgresql" else 4
    with django_assert_num_queries(9 + storing + connection.features.has_select_for_update):
        assert submit(alice_api, "overhead", image=picture()).status_code == 201


def test_the_active_workflow_is_read_once(alice_api, filters, monkeypatch):
    from workflows import services as workflow_services

    reads = []
    read = workflow_services.get_active_workflow
    monkeypatch.setattr("jobs.submit_files.get_active_workflow", lambda slug: reads.append(slug) or read(slug))
    monkeypatch.setattr("jobs.services.get_active_workflow", lambda slug: reads.append(slug) or read(slug))
    assert submit(alice_api, image=picture()).status_code == 201
    assert reads == ["image-filters"]  # each read asks Redis whether workflows changed


@pytest.mark.django_db(transaction=True)
def test_the_decode_bound_answers_429_naming_the_field(settings, monkeypatch):
    settings.UPLOAD_INLINE_PIXELS = 0  # every picture decoded in a decoding thread
    settings.UPLOAD_DECODES_PER_USER = 1
    gate = Gate(monkeypatch)
    user = make_user("painter")
    upload_example("image-filters")
    api = Api(token_for(user))
    answers = []

    def first_request():
        try:
            answers.append(submit(api, image=picture()))
        finally:
            connection.close()  # this thread's own: the test database is dropped at the end

    first = threading.Thread(target=first_request)
    first.start()
    try:
        assert gate.entered.wait(10)
        refused = submit(api, image=picture(png_bytes(color=(9, 9, 9))))
        assert refused.status_code == 429 and refused["Retry-After"] == "2"
        assert (
            refused.json()["detail"].startswith("image:") and "at most 1 at once" in refused.json()["errors"]["image"]
        )
    finally:
        gate.open.set()
        first.join(10)
    assert answers[0].status_code == 201
    assert JobFile.objects.count() == 1 and Job.objects.count() == 1


def test_the_openapi_document_describes_the_file_parts(client):
    operation = client.get("/api/openapi.json").json()["paths"][URL]["post"]
    content = operation["requestBody"]["content"]
    assert list(content) == ["multipart/form-data"]
    schema = content["multipart/form-data"]["schema"]
    assert schema["required"] == ["workflow"] and set(schema["properties"]) == {"workflow", "inputs", "webhook_url"}
    assert schema["additionalProperties"]["format"] == "binary"
    assert {p["name"] for p in operation["parameters"]} == {"Idempotency-Key"}
    assert {"201", "200", "400", "402", "404", "413", "422", "429"} <= set(operation["responses"])
