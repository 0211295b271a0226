"""The site's ASGI handler: the whole sync middleware chain and the view in one thread hand-off."""

from __future__ import annotations

import asyncio
import io
import json
import threading

import pytest
from asgiref.sync import SyncToAsync
from channels.testing import HttpCommunicator
from django.core.signals import request_finished, request_started
from django.db import connection
from django.http import FileResponse, HttpResponse, JsonResponse
from django.test import RequestFactory
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from comfyportal.asgi_handler import SyncSiteASGIHandler

seen_threads: list[str] = []


class RecordThread:
    """A sync-only middleware (like most): where does it run?"""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        seen_threads.append(threading.current_thread().name)
        return self.get_response(request)


def thread_view(request):
    seen_threads.append(threading.current_thread().name)
    return HttpResponse("ok")


def download_view(request):
    return FileResponse(io.BytesIO(DOWNLOAD), content_type="application/octet-stream")


@csrf_exempt
def body_view(request):
    return JsonResponse({"size": len(request.body), "thread": threading.current_thread().name})


def database_view(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"connection": id(connection.connection), "thread": threading.current_thread().name})


DOWNLOAD = bytes(range(256)) * 4096  # 1 MiB, several chunks
urlpatterns = [
    path("thread/", thread_view),
    path("download/", download_view),
    path("body/", body_view),
    path("database/", database_view),
]


@pytest.fixture
def handler(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.production.test_asgi_handler.RecordThread"]
    return SyncSiteASGIHandler()


async def request(handler, path: str, *, headers=(), method="GET", body=b""):
    communicator = HttpCommunicator(handler, method, path, body=body, headers=[(b"host", b"localhost"), *headers])
    return await communicator.get_response(timeout=10)


async def test_a_request_crosses_into_a_worker_thread_once_for_middleware_and_view(handler, settings, monkeypatch):
    settings.ROOT_URLCONF = "tests.production.test_asgi_handler"
    hand_offs = []
    original = SyncToAsync.__call__

    async def counting(self, *args, **kwargs):
        hand_offs.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", counting)
    seen_threads.clear()
    response = await request(handler, "/thread/")
    assert response["status"] == 200 and response["body"] == b"ok"
    assert len(seen_threads) == 2 and seen_threads[0] == seen_threads[1] != threading.main_thread().name
    # request_started's receivers, then the whole chain with the view (Django's own async
    # chain adds one per sync/async boundary and per async MiddlewareMixin hook: 4 here).
    assert len(hand_offs) == 2, hand_offs


@pytest.mark.django_db(transaction=True)
async def test_api_errors_and_headers_still_come_from_the_middleware(handler):
    response = await request(handler, "/api/jobs")  # no token
    assert response["status"] == 401
    assert "detail" in json.loads(response["body"])
    headers = {name.lower(): value for name, value in response["headers"]}
    assert headers[b"x-frame-options"] == b"DENY"  # the innermost middleware ran too


async def test_requests_share_a_few_long_lived_threads_with_their_signals(settings):
    """No thread is started per request: WEB_REQUEST_THREADS threads serve them all, each
    request's request_started (which tidies its database connection) on its view's thread."""

    from django.core.signals import request_started

    settings.ROOT_URLCONF = "tests.production.test_asgi_handler"
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.production.test_asgi_handler.RecordThread"]
    settings.WEB_REQUEST_THREADS = 2
    handler = SyncSiteASGIHandler()
    signal_threads: list[str] = []

    def record_signal(**kwargs):
        signal_threads.append(threading.current_thread().name)

    request_started.connect(record_signal)
    seen_threads.clear()
    threads_before = threading.active_count()
    try:
        responses = await asyncio.gather(*(request(handler, "/thread/") for _ in range(8)))
    finally:
        request_started.disconnect(record_signal)
    assert [r["status"] for r in responses] == [200] * 8
    assert len(seen_threads) == 16 and len(set(seen_threads)) <= 2
    assert all(name.startswith("request-") for name in seen_threads)
    assert len(signal_threads) == 8 and set(signal_threads) <= set(seen_threads)
    assert threading.active_count() <= threads_before + 2


def test_the_loaded_chain_is_the_sync_one_and_answers_through_public_get_response(settings):
    """What get_response_async hands to the request's thread. (If a Django upgrade stopped
    routing requests through get_response_async, the async tests here would fail: Django's
    own would await this sync chain.)"""
    settings.ROOT_URLCONF = "tests.production.test_asgi_handler"
    response = SyncSiteASGIHandler().get_response(RequestFactory().get("/thread/"))
    assert isinstance(response, HttpResponse) and response.content == b"ok"


async def test_a_file_download_streams_whole(handler, settings):
    settings.ROOT_URLCONF = "tests.production.test_asgi_handler"
    communicator = HttpCommunicator(handler, "GET", "/download/", headers=[(b"host", b"localhost")])
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=10)
    chunks = []
    while (message := await communicator.receive_output(timeout=10)).get("more_body"):
        chunks.append(message["body"])
    chunks.append(message.get("body", b""))
    assert start["status"] == 200 and b"".join(chunks) == DOWNLOAD
    assert len(chunks) > 2  # a streaming response, sent in several body messages


async def test_request_bodies_up_to_the_limit_are_read_and_larger_ones_refused(handler, settings):
    settings.ROOT_URLCONF = "tests.production.test_asgi_handler"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    form = [(b"content-type", b"application/octet-stream")]
    response = await request(handler, "/body/", method="POST", body=b"x" * 1000, headers=form)
    assert response["status"] == 200 and json.loads(response["body"])["size"] == 1000
    response = await request(handler, "/body/", method="POST", body=b"x" * 1001, headers=form)
    assert response["status"] == 400  # RequestDataTooBig, as Django answers it


@pytest.mark.django_db(transaction=True)
async def test_signals_and_the_database_connection_live_on_the_request_thread(settings):
    """request_started and request_finished (which close stale connections) run on the
    thread of the view, so the connection they tidy is the one the view used."""
    settings.ROOT_URLCONF = "tests.production.test_asgi_handler"
    settings.WEB_REQUEST_THREADS = 1
    handler = SyncSiteASGIHandler()
    signal_threads = {"started": [], "finished": []}

    def started(**kwargs):
        signal_threads["started"].append(threading.current_thread().name)

    def finished(**kwargs):
        signal_threads["finished"].append(threading.current_thread().name)

    request_started.connect(started)
    request_finished.connect(finished)

    async def whole_request() -> dict:
        communicator = HttpCommunicator(handler, "GET", "/database/", headers=[(b"host", b"localhost")])
        response = await communicator.get_response(timeout=10)
        await communicator.wait(timeout=5)  # the handler's end: response.close(), request_finished
        return json.loads(response["body"])

    try:
        first, second = await whole_request(), await whole_request()
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert first["thread"] == second["thread"]
    assert signal_threads == {"started": [first["thread"]] * 2, "finished": [first["thread"]] * 2}
