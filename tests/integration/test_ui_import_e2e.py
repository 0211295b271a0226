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
    # The same, converted with the node's own catalogue, read from it now.
    by_node = admin.http.post(
        "/api/admin/workflows/draft-spec", files={"workflow": ("workflow.json", template)}, data={"node": "n0"}
    )
    assert by_node.status_code == 200, by_node.text
    assert by_node.json()["graph"] == draft.json()["graph"]
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


def test_a_ui_workflow_with_a_subgraph_bypass_and_mute_runs_as_converted(stack_factory, user_factory):
    """LoadImage → subgraph [ImageInvert → ImageScale(width exposed as 60)] → Reroute → bypassed
    ImageBlur → SaveImage, with a muted PreviewImage: the result is the inverted picture at 60×45."""
    from tests.workflows.test_ui_format import node, scale_subgraph, ui

    definition = scale_subgraph()
    definition["nodes"].insert(0, node(2, "ImageInvert", inputs=[("image", "IMAGE", 4)], outputs=["IMAGE"]))
    definition["links"][0] = {"id": 4, "origin_id": -10, "origin_slot": 0, "target_id": 2, "target_slot": 0}
    definition["links"].append({"id": 1, "origin_id": 2, "origin_slot": 0, "target_id": 1, "target_slot": 0})
    definition["inputs"][0]["linkIds"] = [4]
    definition["nodes"][1]["widgets_values"] = ["bilinear", 64, 0, "disabled"]  # height 0: keep the aspect
    workflow = ui(
        [
            node(1, "LoadImage", ["example.png", "image"], outputs=["IMAGE", "MASK"]),
            node(
                7,
                definition["id"],
                [60],
                inputs=[("image", "IMAGE", 10), ("width", "INT", None, "widget")],
                outputs=["IMAGE"],
            ),
            node(8, "Reroute", inputs=[("", "*", 11)], outputs=["IMAGE"]),
            node(9, "ImageBlur", [5, 2.0], inputs=[("image", "IMAGE", 12)], outputs=["IMAGE"], mode=4),
            node(3, "SaveImage", ["imported"], inputs=[("images", "IMAGE", 13)]),
            node(4, "PreviewImage", inputs=[("images", "IMAGE", 14)], mode=2),
        ],
        [
            [10, 1, 0, 7, 0, "IMAGE"],
            [11, 7, 0, 8, 0, "*"],
            [12, 8, 0, 9, 0, "IMAGE"],
            [13, 9, 0, 3, 0, "IMAGE"],
            [14, 1, 0, 4, 0, "IMAGE"],
        ],
        [definition],
    )
    stack = stack_factory(nodes=1, node_args={"cache_none": True})
    user_factory("alice")
    user_factory("root", role="ADMIN")
    register(stack)
    admin = HttpApi(stack.web_url, "root")
    data = json.dumps(workflow).encode()
    draft = admin.http.post("/api/admin/workflows/draft-spec", files={"workflow": ("workflow.json", data)})
    assert draft.status_code == 200, draft.text
    assert set(draft.json()["graph"]) == {"1", "7:2", "7:1", "3"}
    spec = {**draft.json()["spec"], "slug": "sub-invert", "name": "Invert and scale"}
    assert {"width"} <= {f["id"] for f in spec["inputs"]}  # exposed on the subgraph node
    created = admin.http.post(
        "/api/admin/workflows", files={"workflow": ("workflow.json", data), "spec": ("spec.json", json.dumps(spec))}
    )
    assert created.status_code == 201, created.text

    api = HttpApi(stack.web_url, "alice")
    job = api.submit("sub-invert", {"image": api.upload(quadrant_png())})
    done = finished(api, job["id"])
    assert done["status"] == "DONE", done
    result = Image.open(io.BytesIO(api.http.get(done["outputs"][0]["url"]).content)).convert("RGB")
    assert result.size == (60, 45)
    for (qx, qy), (r, g, b) in QUADRANTS.items():
        center = (qx * 30 + 15, qy * 22 + 11)
        got = result.getpixel(center)
        assert all(abs(a - e) <= 1 for a, e in zip(got, (255 - r, 255 - g, 255 - b))), (center, got)
