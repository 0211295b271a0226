"""Masks end to end on the model-free mask workflows, in both binding modes.

The output must differ from the input inside the mask and equal it outside.
"""

from __future__ import annotations

import io
import random

import pytest
from PIL import Image, ImageDraw

from jobs.models import JobFile
from nodes.models import ComfyNode
from tests.factories import upload_example
from tests.integration.conftest import HttpApi
from tests.integration.test_jobs_e2e import finished

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOX = (40, 20, 80, 60)  # the masked rectangle, in image pixels


def noisy_image(size=(120, 80)) -> bytes:
    rng = random.Random(7)
    image = Image.new("RGB", size)
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256)) for _ in range(size[0] * size[1])])
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def half_size_grey_mask() -> bytes:
    """A mode-L mask at half the image's size: normalization must scale it up exactly."""
    mask = Image.new("L", (60, 40), 0)
    ImageDraw.Draw(mask).rectangle((BOX[0] // 2, BOX[1] // 2, BOX[2] // 2 - 1, BOX[3] // 2 - 1), fill=255)
    buf = io.BytesIO()
    mask.save(buf, "PNG")
    return buf.getvalue()


def inside(x, y):
    return BOX[0] + 2 <= x < BOX[2] - 2 and BOX[1] + 2 <= y < BOX[3] - 2


def outside(x, y):
    return not (BOX[0] - 2 <= x < BOX[2] + 2 and BOX[1] - 2 <= y < BOX[3] + 2)


@pytest.mark.parametrize("slug", ["mask-composite", "mask-composite-alpha"])
def test_output_changes_only_inside_the_mask(stack_factory, user_factory, slug):
    stack = stack_factory(nodes=1, node_args={"cache_none": True})
    user_factory("alice")
    upload_example(slug)
    ComfyNode.objects.create(name="n0", base_url=stack.nodes[0].url)
    api = HttpApi(stack.web_url, "alice")
    image_bytes = noisy_image()
    image = api.upload(image_bytes, "image")
    mask = api.upload(half_size_grey_mask(), "mask")

    missing = api.http.post("/api/jobs", json={"workflow": slug, "inputs": {"image": image}})
    assert missing.status_code == 400 and "mask" in missing.json()["errors"]

    job = api.submit(slug, {"image": image, "mask": mask})
    done = finished(api, job["id"])
    assert done["status"] == "DONE", done
    result = Image.open(io.BytesIO(api.http.get(done["outputs"][0]["url"]).content)).convert("RGB")
    original = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    assert result.size == original.size
    changed_inside = [
        (x, y)
        for x in range(120)
        for y in range(80)
        if inside(x, y) and result.getpixel((x, y)) != original.getpixel((x, y))
    ]
    changed_outside = [
        (x, y)
        for x in range(120)
        for y in range(80)
        if outside(x, y) and result.getpixel((x, y)) != original.getpixel((x, y))
    ]
    inside_count = sum(1 for x in range(120) for y in range(80) if inside(x, y))
    assert len(changed_inside) > 0.9 * inside_count
    assert changed_outside == []
    assert JobFile.objects.get(pk=mask).kind == "MASK"
