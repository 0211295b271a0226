"""Job events published by hand (the runner's batches, a request thread's PUBLISH) arrive
exactly as the pub/sub channel layer's own group_send would deliver them."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from channels.layers import get_channel_layer

from jobs.notify import EventBatcher, send_job_event, user_group


async def sockets_of_users_7_and_8(settings):
    """The pub/sub layer, a socket in user 7's group and one in user 8's."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "cp:batcher-test:asgi"},
        }
    }
    layer = get_channel_layer()
    socket, stranger = await layer.new_channel(), await layer.new_channel()
    await layer.group_add(user_group(7), socket)
    await layer.group_add(user_group(8), stranger)
    return layer, socket, stranger


async def test_batched_events_reach_a_socket_of_the_users_group_in_order(settings):
    layer, socket, stranger = await sockets_of_users_7_and_8(settings)
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        batcher = EventBatcher(client)
        for progress in (0.25, 0.5, 0.75):
            batcher.send(7, {"id": "job-a", "progress": progress})
        await batcher.flush()  # one round trip for the three
        received = [await asyncio.wait_for(layer.receive(socket), 2) for _ in range(3)]
        assert received == [{"type": "job.update", "job": {"id": "job-a", "progress": p}} for p in (0.25, 0.5, 0.75)]
        await layer.group_send(user_group(8), {"type": "job.update", "job": {"id": "check"}})
        assert (await asyncio.wait_for(layer.receive(stranger), 2))["job"]["id"] == "check"  # user 8 saw none of 7's
    finally:
        await layer.flush()
        await client.aclose()


async def test_an_event_sent_from_a_request_thread_reaches_only_the_users_sockets(settings):
    layer, socket, stranger = await sockets_of_users_7_and_8(settings)
    try:
        await asyncio.to_thread(send_job_event, 7, {"id": "job-b", "status": "QUEUED"})  # sync code, as a view
        assert await asyncio.wait_for(layer.receive(socket), 2) == {
            "type": "job.update",
            "job": {"id": "job-b", "status": "QUEUED"},
        }
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(layer.receive(stranger), 0.3)
    finally:
        await layer.flush()


async def test_progress_events_are_stamped_only_when_event_timestamps_is_on(settings):
    layer, socket, _ = await sockets_of_users_7_and_8(settings)
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        batcher = EventBatcher(client)
        settings.EVENT_TIMESTAMPS = False
        batcher.send(7, {"id": "job-a", "event": "progress", "progress": 0.5})
        await batcher.flush()
        assert (await asyncio.wait_for(layer.receive(socket), 2))["job"] == {
            "id": "job-a",
            "event": "progress",
            "progress": 0.5,
        }
        settings.EVENT_TIMESTAMPS = True
        batcher.send(7, {"id": "job-a", "event": "progress", "progress": 0.75})
        batcher.send(7, {"id": "job-b", "event": "finished", "status": "DONE"})  # only progress is timed
        await batcher.flush()
        stamped, finished = [(await asyncio.wait_for(layer.receive(socket), 2))["job"] for _ in range(2)]
        assert stamped["sent_at"] <= stamped["published_at"] and stamped["progress"] == 0.75
        assert "sent_at" not in finished and "published_at" not in finished
    finally:
        await layer.flush()
        await client.aclose()


def test_a_batch_publishes_each_users_numbered_events_in_number_order():
    from jobs.notify import in_cursor_order

    batch = [
        (7, {"id": "b", "seq": 12, "status": "DONE"}),
        (8, {"id": "x", "seq": 3}),
        (7, {"id": "c", "event": "progress"}),  # a tick: not numbered, stays in place
        (7, {"id": "a", "seq": 11, "status": "DONE"}),
        (8, {"id": "y", "seq": 2}),
    ]
    assert [(user, event["id"]) for user, event in in_cursor_order(batch)] == [
        (7, "a"),
        (8, "y"),
        (7, "c"),
        (7, "b"),
        (8, "x"),
    ]


async def test_a_batch_leaves_out_progress_ticks_a_later_event_of_their_job_supersedes(settings):
    layer, socket, _ = await sockets_of_users_7_and_8(settings)
    client = aioredis.Redis.from_url(settings.REDIS_URL)
    try:
        batcher = EventBatcher(client)
        batcher.send(7, {"id": "a", "event": "progress", "progress": 0.25})
        batcher.send(7, {"id": "b", "event": "progress", "progress": 0.5})
        batcher.send(7, {"id": "a", "event": "progress", "progress": 0.75})
        batcher.send(7, {"id": "b", "seq": 4, "status": "DONE"})
        await batcher.flush()  # ready together: only the last word on each job goes out
        batcher.send(7, {"id": "a", "event": "progress", "progress": 0.9})  # a tick alone is sent
        await batcher.flush()
        received = [(await asyncio.wait_for(layer.receive(socket), 2))["job"] for _ in range(3)]
        assert received == [
            {"id": "a", "event": "progress", "progress": 0.75},
            {"id": "b", "seq": 4, "status": "DONE"},
            {"id": "a", "event": "progress", "progress": 0.9},
        ]
    finally:
        await layer.flush()
        await client.aclose()
