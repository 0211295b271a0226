"""Who a /ws/jobs/ socket belongs to: the session cookie (pages) or `?token=<access token or API key>`
(programs, which cannot send cookies). Both are read on the /ws/jobs/ threads
(jobs.ws_threads), not through the one thread of Django's sync code that channels' own
AuthMiddleware hops to: after a web restart a thousand tabs log in at once."""

from __future__ import annotations

from urllib.parse import parse_qs

from channels.auth import AuthMiddleware
from django.contrib.auth import get_user
from django.contrib.auth.models import AnonymousUser

from accounts.auth import user_from_bearer
from core.errors import Forbidden
from jobs import ws_threads


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
            # Not through Django's one sync thread; one read for the sockets presenting this token.
            user = await ws_threads.log_in_once(("token", token), _user_for, token)
            if user is not None:
                scope = {**scope, "user": user}
        return await self.inner(scope, receive, send)


class _SessionOnly:
    """What django.contrib.auth.get_user reads of a request."""

    def __init__(self, session):
        self.session = session


def _session_user(session):
    return get_user(_SessionOnly(session))


class SessionAuthMiddleware(AuthMiddleware):
    """channels' AuthMiddleware (the session's user, checked as Django checks it for a page),
    with the database read on the /ws/jobs/ threads, and none without a session cookie."""

    async def resolve_scope(self, scope):
        session = scope["session"]
        if session.session_key is None:
            scope["user"]._wrapped = AnonymousUser()
        else:
            key = ("session", session.session_key)  # one read for the tabs of one session
            scope["user"]._wrapped = await ws_threads.log_in_once(key, _session_user, session)
