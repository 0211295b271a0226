"""Limits on request rates, kept in Redis (the Django cache) so every web instance shares them.

- API requests: a token bucket per user, API_RATE_LIMIT requests a minute, bursts up to that.
- Logins: failures counted per username and per client IP over 5 minutes; past
  LOGIN_RATE_LIMIT, further attempts are refused until the window passes.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache

from core.redis_client import shared_script

LOGIN_WINDOW = 300

# KEYS[1] bucket; ARGV: capacity, refill per second, now. Returns seconds to wait (0 = allowed).
_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + (now - ts) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('EXPIRE', KEYS[1], math.ceil(capacity / rate) + 1)
return tostring(wait)
"""


def bucket_key(user_id: int) -> str:
    return f"{settings.REDIS_PREFIX}:rate:{user_id}"


def api_wait_seconds(user_id: int) -> int:
    """0 if the user may make another API request now, else seconds until they may."""
    limit = settings.API_RATE_LIMIT
    if not limit:
        return 0
    try:
        wait = float(shared_script(_BUCKET)(keys=[bucket_key(user_id)], args=[limit, limit / 60.0, time.time()]))
    except Exception:  # Redis down: do not take the API down with it
        return 0
    return math.ceil(wait) if wait > 0 else 0


def _login_keys(username: str, ip: str) -> list[str]:
    return [f"login-fail:user:{username.lower()[:150]}", f"login-fail:ip:{ip}"]


def login_wait_seconds(username: str, ip: str) -> int:
    limit = settings.LOGIN_RATE_LIMIT
    if not limit:
        return 0
    try:
        counts = cache.get_many(_login_keys(username, ip))
    except Exception:
        return 0
    return LOGIN_WINDOW if any(int(v) >= limit for v in counts.values()) else 0


def record_login_failure(username: str, ip: str) -> None:
    if not settings.LOGIN_RATE_LIMIT:
        return
    for key in _login_keys(username, ip):
        try:
            if not cache.add(key, 1, LOGIN_WINDOW):
                cache.incr(key)
        except Exception:
            pass


def client_ip(request) -> str:
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR") or "-"
