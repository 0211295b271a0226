"""Threads for the database work of /ws/jobs/ connects (the socket's user, the catch-up).

Apart from the one thread of Django's sync code that channels' `database_sync_to_async`
uses: a thousand tabs reconnecting after a restart do not queue behind each other's hops
through that one thread, nor behind pages.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

# Logins apart from catch-ups: a socket's handshake waits for its login (daphne gives up after
# a few seconds), never for other sockets' catch-ups, which come after the handshake.
_login_threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ws-login")
_catch_up_threads = ThreadPoolExecutor(max_workers=settings.WS_CATCH_UP_THREADS, thread_name_prefix="ws-catch-up")


def _fresh(fn, args):
    close_old_connections()
    try:
        return fn(*args)
    finally:
        close_old_connections()  # hands the connection back to the pool (PostgreSQL)


async def log_in(fn, *args):
    """Run blocking database code `fn(*args)` that a handshake waits for."""
    return await asyncio.get_running_loop().run_in_executor(_login_threads, _fresh, fn, args)


_logins_in_flight: dict = {}  # key → the login being read for it


async def log_in_once(key, fn, *args):
    """`log_in(fn, *args)`, shared by the handshakes that ask with the same `key` (the same
    token or session) while it is read: the tabs of one person reconnecting together cost one
    read. Only logins in flight are shared, never kept: a block or revocation counts at once."""
    task = _logins_in_flight.get(key)
    if task is None:
        task = _logins_in_flight[key] = asyncio.ensure_future(log_in(fn, *args))
        task.add_done_callback(lambda _: _logins_in_flight.pop(key, None))
    return await asyncio.shield(task)


async def catch_up(fn, *args):
    """Run blocking database code `fn(*args)` for an accepted socket."""
    return await asyncio.get_running_loop().run_in_executor(_catch_up_threads, _fresh, fn, args)
