"""API_RATE_LIMIT covers every request of a signed-in user (bearer token, session cookie, page
POSTs) and, per client address, the requests no user is known for (token refresh, bad tokens)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.tokens import AccessToken

from accounts.auth import refresh_token_for
from accounts.throttle import address_bucket_key, bucket_key
from core.redis_client import shared_redis
from tests.conftest import token_for
from tests.security.conftest import logged_in

pytestmark = pytest.mark.django_db

ADDRESS = "203.0.113.7"
OTHER_ADDRESS = "203.0.113.8"


@pytest.fixture(autouse=True)
def empty_buckets(alice):
    """User ids repeat across test runs; start every test with full buckets."""
    shared_redis().delete(bucket_key(alice.pk), address_bucket_key(ADDRESS), address_bucket_key(OTHER_ADDRESS))


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def assert_refused(response, *, json: bool) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    if json:
        assert "Rate limit" in response.json()["detail"]


def test_session_cookie_api_calls_are_limited(settings, alice, alice_job):
    settings.API_RATE_LIMIT = 3
    _, result = alice_job
    client = logged_in(alice)
    path = f"/api/files/{result.id}"
    assert [client.get(path).status_code for _ in range(3)] == [200] * 3
    assert_refused(client.get(path), json=True)


def test_bearer_and_session_calls_share_one_bucket(settings, alice, alice_job):
    settings.API_RATE_LIMIT = 3
    _, result = alice_job
    token_client = Client(**bearer(token_for(alice)))
    assert [token_client.get("/api/me").status_code for _ in range(3)] == [200] * 3
    assert_refused(logged_in(alice).get(f"/api/files/{result.id}"), json=True)


def test_page_posts_of_a_signed_in_user_are_limited(settings, alice, tiny):
    settings.API_RATE_LIMIT = 2
    client = logged_in(alice)
    form = reverse("job_submit", args=["tiny"])
    for _ in range(2):
        assert client.post(form, {"width": "32"}).status_code != 429
    refused = client.post(form, {"width": "32"})
    assert_refused(refused, json=False)
    assert "Too many requests" in refused.content.decode()
    assert client.get(reverse("catalogue")).status_code == 200  # reading pages is not counted


def test_htmx_post_over_the_limit_reloads_the_page_to_say_why(settings, alice, tiny):
    settings.API_RATE_LIMIT = 1
    client = logged_in(alice)
    form = reverse("job_submit", args=["tiny"])
    assert client.post(form, {"width": "32"}, HTTP_HX_REQUEST="true").status_code != 429
    refused = client.post(form, {"width": "32"}, HTTP_HX_REQUEST="true")
    assert_refused(refused, json=False)
    assert refused["HX-Refresh"] == "true"  # htmx swaps no 4xx answer: reload the page instead
    assert "Too many requests" in client.get(reverse("catalogue")).content.decode()


def test_page_posts_share_the_bucket_with_api_calls(settings, alice, tiny):
    settings.API_RATE_LIMIT = 2
    token_client = Client(**bearer(token_for(alice)))
    assert [token_client.get("/api/me").status_code for _ in range(2)] == [200] * 2
    assert_refused(logged_in(alice).post(reverse("job_submit", args=["tiny"]), {"width": "32"}), json=False)


def test_refresh_is_limited_per_address(settings, alice):
    settings.API_RATE_LIMIT = 3
    attacker, other = Client(REMOTE_ADDR=ADDRESS), Client(REMOTE_ADDR=OTHER_ADDRESS)

    def refresh(client, token="not-a-token"):
        return client.post("/api/auth/refresh", {"refresh": token}, content_type="application/json")

    assert [refresh(attacker).status_code for _ in range(3)] == [401] * 3
    assert_refused(refresh(attacker), json=True)
    assert refresh(other).status_code == 401  # another address has its own bucket
    assert_refused(refresh(attacker, str(refresh_token_for(alice))), json=True)  # even a good one


def test_invalid_and_expired_tokens_are_limited_per_address(settings, alice):
    settings.API_RATE_LIMIT = 3
    expired = AccessToken.for_user(alice)
    expired.set_exp(lifetime=-expired.lifetime - expired.lifetime)
    client = Client(REMOTE_ADDR=ADDRESS)
    statuses = [client.get("/api/me", **bearer(token)).status_code for token in ("garbage", str(expired), "x.y.z")]
    assert statuses == [401] * 3
    assert_refused(client.get("/api/me", **bearer("garbage")), json=True)
    assert Client(REMOTE_ADDR=OTHER_ADDRESS).get("/api/me", **bearer("garbage")).status_code == 401
    # alice's own bucket is untouched: her valid token still works from the busy address
    assert client.get("/api/me", **bearer(token_for(alice))).status_code == 200


def test_zero_turns_every_limit_off(settings, alice, alice_job, tiny):
    settings.API_RATE_LIMIT = 0
    _, result = alice_job
    session = logged_in(alice)
    anonymous = Client(REMOTE_ADDR=ADDRESS)
    for _ in range(5):
        assert session.get(f"/api/files/{result.id}").status_code == 200
        assert session.post(reverse("job_submit", args=["tiny"]), {"width": "32"}).status_code != 429
        assert anonymous.post("/api/auth/refresh", {"refresh": "x"}, content_type="application/json").status_code == 401
        assert anonymous.get("/api/me", **bearer("garbage")).status_code == 401
