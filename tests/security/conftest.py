"""Shared rows for the security suite: alice's job with an upload and a result, page clients."""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image

from tests.conftest import PASSWORD
from tests.factories import TINY_GRAPH, make_job, make_workflow, tiny_spec


def png_bytes(size=(32, 24), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def upload(api, *, name="x.png", data: bytes | None = None, kind="image"):
    return api.multipart("/api/uploads", {"file": SimpleUploadedFile(name, data or png_bytes()), "kind": kind})


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def spec_files(spec: dict, graph: dict | None = None) -> dict:
    """The multipart body of POST /api/admin/workflows."""
    return {
        "workflow": SimpleUploadedFile("workflow.json", json.dumps(graph or TINY_GRAPH).encode(), "application/json"),
        "spec": SimpleUploadedFile("spec.json", json.dumps(spec).encode(), "application/json"),
    }


@pytest.fixture
def tiny(db):
    return make_workflow("tiny")


@pytest.fixture
def alice_upload(alice_api):
    response = upload(alice_api)
    assert response.status_code == 201, response.content
    return response.json()["id"]


@pytest.fixture
def alice_job(alice, tiny):
    """A finished job of alice's with one result file."""
    from jobs.files import store_result

    job = make_job(alice, tiny, status="DONE", inputs={"width": 64, "color": 1, "prefix": "tiny"})
    result = store_result(job=job, data=png_bytes(), source_ref="out.png")
    return job, result


__all__ = ["png_bytes", "upload", "logged_in", "spec_files", "tiny_spec"]
