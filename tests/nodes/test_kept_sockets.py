"""Prompt sockets kept between prompts and connected ahead (`ComfyClient(keep_sockets=True)`).

A runner's prompt must not wait for a WebSocket to connect: each node's client keeps the
socket of a prompt that ended cleanly and connects one ahead, each under its own client id
(protocol §8: never two sockets with one id)."""

from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager

from nodes.comfy.client import ComfyClient
from nodes.comfy.follow import PromptRun, output_images
from tests.factories import TINY_GRAPH


class CountingClient(ComfyClient):
    """Counts the WebSocket connections it opens, and which of them were opened for a prompt
    that waited for them (not ahead)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, keep_sockets=True, client_id_prefix="comfyportal-", **kwargs)
        self.opened: list[str] = []

    @asynccontextmanager
    async def websocket(self, client_id: str):
        self.opened.append(client_id)
        async with super().websocket(client_id) as ws:
            yield ws


async def run_prompt(client: ComfyClient) -> tuple[PromptRun, dict]:
    run = PromptRun(client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id=f"comfyportal-{uuid.uuid4().hex}")
    return run, await run.run()


async def test_prompts_one_after_another_reuse_the_sockets_and_never_wait_for_a_connection(make_server):
    server = await make_server(job_time=0.02, cache_none=True)
    async with CountingClient(server.url) as client:
        runs = [await run_prompt(client) for _ in range(5)]
        # The first prompt connected for itself and one socket ahead; none connected since.
        assert len(client.opened) == 2
        for run, entry in runs:  # every prompt followed on its socket to the end, outputs included
            assert run.socket_saw_end and not run.socket_dropped
            assert output_images(entry)
            assert run.client_id in client.opened  # posted under the id of the socket it used


async def test_two_prompts_at_once_on_one_node_each_have_their_own_socket_and_outputs(make_server):
    server = await make_server(job_time=0.1, cache_none=True)
    async with CountingClient(server.url) as client:
        await run_prompt(client)  # warm: a socket kept and one connected ahead
        await asyncio.sleep(0.1)
        opened = len(client.opened)
        (first, first_entry), (second, second_entry) = await asyncio.gather(run_prompt(client), run_prompt(client))
        assert len(client.opened) == opened + 1  # only the one connected ahead again, after both were taken
        assert first.client_id != second.client_id  # never two sockets with one client id (protocol §8)
        for run, entry in ((first, first_entry), (second, second_entry)):
            assert run.socket_saw_start and run.socket_saw_end and not run.socket_dropped
            history = await client.history(run.prompt_id)
            assert entry["outputs"] == history["outputs"]  # each got its own prompt's outputs


async def test_a_kept_socket_the_node_closed_is_not_used(make_server):
    server = await make_server(job_time=0.02, cache_none=True)
    async with CountingClient(server.url) as client:
        first, _ = await run_prompt(client)
        await asyncio.sleep(0.1)  # the one connected ahead is ready too
        for ws in list(server.hub.sockets.values()):  # e.g. the node restarted
            await ws.close()
        await asyncio.sleep(0.1)
        run, entry = await run_prompt(client)
        assert run.socket_saw_end and not run.socket_dropped  # followed on a fresh socket, not polled
        assert run.client_id not in (first.client_id,) and output_images(entry)


async def test_a_socket_that_drops_during_a_prompt_falls_back_to_polling_and_is_not_kept(make_server):
    server = await make_server(job_time=0.6, cache_none=True)
    async with CountingClient(server.url) as client:
        await run_prompt(client)
        run = PromptRun(
            client, TINY_GRAPH, prompt_id=str(uuid.uuid4()), client_id="comfyportal-unused", poll_interval=0.1
        )
        task = asyncio.create_task(run.run())
        while not run.submitted:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await server.hub.sockets[run.client_id].close()  # the socket this prompt is followed on
        entry = await task
        assert run.socket_dropped and output_images(entry)  # finished by polling /history
        assert run.client_id not in [sock.client_id for sock in client._idle_sockets]
