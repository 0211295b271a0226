"""The test ComfyUI fakes the bundled video and audio model workflows with real media of the
right kind: frames that decode, of the asked size and number, and sound of the asked length."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import aiohttp
import av
import pytest
from PIL import Image

from workflows.prompt import build_prompt, validate_inputs

from .helpers import run_prompt

EXAMPLES = Path(__file__).resolve().parents[2] / "examples/workflows"


def _prompt(slug: str, values: dict, uploads: dict) -> dict:
    graph = json.loads((EXAMPLES / slug / "workflow.json").read_text(encoding="utf-8"))
    spec = json.loads((EXAMPLES / slug / "spec.json").read_text(encoding="utf-8"))
    workflow = type("W", (), {"graph": graph, "spec": spec})()
    return build_prompt(workflow, validate_inputs(spec, values), uploads)


def _output(server, entry: dict) -> str:
    [output] = entry["outputs"].values()
    item = (output.get("images") or output.get("audio"))[0]
    return os.path.join(server.data_dir, item["type"], item["subfolder"], item["filename"])


@pytest.mark.parametrize(
    ("slug", "values", "frames", "size", "fps"),
    [
        ("wan-i2v", {"prompt": "a cat", "length": 9, "width": 352, "height": 320, "steps": 2}, 9, (352, 320), 16),
        ("ltxv-t2v", {"prompt": "a fox", "length": 17, "width": 256, "height": 256, "steps": 2}, 17, (256, 256), 24),
    ],
)
async def test_video_models_give_real_video(
    make_server, session: aiohttp.ClientSession, slug, values, frames, size, fps
):
    server = await make_server()
    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (10, 120, 200)).save(buf, format="PNG")
    form = aiohttp.FormData()
    form.add_field("image", buf.getvalue(), filename="start.png", content_type="image/png")
    async with session.post(server.url + "/upload/image", data=form) as r:
        assert r.status == 200
    values = {**values, "image": "upload"} if slug == "wan-i2v" else values
    entry, _ = await run_prompt(session, server.url, _prompt(slug, values, {"image": "start.png"}), timeout=60)
    assert entry["status"]["status_str"] == "success"
    with av.open(_output(server, entry)) as container:
        stream = container.streams.video[0]
        decoded = list(container.decode(stream))
        assert float(stream.average_rate) == fps
    assert len(decoded) == frames and (decoded[0].width, decoded[0].height) == size
    assert decoded[0].to_ndarray().tobytes() != decoded[-1].to_ndarray().tobytes()  # it moves


async def test_stable_audio_gives_real_sound(make_server, session: aiohttp.ClientSession):
    server = await make_server()
    entry, _ = await run_prompt(
        session, server.url, _prompt("stable-audio", {"prompt": "rain", "seconds": 3.0, "steps": 2}, {}), timeout=60
    )
    path = _output(server, entry)
    assert path.endswith(".flac")
    with av.open(path) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        assert stream.codec_context.sample_rate == 44100 and stream.codec_context.channels == 2
    assert samples == 3 * 44100
