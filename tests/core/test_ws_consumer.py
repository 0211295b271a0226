"""core.ws_consumer skips channels' per-message database hop and still dispatches as
channels does. If a channels upgrade drops the hop (or changes dispatch), a test here fails:
then drop the override."""

from __future__ import annotations

import pytest
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from core.ws_consumer import LoopOnlyJsonWebsocketConsumer


class Relay:
    async def connect(self):
        await self.channel_layer.group_add("relay-test", self.channel_name)
        await self.accept()

    async def news_item(self, event):
        await self.send_json({"relayed": event["text"]})


class PlainConsumer(Relay, AsyncJsonWebsocketConsumer):
    pass


class LoopOnlyConsumer(Relay, LoopOnlyJsonWebsocketConsumer):
    pass


@pytest.fixture
def database_hops(monkeypatch):
    hops = []

    async def record():
        hops.append(1)

    async def untouched():
        pass

    monkeypatch.setattr("channels.consumer.aclose_old_connections", record)
    # websocket_disconnect tidies connections itself; keep these tests off the database
    monkeypatch.setattr("channels.generic.websocket.aclose_old_connections", untouched)
    return hops


async def relay_one(consumer_class) -> dict:
    comm = WebsocketCommunicator(consumer_class.as_asgi(), "/relay/")
    connected, _ = await comm.connect()
    assert connected
    await get_channel_layer().group_send("relay-test", {"type": "news.item", "text": "hello"})
    reply = await comm.receive_json_from(timeout=2)
    await comm.disconnect()
    return reply


async def test_channels_still_hops_to_the_database_thread_before_every_handler(database_hops):
    """What the override exists to skip: if this fails, channels dropped the hop."""
    assert await relay_one(PlainConsumer) == {"relayed": "hello"}
    assert len(database_hops) >= 2  # websocket.connect, news.item


async def test_our_consumer_runs_the_same_handlers_without_the_hop(database_hops):
    assert await relay_one(LoopOnlyConsumer) == {"relayed": "hello"}
    assert database_hops == []


async def test_a_message_without_a_handler_is_refused_as_channels_refuses_it():
    for consumer in (PlainConsumer(), LoopOnlyConsumer()):
        with pytest.raises(ValueError, match="No handler for message type no.such"):
            await consumer.dispatch({"type": "no.such"})
