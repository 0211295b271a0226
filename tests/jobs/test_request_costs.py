"""What the three requests of a job through the API cost (upload, submit, download of the
result, as bench.overhead makes them): the queries each runs, and how a file's bytes are sent.
A count that grows back fails here before it shows in the benchmark."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from jobs import serving
from jobs.files import store_result
from jobs.models import Job
from tests.factories import make_job, make_node, make_workflow
from tests.jobs.test_jobs_api import png_bytes
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


@pytest.fixture
def result(alice):
    job = make_job(alice, make_workflow(), status=Job.Status.DONE)
    return store_result(job=job, data=png_bytes(size=(64, 48)), source_ref="out_00001_.png")


def test_a_result_download_reads_the_user_and_the_file_only(alice_api, result, django_assert_num_queries):
    with django_assert_num_queries(2):  # the token's user; the file with its job, workflow and result count
        response = alice_api.get(f"/api/files/{result.pk}")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'inline; filename="tiny-{str(result.job_id)[:8]}-1.png"'


def test_a_shared_result_download_costs_no_more(bob_api, result, django_assert_num_queries):
    Job.objects.filter(pk=result.job_id).update(shareable=True)
    with django_assert_num_queries(2):
        assert bob_api.get(f"/api/files/{result.pk}").status_code == 200


def test_a_small_file_is_sent_in_one_body(alice_api, result):
    response = alice_api.get(f"/api/files/{result.pk}")
    assert not response.streaming
    assert response.content == result.file.open("rb").read()
    assert response["Content-Length"] == str(result.size)
    assert response["ETag"] == f'"{result.sha256[:32]}"' and response["Accept-Ranges"] == "bytes"


def test_a_large_file_is_streamed(alice_api, result, monkeypatch):
    monkeypatch.setattr(serving, "WHOLE_BODY_BYTES", result.size - 1)
    response = alice_api.get(f"/api/files/{result.pk}")
    assert response.streaming
    assert b"".join(response.streaming_content) == result.file.open("rb").read()


def _upload(api):
    picture = SimpleUploadedFile("in.png", png_bytes(size=(32, 32)), "image/png")
    return api.multipart("/api/uploads", {"file": picture, "kind": "image"})


def test_an_upload_reads_the_user_and_writes_its_row_with_its_count(alice_api):
    _upload(alice_api)  # the first request of a process reads the site's settings, kept after
    with CaptureQueriesContext(connection) as upload:
        assert _upload(alice_api).status_code == 201
    # the token's user; the file's row and the user's byte count: on PostgreSQL one statement,
    # elsewhere two in one transaction (here a savepoint)
    sql = [q["sql"].split()[0] for q in upload.captured_queries]
    if connection.vendor == "postgresql":
        assert sql == ["SELECT", "WITH"], upload.captured_queries
    else:
        assert sql == ["SELECT", "SAVEPOINT", "INSERT", "UPDATE", "RELEASE"], upload.captured_queries


def test_a_submit_with_an_upload_runs_its_queries_once(alice_api, django_assert_num_queries):
    workflow = _overhead_workflow()
    make_node(class_types=workflow.class_types)  # read once, then kept (nodes.farm)
    first, second = _upload(alice_api).json()["id"], _upload(alice_api).json()["id"]
    assert alice_api.post("/api/jobs", {"workflow": "overhead", "inputs": {"image": first}}).status_code == 201
    with CaptureQueriesContext(connection) as submit:
        response = alice_api.post("/api/jobs", {"workflow": "overhead", "inputs": {"image": second}})
    assert response.status_code == 201
    # the token's user; the farm; the uploads checked; the quotas with the queue position and
    # our jobs on the farm's nodes; the event number; the job's row; the uploads attached (and,
    # here, a savepoint's two); where the database has row locks, the user's row locked
    # (jobs.queries.lock_user)
    assert len(submit) == 9 + connection.features.has_select_for_update, "\n".join(
        q["sql"] for q in submit.captured_queries
    )


def _overhead_workflow() -> Workflow:
    """bench.overhead's workflow: load the uploaded picture, scale, invert, save."""
    from bench.overhead import create_workflow

    return create_workflow()


def test_a_finished_job_s_read_runs_three_queries(alice_api, result, django_assert_num_queries):
    # the token's user; the job with its workflow and node; its results (a polling client's request)
    with django_assert_num_queries(3):
        response = alice_api.get(f"/api/jobs/{result.job_id}")
    assert response.status_code == 200
    assert [output["id"] for output in response.json()["outputs"]] == [str(result.pk)]
