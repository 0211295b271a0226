"""The ComfyUI client against the test ComfyUI: every call, and every typed error."""

from __future__ import annotations

import asyncio
import io
import uuid

import pytest
from PIL import Image

from nodes.comfy.client import ComfyClient, Uploaded, parse_auth_header
from nodes.comfy.errors import (
    BadResponse,
    ExecutionFailed,
    Interrupted,
    NodeTimeout,
    NodeUnreachable,
    PromptLost,
    PromptRejected,
)
from nodes.comfy.follow import PromptRun, output_images
from tests.factories import TINY_GRAPH


def png(size=(16, 12), color=(10, 200, 30, 255), mode="RGBA") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


async def test_info_endpoints(make_server):
    server = await make_server()
    async with ComfyClient(server.url) as client:
        stats = await client.system_stats()
        assert stats["system"]["comfyui_version"] and stats["devices"][0]["vram_total"] > 0
        queue = await client.queue()
        assert queue.running == [] and queue.pending == []
        info = await client.object_info()
        assert "KSampler" in info and "LoadImage" in info


async def test_prompt_runs_with_progress_history_and_view(make_server):
    server = await make_server(job_time=0.5, cache_none=True)
    seen = []

    async def on_progress(progress):
        seen.append(progress.fraction)

    async with ComfyClient(server.url) as client:
        run = PromptRun(
            client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-t1", on_progress=on_progress
        )
        entry = await run.run()
        [image] = output_images(entry)
        data = await client.view(image["filename"], subfolder=image["subfolder"], type=image["type"])
    assert Image.open(io.BytesIO(data)).size == (64, 48)
    assert seen and seen == sorted(seen) and seen[-1] < 1.0


async def counting_history(client, monkeypatch) -> list[str]:
    asked: list[str] = []
    original = client.history

    async def history(prompt_id):
        asked.append(prompt_id)
        return await original(prompt_id)

    monkeypatch.setattr(client, "history", history)
    return asked


@pytest.mark.parametrize("cached", [False, True], ids=["ran", "all cached"])
async def test_outputs_from_executed_messages_match_history_and_need_no_request(make_server, monkeypatch, cached):
    """Issue 22: a prompt followed from start to end takes its outputs from `executed`."""
    server = await make_server(job_time=0.05, cache_none=not cached)
    async with ComfyClient(server.url) as client:
        if cached:  # the same prompt again: every node cached, `executed` repeats the earlier output
            await PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-c0").run()
        asked = await counting_history(client, monkeypatch)
        prompt_id = str(uuid.uuid4())
        run = PromptRun(client, TINY_GRAPH, prompt_id=prompt_id, client_id="comfyportal-x1")
        entry = await run.run()
        assert asked == []
        history = await client.history(prompt_id)
    assert entry["outputs"] == history["outputs"] and output_images(entry)
    assert run.execution_seconds is not None


async def test_a_resumed_prompt_reads_history(make_server, monkeypatch):
    """Followed from the middle (adopted), the socket may have missed `executed`: history decides."""
    server = await make_server(job_time=0.6, cache_none=True)
    prompt_id = str(uuid.uuid4())
    async with ComfyClient(server.url) as client:
        await client.submit_prompt(TINY_GRAPH, client_id="comfyportal-r1", prompt_id=prompt_id)
        await asyncio.sleep(0.2)  # running by now: its execution_start is gone
        asked = await counting_history(client, monkeypatch)
        entry = await PromptRun(client, TINY_GRAPH, prompt_id=prompt_id, client_id="comfyportal-r1").resume()
        assert asked == [prompt_id, prompt_id]  # running when adopted; asked again at its end
        assert entry["outputs"] == (await client.history(prompt_id))["outputs"]


async def test_upload_image_and_mask(make_server):
    server = await make_server()
    async with ComfyClient(server.url) as client:
        original = await client.upload_image(png(), "cp_src.png", overwrite=True)
        assert original == Uploaded(name="cp_src.png", subfolder="", type="input")
        merged = await client.upload_mask(png(color=(0, 0, 0, 0)), "cp_src_alpha.png", original=original)
        assert merged.ref == "cp_src_alpha.png"
        missing = Uploaded(name="nope.png", subfolder="", type="input")
        with pytest.raises(BadResponse, match="wrote nothing"):
            await client.upload_mask(png(), "cp_orphan.png", original=missing)


