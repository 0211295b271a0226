"""(c) Blocking a user cuts them off within one request: an access token issued before the
block, a logged-in session, a refresh token, a new login and an open WebSocket."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from tests.conftest import PASSWORD, Api, communicator, token_for
from tests.security.conftest import logged_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def blocked_alice(alice, admin_api):
    """alice with a token pair and a session from before the block, blocked through the admin API."""
    refresh = RefreshToken.for_user(alice)
    api = Api(str(refresh.access_token))
    client = logged_in(alice)
    assert api.get("/api/me").status_code == 200 and client.get("/jobs/").status_code == 200
    response = admin_api.patch(f"/api/admin/users/{alice.pk}", {"is_blocked": True, "blocked_reason": "abuse"})
    assert response.status_code == 200 and response.json()["is_blocked"]
    return {"api": api, "refresh": str(refresh), "client": client}


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/api/me"),
        ("get", "/api/jobs"),
        ("get", "/api/workflows"),
        ("post", "/api/jobs"),
        ("post", "/api/uploads"),
        ("post", "/api/auth/logout"),
    ],
)
def test_old_access_token_is_refused_at_the_next_request(blocked_alice, method, path):
    response = getattr(blocked_alice["api"], method)(path)
    assert response.status_code == 403
    assert response.json()["detail"] == "Your account is blocked: abuse."


def test_old_session_is_logged_out_at_the_next_page(blocked_alice):
    client = blocked_alice["client"]
    response = client.get("/jobs/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert "_auth_user_id" not in client.session, "the session was ended, not just redirected"
    # and it stays out, also for the session-authenticated file API and the catalogue
    assert client.get("/").status_code == 302
    assert client.get("/api/files/00000000-0000-0000-0000-000000000000").status_code in (401, 403)


def test_session_file_api_refuses_a_blocked_user_at_once(alice, admin_user, tiny):
    """/api/files accepts a session: the block must apply there too, on the very first request."""
    from jobs.files import store_result
    from tests.factories import make_job
    from tests.security.conftest import png_bytes

    result = store_result(job=make_job(alice, tiny, status="DONE"), data=png_bytes(), source_ref="o.png")
    client = logged_in(alice)
    assert client.get(f"/api/files/{result.pk}").status_code == 200
    services.block_user(user=alice, reason="abuse")
    response = client.get(f"/api/files/{result.pk}")
    assert response.status_code in (401, 403), response.status_code


def test_refresh_token_from_before_the_block_is_refused(blocked_alice):
    response = Api().post("/api/auth/refresh", {"refresh": blocked_alice["refresh"]})
    assert response.status_code in (401, 403)
    assert "access" not in response.json()


def test_refresh_stays_refused_after_unblock(blocked_alice, alice):
    """Blocking blacklists outstanding refresh tokens: unblocking does not revive them."""
    services.unblock_user(user=alice)
    response = Api().post("/api/auth/refresh", {"refresh": blocked_alice["refresh"]})
    assert response.status_code == 401


def test_blocked_user_cannot_log_in(blocked_alice, alice):
    response = Api().post("/api/auth/token", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 403 and "blocked" in response.json()["detail"]
    from django.test import Client

    client = Client()
    page = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 200, "the login form is shown again"
    assert "_auth_user_id" not in client.session


def test_unblocked_user_can_log_in_again(blocked_alice, alice):
    services.unblock_user(user=alice)
    assert Api().post("/api/auth/token", {"username": "alice", "password": PASSWORD}).status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_open_websocket_is_closed_when_the_user_is_blocked(ws_user):
    comm = communicator(f"/ws/jobs/?token={ws_user.token}")
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "synced"  # the (empty) snapshot
    await database_sync_to_async(services.block_user)(user=ws_user, reason="abuse")
    assert await comm.receive_json_from(timeout=2) == {"type": "blocked"}
    closed = await comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4403}


@pytest.mark.django_db(transaction=True)
async def test_blocked_users_token_cannot_open_a_websocket(ws_user):
    await database_sync_to_async(services.block_user)(user=ws_user, reason="abuse")
    comm = communicator(f"/ws/jobs/?token={ws_user.token}")
    connected, code = await comm.connect()
    assert not connected and code == 4401


async def _open_socket(user):
    comm = communicator(f"/ws/jobs/?token={user.token}")
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=5))["type"] == "synced"  # the (empty) snapshot
    return comm


async def _assert_closed_as_blocked(comm):
    assert await comm.receive_json_from(timeout=2) == {"type": "blocked"}
    assert await comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4403}


@pytest.mark.django_db(transaction=True)
async def test_blocking_through_the_admin_api_closes_the_users_websocket(ws_user, admin_user):
    comm = await _open_socket(ws_user)
    admin = Api(await sync_to_async(token_for)(admin_user))
    response = await sync_to_async(admin.patch)(
        f"/api/admin/users/{ws_user.pk}", {"is_blocked": True, "blocked_reason": "abuse"}
    )
    assert response.status_code == 200
    await _assert_closed_as_blocked(comm)


@pytest.mark.django_db(transaction=True)
async def test_blocking_through_the_django_admin_action_closes_the_users_websocket(ws_user, admin_user):
    comm = await _open_socket(ws_user)
    admin = await sync_to_async(logged_in)(admin_user)
    response = await sync_to_async(admin.post)(
        "/admin/accounts/user/", {"action": "block_users", "_selected_action": [ws_user.pk]}
    )
    assert response.status_code == 302
    await _assert_closed_as_blocked(comm)
