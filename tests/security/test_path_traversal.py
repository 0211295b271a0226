"""(d) Path traversal through every filename a client or a node controls: uploads (`file`),
workflow uploads (`workflow`, `spec`), result names reported by a node. Stored files always
land under MEDIA_ROOT with names we generate; the original name is kept for display only,
without directories or control characters, and cannot break the Content-Disposition header."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobs import files
from jobs.models import JobFile
from tests.factories import make_job
from tests.security.conftest import png_bytes, tiny_spec

pytestmark = pytest.mark.django_db

EVIL_NAMES = [
    "../../etc/passwd",
    "../../../../../../tmp/evil.png",
    "..\\..\\x.png",
    "..\\..\\..\\windows\\system32\\x.png",
    "/abs.png",
    "/etc/cron.d/x",
    "C:\\abs.png",
    "x.png\x00.sh",
    "\x00",
    "..",
    ".",
    "....//....//x.png",
    "%2e%2e%2f%2e%2e%2fx.png",
    "x\r\nSet-Cookie: a=b.png",
    'a".png',
    "ü" * 300 + ".png",
    "",
]


def raw_multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    """A multipart body with `filename` exactly as given (the test client's own file objects
    would sanitize it before sending, which would test nothing)."""
    boundary = "----securitysuiteboundary7MA4YWxk"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{quoted}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode("utf-8", "surrogatepass")
        + data
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def raw_upload(api, filename: str, *, kind: str = "image", data: bytes | None = None):
    body, content_type = raw_multipart({"kind": kind}, "file", filename, data or png_bytes())
    return api.client.post("/api/uploads", body, content_type=content_type, **api._headers())


def media_files(root: Path) -> set[Path]:
    return {p.resolve() for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def assert_under_media(record: JobFile, settings) -> None:
    root = Path(settings.MEDIA_ROOT).resolve()
    for field in (record.file, record.thumbnail):
        if field:
            path = Path(field.path).resolve()
            assert path.is_relative_to(root), path
            assert path.is_file()
            assert ".." not in Path(field.name).parts and not os.path.isabs(field.name), field.name


def assert_display_name_is_clean(name: str) -> None:
    assert "/" not in name and "\\" not in name, name
    assert name not in ("..", "."), name
    assert all(ch.isprintable() for ch in name), repr(name)
    assert len(name) <= 200


SERVICE_NAMES = EVIL_NAMES


@pytest.mark.parametrize("name", SERVICE_NAMES, ids=[repr(n)[:40] for n in EVIL_NAMES])
def test_service_keeps_uploads_under_media_root(alice, settings, name):
    record = files.store_upload(owner=alice, data=png_bytes(), kind="image", filename=name)
    assert_under_media(record, settings)
    assert_display_name_is_clean(record.original_name)


@pytest.mark.parametrize("name", EVIL_NAMES, ids=[repr(n)[:40] for n in EVIL_NAMES])
def test_api_upload_with_evil_filename(alice_api, settings, tmp_path, name):
    before = media_files(tmp_path) - media_files(Path(settings.MEDIA_ROOT))
    response = raw_upload(alice_api, name)
    if response.status_code != 201:  # the multipart parser may refuse a name outright: fine, if cleanly
        assert response.status_code in (400, 422), response.content
        assert not JobFile.objects.exists()
        return
    record = JobFile.objects.get(pk=response.json()["id"])
    assert_under_media(record, settings)
    assert_display_name_is_clean(record.original_name)
    # Nothing was written anywhere else under the test's tmp dir (a stand-in for "outside").
    assert media_files(tmp_path) - media_files(Path(settings.MEDIA_ROOT)) == before

    download = alice_api.get(f"/api/files/{record.pk}")
    assert download.status_code == 200
    disposition = download["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert disposition.count('"') == 2, disposition
    assert "Set-Cookie" not in {k.title() for k in download.headers}


@pytest.mark.parametrize("kind", ["mask", "image"])
def test_mask_uploads_too(alice_api, settings, kind):
    response = raw_upload(alice_api, "../../../m.png", kind=kind)
    assert response.status_code == 201
    record = JobFile.objects.get(pk=response.json()["id"])
    assert_under_media(record, settings)
    assert record.original_name == "m.png"


@pytest.mark.parametrize(
    "source_ref",
    [
        "../../../../etc/passwd",
        "subfolder/../../x.png",
        "..\\..\\x.png",
        "/abs/x.png",
        "x\x00y.png",
        "a" * 2000,
        "output/..",
    ],
)
def test_result_names_from_a_node_stay_under_media_root(alice, tiny, settings, source_ref):
    """A node (not trusted either) reports output names: they never become paths."""
    job = make_job(alice, tiny, status="RUNNING")
    record = files.store_result(job=job, data=png_bytes(), source_ref=source_ref)
    assert_under_media(record, settings)
    assert_display_name_is_clean(record.original_name)


@pytest.mark.parametrize("name", ["../../workflow.json", "/etc/passwd", "..\\spec.json", "x\x00.json"])
def test_workflow_upload_filenames_are_not_used_as_paths(admin_api, settings, tmp_path, name):
    import json

    from tests.factories import TINY_GRAPH

    boundary = "----wfboundary"
    parts = []
    for field, content in (("workflow", TINY_GRAPH), ("spec", tiny_spec("traversal"))):
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
            f"Content-Type: application/json\r\n\r\n{json.dumps(content)}\r\n".encode()
        )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    before = set(tmp_path.rglob("*"))
    response = admin_api.client.post(
        "/api/admin/workflows", body, content_type=f"multipart/form-data; boundary={boundary}", **admin_api._headers()
    )
    assert response.status_code in (201, 400, 422), response.content
    assert response["Content-Type"].startswith("application/json")
    assert set(tmp_path.rglob("*")) == before, "a workflow upload writes no file"

    draft_body, content_type = raw_multipart({}, "workflow", name, json.dumps(TINY_GRAPH).encode())
    draft = admin_api.client.post(
        "/api/admin/workflows/draft-spec", draft_body, content_type=content_type, **admin_api._headers()
    )
    assert draft.status_code in (200, 400, 422), draft.content
    assert set(tmp_path.rglob("*")) == before


@pytest.mark.parametrize("value", ["../../etc/passwd", "/etc/passwd", "..%2f..%2fetc%2fpasswd", "x\x00"])
def test_file_ids_are_ids_not_paths(alice_api, value):
    assert alice_api.get(f"/api/files/{value}").status_code == 404
    response = alice_api.post("/api/jobs", {"workflow": "tiny", "inputs": {"image": value}})
    assert response.status_code in (400, 404)