async def test_validation_400_is_prompt_rejected(make_server):
    server = await make_server()
    graph = {
        **TINY_GRAPH,
        "1": {"class_type": "EmptyImage", "inputs": {"width": "wide", "height": 8, "batch_size": 1, "color": 0}},
    }
    async with ComfyClient(server.url) as client:
        with pytest.raises(PromptRejected) as caught:
            await client.submit_prompt(graph, client_id="x", prompt_id=str(uuid.uuid4()))
    assert caught.value.node_errors["1"]["class_type"] == "EmptyImage"
    assert "node 1 (EmptyImage)" in caught.value.message and "INT" in caught.value.message


async def test_unknown_class_is_prompt_rejected(make_server):
    server = await make_server()
    graph = {"1": {"class_type": "NoSuchNode", "inputs": {}}}
    async with ComfyClient(server.url) as client:
        with pytest.raises(PromptRejected, match="not found"):
            await client.submit_prompt(graph, client_id="x", prompt_id=str(uuid.uuid4()))


async def test_execution_error_is_execution_failed(make_server):
    server = await make_server(execution_error=1, cache_none=True)
    async with ComfyClient(server.url) as client:
        with pytest.raises(ExecutionFailed) as caught:
            await PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-e").run()
    assert caught.value.node_type and caught.value.node_id and caught.value.exception_message


async def test_interrupt_is_interrupted(make_server):
    server = await make_server(job_time=5, cache_none=True)
    prompt_id = str(uuid.uuid4())
    async with ComfyClient(server.url) as client:
        run = asyncio.create_task(PromptRun(client, TINY_GRAPH, prompt_id=prompt_id, client_id="comfyportal-i").run())
        for _ in range(100):
            if (await client.queue()).running:
                break
            await asyncio.sleep(0.05)
        await client.cancel(prompt_id)
        with pytest.raises(Interrupted):
            await run


async def test_delete_pending_prompt(make_server):
    server = await make_server(job_time=3, cache_none=True)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    async with ComfyClient(server.url) as client:
        await client.submit_prompt(TINY_GRAPH, client_id="a", prompt_id=first)
        graph = {
            **TINY_GRAPH,
            "3": {**TINY_GRAPH["3"], "inputs": {**TINY_GRAPH["3"]["inputs"], "filename_prefix": "b"}},
        }
        await client.submit_prompt(graph, client_id="b", prompt_id=second)
        assert second in (await client.queue()).prompt_ids
        await client.delete_from_queue([second])
        assert second not in (await client.queue()).prompt_ids
        await client.interrupt(first)


async def test_refused_connection_is_node_unreachable(make_server):
    server = await make_server(refuse=True)
    async with ComfyClient(server.url, connect_timeout=1) as client:
        with pytest.raises(NodeUnreachable):
            await client.system_stats()
        with pytest.raises(NodeUnreachable):
            async with client.websocket("x"):
                pass


async def test_hanging_node_is_node_timeout(make_server):
    server = await make_server(hang=True)
    async with ComfyClient(server.url, connect_timeout=1, read_timeout=0.5) as client:
        with pytest.raises(NodeTimeout):
            await client.queue()


@pytest.mark.parametrize("kind", ["html", "json"])
async def test_garbage_answers_are_bad_response(make_server, kind):
    server = await make_server(garbage=kind)
    async with ComfyClient(server.url) as client:
        with pytest.raises(BadResponse):
            await client.system_stats()


async def test_lost_prompt_is_prompt_lost(make_server):
    server = await make_server()
    async with ComfyClient(server.url) as client:
        with pytest.raises(PromptLost):
            await PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-l").resume()


async def test_node_dying_mid_job_is_transient(make_server):
    server = await make_server(job_time=2, cache_none=True, die_mid_job=True)
    async with ComfyClient(server.url, connect_timeout=1) as client:
        with pytest.raises((NodeUnreachable, PromptLost)) as caught:
            await PromptRun(
                client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-d", poll_interval=0.2
            ).run()
    assert caught.value.transient


def test_auth_header_forms():
    assert parse_auth_header("Authorization: Bearer abc") == {"Authorization": "Bearer abc"}
    assert parse_auth_header("X-Api-Key: k") == {"X-Api-Key": "k"}
    assert parse_auth_header("Bearer abc") == {"Authorization": "Bearer abc"}
    assert parse_auth_header("") == {}


async def test_auth_header_is_sent(make_server):
    import aiohttp.web

    seen = {}

    async def handler(request):
        seen["auth"] = request.headers.get("Authorization")
        return aiohttp.web.json_response({"queue_running": [], "queue_pending": []})

    app = aiohttp.web.Application()
    app.router.add_get("/queue", handler)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with ComfyClient(f"http://127.0.0.1:{port}", auth_header="Authorization: Bearer s3cret") as client:
            await client.queue()
    finally:
        await runner.cleanup()
    assert seen["auth"] == "Bearer s3cret"
