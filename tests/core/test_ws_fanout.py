"""core.ws_fanout: a process joins a group once for all its local listeners."""

from __future__ import annotations

import asyncio

from channels.layers import get_channel_layer

from core.ws_fanout import fanout


class Listener:
    def __init__(self, fail: bool = False):
        self.messages: list[dict] = []
        self.fail = fail

    async def group_message(self, message: dict) -> None:
        if self.fail:
            raise RuntimeError("a broken socket")
        self.messages.append(message)


async def _until(predicate, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_listeners_of_a_group_share_one_membership_and_get_every_message_in_order(monkeypatch):
    layer = get_channel_layer()
    added = []
    real_group_add = layer.group_add

    async def counted_group_add(group, channel):
        added.append(group)
        await real_group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", counted_group_add)
    hub = fanout()
    listeners = [Listener() for _ in range(20)]
    broken = Listener(fail=True)
    await asyncio.gather(*(hub.join("user_1", listener) for listener in [*listeners[:10], broken, *listeners[10:]]))
    other = Listener()
    await hub.join("user_2", other)
    assert added == ["user_1", "user_2"]  # one membership per group, not per listener

    for n in range(5):
        await layer.group_send("user_1", {"type": "job.update", "job": {"n": n}})
    await _until(lambda: all(len(listener.messages) == 5 for listener in listeners))
    assert all([m["job"]["n"] for m in listener.messages] == [0, 1, 2, 3, 4] for listener in listeners)
    assert listeners[0].messages[0] is listeners[19].messages[0]  # the same dict: encoded once
    assert other.messages == []

    # A listener that left gets nothing more; the last one leaving ends the membership.
    hub.leave("user_1", listeners[0])
    await layer.group_send("user_1", {"type": "job.update", "job": {"n": 5}})
    await _until(lambda: len(listeners[1].messages) == 6)
    assert len(listeners[0].messages) == 5
    for listener in [*listeners[1:], broken]:
        hub.leave("user_1", listener)
    assert hub.listeners("user_1") == 0
    await asyncio.sleep(0.05)  # the membership's leave runs
    late = Listener()
    await hub.join("user_1", late)  # a new membership
    await layer.group_send("user_1", {"type": "job.update", "job": {"n": 6}})
    await _until(lambda: late.messages)
    assert [m["job"]["n"] for m in late.messages] == [6]
    assert added == ["user_1", "user_2", "user_1"]
    hub.leave("user_1", late)
    hub.leave("user_2", other)


async def test_a_failed_join_is_retried_by_the_next_listener(monkeypatch):
    layer = get_channel_layer()
    real_group_add = layer.group_add
    calls = []

    async def flaky_group_add(group, channel):
        calls.append(group)
        if len(calls) == 1:
            raise ConnectionError("Redis away")
        await real_group_add(group, channel)

    monkeypatch.setattr(layer, "group_add", flaky_group_add)
    hub = fanout()
    first = Listener()
    try:
        await hub.join("user_3", first)
    except ConnectionError:
        pass
    else:
        raise AssertionError("the join should have failed")
    second = Listener()
    await hub.join("user_3", second)
    await layer.group_send("user_3", {"type": "job.update", "job": {"n": 1}})
    await _until(lambda: second.messages)
    assert first.messages == [] and hub.listeners("user_3") == 1
    hub.leave("user_3", second)


async def test_messages_received_while_behind_are_coalesced_and_handed_on_in_order(settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [settings.REDIS_URL], "prefix": "cp:ws-fanout-test:asgi"},
        }
    }
    layer = get_channel_layer()
    release, entered = asyncio.Event(), asyncio.Event()

    class Slow(Listener):
        async def group_message(self, message):
            entered.set()
            await release.wait()  # the process is behind: the rest queue up meanwhile
            await super().group_message(message)

    batches = []

    def keep_last(messages):
        batches.append([m["job"]["n"] for m in messages])
        return messages[-1:]

    hub = fanout()
    slow = Slow()
    try:
        await hub.join("user_9", slow, coalesce=keep_last)
        for n in range(4):
            await layer.group_send("user_9", {"type": "job.update", "job": {"n": n}})
            if n == 0:
                await asyncio.wait_for(entered.wait(), 2)
        await asyncio.sleep(0.3)
        release.set()
        await asyncio.sleep(0.5)
        assert [m["job"]["n"] for m in slow.messages] == [0, 3], batches
        assert batches == [[1, 2, 3]]
    finally:
        hub.leave("user_9", slow)
        await asyncio.sleep(0.05)
        await layer.flush()
