"""A password change, a block and the reuse of a rotated refresh token revoke every token of
the user at once (access tokens and WebSockets too); a logout revokes only the caller's own."""

from __future__ import annotations

import jwt
import pytest
from channels.db import database_sync_to_async
from django.test import Client

from tests.conftest import PASSWORD, Api, communicator

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "another-long-passphrase-7"


def log_in(username: str = "alice", password: str = PASSWORD) -> dict:
    response = Api().post("/api/auth/token", {"username": username, "password": password})
    assert response.status_code == 200, response.content
    return response.json()


def rotate(refresh: str):
    return Api().post("/api/auth/refresh", {"refresh": refresh})


def assert_revoked(pair: dict) -> None:
    assert Api(pair["access"]).get("/api/me").status_code == 401, "the access token still works"
    assert rotate(pair["refresh"]).status_code == 401, "the refresh token still rotates"


def test_admin_password_reset_revokes_the_users_tokens(admin_api, alice):
    pair = log_in()
    response = admin_api.patch(f"/api/admin/users/{alice.pk}", {"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert_revoked(pair)
    assert Api(log_in(password=NEW_PASSWORD)["access"]).get("/api/me").status_code == 200


def test_password_change_through_django_admin_revokes_the_users_tokens(admin_user, alice):
    pair = log_in()
    admin = Client()
    admin.force_login(admin_user)
    response = admin.post(
        f"/admin/accounts/user/{alice.pk}/password/",
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content
    assert_revoked(pair)


def test_the_users_own_password_change_revokes_their_tokens(alice):
    pair = log_in()
    alice.set_password(NEW_PASSWORD)
    alice.save()
    assert_revoked(pair)


def test_a_password_hash_upgrade_is_not_a_password_change(alice):
    pair = log_in()
    alice.refresh_from_db()
    alice.set_password(PASSWORD)
    alice._password = None  # what Django's check_password does when it re-hashes on login
    alice.save(update_fields=["password"])
    assert Api(pair["access"]).get("/api/me").status_code == 200


def test_unrelated_saves_keep_the_tokens(admin_api, alice):
    pair = log_in()
    assert admin_api.patch(f"/api/admin/users/{alice.pk}", {"priority": 3}).status_code == 200
    assert Api(pair["access"]).get("/api/me").status_code == 200
    assert rotate(pair["refresh"]).status_code == 200


def test_tokens_revoked_by_a_block_stay_revoked_after_unblock(admin_api, alice):
    pair = log_in()
    assert admin_api.patch(f"/api/admin/users/{alice.pk}", {"is_blocked": True}).status_code == 200
    assert admin_api.patch(f"/api/admin/users/{alice.pk}", {"is_blocked": False}).status_code == 200
    assert_revoked(pair)
    assert Api(log_in()["access"]).get("/api/me").status_code == 200


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(alice):
    pair = log_in()
    rotated = rotate(pair["refresh"])
    assert rotated.status_code == 200
    assert rotate(pair["refresh"]).status_code == 401, "the reuse itself is refused"
    assert_revoked(rotated.json())
    assert Api(pair["access"]).get("/api/me").status_code == 401
    assert Api(log_in()["access"]).get("/api/me").status_code == 200, "logging in again works"


def test_a_forged_reuse_revokes_nothing(alice):
    """Only a genuine token of ours can trigger the revocation: a re-signed copy cannot."""
    pair = log_in()
    rotated = rotate(pair["refresh"]).json()
    claims = jwt.decode(pair["refresh"], options={"verify_signature": False})
    forged = jwt.encode(claims, "not-the-secret-key-" * 3, algorithm="HS256")
    assert rotate(forged).status_code == 401
    assert Api(rotated["access"]).get("/api/me").status_code == 200


def test_logout_revokes_only_the_callers_own_refresh_token(alice):
    laptop, phone = log_in(), log_in()
    assert Api(laptop["access"]).post("/api/auth/logout", {"refresh": laptop["refresh"]}).status_code == 204
    assert Api(phone["access"]).get("/api/me").status_code == 200
    assert rotate(phone["refresh"]).status_code == 200
    # Presenting a logged-out refresh token is a reuse like any other (the honest client dropped it).
    assert rotate(laptop["refresh"]).status_code == 401


def test_logout_refuses_another_users_refresh_token(alice, bob):
    alices, bobs = log_in("alice"), log_in("bob")
    response = Api(alices["access"]).post("/api/auth/logout", {"refresh": bobs["refresh"]})
    assert response.status_code == 401
    assert rotate(bobs["refresh"]).status_code == 200, "bob is still logged in"


@pytest.mark.django_db(transaction=True)
async def test_an_access_token_from_before_a_password_change_cannot_open_a_websocket(ws_user):
    ws_user.set_password(NEW_PASSWORD)
    await database_sync_to_async(ws_user.save)()
    comm = communicator(f"/ws/jobs/?token={ws_user.token}")
    connected, code = await comm.connect()
    assert not connected and code == 4401
