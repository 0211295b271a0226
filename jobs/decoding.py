"""Decoding uploads off the request threads: a few at a time, and a few per user.

A PNG of 165 KB can declare 6300×6300 pixels and take seconds to decode, normalize and
thumbnail. Run on a request thread, four of them left every other user waiting. Here the work
runs in UPLOAD_DECODE_THREADS threads of its own; the request waits for it without holding a
request slot (core/offload.py), so the slots keep serving everyone else. Admission is bounded
per web instance: at most UPLOAD_DECODES_PER_USER uploads of one user and UPLOAD_DECODE_QUEUE in
all being decoded or waiting; beyond that the upload is refused at once with a 429 (the client
retries after Retry-After), so no user's uploads can make another's wait long.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.conf import settings
from django.utils.translation import gettext as _

from core import offload
from core.errors import TooManyRequests

T = TypeVar("T")
DECODE_NICENESS = 10  # added to the process's nice value, for the decoding threads only

_lock = threading.Lock()
_per_user: Counter = Counter()
_executor: ThreadPoolExecutor | None = None


def run(user_id, work: Callable[..., T], *args) -> T:
    """``work(*args)`` in a decoding thread, admitted for `user_id` or refused with 429."""
    _admit(user_id)
    try:
        return offload.wait(_decoder().submit(work, *args))
    finally:
        _leave(user_id)


def run_unbounded(work: Callable[..., T], *args) -> T:
    """``work(*args)`` in a decoding thread without admission: for work on files already
    accepted (a thumbnail asked for by a page), which a 429 would only break."""
    return offload.wait(_decoder().submit(work, *args))


def in_flight() -> int:
    """Uploads being decoded or waiting for it in this process."""
    with _lock:
        return sum(_per_user.values())


def _admit(user_id) -> None:
    with _lock:
        mine, everyone = _per_user[user_id], sum(_per_user.values())
        if mine >= settings.UPLOAD_DECODES_PER_USER:
            detail = _(
                "file: %(count)d of your uploads are being processed (at most %(limit)d at once); "
                "send this one when they are done."
            ) % {"count": mine, "limit": settings.UPLOAD_DECODES_PER_USER}
        elif everyone >= settings.UPLOAD_DECODE_QUEUE:
            detail = _("file: the server is processing many uploads; send this one again in a few seconds.")
        else:
            _per_user[user_id] += 1
            return
    raise TooManyRequests(detail, errors={"file": detail}, headers={"Retry-After": "2"})


def _leave(user_id) -> None:
    with _lock:
        _per_user[user_id] -= 1
        if _per_user[user_id] <= 0:
            del _per_user[user_id]


def _decoder() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=max(1, settings.UPLOAD_DECODE_THREADS), thread_name_prefix="decode", initializer=_yield_cpu
            )
        return _executor


def _yield_cpu() -> None:
    """Run this thread at a lower CPU priority (Linux sets it per thread): when the cores are
    busy, requests go first and only the uploads wait. (Pillow lets go of the interpreter
    while it decodes, so this thread rarely holds anything requests need.)"""
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + DECODE_NICENESS))
    except (AttributeError, OSError):  # not Linux, or not allowed: the same priority as requests
        pass
