"""Channels group messages added to a Redis pipeline: many in one round trip.

channels_redis's RedisPubSubChannelLayer.group_send publishes one message per round trip,
each behind a per-connection lock, so a process sending many events at once (the job runner
following a pool of busy nodes) makes them wait in line. `add_group_send` queues, on a
pipeline the caller sends, exactly the PUBLISH that `group_send` would make.

This module is the only code that knows the layer's wire format (a group's Redis channel
name and the serialized bytes). tests/core/test_channel_batch.py receives through a real
layer and fails when a channels_redis upgrade changes it; channels_redis is pinned exactly
in requirements.txt for this module.
"""

from __future__ import annotations

from channels.layers import get_channel_layer
from django.conf import settings

PUBSUB_LAYER = "channels_redis.pubsub.RedisPubSubChannelLayer"


def available() -> bool:
    """Whether group messages may be published directly: the default layer is the Redis
    pub/sub layer with one host, the Redis at REDIS_URL that our own clients connect to."""
    layer = settings.CHANNEL_LAYERS["default"]
    return layer["BACKEND"] == PUBSUB_LAYER and layer.get("CONFIG", {}).get("hosts") == [settings.REDIS_URL]


def add_group_send(pipe, group: str, message: dict) -> None:
    """Queue on `pipe` (a redis-py pipeline, sync or asyncio, to REDIS_URL) what
    `channel_layer.group_send(group, message)` would publish. Only when `available()`."""
    pipe.publish(_group_channel(group), get_channel_layer().serialize(message))


def _group_channel(group: str) -> str:
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    return f"{prefix}__group__{group}"
