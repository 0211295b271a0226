"""core.channel_batch publishes exactly what channels_redis's pub/sub layer delivers.

These tests receive through a real RedisPubSubChannelLayer: if a channels_redis upgrade
changes its wire format (a group's Redis channel, the serialized bytes), they fail."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio as aioredis
from channels.layers import get_channel_layer

from core import channel_batch

MESSAGES = [
    {"type": "job.update", "job": {"id": "job-a", "progress": 0.25, "text": "é ✓", "node": None}},
    {"type": "job.update", "job": {"id": "job-a", "progress": 0.5, "sizes": [1, 2.5], "done": False}},
    {"type": "user.blocked"},
]


@pytest.fixture
def pubsub_layer(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "cp:channel-batch-test:asgi"},
        }
    }
    return get_channel_layer()


async def group_member(layer, group: str) -> str:
    channel = await layer.new_channel()
    await layer.group_add(group, channel)
    return channel


async def test_messages_from_an_async_pipeline_arrive_as_group_send_delivers_them(pubsub_layer, settings):
    assert channel_batch.available()
    socket = await group_member(pubsub_layer, "user_7")
    stranger = await group_member(pubsub_layer, "user_8")
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        pipe = client.pipeline(transaction=False)
        for message in MESSAGES:
            channel_batch.add_group_send(pipe, "user_7", message)
        await pipe.execute()  # one round trip for all
        received = [await asyncio.wait_for(pubsub_layer.receive(socket), 2) for _ in MESSAGES]
        assert received == MESSAGES
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(pubsub_layer.receive(stranger), 0.3)
    finally:
        await pubsub_layer.flush()
        await client.aclose()


async def test_messages_from_a_sync_pipeline_arrive_like_the_layers_own(pubsub_layer, settings):
    socket = await group_member(pubsub_layer, "user_7")

    def publish_from_a_thread():
        pipe = redis.Redis.from_url(settings.REDIS_URL).pipeline(transaction=False)
        channel_batch.add_group_send(pipe, "user_7", MESSAGES[0])
        pipe.execute()

    try:
        await asyncio.to_thread(publish_from_a_thread)
        await pubsub_layer.group_send("user_7", MESSAGES[1])  # the layer's own, for comparison
        assert [await asyncio.wait_for(pubsub_layer.receive(socket), 2) for _ in range(2)] == MESSAGES[:2]
    finally:
        await pubsub_layer.flush()


def test_only_the_pubsub_layer_on_our_own_redis_can_be_batched(settings):
    redis_layer = "channels_redis.pubsub.RedisPubSubChannelLayer"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": redis_layer, "CONFIG": {"hosts": [settings.REDIS_URL]}}}
    assert channel_batch.available()
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert not channel_batch.available()
    other_redis = {"hosts": ["redis://10.0.0.9:6379/0"]}
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": redis_layer, "CONFIG": other_redis}}
    assert not channel_batch.available()
    sharded = {"hosts": [settings.REDIS_URL, "redis://10.0.0.9:6379/0"]}  # the layer hashes groups over hosts
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": redis_layer, "CONFIG": sharded}}
    assert not channel_batch.available()


async def test_what_the_layer_received_for_a_channel_is_taken_at_once_in_order(pubsub_layer):
    socket = await group_member(pubsub_layer, "user_7")
    try:
        for message in MESSAGES:
            await pubsub_layer.group_send("user_7", message)
        first = await asyncio.wait_for(pubsub_layer.receive(socket), 2)
        await asyncio.sleep(0.3)  # the layer reads the rest from Redis meanwhile
        assert [first, *channel_batch.take_received(pubsub_layer, socket)] == MESSAGES
        assert channel_batch.take_received(pubsub_layer, socket) == []  # taken: not handed out twice
        assert channel_batch.take_received(pubsub_layer, "no-such-channel") == []
    finally:
        await pubsub_layer.flush()


async def test_other_layers_hand_messages_out_one_by_one(settings):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.send(channel, MESSAGES[0])
    assert channel_batch.take_received(layer, channel) == []
    assert await layer.receive(channel) == MESSAGES[0]
