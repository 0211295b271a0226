"""Bearer-token authentication for the API, built on simplejwt's token classes.

Every token carries its user's ``token_version`` (claim ``ver``; a token without it counts as
version 0). Raising the version (password change, block, reuse of a rotated refresh token)
revokes all of the user's access and refresh tokens at once; the check costs nothing extra, as
the user row is read for every request anyway.

An API key (`cpk_…`, accounts.keys) is accepted wherever an access token is, limited to its
scopes: which scope a request needs is `required_scope()`.
"""

from __future__ import annotations

import time

from ninja.security import HttpBearer
from ninja.security import SessionAuth as NinjaSessionAuth
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from accounts import keys, queries, throttle
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


# Access tokens whose signature and claims this process has checked: {token: its claims}. A
# client sends the same token with every request until it expires; what can change meanwhile
# (the time, the user's row: blocked, revoked) is checked on every request all the same.
_verified: dict[str, dict] = {}
VERIFIED_KEPT = 10_000


def access_claims(raw: str) -> dict | None:
    """The claims of a valid, unexpired access token, or None."""
    claims = _verified.get(raw)
    if claims is not None:
        if claims["exp"] > time.time():
            return claims
        del _verified[raw]
    try:
        claims = AccessToken(raw).payload
    except TokenError:
        return None
    if len(_verified) >= VERIFIED_KEPT:
        _verified.clear()
    _verified[raw] = claims
    return claims


def user_from_access_token(raw: str):
    """Return the active user an access token names, or None for a bad/expired/wrong-type/revoked token.

    Raises Forbidden for a blocked user, so that a token issued before the block stops
    working at once (and says why).
    """
    claims = access_claims(raw)
    try:
        user_id = int(claims.get("user_id"))
    except (AttributeError, TypeError, ValueError):
        return None
    user = queries.active_user(user_id)
    if user is None:
        return None
    ensure_not_blocked(user)
    if not is_current(claims, user):
        return None
    return user


def ensure_not_blocked(user) -> None:
    if user.is_blocked:
        raise Forbidden(f"Your account is blocked: {user.blocked_reason or 'no reason given'}.")


def ensure_within_rate_limit(wait: int) -> None:
    """Raise the 429 for a wait from accounts.throttle (0 = go ahead)."""
    if wait:
        raise TooManyRequests(throttle.rate_limit_message(), headers={"Retry-After": str(wait)})


def required_scope(request) -> str | tuple[str, ...] | None:
    """The scope (or scopes, all needed) an API key needs for this request; None: no key may
    make it (managing keys).

    By path, so that every router's operations are covered without each naming its scope:
    uploads and file downloads need `files`, the admin API `admin`, reading anything else
    `jobs:read`, and changing anything else `jobs:write` (a submit with its files: both).
    """
    path = request.path.removeprefix("/api/")
    if path == "keys" or path.startswith("keys/"):
        return None
    if path.startswith("admin/"):
        return "admin"
    if path.startswith(("uploads", "files/")):
        return "files"
    if path == "jobs/with-files" and request.method == "POST":
        return ("jobs:write", "files")
    return "jobs:read" if request.method in ("GET", "HEAD", "OPTIONS") else "jobs:write"


def user_from_api_key(raw: str, scope: str | tuple[str, ...] | None):
    """The user a live key belongs to, or None for a wrong, revoked or expired key (never a
    hint which). Raises Forbidden for a blocked user or a scope the key lacks."""
    key = keys.key_in_use(raw)
    if key is None:
        return None
    ensure_not_blocked(key.user)
    if scope is None:
        raise Forbidden("API keys cannot manage API keys: sign in with a password (JWT or the site).")
    for needed in (scope,) if isinstance(scope, str) else scope:
        if needed not in key.scopes:
            raise Forbidden(f"scope: this API key lacks the '{needed}' scope.")
    key.user.api_key = key
    return key.user


def user_from_bearer(raw: str, request=None, *, scope: str | None = None):
    """An access token's or an API key's user (see user_from_access_token, user_from_api_key)."""
    if keys.looks_like_key(raw):
        return user_from_api_key(raw, required_scope(request) if request is not None else scope)
    return user_from_access_token(raw)


class JWTAuth(HttpBearer):
    """Bearer access tokens and API keys."""

    def authenticate(self, request, token: str):
        user = user_from_bearer(token, request)
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
        key = getattr(user, "api_key", None)
        if key is not None and "admin" not in key.scopes:
            raise Forbidden("scope: this API key lacks the 'admin' scope.")
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
