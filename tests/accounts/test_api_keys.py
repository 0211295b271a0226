"""API keys: shown once and kept hashed, scopes, expiry, last used, revocation, the WebSocket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD, Api, communicator, make_user, token_for

pytestmark = pytest.mark.django_db
ALL = ["jobs:read", "jobs:write", "files"]
NOT_AUTHENTICATED = {"detail": "Authentication required: send a valid access token."}


def new_key(api: Api, scopes=ALL, **extra) -> dict:
    response = api.post("/api/keys", {"name": "ci", "scopes": scopes, **extra})
    assert response.status_code == 201, response.content
    return response.json()


def test_a_key_is_shown_once_kept_hashed_and_works_like_a_token(alice_api, alice):
    from accounts.models import ApiKey

    created = new_key(alice_api, expires_in_days=30)
    raw = created["key"]
    assert raw.startswith(created["prefix"] + "_") and created["prefix"].startswith("cpk_")
    assert created["state"] == "active" and created["last_used_at"] is None
    row = ApiKey.objects.get(pk=created["id"])
    assert raw not in (row.hashed_key, row.prefix) and len(row.hashed_key) == 64
    assert abs((row.expires_at - timezone.now()) - timedelta(days=30)) < timedelta(minutes=1)

    listed = alice_api.get("/api/keys").json()
    assert [k["prefix"] for k in listed] == [created["prefix"]]
    assert "key" not in listed[0] and raw not in str(listed)

    program = Api(raw)
    me = program.get("/api/me")
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert program.get("/api/jobs").status_code == 200
    assert alice_api.get("/api/keys").json()[0]["last_used_at"] is not None


@pytest.mark.parametrize(
    ("scopes", "method", "path", "needed"),
    [
        (["jobs:read"], "post", "/api/jobs", "jobs:write"),
        (["jobs:read"], "post", "/api/uploads", "files"),
        (["jobs:write"], "get", "/api/jobs", "jobs:read"),
        (["jobs:read", "jobs:write"], "get", "/api/files/00000000-0000-0000-0000-000000000000", "files"),
    ],
)
def test_a_missing_scope_is_refused_with_403(alice_api, scopes, method, path, needed):
    program = Api(new_key(alice_api, scopes)["key"])
    response = getattr(program, method)(path)
    assert response.status_code == 403
    assert response.json() == {"detail": f"scope: this API key lacks the '{needed}' scope."}


def test_wrong_revoked_and_expired_keys_get_the_same_401(alice_api, alice):
    from accounts.models import ApiKey

    good = new_key(alice_api)
    revoked = new_key(alice_api)
    expired = new_key(alice_api)
    assert alice_api.delete(f"/api/keys/{revoked['id']}").status_code == 204
    ApiKey.objects.filter(pk=expired["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    wrong_secret = good["prefix"] + "_" + "x" * 32
    for raw in (revoked["key"], expired["key"], wrong_secret, "cpk_000000000000_nothing", "cpk_", good["key"] + "x"):
        response = Api(raw).get("/api/me")
        assert (response.status_code, response.json()) == (401, NOT_AUTHENTICATED), raw
    assert Api(good["key"]).get("/api/me").status_code == 200
    states = {k["id"]: k["state"] for k in alice_api.get("/api/keys").json()}
    assert states == {good["id"]: "active", revoked["id"]: "revoked", expired["id"]: "expired"}


def test_revoking_on_the_site_stops_the_key_at_once(alice):
    """Nothing about a key is cached: a revoke in any process is seen by the next request in every one."""
    site = Client()
    site.login(username="alice", password=PASSWORD)
    page = site.post("/keys/", {"name": "deploy", "scopes": ["jobs:read"], "expires_in_days": ""})
    assert page.status_code == 200
    raw = page.context["created_key"]
    assert raw in page.content.decode()
    program = Api(raw)
    assert program.get("/api/me").status_code == 200
    # The list page never shows the key again.
    assert raw not in site.get("/keys/").content.decode()

    key_id = alice.api_keys.get().pk
    assert site.post("/keys/", {"revoke": key_id}).status_code == 302
    assert program.get("/api/me").status_code == 401


def test_blocking_the_user_stops_their_keys(alice_api, alice):
    program = Api(new_key(alice_api)["key"])
    assert program.get("/api/me").status_code == 200
    alice.is_blocked, alice.blocked_reason = True, "unpaid"
    alice.save()
    response = program.get("/api/me")
    assert response.status_code == 403 and "blocked" in response.json()["detail"]
    alice.is_active, alice.is_blocked = False, False
    alice.save()
    assert program.get("/api/me").status_code == 401


def test_only_admins_create_admin_keys_and_admin_calls_need_the_scope(alice_api, admin_api):
    refused = alice_api.post("/api/keys", {"name": "x", "scopes": ["admin"]})
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]

    with_admin = Api(new_key(admin_api, ["admin", "jobs:read"])["key"])
    without_admin = Api(new_key(admin_api, ALL)["key"])
    assert with_admin.get("/api/admin/users").status_code == 200
    response = without_admin.get("/api/admin/users")
    assert response.status_code == 403 and "'admin' scope" in response.json()["detail"]
    alices_key = Api(new_key(alice_api, ALL)["key"])
    assert alices_key.get("/api/admin/users").status_code == 403


def test_keys_cannot_manage_keys(alice_api):
    program = Api(new_key(alice_api)["key"])
    for response in (program.get("/api/keys"), program.post("/api/keys", {"name": "more", "scopes": ["files"]})):
        assert response.status_code == 403 and "cannot manage API keys" in response.json()["detail"]


def test_bad_key_requests_name_the_field(alice_api, bob_api):
    assert alice_api.post("/api/keys", {"name": "x", "scopes": []}).status_code == 422
    assert alice_api.post("/api/keys", {"name": "x", "scopes": ["root"]}).status_code == 422
    assert alice_api.post("/api/keys", {"name": "x", "scopes": ["files"], "expires_in_days": 0}).status_code == 422
    key = new_key(alice_api)
    assert bob_api.delete(f"/api/keys/{key['id']}").status_code == 404  # not bob's: no hint it exists
    assert Api(key["key"]).get("/api/me").status_code == 200


def test_a_key_shares_its_users_rate_limit(settings, alice_api, alice):
    from accounts.throttle import bucket_key
    from core.redis_client import shared_redis

    program = Api(new_key(alice_api)["key"])
    shared_redis().delete(bucket_key(alice.pk))
    settings.API_RATE_LIMIT = 3
    statuses = [program.get("/api/me").status_code, alice_api.get("/api/me").status_code]
    statuses += [program.get("/api/me").status_code, program.get("/api/me").status_code]
    assert statuses == [200, 200, 200, 429]
    shared_redis().delete(bucket_key(alice.pk))


@pytest.fixture
def socket_keys(transactional_db):
    alice = make_user("alice")
    api = Api(token_for(alice))
    return new_key(api, ["jobs:read"]), new_key(api, ["files"]), api


@pytest.mark.django_db(transaction=True)
async def test_a_key_opens_the_websocket_until_it_is_revoked(socket_keys):
    from asgiref.sync import sync_to_async

    readable, files_only, api = socket_keys
    refused = communicator(f"/ws/jobs/?token={files_only['key']}")
    assert (await refused.connect()) == (False, 4401)
    await refused.disconnect()

    comm = communicator(f"/ws/jobs/?token={readable['key']}")
    connected, _ = await comm.connect()
    assert connected
    assert (await comm.receive_json_from(timeout=2))["type"] == "synced"  # the (empty) snapshot
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=2)) == {"type": "pong"}
    await sync_to_async(lambda: api.delete(f"/api/keys/{readable['id']}"))()
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_output(timeout=2))["type"] == "websocket.close"
    await comm.disconnect()
