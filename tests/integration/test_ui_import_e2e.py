"""A workflow saved by ComfyUI (UI format) imported by an admin and run by a user, end to end.

The workflow is one of ComfyUI's official templates (LoadImage → ImageScaleBy lanczos ×2 →
SaveImage, with an ImageCompare viewer and a note): the admin drafts its spec over the API,
uploads both, and a user's job runs on a test ComfyUI node; the result's pixels are checked.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from bench.ui_corpus import template_files
from nodes.models import ComfyNode
from tests.harness import wait_for
from tests.integration.conftest import HttpApi
from tests.integration.test_jobs_e2e import finished, register

pytestmark = [pytest.mark.integration, pytest.mark.slow]

QUADRANTS = {(0, 0): (220, 30, 30), (1, 0): (30, 200, 40), (0, 1): (20, 40, 210), (1, 1): (240, 240, 240)}


def quadrant_png(width: int = 40, height: int = 30) -> bytes:
    image = Image.new("RGB", (width, height))
    for (qx, qy), color in QUADRANTS.items():
        image.paste(color, (qx * width // 2, qy * height // 2, (qx + 1) * width // 2, (qy + 1) * height // 2))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_ui_format_template_is_imported_and_runs(stack_factory, user_factory):
    stack = stack_factory(nodes=1, node_args={"cache_none": True})
    user_factory("alice")
    user_factory("root", role="ADMIN")
    register(stack)
    # The node's classes, read by the health check, are what the import is checked against.
    wait_for(lambda: ComfyNode.objects.get().class_types, timeout=30, what="the node's classes")

    admin = HttpApi(stack.web_url, "root")
    template = next(p for p in template_files() if p.stem == "utility_interpolation_image_upscale").read_bytes()
    draft = admin.http.post("/api/admin/workflows/draft-spec", files={"workflow": ("workflow.json", template)})
    assert draft.status_code == 200, draft.text
    assert draft.json()["converted"] is True
    spec = {**draft.json()["spec"], "slug": "upscale-x2", "name": "Upscale ×2"}
    created = admin.http.post(
        "/api/admin/workflows",
        files={"workflow": ("workflow.json", template), "spec": ("spec.json", json.dumps(spec))},
    )
    assert created.status_code == 201, created.text

    api = HttpApi(stack.web_url, "alice")
    image = api.upload(quadrant_png())
    job = api.submit("upscale-x2", {"image": image})
    done = finished(api, job["id"])
    assert done["status"] == "DONE", done
    [output] = done["outputs"]
    result = Image.open(io.BytesIO(api.http.get(output["url"]).content)).convert("RGB")
    assert result.size == (80, 60)  # scaled by 2, as the template's ImageScaleBy says
    for (qx, qy), color in QUADRANTS.items():
        center = (qx * 40 + 20, qy * 30 + 15)
        assert result.getpixel(center) == color, (center, result.getpixel(center), color)
