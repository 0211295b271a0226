"""Use cases for accounts: tokens, user management. Called by the API, Admin and pages alike."""

from __future__ import annotations

from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenBackendError, TokenError
from rest_framework_simplejwt.state import token_backend
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import throttle
from accounts.admins import ensure_admins_remain, ensure_change_keeps_an_admin
from accounts.auth import ensure_not_blocked, ensure_within_rate_limit, is_current, refresh_token_for
from accounts.signals import profile_usage, user_blocked
from core.errors import Conflict, InvalidInput, NotAuthenticated, NotFound, TooManyRequests

User = get_user_model()

LIMIT_FIELDS = ("max_concurrent_jobs", "max_queued_jobs", "daily_job_limit", "priority")


def issue_tokens(*, username: str, password: str, request=None) -> dict[str, str]:
    """Return ``{access, refresh}`` for valid credentials; 401 if wrong, 403 if blocked,
    429 after too many failures for this username or address."""
    wait = throttle.login_wait_seconds(username, throttle.client_ip(request))
    if wait:
        raise TooManyRequests("Too many failed logins; try again later.", headers={"Retry-After": str(wait)})
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise NotAuthenticated("Wrong username or password.")
    ensure_not_blocked(user)
    return _token_pair(user)


def refresh_tokens(*, refresh: str, request=None) -> dict[str, str]:
    """Rotate a refresh token: the used one is blacklisted, a new pair is returned; 429 when the
    caller's address made more than API_RATE_LIMIT such requests in a minute.

    Presenting a refresh token that was already used means a copy of it leaked: every token of
    its user is revoked, the thief's new pair included.
    """
    ensure_within_rate_limit(throttle.address_wait_seconds(throttle.client_ip(request)))
    try:
        old = RefreshToken(refresh)  # verifies signature, expiry, type and the blacklist
    except TokenError as exc:
        _revoke_all_if_reused(refresh)
        raise NotAuthenticated(f"Refresh token rejected: {exc}.") from exc
    user = User.objects.filter(pk=old.get("user_id"), is_active=True).first()
    if user is None:
        raise NotAuthenticated("Refresh token rejected: the user no longer exists.")
    ensure_not_blocked(user)
    if not is_current(old, user):
        raise NotAuthenticated("Refresh token rejected: it was revoked.")
    try:
        old.blacklist()
    except Exception:
        pass
    return _token_pair(user)


def _revoke_all_if_reused(raw: str) -> None:
    """Revoke all of a user's tokens when a genuine, unexpired, current refresh token of theirs
    comes back after it was blacklisted (rotated or logged out)."""
    try:
        claims = token_backend.decode(raw, verify=True)  # signature and expiry, not the blacklist
    except TokenBackendError:
        return
    if claims.get("token_type") != "refresh" or not claims.get("jti"):
        return
    if not BlacklistedToken.objects.filter(token__jti=claims["jti"]).exists():
        return
    user = User.objects.filter(pk=claims.get("user_id")).first()
    if user is not None and is_current(claims, user):
        revoke_all_tokens(user)


def revoke_all_tokens(user: User) -> None:
    """End every access and refresh token of the user by raising their token version."""
    User.objects.filter(pk=user.pk).update(token_version=F("token_version") + 1)
    user.refresh_from_db(fields=["token_version"])


def revoke_refresh_token(*, refresh: str, user: User) -> None:
    """Log out one client: blacklist the caller's own refresh token.

    Other clients of the user keep their tokens, and access tokens already issued from this one
    work until they expire (ACCESS_TOKEN_MINUTES)."""
    try:
        token = RefreshToken(refresh)
    except TokenError as exc:
        raise NotAuthenticated(f"Refresh token rejected: {exc}.") from exc
    if str(token.get("user_id")) != str(user.pk):
        raise NotAuthenticated("Refresh token rejected: it is not yours.")
    token.blacklist()


