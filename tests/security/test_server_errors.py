"""Issue 20, "server errors": input that once got a 500 gets a 4xx JSON `{"detail": …}` under
/api/ (a 404 page elsewhere), and a WebSocket to an unknown path is closed without a traceback."""

from __future__ import annotations

import logging
import uuid

import pytest
from channels.testing import HttpCommunicator
from django.core.files.uploadedfile import SimpleUploadedFile

from nodes import health
from nodes.admin import ComfyNodeForm
from nodes.models import ComfyNode
from tests.conftest import communicator
from tests.security.conftest import logged_in, png_bytes
from tests.security.test_path_traversal import raw_multipart

pytestmark = pytest.mark.django_db


def http_get(path: str) -> HttpCommunicator:
    """A GET through the whole ASGI application, static files handler included."""
    from comfyportal.asgi import application  # imported in the test, as tests.conftest.communicator does

    return HttpCommunicator(application, "GET", path, headers=[(b"host", b"localhost")])


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


@pytest.mark.parametrize(
    "path",
    [
        "/static/%2e%2e/comfyportal/settings.py",
        "/static/%2E%2E/%2E%2E/etc/passwd",
        "/static/../comfyportal/settings.py",
        "/static/..%2fcomfyportal%2fsettings.py",
    ],
)
@pytest.mark.parametrize("debug", [True, False])
async def test_static_path_out_of_the_static_folders_is_a_404(settings, path, debug):
    settings.DEBUG = debug
    communicator = http_get(path)
    response = await communicator.get_response(timeout=10)
    assert response["status"] == 404, response["body"][:500]
    assert b"SECRET_KEY" not in response["body"]


async def test_static_files_are_still_served():
    communicator = http_get("/static/css/site.css")
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=10)  # a file: streamed, so the start alone
    assert start["status"] == 200
    await communicator.wait(timeout=10)


@pytest.mark.parametrize("path", ["/ws/jobs/{uuid}/", "/ws/nothing/", "/ws/", "/api/me"])
async def test_websocket_to_an_unknown_path_is_refused_without_a_traceback(ws_user, caplog, path):
    comm = communicator(path.format(uuid=uuid.uuid4()) + f"?token={ws_user.token}")
    connected, _ = await comm.connect(timeout=5)
    assert not connected
    await comm.wait(timeout=5)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]


@pytest.mark.parametrize("depth", [100_000, 5_000])
@pytest.mark.parametrize("endpoint", ["/api/admin/workflows/draft-spec", "/api/admin/workflows"])
def test_deeply_nested_workflow_is_a_400(admin_api, depth, endpoint):
    nested = b'{"1": {"class_type": "SaveImage", "inputs": {"images": ' + b"[" * depth + b"]" * depth + b"}}}"
    files = {"workflow": SimpleUploadedFile("workflow.json", nested, "application/json")}
    if endpoint == "/api/admin/workflows":
        files["spec"] = SimpleUploadedFile("spec.json", b"{}", "application/json")
    response = admin_api.multipart(endpoint, files)
    assert_json_detail(response, 400, "workflow", "nested too deeply")


@pytest.mark.parametrize("depth", [200, 900])
def test_draft_spec_of_a_nested_but_parsable_workflow_is_answered(admin_api, depth):
    nested = b'{"1": {"class_type": "SaveImage", "inputs": {"images": ' + b"[" * depth + b"]" * depth + b"}}}"
    files = {"workflow": SimpleUploadedFile("workflow.json", nested, "application/json")}
    response = admin_api.multipart("/api/admin/workflows/draft-spec", files)
    assert response.status_code in (200, 400), response.content[:500]
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/api/jobs", "/api/admin/users"])
def test_deeply_nested_json_body_is_a_400(admin_api, path):
    response = admin_api.post_raw(path, b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert_json_detail(response, 400, "body")


@pytest.mark.parametrize(
    "path",
    ["/gallery/?workflow=%00", "/jobs/?status=a%00b", "/?q=%00", "/gallery/?%00=1", "/login/?next=/%00"],
)
def test_nul_in_a_page_query_is_a_400(alice, path):
    response = logged_in(alice).get(path)
    assert response.status_code == 400, response.content[:300]
    assert b"NUL" in response.content


def test_nul_in_a_page_form_is_a_400(alice):
    response = logged_in(alice).post("/login/", {"username": "alice\x00", "password": "x"})
    assert response.status_code == 400
    assert b"username" in response.content


def test_nul_in_an_api_query_or_form_is_a_400_naming_the_field(alice_api):
    assert_json_detail(alice_api.get("/api/jobs", workflow="a\x00b"), 400, "workflow", "NUL")
    response = alice_api.client.post("/api/uploads", {"kind": "image\x00"}, **alice_api._headers())
    assert_json_detail(response, 400, "kind", "NUL")


@pytest.mark.parametrize("escaped", ['"\\u0000x"', '"a\\\\\\u0000"', '"\\\\\\\\\\u0000"'])
def test_nul_escape_in_a_json_body_is_a_400(alice_api, escaped):
    response = alice_api.post_raw("/api/jobs", '{"workflow": ' + escaped + ', "inputs": {}}')
    assert_json_detail(response, 400, "body", "NUL")


@pytest.mark.parametrize("text", ["\\u0000", "a\\u0000b", "\\\\u0000"])
def test_the_literal_text_backslash_u0000_is_accepted(alice_api, tiny, text):
    response = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {"width": 64, "color": 1, "prefix": text}})
    assert response.status_code == 201, response.content[:500]
    assert response.json()["inputs"]["prefix"] == text


