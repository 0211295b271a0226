"""Django's ASGI handler, for a site whose middleware and views are all synchronous.

Under ASGI Django builds an async middleware chain and crosses between the event loop and
a worker thread at every sync/async boundary: into the first sync middleware, back out
before an async-capable one, into each MiddlewareMixin's hooks, into the view. Each
crossing is a thread hand-off costing CPU on every request. All our HTTP views (pages,
admin, API) are sync, so this handler loads the sync chain, as Django's WSGI handler does,
and runs it with the view through the public `get_response` in one hand-off. (Live updates
are Channels consumers; they do not pass through here.)

Django also starts a new thread for every request and joins it at the end, and the event
loop waits for both, while every live job event this instance relays waits behind it. Here
a request borrows one of WEB_REQUEST_THREADS long-lived threads instead (asgiref runs a
request's thread-sensitive code, signals included, on the executor its context names), and
waits on the event loop, without a thread, while all are busy. Python runs one thread at a
time, so more threads add no speed, only more contenders for the interpreter against the
event loop. (A slow client never holds a thread: daphne receives a request's whole body
before calling the application and buffers what it sends back.)

The bound is on slots, not threads: a view that waits for slow work elsewhere (an upload's
decoding, core/offload.py) gives its slot back while it waits, and the next request gets a
thread of its own, so the pool grows by one idle thread per such wait (bounded by whoever
admits that work, e.g. UPLOAD_DECODE_QUEUE).

Only public handler methods are overridden (load_middleware, get_response_async, __call__);
tests/production/test_asgi_handler.py fails if a Django upgrade stops routing through them.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from core.offload import RequestSlot, current_slot


class SyncSiteASGIHandler(ASGIHandler):
    def __init__(self):
        super().__init__()
        self.slots = asyncio.Semaphore(settings.WEB_REQUEST_THREADS)
        self.thread_count = 0
        self.idle_threads: list[ThreadPoolExecutor] = [self._new_thread() for _ in range(settings.WEB_REQUEST_THREADS)]

    def _new_thread(self) -> ThreadPoolExecutor:
        self.thread_count += 1
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"request-{self.thread_count - 1}")

    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)  # the sync chain, whatever ASGIHandler asks for

    async def get_response_async(self, request):
        """The whole middleware chain and the view in one hand-off to the request's thread."""
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        slot = RequestSlot(self.slots)
        await slot.acquire()
        # A thread is idle whenever a slot is free, unless requests that gave their slot back
        # still wait on theirs: then one more thread.
        thread = self.idle_threads.pop() if self.idle_threads else self._new_thread()
        token = current_slot.set(slot)
        try:
            # Thread-local state (the database connection) lives on with the thread, as under
            # WSGI; request_started/finished, which tidy it, run on this thread too.
            async with ThreadSensitiveContext(executor=thread):
                await self.handle(scope, receive, send)
        finally:
            current_slot.reset(token)
            self.idle_threads.append(thread)
            slot.close()
