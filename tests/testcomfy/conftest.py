"""Fixtures for the test ComfyUI server's own tests (no database needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from testcomfy import TestComfy


@pytest.fixture
async def make_server(tmp_path) -> AsyncIterator[Any]:
    """Factory: ``await make_server(job_time=1)`` → a started in-process server (stopped after the test)."""
    servers: list[TestComfy] = []

    async def factory(**settings: Any) -> TestComfy:
        settings.setdefault("data_dir", str(tmp_path / f"server{len(servers)}"))
        settings.setdefault("step_time", 0.01)
        server = TestComfy(**settings)
        await server.start(port=0)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


@pytest.fixture
async def server(make_server) -> TestComfy:
    return await make_server()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s
