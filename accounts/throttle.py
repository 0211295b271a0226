"""Limits on request rates, kept in Redis (the Django cache) so every web instance shares them.

- Requests of a signed-in user: a token bucket per user, API_RATE_LIMIT requests a minute, bursts
  up to that. Every API call counts (bearer token or session cookie), and so does every page POST.
- Requests no user is known for yet (token refresh, an invalid or expired token): the same figure
  per client address, in a bucket of its own.
- Logins: LOGIN_RATE_LIMIT failures in 5 minutes per (username, address) or per address
  refuse further attempts from that address, so an attacker locks out only themselves: the right
  password from another address still gets in. Against guessing spread over many addresses,
  LOGIN_USER_RATE_LIMIT failures in an hour per username refuse the username from every address
  except those it logged in from before (remembered 30 days). Refused attempts are not counted,
  so a lock ends when its window does however long the attacker goes on.
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


def address_bucket_key(ip: str) -> str:
    return f"{settings.REDIS_PREFIX}:rate:ip:{ip}"


def _wait_seconds(key: str) -> int:
    """Take one token from the bucket (one Redis call): 0 if allowed, else seconds until one is back."""
    limit = settings.API_RATE_LIMIT
    if not limit:
        return 0
    try:
        wait = float(shared_script(_BUCKET)(keys=[key], args=[limit, limit / 60.0, time.time()]))
    except Exception:  # Redis down: do not take the site down with it
        return 0
    return math.ceil(wait) if wait > 0 else 0


def api_wait_seconds(user_id: int) -> int:
    """0 if the user may make another request now, else seconds until they may."""
    return _wait_seconds(bucket_key(user_id))


def address_wait_seconds(ip: str) -> int:
    """0 if this address may make another request no user is known for, else seconds to wait."""
    return _wait_seconds(address_bucket_key(ip))


def rate_limit_message() -> str:
    return f"Rate limit: at most {settings.API_RATE_LIMIT} requests a minute."


USER_WINDOW = 3600
KNOWN_ADDRESS_SECONDS = 30 * 86400


def _login_keys(username: str, ip: str) -> dict[str, str]:
    name = username.lower()[:150]
    return {
        "pair": f"login-fail:user-ip:{name}:{ip}",
        "address": f"login-fail:ip:{ip}",
        "username": f"login-fail:user:{name}",
        "known": f"login-ok:{name}:{ip}",
    }


def login_wait_seconds(username: str, ip: str) -> int:
    """0 if this username may try to log in from this address now, else seconds to wait."""
    limit, user_limit = settings.LOGIN_RATE_LIMIT, settings.LOGIN_USER_RATE_LIMIT
    if not limit and not user_limit:
        return 0
    keys = _login_keys(username, ip)
    try:
        values = cache.get_many(list(keys.values()))
    except Exception:  # Redis down: do not take logins down with it
        return 0

    def count(name: str) -> int:
        return int(values.get(keys[name]) or 0)

    if limit and (count("pair") >= limit or count("address") >= limit):
        return LOGIN_WINDOW
    if user_limit and count("username") >= user_limit and not values.get(keys["known"]):
        return USER_WINDOW
    return 0


def record_login_failure(username: str, ip: str) -> None:
    """Count a wrong password; attempts the throttle refused are not counted (see the module doc)."""
    if login_wait_seconds(username, ip):
        return
    keys = _login_keys(username, ip)
    windows = []
    if settings.LOGIN_RATE_LIMIT:
        windows += [(keys["pair"], LOGIN_WINDOW), (keys["address"], LOGIN_WINDOW)]
    if settings.LOGIN_USER_RATE_LIMIT:
        windows.append((keys["username"], USER_WINDOW))
    for key, window in windows:
        try:
            if not cache.add(key, 1, window):
                cache.incr(key)
        except Exception:
            pass


def record_login_success(username: str, ip: str) -> None:
    """Remember the address, which stays open when the username is under distributed attack."""
    if not settings.LOGIN_USER_RATE_LIMIT:
        return
    try:
        cache.set(_login_keys(username, ip)["known"], 1, KNOWN_ADDRESS_SECONDS)
    except Exception:
        pass


def client_ip(request) -> str:
    if request is None:
        return "-"
    return request.META.get("REMOTE_ADDR") or "-"
