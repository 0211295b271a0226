"""Bearer-token authentication for the API, built on simplejwt's token classes.

Every token carries its user's ``token_version`` (claim ``ver``; a token without it counts as
version 0). Raising the version (password change, block, reuse of a rotated refresh token)
revokes all of the user's access and refresh tokens at once; the check costs nothing extra, as
the user row is read for every request anyway.
"""

from __future__ import annotations

from ninja.security import HttpBearer
from ninja.security import SessionAuth as NinjaSessionAuth
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import queries, throttle
from core.errors import Forbidden, TooManyRequests

VERSION_CLAIM = "ver"


def refresh_token_for(user) -> RefreshToken:
    """A new refresh token (and through ``.access_token`` its access token) of the user's current version."""
    token = RefreshToken.for_user(user)
    token[VERSION_CLAIM] = user.token_version
    return token


def is_current(token, user) -> bool:
    """False once the user's tokens were revoked after this token was issued."""
    return token.get(VERSION_CLAIM, 0) == user.token_version


def user_from_access_token(raw: str):
    """Return the active user an access token names, or None for a bad/expired/wrong-type/revoked token.

    Raises Forbidden for a blocked user, so that a token issued before the block stops
    working at once (and says why).
    """
    try:
        token = AccessToken(raw)
        user_id = int(token.get("user_id"))
    except (TokenError, TypeError, ValueError):
        return None
    user = queries.active_user(user_id)
    if user is None:
        return None
    ensure_not_blocked(user)
    if not is_current(token, user):
        return None
    return user


def ensure_not_blocked(user) -> None:
    if user.is_blocked:
        raise Forbidden(f"Your account is blocked: {user.blocked_reason or 'no reason given'}.")


def ensure_within_rate_limit(wait: int) -> None:
    """Raise the 429 for a wait from accounts.throttle (0 = go ahead)."""
    if wait:
        raise TooManyRequests(throttle.rate_limit_message(), headers={"Retry-After": str(wait)})


class JWTAuth(HttpBearer):
    def authenticate(self, request, token: str):
        user = user_from_access_token(token)
        if user is None:
            # Guessing or replaying tokens costs a signature check each: bound it per address.
            ensure_within_rate_limit(throttle.address_wait_seconds(throttle.client_ip(request)))
            return None
        ensure_within_rate_limit(throttle.api_wait_seconds(user.pk))
        request.user = user
        return user


class AdminAuth(JWTAuth):
    def authenticate(self, request, token: str):
        user = super().authenticate(request, token)
        if user is not None and not user.is_admin:
            raise Forbidden("Only admins may do this.")
        return user


class SessionAuth(NinjaSessionAuth):
    """The pages' session cookie (for file downloads in galleries), refusing blocked users; its
    calls count against the same per-user rate limit as bearer-token calls."""

    def authenticate(self, request, key):
        user = super().authenticate(request, key)
        if user is not None:
            ensure_not_blocked(user)
            ensure_within_rate_limit(throttle.api_wait_seconds(user.pk))
        return user
