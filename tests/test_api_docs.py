"""docs/api.md is run: its shell snippets in one bash, its Python snippets in one namespace,
against a live portal whose jobs a stand-in worker finishes (a result image, DONE), with a
local webhook receiver. A snippet that fails, or a Python one that raises, fails the test."""

from __future__ import annotations

import io
import re
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection
from PIL import Image

from jobs.models import Job
from tests.conftest import PASSWORD, Api, make_user, token_for
from tests.factories import make_node, upload_example
from tests.webhooks.conftest import Receiver

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def snippets(language: str) -> list[str]:
    return [code for lang, code in BLOCK.findall(DOC.read_text()) if lang == language]


def png(color=(20, 120, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "PNG")
    return buf.getvalue()


class StandInWorker:
    """Finishes every queued job with one result image, as a runner and its node would."""

    def __init__(self):
        self.stop = threading.Event()
        self.finished: list[str] = []
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        from django.utils import timezone

        from jobs import lifecycle, steps
        from jobs.models import Job

        node = make_node()
        try:
            while not self.stop.is_set():
                for job_id in Job.objects.filter(status="QUEUED").values_list("pk", flat=True):
                    lifecycle.claim({job_id: (node.pk, str(uuid.uuid4()), "c")}, runner_id="docs", now=timezone.now())
                    job = steps.load_job(job_id)
                    steps.finish_and_present(
                        job, status="DONE", message="", results=[(png(), "out/1.png")], gpu_seconds=1.5
                    )
                    self.finished.append(str(job_id))
                time.sleep(0.1)
        finally:
            connection.close()


@pytest.fixture
def portal(live_server, settings, tmp_path, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    alice = make_user("alice")
    upload_example("image-filters")
    image = tmp_path / "photo.png"
    image.write_bytes(png((200, 30, 30)))
    receiver = Receiver()
    worker = StandInWorker()
    worker.thread.start()
    monkeypatch.chdir(tmp_path)
    env = {
        "PATH": "/usr/bin:/bin",
        "PORTAL": live_server.url,
        "PORTAL_USER": "alice",
        "PORTAL_PASSWORD": PASSWORD,
        "IMAGE": str(image),
        "WEBHOOK_URL": receiver.url,
    }
    yield alice, env, receiver, worker
    worker.stop.set()
    worker.thread.join(5)
    receiver.server.shutdown()
    receiver.server.server_close()


def test_the_shell_walkthrough_runs(portal, tmp_path):
    alice, env, _, worker = portal
    script = "set -euo pipefail\n" + "\n".join(snippets("bash"))
    result = subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.startswith("cpk_")
    assert "shop backend active" in result.stdout
    assert '"number"' in result.stdout and '"maximum": 1' in result.stdout  # the typed schema
    # the retried submit made no second job; the one-request submit (POST /api/jobs/with-files) made one
    assert Job.objects.filter(user=alice).count() == 2
    assert Job.objects.filter(user=alice, files__kind="IMAGE").count() == 2
    assert "0.0000 credits, billing on: false" in result.stdout
    # the one-request job may or may not have ended when the usage is read
    usage = re.search(r"image-filters: (\d+) jobs, ([\d.]+) GPU s, (\d+) outputs", result.stdout)
    ended = int(usage[1])
    assert ended in (1, 2) and (float(usage[2]), int(usage[3])) == (1.5 * ended, ended), usage[0]
    assert (tmp_path / "usage.csv").read_text().startswith("day,jobs,")
    [download] = list(tmp_path.glob("result-*.png"))
    assert download.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_python_walkthrough_runs(portal, tmp_path, monkeypatch, capsys):
    alice, env, receiver, worker = portal
    created = Api(token_for(alice)).post("/api/keys", {"name": "docs", "scopes": ["jobs:read", "jobs:write", "files"]})
    for name, value in {**env, "COMFYPORTAL_KEY": created.json()["key"]}.items():
        monkeypatch.setenv(name, value)
    namespace: dict = {}
    for code in snippets("python"):
        exec(compile(code, str(DOC), "exec"), namespace)  # the documentation's own code
        if "def on_webhook" in code:
            deadline = time.monotonic() + 20
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.1)
            [request] = receiver.requests
            event = namespace["on_webhook"](request["body"], request["headers"])
            assert event["type"] == "job.succeeded" and event["data"]["id"] == namespace["job"]["id"]
            assert namespace["on_webhook"](request["body"].replace(b"DONE", b"done"), request["headers"]) is None
    assert [p.name for p in tmp_path.glob("result-*.png")], "on_webhook downloaded the output"
    assert "job.succeeded SUCCEEDED 1" in capsys.readouterr().out
