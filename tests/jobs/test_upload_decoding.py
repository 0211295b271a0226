"""Issue 20 item 8: decoding uploads never starves other users.

The slow part of an upload (decoding, normalizing, the thumbnail) is held at a gate here, so
that the tests see what happens *while* it runs, whatever the machine's speed."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import pytest
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse
from PIL import Image

from comfyportal.asgi_handler import SyncSiteASGIHandler
from jobs import decoding, files
from jobs.models import JobFile
from tests.conftest import Api, make_user, token_for
from tests.factories import upload_example

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def decode_every_upload_off_the_request_thread(settings):
    """These small pictures would otherwise be decoded inline (UPLOAD_INLINE_PIXELS)."""
    settings.UPLOAD_INLINE_PIXELS = 0


def png_bytes(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


class Gate:
    """Stands in front of files._prepare_upload: every decode waits until opened."""

    def __init__(self, monkeypatch):
        self.open = threading.Event()
        self.entered = threading.Event()
        original = files._prepare_upload

        def gated(*args):
            self.entered.set()
            assert self.open.wait(20), "the gate was never opened"
            return original(*args)

        monkeypatch.setattr(files, "_prepare_upload", gated)


@pytest.fixture
def gate(monkeypatch):
    gate = Gate(monkeypatch)
    yield gate
    gate.open.set()


def multipart(data: bytes) -> bytes:
    return encode_multipart(BOUNDARY, {"file": SimpleUploadedFile("big.png", data), "kind": "image"})


async def send(handler, method: str, path: str, token: str, body: bytes = b"", content_type: bytes = b"") -> dict:
    headers = [(b"host", b"localhost"), (b"authorization", f"Bearer {token}".encode())]
    if content_type:
        headers += [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    communicator = HttpCommunicator(handler, method, path, body=body, headers=headers)
    return await communicator.get_response(timeout=20)


async def wait_until(condition, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


async def test_other_users_are_served_while_uploads_decode_and_a_users_extra_upload_is_429(settings, gate):
    """Both request slots' worth of uploads decoding: before, they held both request threads
    and another user's GET /api/me waited for them; now it is answered at once."""
    settings.WEB_REQUEST_THREADS = 2
    settings.UPLOAD_DECODE_THREADS = 1
    settings.UPLOAD_DECODES_PER_USER = 2
    uploader_token, other_token = await sync_to_async(
        lambda: [token_for(make_user(n)) for n in ("uploader", "other")]
    )()
    handler = SyncSiteASGIHandler()
    body = multipart(png_bytes())

    uploads = [
        asyncio.create_task(send(handler, "POST", "/api/uploads", uploader_token, body, MULTIPART_CONTENT.encode()))
        for _ in range(2)
    ]
    await wait_until(lambda: gate.entered.is_set() and decoding.in_flight() == 2)

    me = await asyncio.wait_for(send(handler, "GET", "/api/me", other_token), timeout=5)
    assert me["status"] == 200 and json.loads(me["body"])["username"] == "other"

    third = await asyncio.wait_for(
        send(handler, "POST", "/api/uploads", uploader_token, body, MULTIPART_CONTENT.encode()), timeout=5
    )
    assert third["status"] == 429
    assert "at most 2 at once" in json.loads(third["body"])["detail"]
    assert {k.lower(): v for k, v in third["headers"]}[b"retry-after"] == b"2"

    gate.open.set()
    done = await asyncio.gather(*uploads)
    assert [r["status"] for r in done] == [201, 201]
    assert decoding.in_flight() == 0
    # The waits grew the pool by idle threads only as far as they needed.
    assert handler.thread_count <= settings.WEB_REQUEST_THREADS + 2


def test_the_instance_wide_bound_refuses_other_users_too(settings, gate):
    settings.UPLOAD_DECODES_PER_USER = 5
    settings.UPLOAD_DECODE_QUEUE = 1
    alice, bob = make_user("alice2"), make_user("bob2")
    first = threading.Thread(
        target=lambda: Api(token_for(alice)).multipart(
            "/api/uploads", {"file": SimpleUploadedFile("a.png", png_bytes()), "kind": "image"}
        )
    )
    first.start()
    assert gate.entered.wait(10)
    response = Api(token_for(bob)).multipart(
        "/api/uploads", {"file": SimpleUploadedFile("b.png", png_bytes()), "kind": "image"}
    )
    assert response.status_code == 429
    assert response.json()["detail"].startswith("file: the server is processing many uploads")
    gate.open.set()
    first.join(10)
    assert JobFile.objects.filter(owner=alice).count() == 1 and not JobFile.objects.filter(owner=bob).exists()


def test_the_page_form_shares_the_bound_and_says_so(settings, gate, client):
    settings.UPLOAD_DECODES_PER_USER = 1
    user = make_user("painter")
    upload_example("image-filters")
    first = threading.Thread(
        target=lambda: Api(token_for(user)).multipart(
            "/api/uploads", {"file": SimpleUploadedFile("a.png", png_bytes()), "kind": "image"}
        )
    )
    first.start()
    assert gate.entered.wait(10)
    client.force_login(user)
    image = SimpleUploadedFile("b.png", png_bytes(), content_type="image/png")
    response = client.post(reverse("job_submit", args=["image-filters"]), {"image": image, "blur_radius": "2"})
    assert response.status_code == 400  # the form again, the field's error on it
    assert "send this one when they are done" in response.content.decode()
    gate.open.set()
    first.join(10)


def test_a_declared_size_over_the_limit_is_refused_without_decoding(settings, monkeypatch):
    """The header alone says 6300×6300: refused at once, nothing decoded."""
    settings.UPLOAD_MAX_PIXELS = 6000 * 6000

    def must_not_run(*args):
        raise AssertionError("decoded")

    monkeypatch.setattr(files, "_prepare_upload", must_not_run)
    user = make_user("bomber")
    response = Api(token_for(user)).multipart(
        "/api/uploads", {"file": SimpleUploadedFile("big.png", big_png()), "kind": "image"}
    )
    assert response.status_code == 400
    assert "6300×6300" in response.json()["detail"]


def big_png() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (6300, 6300)).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def test_decoding_threads_yield_the_cpu_to_requests():
    import os

    def niceness() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert decoding.run("someone", niceness) > niceness()
