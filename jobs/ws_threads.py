"""Threads for the database work of /ws/jobs/ connects (the token's user, the catch-up).

Apart from the one thread of Django's sync code that channels' `database_sync_to_async`
uses: a thousand tabs reconnecting after a restart do not queue behind each other's hops
through that one thread, nor behind pages.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

_threads = ThreadPoolExecutor(max_workers=settings.WS_CATCH_UP_THREADS, thread_name_prefix="ws-db")


def _fresh(fn, args):
    close_old_connections()
    try:
        return fn(*args)
    finally:
        close_old_connections()  # hands the connection back to the pool (PostgreSQL)


async def run(fn, *args):
    """Run blocking database code `fn(*args)` on the /ws/jobs/ threads."""
    return await asyncio.get_running_loop().run_in_executor(_threads, _fresh, fn, args)
