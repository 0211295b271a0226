"""WebSocket /ws/jobs/: live events of the user's jobs, resumable (docs/live-events.md).

On connect: accept at once (the handshake waits only for the login), join the user's
group, then send the snapshot — or, with `?since=<cursor>`, every change since — and a
`synced` message; then live events. A client may also ask again with {"type": "resume",
"since": <cursor>} at any time.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.keys import still_live
from core.ws_consumer import LoopOnlyJsonWebsocketConsumer
from jobs import catchup_batch
from jobs.catchup import BadCursor, parse_since
from jobs.catchup_batch import Delivery
from jobs.notify import user_group


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
    """Relays job events without waiting for Django's sync thread (see core.ws_consumer)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or user.is_blocked:
            await self.close(code=4401)
            return
        await self.accept()
        self.group = user_group(user.pk)
        # Joined before reading the database: a change committed after the read is a live event.
        await self.channel_layer.group_add(self.group, self.channel_name)
        query = parse_qs(self.scope.get("query_string", b"").decode())
        await self._send_catch_up(query.get("since", [None])[0])

    async def _send_catch_up(self, raw_since) -> None:
        delivery = await _catch_up(self.scope["user"].pk, raw_since)
        for text in delivery.messages:  # encoded once for every socket of the user served with it
            await self.send(text_data=text)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

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

    async def job_update(self, event):
        job = event["job"]
        if settings.EVENT_TIMESTAMPS and "sent_at" in job:  # see notify.EventBatcher
            job = {**job, "relayed_at": time.time()}
        await self.send_json({"type": "job", "job": job})

    async def user_blocked(self, event):
        await self.send_json({"type": "blocked"})
        await self.close(code=4403)
