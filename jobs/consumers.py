"""WebSocket /ws/jobs/: live events of the user's jobs."""

from __future__ import annotations

import time

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.keys import still_live
from core.ws_consumer import LoopOnlyJsonWebsocketConsumer
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
        if settings.EVENT_TIMESTAMPS and "sent_at" in job:  # see notify.EventBatcher
            job = {**job, "relayed_at": time.time()}
        await self.send_json({"type": "job", "job": job})

    async def user_blocked(self, event):
        await self.send_json({"type": "blocked"})
        await self.close(code=4403)
