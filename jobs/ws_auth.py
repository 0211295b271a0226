"""`?token=<access token or API key>` for WebSocket clients that cannot send cookies (programs)."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.db import database_sync_to_async

from accounts.auth import user_from_bearer
from core.errors import Forbidden


@database_sync_to_async
def _user_for(token: str):
    try:
        return user_from_bearer(token, scope="jobs:read")
    except Forbidden:
        return None


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        token = parse_qs(scope.get("query_string", b"").decode()).get("token", [None])[0]
        if token:
            user = await _user_for(token)
            if user is not None:
                scope = {**scope, "user": user}
        return await self.inner(scope, receive, send)
