"""Channels group messages added to a Redis pipeline: many in one round trip; and the
messages a pub/sub layer has already received for a channel, taken at once.

channels_redis's RedisPubSubChannelLayer.group_send publishes one message per round trip,
each behind a per-connection lock, so a process sending many events at once (the job runner
following a pool of busy nodes) makes them wait in line. `add_group_send` queues, on a
pipeline the caller sends, exactly the PUBLISH that `group_send` would make.

A web process that fell behind (a burst of events on a loaded machine) may skip progress
ticks that a later event of the same job supersedes (core.ws_fanout): `take_received` hands
over every message the layer has already read for a channel, not only the next one.

This module is the only code that knows the layer's wire format (a group's Redis channel
name and the serialized bytes) and where it keeps what it received (a queue per channel). tests/core/test_channel_batch.py receives through a real
layer and fails when a channels_redis upgrade changes it; channels_redis is pinned exactly
in requirements.txt for this module.
"""

from __future__ import annotations

import asyncio

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


def take_received(layer, channel: str) -> list[dict]:
    """The messages the pub/sub layer has received for `channel` and not yet handed out,
    deserialized and removed, in order; [] with any other layer (then they come one by one
    through `layer.receive`)."""
    loop_layers = getattr(layer, "_layers", None)
    if not isinstance(loop_layers, dict):
        return []
    loop_layer = loop_layers.get(asyncio.get_running_loop())
    queue = getattr(loop_layer, "channels", {}).get(channel)
    if not isinstance(queue, asyncio.Queue):
        return []
    taken = []
    while not queue.empty():
        taken.append(layer.deserialize(queue.get_nowait()))
    return taken
