"""WebSocket /ws/jobs/: live events of the user's jobs."""

from __future__ import annotations

import time

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from jobs.models import Job
from jobs.notify import user_group
from jobs.presenters import for_presenting, present_jobs


@database_sync_to_async
def _active_jobs(user) -> list[dict]:
    jobs = for_presenting(Job.objects.filter(user=user, status__in=Job.ACTIVE))
    return present_jobs(jobs[:200])


@database_sync_to_async
def _still_allowed(user) -> bool:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user.pk, is_active=True, is_blocked=False).exists()


class JobsConsumer(AsyncJsonWebsocketConsumer):
    async def dispatch(self, message):
        """Handle a message without channels' per-message `close_old_connections()` hop.

        That hop runs in the one thread that also runs Django's sync views, so a burst of
        HTTP requests (people submitting jobs) would hold back every live progress event.
        Our handlers that touch the database go through `database_sync_to_async`, which
        closes stale connections itself.
        """
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or user.is_blocked:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for job in await _active_jobs(user):
            await self.send_json({"type": "job", "job": job})

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if content.get("type") == "ping":
            if not await _still_allowed(self.scope["user"]):
                await self.close(code=4403)
                return
            await self.send_json({"type": "pong"})

    async def job_update(self, event):
        job = event["job"]
        if "sent_at" in job:  # progress events: stamp the hop through the web tier (benchmark figures)
            job = {**job, "relayed_at": time.time()}
        await self.send_json({"type": "job", "job": job})

    async def user_blocked(self, event):
        await self.send_json({"type": "blocked"})
        await self.close(code=4403)
