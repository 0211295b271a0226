"""The test ComfyUI answers the recorded video, animation and audio jobs exactly like the real
server (`transcripts/media_outputs.json`), and the files it writes decode to what was asked."""

from __future__ import annotations

import io
import json
import os

import aiohttp
import av
import pytest
from PIL import Image

from testcomfy import media

from .helpers import collect_until_done
from .replay import SHARED_TRANSCRIPTS, TRANSCRIPTS

RECORDED = json.loads((TRANSCRIPTS / "media_outputs.json").read_text(encoding="utf-8"))
SCENARIOS = {s["name"]: s for s in RECORDED}


def _normalized(value, prompt_id: str):
    """Ids and times are the volatile parts: the prompt id becomes P, timestamps 0."""
    text = json.dumps(value).replace(prompt_id, "P")
    data = json.loads(text)

    def walk(item):
        if isinstance(item, dict):
            return {k: (0 if k == "timestamp" else walk(v)) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(data)


def _source_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, format="PNG")
    return buf.getvalue()


async def _upload(session, url: str, name: str, data: bytes, content_type: str) -> None:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=name, content_type=content_type)
    form.add_field("overwrite", "true")
    async with session.post(url + "/upload/image", data=form) as r:
        assert r.status == 200, await r.text()


def test_media_transcript_copy_matches_shared_original():
    original = SHARED_TRANSCRIPTS / "media_outputs.json"
    if not original.is_file():
        pytest.skip(f"{original} is not beside this clone")
    assert original.read_bytes() == (TRANSCRIPTS / "media_outputs.json").read_bytes()


async def test_media_jobs_answer_like_the_recording(make_server, session: aiohttp.ClientSession):
    server = await make_server(default_models=False)
    await _upload(session, server.url, "vsrc.png", _source_png(), "image/png")
    await _upload(session, server.url, "tone.wav", media.encode_audio(media.tone(1.5), 44100, "wav"), "audio/wav")
    # The recording server had saved one of each before, so its counters stood at 2.
    out = os.path.join(server.data_dir, "output", "cp")
    os.makedirs(out, exist_ok=True)
    for name in ("vid_00001_.mp4", "anim_00001_.webp", "aud_00001_.flac"):
        open(os.path.join(out, name), "wb").close()
    files = {}
    for scenario in RECORDED:  # in the recorded order: the WebP job reuses the cached LoadImage
        recorded_sid = scenario["ws"][0]["data"]["sid"]
        async with session.ws_connect(f"{server.url}/ws?clientId={recorded_sid}") as ws:
            first = await ws.receive_json()
            prompt_id = scenario["status"]["messages"][0][1]["prompt_id"]
            body = {"prompt": scenario["prompt"], "client_id": recorded_sid, "prompt_id": prompt_id}
            async with session.post(server.url + "/prompt", json=body) as r:
                assert r.status == 200, await r.text()
            messages = [first] + await collect_until_done(ws, prompt_id)
        assert _normalized(messages, prompt_id) == _normalized(scenario["ws"], prompt_id), scenario["name"]
        async with session.get(f"{server.url}/history/{prompt_id}") as r:
            entry = (await r.json())[prompt_id]
        assert entry["outputs"] == scenario["history_outputs"]
        assert _normalized(entry["status"], prompt_id) == _normalized(scenario["status"], prompt_id)
        [(node_id, output)] = entry["outputs"].items()
        item = (output.get("images") or output.get("audio"))[0]
        query = f"filename={item['filename']}&subfolder={item['subfolder']}&type={item['type']}"
        async with session.get(f"{server.url}/view?{query}") as r:
            files[scenario["name"]] = (r.headers["Content-Type"], await r.read())

    content_type, mp4 = files["video_mp4"]
    assert content_type == "video/mp4"
    with av.open(io.BytesIO(mp4)) as container:
        frames = list(container.decode(video=0))
        assert container.streams.video[0].codec_context.name == "h264"
    assert len(frames) == 8 and (frames[0].width, frames[0].height) == (64, 48)

    content_type, webp = files["animated_webp"]
    assert content_type == "image/webp"
    animation = Image.open(io.BytesIO(webp))
    # Pillow and libwebp (the real SaveAnimatedWEBP's too) fold four identical frames into one
    # still WebP; frames that differ stay an animation (test_different_frames_stay_animated).
    assert animation.size == (64, 48) and animation.n_frames == 1
    inverted = animation.convert("RGB").getpixel((5, 5))  # ImageInvert of (200, 40, 40), truncated as ComfyUI does
    assert all(abs(a - b) <= 1 for a, b in zip(inverted, (55, 215, 215), strict=True)), inverted

    content_type, flac = files["audio_flac"]
    assert content_type == "audio/flac"
    with av.open(io.BytesIO(flac)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        assert stream.codec_context.name == "flac" and stream.codec_context.sample_rate == 44100
    assert samples == round(1.5 * 44100)


async def test_different_frames_stay_animated(make_server, session: aiohttp.ClientSession):
    from .helpers import run_prompt

    server = await make_server(default_models=False)
    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0xFF0000}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
        "4": {
            "class_type": "SaveAnimatedWEBP",
            "inputs": {
                "images": ["3", 0],
                "filename_prefix": "a",
                "fps": 2.0,
                "lossless": True,
                "quality": 80,
                "method": "default",
            },
        },
        "5": {
            "class_type": "SaveWEBM",
            "inputs": {"images": ["3", 0], "filename_prefix": "w", "codec": "vp9", "fps": 2.0, "crf": 32.0},
        },
    }
    entry, _ = await run_prompt(session, server.url, prompt)
    assert entry["outputs"]["4"]["animated"] == [True] and entry["outputs"]["5"]["animated"] == [True]
    webp = open(os.path.join(server.data_dir, "output", entry["outputs"]["4"]["images"][0]["filename"]), "rb").read()
    animation = Image.open(io.BytesIO(webp))
    assert animation.n_frames == 2
    webm = os.path.join(server.data_dir, "output", entry["outputs"]["5"]["images"][0]["filename"])
    assert webm.endswith("_00001_.webm")
    with av.open(webm) as container:
        assert container.streams.video[0].codec_context.name == "vp9"
        assert len(list(container.decode(video=0))) == 2
