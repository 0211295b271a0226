"""The site's ASGI handler: the whole sync middleware chain and the view in one thread hand-off."""

from __future__ import annotations

import json
import threading

import pytest
from asgiref.sync import SyncToAsync
from channels.testing import HttpCommunicator
from django.http import HttpResponse
from django.urls import path

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


urlpatterns = [path("thread/", thread_view)]


@pytest.fixture
def handler(settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "tests.production.test_asgi_handler.RecordThread"]
    return SyncSiteASGIHandler()


async def request(handler, path: str, *, headers=()):
    communicator = HttpCommunicator(handler, "GET", path, headers=[(b"host", b"localhost"), *headers])
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
    import asyncio

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
