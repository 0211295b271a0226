"""Tokens, rotation, logout, blocked users, and the JSON error shape of the API."""

from __future__ import annotations

import time

import pytest
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from tests.conftest import PASSWORD, Api, token_for

pytestmark = pytest.mark.django_db


def login(api: Api, username: str, password: str = PASSWORD):
    return api.post("/api/auth/token", {"username": username, "password": password})


def test_token_issue_gives_working_access_token(anon_api, alice):
    response = login(anon_api, "alice")
    assert response.status_code == 200
    pair = response.json()
    me = Api(pair["access"]).get("/api/me")
    assert me.status_code == 200
    assert me.json()["username"] == "alice"
    assert me.json()["limits"]["max_queued_jobs"] > 0


def test_wrong_password_is_401_with_detail(anon_api, alice):
    response = login(anon_api, "alice", "nope-nope-nope")
    assert response.status_code == 401
    assert "Wrong username or password" in response.json()["detail"]


def test_refresh_rotates_and_reuse_is_rejected(anon_api, alice):
    pair = login(anon_api, "alice").json()
    first = anon_api.post("/api/auth/refresh", {"refresh": pair["refresh"]})
    assert first.status_code == 200
    assert first.json()["refresh"] != pair["refresh"]
    reused = anon_api.post("/api/auth/refresh", {"refresh": pair["refresh"]})
    assert reused.status_code == 401
    assert "blacklisted" in reused.json()["detail"]
    # A reuse means a copy leaked: the new refresh token is revoked too.
    assert anon_api.post("/api/auth/refresh", {"refresh": first.json()["refresh"]}).status_code == 401


def test_logout_blacklists_the_refresh_token(anon_api, alice):
    pair = login(anon_api, "alice").json()
    api = Api(pair["access"])
    assert api.post("/api/auth/logout", {"refresh": pair["refresh"]}).status_code == 204
    assert anon_api.post("/api/auth/refresh", {"refresh": pair["refresh"]}).status_code == 401


@pytest.mark.parametrize(
    "make_token",
    [
        lambda user: "garbage",
        lambda user: token_for(user)[:-4] + "AAAA",  # wrong signature
        lambda user: str(RefreshToken.for_user(user)),  # refresh used as access: wrong type
        lambda user: _expired_access(user),
        lambda user: _access_naming("not-a-number"),  # signed by us, but names no user id
        lambda user: _access_naming(10**9),  # a user id that does not exist
    ],
)
def test_bad_tokens_are_401(alice, make_token):
    response = Api(make_token(alice)).get("/api/me")
    assert response.status_code == 401
    assert response.json()["detail"]


def _access_naming(user_id) -> str:
    token = AccessToken()
    token["user_id"] = user_id
    return str(token)


def _expired_access(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-__import__("datetime").timedelta(seconds=1))
    return str(token)


def test_no_token_is_401(anon_api):
    assert anon_api.get("/api/me").status_code == 401


def test_blocked_user_gets_403_with_reason_everywhere(anon_api, alice, admin_api):
    pair = login(anon_api, "alice").json()
    old_access = Api(pair["access"])
    assert old_access.get("/api/me").status_code == 200
    blocked = admin_api.patch(f"/api/admin/users/{alice.pk}", {"is_blocked": True, "blocked_reason": "spamming"})
    assert blocked.status_code == 200
    for response in (
        login(anon_api, "alice"),
        anon_api.post("/api/auth/refresh", {"refresh": pair["refresh"]}),
        old_access.get("/api/me"),
    ):
        assert response.status_code in (401, 403)
        if response.status_code == 403:
            assert "spamming" in response.json()["detail"]
    assert login(anon_api, "alice").status_code == 403
    assert "spamming" in old_access.get("/api/me").json()["detail"]


def test_blocked_user_refresh_is_403_with_reason(anon_api, alice):
    pair = login(anon_api, "alice").json()
    alice.is_blocked, alice.blocked_reason = True, "unpaid invoice"
    alice.save()
    response = anon_api.post("/api/auth/refresh", {"refresh": pair["refresh"]})
    assert response.status_code == 403
    assert "unpaid invoice" in response.json()["detail"]


def test_password_is_stored_with_bcrypt(alice):
    assert alice.password.startswith("bcrypt_sha256$")


