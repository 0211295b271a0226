"""One channel-layer membership per group and process, shared by the local sockets in it.

channels gives every consumer a channel of its own (with the Redis pub/sub layer, a SUBSCRIBE
and later an UNSUBSCRIBE per socket) and hands each group message to every member channel,
where it is deserialized, dispatched and handled once per socket. With many sockets of one
group in a process (the tabs of one person, on one web instance), a burst of events costs
that many times the work, and a thousand sockets reconnecting at once queue a thousand
subscriptions behind the layer's one connection lock.

Here the process joins each group once, on the first socket, and leaves it with the last;
each message of the group is received once and handed, the same dict, to every local
listener in the order received (when the process fell behind, what it received meanwhile
is handed on together, optionally coalesced). Listeners are any object with
`async def group_message(self, message: dict)`; they must not block.
Works with any channel layer (the tests' in-memory one included): it uses only the layer's
public API.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from channels.layers import get_channel_layer

from core import channel_batch

logger = logging.getLogger("comfyportal.core")


class _Membership:
    def __init__(self, layer, group: str, coalesce):
        self.layer, self.group, self.coalesce = layer, group, coalesce
        self.listeners: dict = {}  # listener → None (insertion-ordered set)
        self.channel: str | None = None
        self.relay: asyncio.Task | None = None
        self.joined = asyncio.ensure_future(self._join())

    async def _join(self) -> None:
        self.channel = await self.layer.new_channel()
        await self.layer.group_add(self.group, self.channel)
        self.relay = asyncio.ensure_future(self._relay())

    async def _relay(self) -> None:
        while True:
            batch = [await self.layer.receive(self.channel)]
            batch += channel_batch.take_received(self.layer, self.channel)  # when behind: all at once
            if len(batch) > 1 and self.coalesce is not None:
                batch = self.coalesce(batch)
            for message in batch:
                for listener in list(self.listeners):
                    try:
                        await listener.group_message(message)
                    except Exception:  # one socket's failure must not keep the message from the others
                        logger.exception("a listener of %s failed", self.group)

    async def leave(self) -> None:
        try:
            await self.joined
        except Exception:
            return
        if self.relay is not None:
            self.relay.cancel()  # (the pub/sub layer unsubscribes the channel when its receive is cancelled)
        await self.layer.group_discard(self.group, self.channel)


class GroupFanout:
    """The memberships of one event loop."""

    def __init__(self):
        self._memberships: dict[str, _Membership] = {}
        self._leaving: set[asyncio.Task] = set()

    async def join(self, group: str, listener, coalesce=None) -> None:
        """Returns once every message sent to `group` after this call reaches `listener`.
        `coalesce(messages) -> messages`: what to hand on of messages received together (the
        process fell behind), e.g. without those a later one supersedes; the first listener's
        applies to the group."""
        membership = self._memberships.get(group)
        if membership is None:
            membership = self._memberships[group] = _Membership(get_channel_layer(), group, coalesce)
            membership.joined.add_done_callback(lambda joined: self._forget_failed(group, membership))
        membership.listeners[listener] = None
        try:
            await asyncio.shield(membership.joined)
        except BaseException:
            self.leave(group, listener)
            raise

    def _forget_failed(self, group: str, membership: _Membership) -> None:
        """A membership whose join failed (Redis away): the next socket tries again."""
        if membership.joined.cancelled() or membership.joined.exception() is not None:
            if self._memberships.get(group) is membership:
                del self._memberships[group]

    def leave(self, group: str, listener) -> None:
        membership = self._memberships.get(group)
        if membership is None or listener not in membership.listeners:
            return
        del membership.listeners[listener]
        if not membership.listeners:
            del self._memberships[group]  # a socket joining from now on starts a new membership
            task = asyncio.ensure_future(membership.leave())
            self._leaving.add(task)
            task.add_done_callback(self._leaving.discard)

    def listeners(self, group: str) -> int:
        membership = self._memberships.get(group)
        return len(membership.listeners) if membership else 0


_per_loop: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def fanout() -> GroupFanout:
    """This event loop's memberships (the web process has one loop; tests make several)."""
    loop = asyncio.get_running_loop()
    current = _per_loop.get(loop)
    if current is None:
        current = _per_loop[loop] = GroupFanout()
    return current
