"""One Redis client per process for code that runs in request threads.

Django's cache object lives per request context, and under ASGI every request runs in a
thread of its own: going through `cache` there opens a new connection (and pool) per
request. This client's pool is shared by all threads of the process.
"""

from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=1)
def shared_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2)


@lru_cache
def shared_script(source: str):
    """A Lua script on the shared client, registered once (called by EVALSHA afterwards)."""
    return shared_redis().register_script(source)
