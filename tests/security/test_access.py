"""(a) Another user's job, file, upload and WebSocket events are out of reach: 404, never 403
(no hint that the object exists), and nothing changes."""

from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from jobs.models import Job, JobFile
from tests.conftest import communicator, token_for
from tests.factories import make_job
from tests.security.conftest import logged_in

pytestmark = pytest.mark.django_db


# --- API ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/api/jobs/{job}"),
        ("post", "/api/jobs/{job}/cancel"),
        ("post", "/api/jobs/{job}/retry"),
        ("delete", "/api/jobs/{job}"),
        ("get", "/api/files/{file}"),
        ("get", "/api/files/{file}?variant=thumb"),
        ("delete", "/api/files/{file}"),
    ],
)
def test_bobs_api_calls_on_alices_objects_are_404(bob_api, alice_job, method, path):
    job, result = alice_job
    url = path.format(job=job.pk, file=result.pk)
    if method == "get" and "?" in url:
        url, _, query = url.partition("?")
        response = bob_api.get(url, **dict([query.split("=")]))
    else:
        response = getattr(bob_api, method)(url)
    assert response.status_code == 404, (url, response.content)
    assert response.json()["detail"] in ("Job not found.", "File not found.")
    job.refresh_from_db()
    assert job.status == "DONE"
    assert JobFile.objects.filter(pk=result.pk).exists()
    assert Job.objects.count() == 1, "no retry was created"


def test_same_404_for_a_job_that_does_not_exist(bob_api, alice_job):
    job, _ = alice_job
    theirs = bob_api.get(f"/api/jobs/{job.pk}")
    missing = bob_api.get("/api/jobs/00000000-0000-0000-0000-000000000000")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json() == missing.json()


def test_alices_own_calls_work(alice_api, alice_job):
    """The control: the same requests by the owner succeed."""
    job, result = alice_job
    assert alice_api.get(f"/api/jobs/{job.pk}").status_code == 200
    response = alice_api.get(f"/api/files/{result.pk}")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_bobs_job_list_and_filters_never_show_alices_jobs(bob_api, alice_job):
    for params in ({}, {"status": "DONE"}, {"workflow": "tiny"}, {"limit": 100}):
        body = bob_api.get("/api/jobs", **params).json()
        assert body["count"] == 0 and body["items"] == [], params


def test_bob_cannot_use_alices_upload_in_a_job(bob_api, alice_upload, db):
    from tests.factories import upload_example

    upload_example("image-filters")
    response = bob_api.post("/api/jobs", {"workflow": "image-filters", "inputs": {"image": alice_upload}})
    assert response.status_code == 400
    assert "image" in response.json()["errors"]
    assert JobFile.objects.get(pk=alice_upload).job_id is None
    assert not Job.objects.exists()


def test_bob_cannot_fetch_or_delete_alices_upload(bob_api, alice_upload):
    assert bob_api.get(f"/api/files/{alice_upload}").status_code == 404
    assert bob_api.delete(f"/api/files/{alice_upload}").status_code == 404
    assert JobFile.objects.filter(pk=alice_upload).exists()


def test_outsider_session_cannot_fetch_alices_file(outsider, alice_job):
    """/api/files also accepts a session (for <img> tags): the same owner check applies."""
    _, result = alice_job
    response = logged_in(outsider).get(f"/api/files/{result.pk}")
    assert response.status_code == 404


def test_admin_may_read_any_job_and_file(admin_api, alice_job):
    job, result = alice_job
    assert admin_api.get(f"/api/jobs/{job.pk}").status_code == 200
    assert admin_api.get(f"/api/files/{result.pk}").status_code == 200


