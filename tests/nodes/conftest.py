from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from testcomfy import TestComfy


@pytest.fixture
async def make_server(tmp_path) -> AsyncIterator[Any]:
    """``await make_server(job_time=1)`` → an in-process test ComfyUI (stopped after the test)."""
    servers: list[TestComfy] = []

    async def factory(**settings: Any) -> TestComfy:
        settings.setdefault("data_dir", str(tmp_path / f"node{len(servers)}"))
        settings.setdefault("step_time", 0.01)
        server = TestComfy(**settings)
        await server.start(port=0)
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()
