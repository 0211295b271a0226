"""`?token=<access token>` for WebSocket clients that cannot send cookies (programs)."""

from __future__ import annotations

from urllib.parse import parse_qs

from accounts.auth import user_from_access_token
from core.errors import Forbidden
from jobs import ws_threads


def _user_for(token: str):
    try:
        return user_from_access_token(token)
    except Forbidden:
        return None


class TokenAuthMiddleware:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        token = parse_qs(scope.get("query_string", b"").decode()).get("token", [None])[0]
        if token:
            user = await ws_threads.run(_user_for, token)  # not through Django's one sync thread
            if user is not None:
                scope = {**scope, "user": user}
        return await self.inner(scope, receive, send)
