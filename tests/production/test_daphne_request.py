"""Under daphne, a request body reaches Django unparsed: a multipart body without a boundary gets
Django's 400 JSON, not the empty 400 Twisted answers itself (see comfyportal/daphne_request.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def daphne_url(tmp_path):
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "comfyportal.settings", "VAR_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "comfyportal.asgi:application"]
    server = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def post(url: str, body: bytes, content_type: str) -> tuple[int, str, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def test_multipart_without_a_boundary_gets_djangos_json_answer(daphne_url):
    status, content_type, body = post(f"{daphne_url}/api/uploads", b"xx", "multipart/form-data")
    assert status == 400
    assert content_type.startswith("application/json"), (content_type, body)
    assert "multipart" in json.loads(body)["detail"]
