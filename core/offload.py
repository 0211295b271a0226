"""Waiting for slow work without holding one of the request slots that serve everyone.

A web instance runs Django code for at most WEB_REQUEST_THREADS requests at once (its request
slots, see comfyportal/asgi_handler.py). A view that hands slow work (decoding a large image)
to another thread and waits for it would keep its slot the whole time, and a few such requests
would leave every other user waiting. :func:`wait` gives the slot back for the wait and takes
one again before the view carries on, so a waiting request costs only an idle thread.

The handler puts a :class:`RequestSlot` in the request's context; outside it (the test client,
a management command) :func:`wait` simply blocks.
"""

from __future__ import annotations

import asyncio
import contextvars
from concurrent.futures import Future

from django.db import connection

current_slot: contextvars.ContextVar[RequestSlot | None] = contextvars.ContextVar("current_slot", default=None)


class RequestSlot:
    """One request's claim on the handler's semaphore; ``held`` changes only on the event loop."""

    def __init__(self, semaphore: asyncio.Semaphore):
        self.semaphore = semaphore
        self.loop = asyncio.get_running_loop()
        self.held = False
        self.closed = False

    async def acquire(self) -> None:
        await self.semaphore.acquire()
        if self.closed:  # the request ended while its thread waited (a cancelled request)
            self.semaphore.release()
        else:
            self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self.semaphore.release()

    def close(self) -> None:
        self.closed = True
        self.release()

    # From the request's thread:

    def release_from_thread(self) -> None:
        self.loop.call_soon_threadsafe(self.release)

    def acquire_from_thread(self) -> None:
        asyncio.run_coroutine_threadsafe(self.acquire(), self.loop).result()


def wait(future: Future):
    """The future's result, the request slot given back while it is not ready."""
    slot = current_slot.get()
    if slot is None or future.done():
        return future.result()
    if not connection.in_atomic_block:
        # Nor keep a pooled database connection idle meanwhile; the next query opens one.
        connection.close()
    slot.release_from_thread()
    try:
        return future.result()
    finally:
        slot.acquire_from_thread()
