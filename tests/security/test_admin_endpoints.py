"""(b) A USER gets 403 on every admin endpoint — every path under /api/admin/ in the OpenAPI
schema, every method — and nothing changes; anonymous callers get 401."""

from __future__ import annotations

import re

import pytest

from accounts.models import User
from jobs.models import Job
from nodes.models import ComfyNode
from tests.factories import make_job, make_node
from workflows.models import Workflow

pytestmark = pytest.mark.django_db


def admin_operations() -> list[tuple[str, str]]:
    """(METHOD, path template) of every operation under /api/admin/, read from the live schema."""
    from django.test import Client
    from django.test.utils import override_settings

    with override_settings(ALLOWED_HOSTS=["testserver"]):
        schema = Client().get("/api/openapi.json").json()
    operations = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        if path.startswith("/api/admin/")
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert len(operations) >= 19, operations  # users 5, nodes 6, workflows 6, jobs, stats
    return sorted(operations)


ADMIN_OPERATIONS = admin_operations()


@pytest.fixture
def rows(alice, bob, tiny):
    node = make_node("gpu-1")
    job = make_job(bob, tiny, status="QUEUED")
    return {"user_id": bob.pk, "node_id": node.pk, "workflow_id": tiny.pk, "job": job}


def fill(path: str, rows: dict) -> str:
    """Path parameters point at real rows, so a 403 is not a 404 in disguise."""
    return re.sub(r"\{(\w+)\}", lambda m: str(rows[m.group(1)]), path)


def call(api, method: str, path: str):
    if method == "GET":
        return api.get(path)
    if method == "DELETE":
        return api.delete(path)
    if method == "PATCH":
        return api.patch(path, {"is_active": False, "is_blocked": True, "role": "ADMIN", "name": "x"})
    if path.endswith(("/workflows", "/draft-spec")):
        return api.multipart(path, {})
    return api.post(
        path,
        {
            "username": "mallory",
            "password": "Mallory-pass-123",
            "role": "ADMIN",
            "name": "evil",
            "base_url": "http://10.0.0.1:8188",
        },
    )


def snapshot():
    return (
        list(User.objects.order_by("pk").values_list("username", "role", "is_blocked")),
        list(ComfyNode.objects.order_by("pk").values_list("name", "is_active", "base_url")),
        list(Workflow.objects.order_by("pk").values_list("slug", "is_active")),
        list(Job.objects.order_by("pk").values_list("id", "status")),
    )


@pytest.mark.parametrize("method,path", ADMIN_OPERATIONS, ids=[f"{m} {p}" for m, p in ADMIN_OPERATIONS])
def test_user_gets_403_on_every_admin_operation(alice_api, rows, method, path):
    before = snapshot()
    response = call(alice_api, method, fill(path, rows))
    assert response.status_code == 403, (method, path, response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] == "Only admins may do this."
    assert snapshot() == before


@pytest.mark.parametrize("method,path", ADMIN_OPERATIONS, ids=[f"{m} {p}" for m, p in ADMIN_OPERATIONS])
def test_anonymous_gets_401_on_every_admin_operation(anon_api, rows, method, path):
    before = snapshot()
    response = call(anon_api, method, fill(path, rows))
    assert response.status_code == 401, (method, path, response.status_code)
    assert snapshot() == before


def test_user_cannot_make_themselves_admin_anywhere(alice_api, alice):
    """No non-admin endpoint accepts a role: /api/me is read-only."""
    assert alice_api.patch("/api/me", {"role": "ADMIN"}).status_code in (404, 405)
    assert alice_api.post("/api/me", {"role": "ADMIN"}).status_code in (404, 405)
    alice.refresh_from_db()
    assert alice.role == "USER" and not alice.is_staff


def test_user_cannot_open_django_admin_or_the_dashboard(alice):
    from tests.security.conftest import logged_in

    client = logged_in(alice)
    assert client.get("/admin/").status_code == 302  # to the admin login
    assert client.get("/admin/accounts/user/").status_code == 302
    assert client.get("/admin-dashboard/").status_code in (302, 403, 404)


def test_the_admin_control_succeeds(admin_api, rows):
    assert admin_api.get("/api/admin/users").status_code == 200
    assert admin_api.get(f"/api/admin/nodes/{rows['node_id']}").status_code == 200
