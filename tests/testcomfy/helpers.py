"""Small async helpers for talking to a test server in tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp

SIMPLE = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0xFF0000}},
    "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "t/simple"}},
}


def sampler_graph(steps: int = 4, seed: int = 7, width: int = 64, height: int = 64) -> dict[str, Any]:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": width, "height": height, "batch_size": 1}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}},
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["4", 0],
                "seed": seed,
                "steps": steps,
                "cfg": 7.0,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
                "denoise": 1.0,
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "sampled"}},
    }


async def post_prompt(
    session: aiohttp.ClientSession, url: str, prompt: dict[str, Any], client_id: str | None = None, **extra: Any
) -> tuple[int, dict[str, Any]]:
    body: dict[str, Any] = {"prompt": prompt, "prompt_id": str(uuid.uuid4()), **extra}
    if client_id:
        body["client_id"] = client_id
    async with session.post(url + "/prompt", json=body) as r:
        return r.status, await r.json()


async def collect_until_done(ws: aiohttp.ClientWebSocketResponse, prompt_id: str, timeout: float = 10) -> list[Any]:
    """Messages (dicts, or ("binary", type) tuples) up to ``executing`` with node null for ``prompt_id``."""
    out: list[Any] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.BINARY:
                out.append(("binary", int.from_bytes(msg.data[:4], "big")))
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"socket ended: {msg}")
            data = json.loads(msg.data)
            out.append(data)
            if data["type"] == "executing" and data["data"]["node"] is None and data["data"]["prompt_id"] == prompt_id:
                return out


async def run_prompt(
    session: aiohttp.ClientSession, url: str, prompt: dict[str, Any], timeout: float = 10
) -> tuple[dict[str, Any], list[Any]]:
    """Submit with a fresh socket, wait for completion; returns (history entry, messages)."""
    client_id = str(uuid.uuid4())
    async with session.ws_connect(f"{url}/ws?clientId={client_id}") as ws:
        await ws.receive_json()
        status, body = await post_prompt(session, url, prompt, client_id)
        assert status == 200, body
        messages = await collect_until_done(ws, body["prompt_id"], timeout)
    async with session.get(f"{url}/history/{body['prompt_id']}") as r:
        history = await r.json()
    return history[body["prompt_id"]], messages


def types(messages: list[Any]) -> list[str]:
    return [m["type"] if isinstance(m, dict) else "binary" for m in messages]
