"""WebSocket registry and message pump, with ComfyUI's routing rules and hazards.

Messages go through one queue so every socket sees them in emission order. A socket is
registered under its clientId; a second socket with the same id replaces the first, and
when the first closes it removes the registry entry, silencing the second (as the real
server does). Broadcasts go to registered sockets only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger("testcomfy.hub")
BINARY_TEXT = 3


class Hub:
    """Sockets by sid plus the pump task; ``gate`` is awaited before every send (hang mode)."""

    def __init__(
        self, features: Callable[[], dict[str, Any]], queue_info: Callable[[], dict[str, Any]], gate: Callable[[], Any]
    ):
        self.features = features
        self.queue_info = queue_info
        self.gate = gate
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.metadata: dict[str, dict[str, Any]] = {}
        self.client_id: str | None = None  # client of the prompt now executing
        self.last_node_id: str | None = None
        self._queue: asyncio.Queue[tuple[Any, Any, str | None]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._pump())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for ws in list(self.sockets.values()):
            await ws.close()

    def send_sync(self, event: Any, data: Any, sid: str | None = None) -> None:
        """Queue a message (JSON for a str event, binary for an int event)."""
        self._queue.put_nowait((event, data, sid))

    def send_threadsafe(self, event: Any, data: Any, sid: str | None = None) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.send_sync, event, data, sid)

    def send_text(self, node_id: str, text: str, sid: str | None = None) -> None:
        """A binary TEXT frame (GetImageSize's); callable from worker threads."""
        node = node_id.encode()
        self.send_threadsafe(BINARY_TEXT, struct.pack(">I", len(node)) + node + text.encode(), sid)

    def queue_updated(self) -> None:
        self.send_sync("status", {"status": self.queue_info()})

    async def _pump(self) -> None:
        while True:
            event, data, sid = await self._queue.get()
            await self.gate()
            await self._send(event, data, sid)

    async def _send(self, event: Any, data: Any, sid: str | None) -> None:
        if isinstance(event, int):
            frame: bytes | str = struct.pack(">I", event) + data
        else:
            frame = json.dumps({"type": event, "data": data})
        targets = list(self.sockets.values()) if sid is None else [self.sockets[sid]] if sid in self.sockets else []
        for ws in targets:
            try:
                if isinstance(frame, bytes):
                    await ws.send_bytes(frame)
                else:
                    await ws.send_str(frame)
            except (ConnectionError, RuntimeError) as exc:  # socket went away mid-send
                log.debug("send failed: %s", exc)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The /ws endpoint."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.rel_url.query.get("clientId", "")
        if sid:
            self.sockets.pop(sid, None)
        else:
            sid = uuid.uuid4().hex
        self.sockets[sid] = ws
        self.metadata[sid] = {"feature_flags": {}}
        try:
            await self.gate()
            await self._send("status", {"status": self.queue_info(), "sid": sid}, sid)
            if self.client_id == sid and self.last_node_id is not None:
                await self._send("executing", {"node": self.last_node_id}, sid)
            first = True
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    try:
                        data = json.loads(msg.data)
                        if first and isinstance(data, dict) and data.get("type") == "feature_flags":
                            self.metadata.setdefault(sid, {})["feature_flags"] = data.get("data", {})
                            await self._send("feature_flags", self.features(), sid)
                    except json.JSONDecodeError:
                        pass
                    first = False
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self.sockets.pop(sid, None)
            self.metadata.pop(sid, None)
        return ws
