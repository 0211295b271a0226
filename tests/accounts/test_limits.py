"""API rate limit (token bucket in Redis) and login throttling."""

from __future__ import annotations

import pytest

from tests.conftest import Api, token_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_buckets(alice, bob):
    """User ids repeat across test runs; start every test with full buckets."""
    from accounts.throttle import bucket_key
    from core.redis_client import shared_redis

    shared_redis().delete(bucket_key(alice.pk), bucket_key(bob.pk))


def test_api_rate_limit_gives_429_with_retry_after(settings, alice):
    settings.API_RATE_LIMIT = 5
    api = Api(token_for(alice))
    statuses = [api.get("/api/me").status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3
    blocked = api.get("/api/me")
    assert int(blocked["Retry-After"]) >= 1
    assert "Rate limit" in blocked.json()["detail"]


def test_rate_limit_is_per_user(settings, alice, bob):
    settings.API_RATE_LIMIT = 3
    a, b = Api(token_for(alice)), Api(token_for(bob))
    for _ in range(4):
        a.get("/api/me")
    assert a.get("/api/me").status_code == 429
    assert b.get("/api/me").status_code == 200


def test_login_throttled_per_username(settings, anon_api, alice):
    settings.LOGIN_RATE_LIMIT = 3
    from django.core.cache import cache

    cache.clear()
    for _ in range(3):
        assert anon_api.post("/api/auth/token", {"username": "alice", "password": "wrong-wrong"}).status_code == 401
    locked = anon_api.post("/api/auth/token", {"username": "alice", "password": "correct-horse-battery"})
    assert locked.status_code == 429
    assert locked["Retry-After"]
    cache.clear()  # the window passes
    assert (
        anon_api.post("/api/auth/token", {"username": "alice", "password": "correct-horse-battery"}).status_code == 200
    )
