"""Issue 20, "server errors": input that once got a 500 gets a 4xx JSON `{"detail": …}` under
/api/ (a 404 page elsewhere), and a WebSocket to an unknown path is closed without a traceback."""

from __future__ import annotations

import pytest

from tests.security.conftest import png_bytes
from tests.security.test_path_traversal import raw_multipart

pytestmark = pytest.mark.django_db


def assert_json_detail(response, status: int, *words: str) -> None:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    detail = response.json()["detail"]
    for word in words:
        assert word in detail, detail


@pytest.mark.parametrize("length", [1_000, 5_000, 70_000])
def test_upload_with_a_very_long_file_name_is_a_400(alice_api, length):
    body, content_type = raw_multipart({"kind": "image"}, "file", "a" * length + ".png", png_bytes())
    response = alice_api.client.post("/api/uploads", body, content_type=content_type, **alice_api._headers())
    assert_json_detail(response, 400, "multipart", "file name")


def test_upload_with_a_long_but_allowed_file_name_is_stored(alice_api):
    body, content_type = raw_multipart({"kind": "image"}, "file", "a" * 800 + ".png", png_bytes())
    response = alice_api.client.post("/api/uploads", body, content_type=content_type, **alice_api._headers())
    assert response.status_code == 201, response.content[:500]