def _token_pair(user) -> dict[str, str]:
    refresh = refresh_token_for(user)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def check_password_rules(password: str, user=None) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput("password: " + " ".join(exc.messages), errors={"password": " ".join(exc.messages)}) from exc


def create_user(*, username: str, password: str, role: str = "USER", **fields) -> User:
    """Create a user; 409 on a taken username, 400 naming the password rule it breaks."""
    if User.objects.filter(username__iexact=username).exists():
        raise Conflict(f"username: '{username}' is already taken.", errors={"username": "already taken"})
    user = User(username=username, role=role, **fields)
    check_password_rules(password, user)
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as exc:
        raise Conflict(f"username: '{username}' is already taken.", errors={"username": "already taken"}) from exc
    return user


NOT_NULL_USER_FIELDS = ("email", "role", "is_blocked", "blocked_reason", "priority", "password")


@transaction.atomic
def update_user(*, user: User, changes: dict, actor=None) -> User:
    """Apply an admin's changes: role, limits, block/unblock with a reason, password reset.

    A limit set to null goes back to the site default; other fields may not be null.
    """
    for name in NOT_NULL_USER_FIELDS:
        if name in changes and changes[name] is None:
            raise InvalidInput(f"{name}: may not be null.", errors={name: "may not be null"})
    if "password" in changes and changes["password"] is not None:
        check_password_rules(changes["password"], user)
        user.set_password(changes.pop("password"))
    changes.pop("password", None)
    if changes.get("is_blocked") and actor is not None and actor.pk == user.pk:
        raise InvalidInput("is_blocked: you cannot block yourself.", errors={"is_blocked": "cannot block yourself"})
    ensure_change_keeps_an_admin(user, changes)
    for name, value in changes.items():
        setattr(user, name, value)
    if "is_blocked" in changes and not user.is_blocked:
        user.blocked_reason = ""
    user.save()
    if user.is_blocked:
        on_user_blocked(user)
    return user


@transaction.atomic
def block_user(*, user: User, reason: str) -> None:
    ensure_change_keeps_an_admin(user, {"is_blocked": True})
    user.is_blocked = True
    user.blocked_reason = reason
    user.save(update_fields=["is_blocked", "blocked_reason"])
    on_user_blocked(user)


def unblock_user(*, user: User) -> None:
    user.is_blocked = False
    user.blocked_reason = ""
    user.save(update_fields=["is_blocked", "blocked_reason"])


def on_user_blocked(user: User) -> None:
    """Cut a blocked user off everywhere: tokens here, the rest by `user_blocked`'s receivers."""
    revoke_all_tokens(user)
    for token in OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()):
        BlacklistedToken.objects.get_or_create(token=token)
    user_blocked.send(sender=User, user=user)


def get_user(user_id: int) -> User:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise NotFound("User not found.")
    return user


@transaction.atomic
def delete_user(*, user: User, actor) -> None:
    if actor.pk == user.pk:
        raise InvalidInput("You cannot delete your own account.")
    ensure_admins_remain([user.pk], field="user")
    user.delete()


# What a user with no usage reported has; the counts come from `profile_usage`'s receivers.
NO_USAGE = {"jobs_today": 0, "jobs_queued": 0, "jobs_running": 0}


def profile(user) -> dict:
    """The caller's profile with effective limits and today's usage (for /api/me and the menu)."""
    usage = dict(NO_USAGE)
    for _receiver, counts in profile_usage.send(sender=User, user=user):
        usage.update(counts)
    return {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "role": user.role,
        "priority": user.priority,
        "limits": {
            "max_concurrent_jobs": user.effective_max_concurrent_jobs,
            "max_queued_jobs": user.effective_max_queued_jobs,
            "daily_job_limit": user.effective_daily_job_limit,
            "storage_quota": user.effective_storage_quota,
        },
        "storage_used": user.storage_used,
        **usage,
    }
