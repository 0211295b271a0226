"""(g) Only a valid, unexpired, untampered access token opens the API: expired, tampered,
re-signed, unsigned and refresh tokens all get 401 with the JSON error shape."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.conftest import Api

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    ("get", "/api/me"),
    ("get", "/api/jobs"),
    ("get", "/api/workflows"),
    ("post", "/api/jobs"),
    ("post", "/api/uploads"),
    ("get", "/api/files/00000000-0000-0000-0000-000000000000"),
    ("get", "/api/admin/users"),
    ("get", "/api/admin/stats"),
    ("post", "/api/auth/logout"),
]


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(user) -> dict[str, str]:
    good = AccessToken.for_user(user)
    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=-timedelta(seconds=1))
    header, payload, signature = str(good).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    other_user = {**claims, "user_id": str(int(claims["user_id"]) + 1000)}
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return {
        "expired": str(expired),
        "tampered signature": f"{header}.{payload}.{flipped}",
        "tampered payload": f"{header}.{_b64(other_user)}.{signature}",
        "refresh used as access": str(RefreshToken.for_user(user)),
        "signed with another key": jwt.encode(claims, "not-the-secret-key-" * 3, algorithm="HS256"),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "HS512 with our key": jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512"),
        "truncated": str(good)[:-10],
        "garbage": "x" * 40,
        "empty claims": jwt.encode({}, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256"),
    }


KINDS = [
    "expired",
    "tampered signature",
    "tampered payload",
    "refresh used as access",
    "signed with another key",
    "alg none",
    "HS512 with our key",
    "truncated",
    "garbage",
    "empty claims",
]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_tokens_get_401_on_every_kind_of_endpoint(admin_user, kind):
    """admin_user's tokens: a 401 here cannot be a 403 for want of rights."""
    api = Api(bad_tokens(admin_user)[kind])
    for method, path in ENDPOINTS:
        response = getattr(api, method)(path)
        assert response.status_code == 401, (kind, method, path, response.status_code, response.content)
        assert response.json() == {"detail": "Authentication required: send a valid access token."}


def test_the_good_token_works(admin_api):
    assert admin_api.get("/api/me").status_code == 200
    assert admin_api.get("/api/admin/stats").status_code == 200


@pytest.mark.parametrize("header", ["Token {t}", "bearer{t}", "Basic {t}", "Bearer {t} extra", "{t}"])
def test_malformed_authorization_headers_get_401(admin_user, header):
    token = str(AccessToken.for_user(admin_user))
    response = Api().client.get("/api/me", HTTP_AUTHORIZATION=header.format(t=token))
    assert response.status_code == 401


@pytest.mark.parametrize("kind", ["expired", "tampered signature", "signed with another key", "alg none", "garbage"])
def test_bad_refresh_tokens_get_401(alice, kind):
    bad = bad_tokens(alice)
    refresh = RefreshToken.for_user(alice)
    if kind == "expired":
        refresh.set_exp(lifetime=-timedelta(seconds=1))
        value = str(refresh)
    else:
        value = bad[kind]
    response = Api().post("/api/auth/refresh", {"refresh": value})
    assert response.status_code == 401, (kind, response.content)
    assert "access" not in response.json()


def test_access_token_used_as_refresh_gets_401(alice):
    response = Api().post("/api/auth/refresh", {"refresh": str(AccessToken.for_user(alice))})
    assert response.status_code == 401


def test_refresh_token_rotates_and_the_old_one_dies(alice):
    refresh = str(RefreshToken.for_user(alice))
    first = Api().post("/api/auth/refresh", {"refresh": refresh})
    assert first.status_code == 200
    second = Api().post("/api/auth/refresh", {"refresh": first.json()["refresh"]})
    assert second.status_code == 200, "the new refresh token rotates in turn"
    assert Api().post("/api/auth/refresh", {"refresh": refresh}).status_code == 401, (
        "used refresh tokens are blacklisted"
    )


def test_logout_revokes_the_refresh_token(alice_api, alice):
    refresh = str(RefreshToken.for_user(alice))
    assert alice_api.post("/api/auth/logout", {"refresh": refresh}).status_code == 204
    assert Api().post("/api/auth/refresh", {"refresh": refresh}).status_code == 401


def test_deleted_users_token_gets_401(admin_api, bob, bob_api):
    assert bob_api.get("/api/me").status_code == 200
    assert admin_api.delete(f"/api/admin/users/{bob.pk}").status_code == 204
    assert bob_api.get("/api/me").status_code == 401


def test_deactivated_users_token_gets_401(bob, bob_api):
    bob.is_active = False
    bob.save()
    assert bob_api.get("/api/me").status_code == 401


def test_a_token_already_checked_is_not_decoded_again(alice, monkeypatch):
    from accounts import auth

    api = Api(str(AccessToken.for_user(alice)))
    assert api.get("/api/me").status_code == 200
    decoded = []
    monkeypatch.setattr(auth, "AccessToken", lambda raw: decoded.append(raw))
    assert api.get("/api/me").status_code == 200
    assert decoded == []


def test_a_token_already_checked_still_expires(alice):
    token = AccessToken.for_user(alice)
    token.set_exp(lifetime=timedelta(seconds=1))
    api = Api(str(token))
    assert api.get("/api/me").status_code == 200
    time.sleep(max(0.0, token["exp"] - time.time()) + 0.05)
    assert api.get("/api/me").status_code == 401


def test_a_token_already_checked_is_still_revoked_with_its_users_tokens(alice, alice_api):
    assert alice_api.get("/api/me").status_code == 200
    alice.token_version += 1
    alice.save()
    assert alice_api.get("/api/me").status_code == 401