# --- pages ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/jobs/{job}/"),
        ("get", "/jobs/{job}/?partial=panel"),
        ("post", "/jobs/{job}/cancel/"),
        ("post", "/jobs/{job}/retry/"),
        ("post", "/jobs/{job}/delete/"),
        ("post", "/files/{file}/delete/"),
    ],
)
def test_bobs_page_requests_on_alices_objects_are_404(bob, alice_job, method, path):
    job, result = alice_job
    client = logged_in(bob)
    response = getattr(client, method)(path.format(job=job.pk, file=result.pk), HTTP_HX_REQUEST="true")
    assert response.status_code == 404, (path, response.status_code)
    assert Job.objects.filter(pk=job.pk, status="DONE").exists() and Job.objects.count() == 1
    assert JobFile.objects.filter(pk=result.pk).exists()


def test_bobs_pages_do_not_list_alices_jobs_or_results(bob, alice_job):
    job, result = alice_job
    client = logged_in(bob)
    for path in ("/jobs/", "/gallery/"):
        response = client.get(path)
        assert response.status_code == 200, path
        html = response.content.decode()
        assert str(job.pk) not in html and str(result.pk) not in html, path


# --- WebSocket --------------------------------------------------------------------------------------


async def drain(comm: WebsocketCommunicator, timeout: float = 0.3) -> list[dict]:
    """Every message that arrives within `timeout` of the previous one."""
    messages = []
    # receive_nothing() waits without cancelling the application (a receive timeout would).
    while not await comm.receive_nothing(timeout=timeout):
        messages.append(await comm.receive_json_from())
    return [m for m in messages if m["type"] != "synced"]  # the end of the snapshot: no job in it


@pytest.fixture
def ws_rows(transactional_db):
    from tests.conftest import make_user
    from tests.factories import make_workflow

    alice, bob = make_user("alice"), make_user("bob")
    tiny = make_workflow("tiny")
    job = make_job(alice, tiny, status="RUNNING")
    # Tokens are issued here: issuing one writes a row, which an async test may not do directly.
    alice.token, bob.token = token_for(alice), token_for(bob)
    return alice, bob, job


@pytest.mark.django_db(transaction=True)
async def test_bob_never_receives_alices_job_events(ws_rows):
    from jobs.notify import send_job_event_async
    from jobs.presenters import present_job

    alice, bob, job = ws_rows
    alice_ws = communicator(f"/ws/jobs/?token={alice.token}")
    bob_ws = communicator(f"/ws/jobs/?token={bob.token}")
    assert (await alice_ws.connect())[0] and (await bob_ws.connect())[0]
    try:
        greeting = await drain(alice_ws)
        assert [m["job"]["id"] for m in greeting] == [str(job.pk)], "alice sees her running job on connect"
        assert await drain(bob_ws) == [], "bob gets no snapshot of alice's jobs"

        payload = await database_sync_to_async(
            lambda: present_job(Job.objects.select_related("workflow", "node").get(pk=job.pk))
        )()
        payload["progress"] = 0.5
        await send_job_event_async(alice.pk, payload)
        assert [m["job"]["progress"] for m in await drain(alice_ws)] == [0.5]
        assert await drain(bob_ws) == []

        # Asking for alice's groups by name does nothing: the consumer takes no group from the client.
        await bob_ws.send_json_to({"type": "subscribe", "job": str(job.pk), "group": f"user_{alice.pk}"})
        await send_job_event_async(alice.pk, payload)
        assert await drain(bob_ws) == []
    finally:
        await alice_ws.disconnect()
        await bob_ws.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("query", ["", "?token=", "?token=not-a-jwt", "?token=a.b.c"])
async def test_anonymous_socket_is_closed(ws_rows, query):
    comm = communicator(f"/ws/jobs/{query}")
    connected, code = await comm.connect()
    assert not connected
    assert code == 4401
    await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_socket_from_a_foreign_origin_is_refused(ws_rows):
    """AllowedHostsOriginValidator: a page on another site cannot open a socket with the user's cookie."""
    alice, _, _ = ws_rows
    comm = communicator(
        f"/ws/jobs/?token={alice.token}", headers=[(b"origin", b"http://evil.example.com"), (b"host", b"testserver")]
    )
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()