BAD_AUTH_HEADERS = ["Authorization: Bearer tökén", "Bearer 秘密", "X-Token: a\r\nX-Evil: 1", "Bad(Name): x"]


@pytest.mark.parametrize("auth_header", BAD_AUTH_HEADERS)
def test_node_auth_header_that_http_cannot_carry_is_refused_by_the_api(admin_api, auth_header):
    created = admin_api.post(
        "/api/admin/nodes", {"name": "gpu1", "base_url": "http://10.0.0.5:8188", "auth_header": auth_header}
    )
    assert_json_detail(created, 400, "auth_header")
    assert created.json()["errors"] == {"auth_header": created.json()["detail"].removeprefix("auth_header: ")}
    node = ComfyNode.objects.create(name="gpu2", base_url="http://10.0.0.6:8188")
    patched = admin_api.patch(f"/api/admin/nodes/{node.pk}", {"auth_header": auth_header})
    assert_json_detail(patched, 400, "auth_header")
    assert not ComfyNode.objects.filter(name="gpu1").exists()
    assert ComfyNode.objects.get(pk=node.pk).auth_header == ""


@pytest.mark.parametrize("auth_header", BAD_AUTH_HEADERS)
def test_node_auth_header_that_http_cannot_carry_is_refused_by_the_admin_form(auth_header):
    form = ComfyNodeForm(
        data={
            "name": "gpu1",
            "base_url": "http://10.0.0.5:8188",
            "max_queue": 2,
            "priority": 0,
            "auth_header": auth_header,
        }
    )
    assert not form.is_valid()
    message = " ".join(form.errors["auth_header"])
    assert "ASCII" in message or "header name" in message, message


def test_node_auth_header_of_printable_ascii_is_accepted(admin_api):
    header = "X-Api-Key: abc~!#$%&'*+-.^_`|0123 =/"
    created = admin_api.post(
        "/api/admin/nodes", {"name": "gpu1", "base_url": "http://10.0.0.5:8188", "auth_header": header}
    )
    assert created.status_code == 201, created.content
    assert ComfyNode.objects.get().auth_header == header


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize("method", ["post", "patch"])
def test_json_body_over_the_size_limit_is_a_413_json(alice_api, settings, debug, method):
    settings.DEBUG = debug
    body = '{"workflow": "tiny", "inputs": {"prompt": "' + "a" * 30_000_000 + '"}}'
    send = getattr(alice_api.client, method)
    response = send("/api/jobs", body, content_type="application/json", **alice_api._headers())
    assert_json_detail(response, 413, "body", str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))


def test_form_body_over_the_size_limit_is_a_413_json(alice_api):
    body = "kind=" + "a" * 30_000_000
    response = alice_api.post_raw("/api/uploads", body, content_type="application/x-www-form-urlencoded")
    assert_json_detail(response, 413, "body")


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data", "multipart/form-data; boundary=", "multipart/form-data; boundary=\x7f"]
)
def test_multipart_without_a_usable_boundary_is_a_400_json(alice_api, content_type):
    response = alice_api.post_raw(
        "/api/uploads", b"--x\r\nContent-Disposition: form-data\r\n\r\n", content_type=content_type
    )
    assert_json_detail(response, 400, "body", "multipart")


@pytest.mark.parametrize("path", ["/api/uploads", "/api/admin/workflows/draft-spec", "/api/admin/workflows"])
def test_truncated_multipart_body_is_a_4xx_json(admin_api, path):
    body, content_type = raw_multipart({"kind": "image"}, "file", "x.png", png_bytes())
    response = admin_api.post_raw(path, body[: len(body) // 2], content_type=content_type)
    assert 400 <= response.status_code < 500, response.content[:300]
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db(transaction=True)
def test_node_stored_with_an_unsendable_auth_header_goes_offline_saying_why(caplog):
    """A row saved before the check above: the health check reports it, never a traceback."""
    node = ComfyNode.objects.create(name="gpu1", base_url="http://127.0.0.1:9", auth_header="Bearer tökén")
    health.check_all_nodes()
    node.refresh_from_db()
    assert node.status == "OFFLINE" and "auth_header" in node.last_error and "ASCII" in node.last_error
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR or record.exc_info]
