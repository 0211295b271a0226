"""The ComfyUI client against the test ComfyUI: every call, and every typed error."""

from __future__ import annotations

import asyncio
import io
import socket
import uuid
from pathlib import Path

import aiohttp.web
import pytest
from PIL import Image

from nodes.comfy.client import ComfyClient, Uploaded, parse_auth_header
from nodes.comfy.errors import (
    BadResponse,
    ExecutionFailed,
    Interrupted,
    NodeMisconfigured,
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


async def test_a_closed_port_is_said_in_the_systems_words():
    """What the node's status shows an admin; also no "[...]" that a reader of the API could
    take for an IPv6 host in the URL it starts with."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ComfyClient(f"http://127.0.0.1:{port}", connect_timeout=1) as client:
        with pytest.raises(NodeUnreachable) as caught:
            await client.system_stats()
    assert str(caught.value) == (
        f"http://127.0.0.1:{port} is unreachable (ConnectionRefusedError: Connect call failed ('127.0.0.1', {port}))"
    )


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


@pytest.fixture
async def tiny_node():
    """Factory: ``await tiny_node({"GET /queue": handler})`` → the URL of an aiohttp server with
    those routes (for answers the test ComfyUI does not give: redirects, slow bytes)."""
    runners = []

    async def start(routes: dict) -> str:
        app = aiohttp.web.Application()
        for route, handler in routes.items():
            method, path = route.split(" ", 1)
            app.router.add_route(method, path, handler)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


def empty_queue(request):
    return aiohttp.web.json_response({"queue_running": [], "queue_pending": []})


async def test_auth_header_is_sent_on_every_request(tiny_node):
    seen = []

    async def record(request):
        seen.append((request.method, request.path, request.headers.get("Authorization")))
        if request.path == "/view":
            return aiohttp.web.Response(body=b"x")
        await request.read()
        return aiohttp.web.json_response({"queue_running": [], "prompt_id": "p", "name": "a.png"})

    url = await tiny_node(
        {"GET /queue": record, "POST /prompt": record, "GET /view": record, "POST /upload/image": record}
    )
    async with ComfyClient(url, auth_header="Authorization: Bearer s3cret") as client:
        await client.queue()
        await client.submit_prompt(TINY_GRAPH, client_id="c", prompt_id="p")
        await client.view("a.png")
        await client.upload_image(png(), "a.png")
    assert [auth for *_, auth in seen] == ["Bearer s3cret"] * 4


async def test_a_header_that_cannot_be_sent_fails_before_any_request(tiny_node):
    asked = []

    async def record(request):
        asked.append(request.path)
        return empty_queue(request)

    url = await tiny_node({"GET /queue": record})
    async with ComfyClient(url, auth_header="Authorization: Bearer caf\u00e9") as client:
        with pytest.raises(NodeMisconfigured, match="printable ASCII"):
            await client.queue()
    assert asked == []


async def test_a_redirect_is_not_followed(tiny_node):
    followed = []

    async def moved(request):
        raise aiohttp.web.HTTPFound("/elsewhere")

    async def elsewhere(request):
        followed.append(request.path)
        return empty_queue(request)

    url = await tiny_node({"GET /queue": moved, "GET /elsewhere": elsewhere})
    async with ComfyClient(url) as client:
        with pytest.raises(BadResponse) as caught:
            await client.queue()
    assert caught.value.status == 302 and followed == []


def slow_queue(seconds: float):
    async def handler(request):
        await asyncio.sleep(seconds)
        return empty_queue(request)

    return handler


async def test_a_per_call_timeout_overrides_the_read_timeout(tiny_node):
    url = await tiny_node({"GET /queue": slow_queue(1.0)})
    async with ComfyClient(url, read_timeout=30) as client:
        with pytest.raises(NodeTimeout):
            await client.queue(timeout=0.2)
    async with ComfyClient(url, read_timeout=0.2) as client:
        assert (await client.queue(timeout=10)).running == []


async def test_the_read_timeout_bounds_each_wait_not_the_whole_answer(tiny_node):
    """A large /view answer takes as long as its bytes keep coming (httpx's read timeout)."""

    async def trickle(request):
        response = aiohttp.web.StreamResponse()
        await response.prepare(request)
        for _ in range(8):
            await response.write(b"v" * 1000)
            await asyncio.sleep(0.15)
        await response.write_eof()
        return response

    url = await tiny_node({"GET /view": trickle})
    async with ComfyClient(url, read_timeout=0.6) as client:
        assert await client.view("clip.mp4") == b"v" * 8000


async def test_the_view_query_is_encoded_as_before(tiny_node):
    queries = []

    async def record(request):
        queries.append(request.raw_path)
        return aiohttp.web.Response(body=b"x")

    url = await tiny_node({"GET /view": record})
    async with ComfyClient(url) as client:
        await client.view("a b+c&é.png", subfolder="sub/dir", type="temp")
    assert queries == ["/view?filename=a+b%2Bc%26%C3%A9.png&subfolder=sub%2Fdir&type=temp"]


async def test_an_upload_arrives_with_its_name_type_and_bytes(make_server, tiny_node):
    server = await make_server()
    clip = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
    async with ComfyClient(server.url) as client:
        sent = await client.upload_image(clip, "cp clip é.mp4", subfolder="cp", content_type="video/mp4")
        assert sent == Uploaded(name="cp clip é.mp4", subfolder="cp", type="input")
        assert await client.view(sent.name, subfolder="cp", type="input") == clip
    assert (Path(server.data_dir) / "input" / "cp" / "cp clip é.mp4").read_bytes() == clip

    parts = []

    async def record(request):
        async for part in await request.multipart():
            parts.append((part.name, part.filename, part.headers.get("Content-Type"), await part.read()))
        return aiohttp.web.json_response({"name": "x", "subfolder": "", "type": "input"})

    url = await tiny_node({"POST /upload/image": record})
    async with ComfyClient(url) as client:
        await client.upload_image(clip, 'odd "name"\n.mp4', overwrite=True, content_type="video/mp4")
    assert [(name, filename) for name, filename, *_ in parts] == [
        ("type", None),
        ("overwrite", None),
        ("image", "odd %22name%22%0A.mp4"),  # escaped as browsers and httpx do: one header line
    ]
    assert [value for *_, value in parts[:2]] == [b"input", b"true"]
    assert parts[2][2:] == ("video/mp4", clip)
