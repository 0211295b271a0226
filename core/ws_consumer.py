"""A Channels consumer whose messages never wait for Django's sync thread.

channels' `AsyncConsumer.dispatch` calls `aclose_old_connections()` before every handler: a
hop into the one thread that also runs Django's sync code, so a burst of HTTP requests
would hold back every live event the consumer relays. Channels offers no switch for it, so
`dispatch` is overridden here, in this one module. Handlers of a subclass must reach the
database only through `database_sync_to_async`, which closes stale connections itself.

tests/core/test_ws_consumer.py fails when a channels upgrade changes `dispatch` (its hop, or
how it finds handlers); channels is pinned exactly in requirements.txt for this module.
"""

from __future__ import annotations

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer


class LoopOnlyJsonWebsocketConsumer(AsyncJsonWebsocketConsumer):
    async def dispatch(self, message):
        """channels' dispatch without the per-message database hop."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
