"""Every fault mode, in-process through /__control__ and as CLI flags of a subprocess."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from testcomfy.process import spawn

from .helpers import SIMPLE, run_prompt, sampler_graph


async def control(session: aiohttp.ClientSession, url: str, **changes) -> dict:
    async with session.post(url + "/__control__", json=changes) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_control_state_roundtrip(server, session) -> None:
    async with session.get(server.url + "/__control__") as r:
        state = await r.json()
    assert state["refuse"] is False and state["job_time"] == 0.0
    async with session.post(server.url + "/__control__", json={"bogus": 1}) as r:
        assert r.status == 400


async def test_job_time_makes_every_prompt_last(server, session) -> None:
    await control(session, server.url, job_time=0.4)
    started = time.monotonic()
    entry, _ = await run_prompt(session, server.url, SIMPLE)
    assert time.monotonic() - started >= 0.4
    assert entry["status"]["status_str"] == "success"


async def test_job_time_stretches_sampler_progress(server, session) -> None:
    await control(session, server.url, job_time=0.3)
    started = time.monotonic()
    _, messages = await run_prompt(session, server.url, sampler_graph(steps=3))
    assert time.monotonic() - started >= 0.3
    assert [m["data"]["value"] for m in messages if m["type"] == "progress"] == [1, 2, 3]


async def test_refuse_and_recover(server, session) -> None:
    await control(session, server.url, refuse=True)
    await asyncio.sleep(0.1)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(server.url + "/system_stats", timeout=aiohttp.ClientTimeout(total=2)):
            pass
    server.control({"recover": True})
    await asyncio.sleep(0.05)
    async with session.get(server.url + "/system_stats") as r:
        assert r.status == 200


async def test_refuse_for_seconds_recovers_by_itself(server, session) -> None:
    await control(session, server.url, refuse=0.3)
    await asyncio.sleep(0.1)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(server.url + "/queue", timeout=aiohttp.ClientTimeout(total=2)):
            pass
    await asyncio.sleep(0.4)
    async with session.get(server.url + "/queue") as r:
        assert r.status == 200


async def test_hang_stalls_http_and_websocket(server, session) -> None:
    async with session.ws_connect(server.url + "/ws?clientId=h1") as ws:
        await ws.receive_json()
        await control(session, server.url, hang=True)
        with pytest.raises(asyncio.TimeoutError):
            async with session.get(server.url + "/queue", timeout=aiohttp.ClientTimeout(total=0.3)):
                pass
        server.queue.on_update()  # a broadcast while hung must not arrive
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive_json(timeout=0.3)
        await control(session, server.url, hang=False)
        assert (await ws.receive_json(timeout=2))["type"] == "status"
    async with session.get(server.url + "/queue") as r:
        assert r.status == 200


async def test_execution_error_matches_recorded_shape(server, session) -> None:
    await control(session, server.url, execution_error=1)
    entry, messages = await run_prompt(session, server.url, SIMPLE)
    error = next(m for m in messages if m["type"] == "execution_error")["data"]
    assert list(error) == [
        "prompt_id",
        "node_id",
        "node_type",
        "executed",
        "exception_message",
        "exception_type",
        "traceback",
        "current_inputs",
        "current_outputs",
        "timestamp",
    ]
    assert error["exception_message"].endswith("\n") and all(isinstance(t, str) for t in error["traceback"])
    assert entry["status"] == {"status_str": "error", "completed": False, "messages": entry["status"]["messages"]}
    assert entry["status"]["messages"][-1][0] == "execution_error"
    second, _ = await run_prompt(
        session,
        server.url,
        {**SIMPLE, "3": {**SIMPLE["3"], "inputs": {**SIMPLE["3"]["inputs"], "filename_prefix": "again"}}},
    )
    assert second["status"]["status_str"] == "success"


async def test_slow_system_stats(server, session) -> None:
    await control(session, server.url, slow_system_stats=0.3)
    started = time.monotonic()
    async with session.get(server.url + "/system_stats") as r:
        assert r.status == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("kind", ["html", "json"])
async def test_garbage(server, session, kind: str) -> None:
    await control(session, server.url, garbage=kind)
    for path in ("/system_stats", "/queue"):
        async with session.get(server.url + path) as r:
            assert r.status == 200
            with pytest.raises((aiohttp.ContentTypeError, ValueError)):
                await r.json()
    await control(session, server.url, garbage=None)
    async with session.get(server.url + "/queue") as r:
        assert (await r.json()) == {"queue_running": [], "queue_pending": []}


async def test_die_mid_job_in_process_goes_silent(make_server, session) -> None:
    server = await make_server(step_time=0.02)
    await control(session, server.url, die_mid_job=True)
    async with session.ws_connect(server.url + "/ws?clientId=d1") as ws:
        await ws.receive_json()
        async with session.post(
            server.url + "/prompt", json={"prompt": sampler_graph(steps=3), "client_id": "d1"}
        ) as r:
            assert r.status == 200
        while (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.TEXT:
            pass
    assert server.dead
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(server.url + "/queue", timeout=aiohttp.ClientTimeout(total=2)):
            pass


@pytest.mark.integration
def test_subprocess_die_mid_job_and_restart(tmp_path) -> None:
    import json
    import urllib.request

    handle = spawn(port=0, data_dir=str(tmp_path), step_time=0.05, die_mid_job=True)
    try:
        body = json.dumps({"prompt": sampler_graph(steps=20)}).encode()
        urllib.request.urlopen(urllib.request.Request(handle.url + "/prompt", data=body, method="POST"), timeout=5)
        handle.process.wait(10)
        assert handle.process.returncode == 1
        handle.restart(step_time=0.01)
        with urllib.request.urlopen(handle.url + "/queue", timeout=5) as r:
            assert json.loads(r.read()) == {"queue_running": [], "queue_pending": []}
    finally:
        handle.kill()
    assert not handle.alive()


@pytest.mark.integration
def test_subprocess_flags_refuse_and_garbage(tmp_path) -> None:
    import urllib.error
    import urllib.request

    handle = spawn(port=0, data_dir=str(tmp_path), refuse=True, garbage="html")
    try:
        with pytest.raises(urllib.error.URLError):
            urllib.request.urlopen(handle.url + "/queue", timeout=2)
        handle.recover()
        for _ in range(100):
            try:
                with urllib.request.urlopen(handle.url + "/queue", timeout=2) as r:
                    assert r.headers["Content-Type"].startswith("text/html")
                    break
            except urllib.error.URLError:
                time.sleep(0.05)
        else:
            raise AssertionError("never recovered")
        handle.terminate()
        assert not handle.alive()
    finally:
        handle.kill()
