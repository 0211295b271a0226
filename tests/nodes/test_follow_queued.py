"""Following a prompt that waits behind another on its node: the socket opens while the
prompt is posted, no event of it is lost, and a prompt that ended before its socket opened
is still collected while the node stays busy with other work."""

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
    """A node whose socket handshake cannot finish before the prompt has been posted."""

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


async def test_behind_a_running_prompt_the_socket_opens_while_posting_and_no_event_is_lost(make_server):
    server = await make_server(job_time=0.4, cache_none=True)
    seen = []

    async def on_progress(progress):
        seen.append(progress.text)

    async with SocketOnlyAfterPost(server.url) as client, aiohttp.ClientSession() as session:
        await post_prompt(session, server.url, TINY_GRAPH, client_id="someone-else")  # runs for 0.4 s
        run = PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-q1",
                        on_progress=on_progress, queued_behind=True)
        entry = await asyncio.wait_for(run.run(), 5)
    assert entry["status"]["status_str"] == "success"
    assert {"EmptyImage", "ImageInvert", "SaveImage"} <= set(seen)  # every node's start, the first included


async def test_on_an_idle_node_the_socket_opens_before_the_prompt_is_posted(make_server):
    server = await make_server(cache_none=True)
    async with SocketOnlyAfterPost(server.url) as client:
        run = PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-q2")
        try:
            await asyncio.wait_for(run.run(), 1.0)
            raise AssertionError("posted before its socket was open")
        except TimeoutError:
            assert not client.posted.is_set()


class PromptEndsBeforeSocketOpens(SocketOnlyAfterPost):
    """The node runs the whole prompt before the socket's handshake completes; then it takes a
    long prompt without a client id, whose progress goes to every socket, ours included."""

    async def submit_prompt(self, graph, *, client_id, prompt_id, extra_data=None):
        accepted = await ComfyClient.submit_prompt(self, graph, client_id=client_id, prompt_id=prompt_id,
                                                   extra_data=extra_data)
        while await self.history(prompt_id) is None:
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as session:
            await post_prompt(session, self.base_url, sampler_graph(steps=80))  # 4 s of broadcasts
        self.posted.set()  # only now may the socket open
        return accepted


async def test_a_prompt_that_ended_before_its_socket_opened_is_collected_while_others_keep_the_node_busy(make_server):
    server = await make_server(cache_none=True, step_time=0.05)
    async with PromptEndsBeforeSocketOpens(server.url) as client:
        run = PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-q3",
                        queued_behind=True, poll_interval=0.1, silent_poll_after=0.5)
        started = time.monotonic()
        entry = await asyncio.wait_for(run.run(), 10)
        elapsed = time.monotonic() - started
        assert (await client.queue()).running  # the other prompt still runs, talking on our socket
    assert entry["status"]["status_str"] == "success"
    assert elapsed < 2.5  # not once the other prompt has ended, 4 s on
