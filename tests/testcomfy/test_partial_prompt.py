"""A prompt the real server accepts only in part: 200 with ``node_errors``, only the valid
outputs run (``errors.jsonl``, "a 200 that carries node_errors"; comfy/README.md, "Model files")."""

from __future__ import annotations

import asyncio
import io
import uuid

import aiohttp
from PIL import Image

from tests.factories import example_json

from .replay import Replayer, load


def partly_valid_scenario() -> list[dict]:
    """The recorded scenario up to the history of its first prompt: one output invalid, one valid."""
    _, events = load("errors.jsonl")
    end = next(i for i, e in enumerate(events) if e.get("dir") == "http" and e["path"] == "/history/<prompt_id:1>")
    return events[: end + 1]


def test_the_recording_is_a_200_with_node_errors_that_runs_the_valid_output_only():
    """What the replay below holds the test server to (so that a new recording cannot drop it)."""
    events = partly_valid_scenario()
    post = next(e for e in events if e.get("dir") == "http" and e["path"] == "/prompt")
    assert post["status"] == 200
    assert post["response"]["node_errors"]["5"]["dependent_outputs"] == ["6"]
    entry = events[-1]["response"]["<prompt_id:1>"]
    assert entry["prompt"][4] == ["4"] and list(entry["outputs"]) == ["4"]
    assert entry["status"]["status_str"] == "success"


async def test_a_partly_valid_prompt_replays_as_recorded(make_server, session: aiohttp.ClientSession) -> None:
    server = await make_server(default_models=False)
    await Replayer(server.url, partly_valid_scenario()).run(session)


def png(size=(64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (90, 40, 200)).save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_missing_checkpoint_drops_its_output_and_runs_the_other(make_server, session) -> None:
    """controlnet-canny on a server without its checkpoint: the edge preview runs, the picture does not."""
    server = await make_server(default_models=False)
    server.control({"models": {"controlnet": ["control_v11p_sd15_canny.pth"]}})
    form = aiohttp.FormData()
    form.add_field("image", png(), filename="example.png", content_type="image/png")
    async with session.post(server.url + "/upload/image", data=form) as r:
        assert r.status == 200
    prompt_id = str(uuid.uuid4())
    graph = example_json("controlnet-canny", "workflow.json")
    async with session.post(server.url + "/prompt", json={"prompt": graph, "prompt_id": prompt_id}) as r:
        assert r.status == 200
        body = await r.json()
    [(node_id, error)] = body["node_errors"].items()
    assert node_id == "4" and error["class_type"] == "CheckpointLoaderSimple"
    assert error["dependent_outputs"] == ["9"]
    [reason] = error["errors"]
    assert reason["type"] == "value_not_in_list" and reason["extra_info"]["input_name"] == "ckpt_name"
    for _ in range(200):
        async with session.get(f"{server.url}/history/{prompt_id}") as r:
            history = await r.json()
        if history:
            break
        await asyncio.sleep(0.02)
    entry = history[prompt_id]
    assert entry["prompt"][4] == ["16"] and list(entry["outputs"]) == ["16"]
    assert entry["status"]["status_str"] == "success"
