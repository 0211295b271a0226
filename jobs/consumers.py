"""WebSocket /ws/jobs/: live events of the user's jobs, resumable (docs/live-events.md).

On connect: accept at once (the handshake waits only for the login), join the user's
group, then send the snapshot — or, with `?since=<cursor>`, every change since — and a
`synced` message; then live events. A client may also ask again with {"type": "resume",
"since": <cursor>} at any time.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.keys import still_live
from core.ws_consumer import LoopOnlyJsonWebsocketConsumer
from core.ws_fanout import fanout
from jobs import catchup_batch
from jobs.catchup import BadCursor, parse_since
from jobs.catchup_batch import Delivery
from jobs.notify import superseded_ticks, user_group


async def _catch_up(user_id: int, raw_since) -> Delivery:
    try:
        since, malformed = parse_since(raw_since), ""
    except BadCursor as exc:
        since, malformed = None, str(exc)
    return await catchup_batch.batches.catch_up(user_id, since, malformed)


@database_sync_to_async
def _still_allowed(user) -> bool:
    from django.contrib.auth import get_user_model

    key = getattr(user, "api_key", None)  # a socket opened with an API key ends with the key
    if key is not None and not still_live(key.pk):
        return False
    return get_user_model().objects.filter(pk=user.pk, is_active=True, is_blocked=False).exists()


class JobsConsumer(LoopOnlyJsonWebsocketConsumer):
    """Relays job events without waiting for Django's sync thread (see core.ws_consumer).

    The process listens to each user's group once for all of that user's sockets
    (core.ws_fanout): a socket has no channel of its own, and an event is encoded once for
    all of them."""

    channel_layer_alias = "none: the sockets listen through core.ws_fanout"
    held: list[dict] | None = None  # group messages that came during a catch-up: sent after it

    async def __call__(self, scope, receive, send):
        try:
            await super().__call__(scope, receive, send)
        finally:  # however the socket ended
            if hasattr(self, "group"):
                fanout().leave(self.group, self)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or user.is_blocked:
            await self.close(code=4401)
            return
        await self.accept()
        self.group = user_group(user.pk)
        self.held = []
        # Joined before reading the database: a change committed after the read is a live event.
        await fanout().join(self.group, self, coalesce=without_superseded_ticks)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        await self._send_catch_up(query.get("since", [None])[0])

    async def _send_catch_up(self, raw_since) -> None:
        if self.held is None:
            self.held = []
        delivery = await _catch_up(self.scope["user"].pk, raw_since)
        for text in delivery.messages:  # encoded once for every socket of the user served with it
            await self.send(text_data=text)
        while self.held:  # then what happened meanwhile, in order
            held, self.held = self.held, []
            for message in held:
                await self._relay(message)
        self.held = None

    async def disconnect(self, code):
        if hasattr(self, "group"):
            fanout().leave(self.group, self)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if content.get("type") == "ping":
            if not await _still_allowed(self.scope["user"]):
                await self.close(code=4403)
                return
            await self.send_json({"type": "pong"})
        elif content.get("type") == "resume":
            await self._send_catch_up(content.get("since"))

    async def group_message(self, message: dict) -> None:
        """A message of the user's group (core.ws_fanout), the same dict for every socket."""
        if self.held is not None:
            self.held.append(message)
        else:
            await self._relay(message)

    async def _relay(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "job.update":
            job = message["job"]
            if settings.EVENT_TIMESTAMPS and "sent_at" in job:  # see notify.EventBatcher
                await self.send_json({"type": "job", "job": {**job, "relayed_at": time.time()}})
                return
            text = message.get(_ENCODED)
            if text is None:  # the first socket encodes it for the others
                text = message[_ENCODED] = json.dumps({"type": "job", "job": job})
            await self.send(text_data=text)
        elif kind == "user.blocked":
            await self.send_json({"type": "blocked"})
            await self.close(code=4403)


def without_superseded_ticks(messages: list[dict]) -> list[dict]:
    """Group messages received together (the process fell behind), without the progress ticks
    that a later event of the same job supersedes (jobs.notify.superseded_ticks): under load a
    job's end is not held back by stale progress. Numbered changes are never dropped."""
    dropped = superseded_ticks([m.get("job") if m.get("type") == "job.update" else None for m in messages])
    return [message for index, message in enumerate(messages) if index not in dropped]


_ENCODED = "_encoded"  # a group message's `job` message as text, kept in the message dict
