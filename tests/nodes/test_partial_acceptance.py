"""A prompt the node accepts only in part (200 with `node_errors`) is a rejection: the run raises
with the rejection summary and takes its prompt off the node, and nothing else."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from nodes.comfy.client import ComfyClient
from nodes.comfy.errors import PromptPartlyRejected, PromptRejected
from nodes.comfy.follow import PromptRun
from tests.factories import TINY_GRAPH

# The shape recorded in errors.jsonl: output 3 is valid, output 5 is behind an ImageScale over its max.
PARTLY_VALID = {
    **TINY_GRAPH,
    "4": {
        "class_type": "ImageScale",
        "inputs": {
            "image": ["1", 0],
            "upscale_method": "nearest-exact",
            "width": 99999,
            "height": 8,
            "crop": "disabled",
        },
    },
    "5": {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "b"}},
}


async def history_of(client: ComfyClient, prompt_id: str, timeout: float = 5) -> dict | None:
    """The prompt's history entry once it has ended (None if it never appears)."""
    for _ in range(int(timeout / 0.05)):
        entry = await client.history(prompt_id)
        if entry is not None:
            return entry
        await asyncio.sleep(0.05)
    return None


async def test_a_running_partial_prompt_is_interrupted_and_rejected(make_server):
    server = await make_server(job_time=3, cache_none=True)
    prompt_id = str(uuid.uuid4())
    async with ComfyClient(server.url) as client:
        with pytest.raises(PromptPartlyRejected) as caught:
            await PromptRun(client, PARTLY_VALID, prompt_id=prompt_id, client_id="comfyportal-p").run()
        assert isinstance(caught.value, PromptRejected)  # handled as a refused prompt
        assert caught.value.message.startswith("ComfyUI rejected the workflow — node 4 (ImageScale)")
        assert "99999" in caught.value.message and "width" in caught.value.message
        assert prompt_id not in (await client.queue()).prompt_ids
        entry = await history_of(client, prompt_id)
    assert entry is not None and entry["status"]["status_str"] == "error"
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    assert "3" not in entry["outputs"]  # stopped well before the valid output was saved


async def test_a_pending_partial_prompt_is_dequeued_and_the_running_one_is_left_alone(make_server):
    server = await make_server(job_time=1, cache_none=True)
    other, ours = str(uuid.uuid4()), str(uuid.uuid4())
    async with ComfyClient(server.url) as client:
        await client.submit_prompt(TINY_GRAPH, client_id="someone-else", prompt_id=other)
        with pytest.raises(PromptPartlyRejected):
            await PromptRun(client, PARTLY_VALID, prompt_id=ours, client_id="comfyportal-q").run()
        assert ours not in (await client.queue()).prompt_ids
        finished = await history_of(client, other)
        assert finished is not None and finished["status"]["status_str"] == "success"
        assert await client.history(ours) is None  # it never ran