def test_user_cannot_use_admin_endpoints(alice_api, alice):
    for method, path in [
        ("get", "/api/admin/users"),
        ("post", "/api/admin/users"),
        ("get", f"/api/admin/users/{alice.pk}"),
        ("delete", f"/api/admin/users/{alice.pk}"),
        ("get", "/api/admin/nodes"),
        ("get", "/api/admin/workflows"),
        ("get", "/api/admin/jobs"),
        ("get", "/api/admin/stats"),
    ]:
        response = getattr(alice_api, method)(path)
        assert response.status_code == 403, (method, path, response.status_code)
        assert response.json()["detail"] == "Only admins may do this."


def test_admin_creates_user_and_duplicate_is_409(admin_api):
    body = {"username": "carol", "password": "a-long-enough-pass", "role": "USER", "daily_job_limit": 5}
    created = admin_api.post("/api/admin/users", body)
    assert created.status_code == 201
    assert created.json()["daily_job_limit"] == 5
    duplicate = admin_api.post("/api/admin/users", {**body, "username": "Carol"})
    assert duplicate.status_code == 409
    assert "username" in duplicate.json()["detail"]


def test_weak_password_is_400_naming_the_rule(admin_api):
    response = admin_api.post("/api/admin/users", {"username": "dave", "password": "12345678"})
    assert response.status_code == 400
    body = response.json()
    assert body["detail"].startswith("password:")
    assert "common" in body["detail"] or "numeric" in body["detail"]


def test_admin_lists_searches_patches_and_deletes_users(admin_api, alice, bob):
    listing = admin_api.get("/api/admin/users", search="ali")
    assert [u["username"] for u in listing.json()["items"]] == ["alice"]
    patched = admin_api.patch(f"/api/admin/users/{bob.pk}", {"role": "ADMIN", "max_concurrent_jobs": 7})
    assert patched.json()["role"] == "ADMIN" and patched.json()["max_concurrent_jobs"] == 7
    bob.refresh_from_db()
    assert bob.is_staff
    assert admin_api.delete(f"/api/admin/users/{alice.pk}").status_code == 204
    assert admin_api.get(f"/api/admin/users/{alice.pk}").status_code == 404


def test_admin_resets_a_password(admin_api, anon_api, alice):
    assert admin_api.patch(f"/api/admin/users/{alice.pk}", {"password": "brand-new-secret-9"}).status_code == 200
    assert login(anon_api, "alice", "brand-new-secret-9").status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2", b"\xff\xfe"])
def test_malformed_json_is_4xx_with_detail(anon_api, body):
    response = anon_api.post_raw("/api/auth/token", body)
    assert response.status_code in (400, 422)
    assert "detail" in response.json()


def test_validation_errors_name_the_field(admin_api):
    response = admin_api.post("/api/admin/users", {"username": "x", "password": "long-enough-pw", "priority": 0})
    assert response.status_code == 422
    assert "priority" in response.json()["detail"]


def test_unknown_api_route_and_wrong_method_are_json(admin_api):
    missing = admin_api.get("/api/no-such-thing")
    assert missing.status_code == 404 and missing.json()["detail"]
    wrong = admin_api.client.put("/api/auth/token", "{}", content_type="application/json")
    assert wrong.status_code == 405 and wrong.json()["detail"]


def test_openapi_docs_are_served(anon_api):
    assert anon_api.client.get("/api/docs").status_code == 200
    schema = anon_api.client.get("/api/openapi.json").json()
    assert "/api/jobs" in schema["paths"] and "/api/auth/token" in schema["paths"]


def test_access_tokens_expire(settings, alice):
    assert time.time() < AccessToken(token_for(alice))["exp"] <= time.time() + 16 * 60


def test_production_hashes_with_full_cost_bcrypt():
    from comfyportal import settings as production

    assert production.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.BCryptSHA256PasswordHasher"


def test_nul_characters_are_400_not_500(alice_api):
    response = alice_api.post_raw("/api/jobs", '{"workflow": "\\u0000x", "inputs": {}}')
    assert response.status_code == 400 and "NUL" in response.json()["detail"]
    assert alice_api.get("/api/jobs", workflow="a\x00b").status_code == 400
