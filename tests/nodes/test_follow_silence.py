"""Following a prompt over the node's socket: the socket opens before the prompt is posted,
and a socket that says nothing about our prompt counts as silent, however busy the node."""

from __future__ import annotations

import asyncio
import time
import uuid
from contextlib import asynccontextmanager

import aiohttp

from nodes.comfy.client import ComfyClient
from nodes.comfy.follow import PromptRun
from tests.factories import TINY_GRAPH
from tests.testcomfy.helpers import post_prompt, sampler_graph


class SocketOnlyAfterPost(ComfyClient):
    """A node whose socket handshake cannot finish before a prompt has been posted."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.posted = asyncio.Event()

    async def submit_prompt(self, *args, **kwargs):
        accepted = await super().submit_prompt(*args, **kwargs)
        self.posted.set()
        return accepted

    @asynccontextmanager
    async def websocket(self, client_id: str):
        await self.posted.wait()
        async with super().websocket(client_id) as ws:
            yield ws


async def test_the_socket_opens_before_the_prompt_is_posted(make_server):
    """Events go only to a socket open when they are sent (comfyui-protocol.md §8, §14.1)."""
    server = await make_server(cache_none=True)
    async with SocketOnlyAfterPost(server.url) as client:
        run = PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-s1")
        try:
            await asyncio.wait_for(run.run(), 1.0)
            raise AssertionError("the prompt was posted before its socket was open")
        except TimeoutError:
            assert not client.posted.is_set()


class EndsWhileTheSocketOpens(ComfyClient):
    """A resumed job whose prompt was still running when the node was asked, and ended while
    the socket was opening; then the node takes a long prompt without a client id, whose
    progress goes to every socket, ours included."""

    def __init__(self, *args, prompt_id: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.prompt_id = prompt_id

    @asynccontextmanager
    async def websocket(self, client_id: str):
        while await self.history(self.prompt_id) is None:
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as session:
            await post_prompt(session, self.base_url, sampler_graph(steps=80))  # 4 s of broadcasts
        async with super().websocket(client_id) as ws:
            yield ws


async def test_a_prompt_that_ended_while_its_socket_opened_is_collected_while_others_keep_the_node_busy(make_server):
    server = await make_server(cache_none=True, job_time=0.3, step_time=0.05)
    prompt_id = str(uuid.uuid4())
    async with EndsWhileTheSocketOpens(server.url, prompt_id=prompt_id) as client:
        await client.submit_prompt(TINY_GRAPH, client_id="comfyportal-s2", prompt_id=prompt_id)
        run = PromptRun(
            client,
            TINY_GRAPH,
            prompt_id=prompt_id,
            client_id="comfyportal-s2",
            poll_interval=0.1,
            silent_poll_after=0.5,
        )
        started = time.monotonic()
        entry = await asyncio.wait_for(run.resume(), 10)  # history: none yet; queue: running; then the socket
        elapsed = time.monotonic() - started
        assert (await client.queue()).running  # the other prompt still runs, talking on our socket
    assert entry["status"]["status_str"] == "success"
    assert elapsed < 2.5  # not once the other prompt has ended, 4 s on
