"""(f) Node URLs are where the service sends requests: only admins may set them, and even an
admin cannot set a non-http(s) URL, one with credentials, or other junk (400/422 naming base_url)."""

from __future__ import annotations

import pytest

from nodes.models import ComfyNode
from tests.factories import make_node

pytestmark = pytest.mark.django_db

INTERNAL_HTTP = [
    "http://169.254.169.254/",
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:6379/",
    "http://[::1]:8188",
    "http://localhost:5432",
    "https://10.0.0.5:8188/comfy",
]
REJECTED = [
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_FLUSHALL",
    "ftp://10.0.0.1/",
    "dict://127.0.0.1:11211/",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "ws://10.0.0.5:8188",
    "http://user:pass@host/",
    "http://user@10.0.0.5:8188",
    "http://:pass@10.0.0.5/",
    "https://a:b@169.254.169.254/",
    "http:///x",
    "http://",
    "10.0.0.5:8188",
    "//10.0.0.5:8188",
    "http://10.0.0.5:99999",
    "http://10.0.0.5:8188/?next=x",
    "http://10.0.0.5:8188/#x",
    "http://10.0.0.5 :8188",
    " ",
    "\\\\10.0.0.5\\share",
]


@pytest.mark.parametrize("url", INTERNAL_HTTP + REJECTED)
def test_user_cannot_add_any_node(alice_api, url):
    response = alice_api.post("/api/admin/nodes", {"name": "n", "base_url": url})
    assert response.status_code == 403
    assert not ComfyNode.objects.exists()


@pytest.mark.parametrize("url", INTERNAL_HTTP[:2])
def test_user_cannot_repoint_a_node(alice_api, url):
    node = make_node("gpu")
    response = alice_api.patch(f"/api/admin/nodes/{node.pk}", {"base_url": url})
    assert response.status_code == 403
    node.refresh_from_db()
    assert node.base_url.startswith("http://127.0.0.1:9")


@pytest.mark.parametrize("url", INTERNAL_HTTP)
def test_admin_may_add_plain_http_nodes(admin_api, url):
    """Nodes live on private networks by design: an http(s) URL is the admin's decision."""
    response = admin_api.post("/api/admin/nodes", {"name": "n", "base_url": url})
    assert response.status_code == 201, response.content
    assert response.json()["base_url"] == url.rstrip("/")


def _assert_names_base_url(response) -> None:
    assert response.status_code in (400, 422), (response.status_code, response.content)
    body = response.json()
    assert body["detail"].startswith("base_url"), body
    assert "base_url" in body.get("errors", {}), body


@pytest.mark.parametrize("url", REJECTED)
def test_admin_cannot_add_non_http_or_credential_urls(admin_api, url):
    _assert_names_base_url(admin_api.post("/api/admin/nodes", {"name": "n", "base_url": url}))
    assert not ComfyNode.objects.exists()


@pytest.mark.parametrize("url", REJECTED)
def test_admin_cannot_repoint_a_node_to_them(admin_api, url):
    node = make_node("gpu")
    _assert_names_base_url(admin_api.patch(f"/api/admin/nodes/{node.pk}", {"base_url": url}))
    node.refresh_from_db()
    assert node.base_url.startswith("http://127.0.0.1:9")


def test_credentials_do_not_leak_through_the_auth_header_field(admin_api):
    """The supported way to authenticate to a node is write-only."""
    response = admin_api.post(
        "/api/admin/nodes", {"name": "n", "base_url": "http://10.0.0.5:8188", "auth_header": "Bearer s3cret"}
    )
    assert response.status_code == 201
    assert "s3cret" not in response.content.decode()
    assert response.json()["has_auth_header"] is True
    assert "s3cret" not in admin_api.get("/api/admin/nodes").content.decode()


def test_comfy_nodes_setting_skips_bad_urls(db):
    from nodes.services import register_nodes_from_urls

    created = register_nodes_from_urls(REJECTED + ["http://10.0.0.9:8188"])
    assert [node.base_url for node in created] == ["http://10.0.0.9:8188"]
