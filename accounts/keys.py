"""API keys: create (shown once), check on every request, revoke.

A key reads `cpk_<id>_<secret>`: `cpk_<id>` is its public prefix (unique, shown in lists), the
whole key's SHA-256 is what the database keeps. Checking a key is one indexed read of the key
with its user, so revoking it, its expiry or blocking its user take effect on the next request
in every process (nothing is cached).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import ApiKey, User
from core.errors import Forbidden, InvalidInput, NotFound, field_errors_detail

KEY_START = "cpk_"
PREFIX_LENGTH = len(KEY_START) + 12  # cpk_ and 6 random bytes in hex
SCOPES = [choice for choice, _ in ApiKey.Scope.choices]
USER_SCOPES = [s for s in SCOPES if s != ApiKey.Scope.ADMIN]
MAX_KEYS_PER_USER = 50
MAX_EXPIRY_DAYS = 3650
# Writing "last used" at most this often per key keeps a busy key from writing on every request.
LAST_USED_EVERY = timedelta(seconds=60)


def hash_key(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def looks_like_key(raw: str) -> bool:
    return raw.startswith(KEY_START)


def create_key(*, user: User, name: str, scopes: list[str], expires_in_days: int | None = None) -> tuple[ApiKey, str]:
    """A new key for `user`; returns the row and the key itself (the only time it is known)."""
    name = (name or "").strip()
    errors = {}
    if not name or len(name) > 100:
        errors["name"] = "required, at most 100 characters"
    scopes = list(dict.fromkeys(scopes or []))
    allowed = SCOPES if user.is_admin else USER_SCOPES
    unknown = [s for s in scopes if s not in SCOPES]
    if not scopes:
        errors["scopes"] = f"choose at least one of {', '.join(allowed)}"
    elif unknown:
        errors["scopes"] = f"unknown scope(s) {', '.join(unknown)}; use {', '.join(allowed)}"
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        errors["expires_in_days"] = f"must be between 1 and {MAX_EXPIRY_DAYS} (or empty: never expires)"
    if errors:
        raise InvalidInput(field_errors_detail(errors), errors=errors)
    if ApiKey.Scope.ADMIN in scopes and not user.is_admin:
        raise Forbidden("scopes: only admins may create keys with the admin scope.")
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()  # count under a lock: no race past the cap
        if ApiKey.objects.filter(user=user, revoked_at__isnull=True).count() >= MAX_KEYS_PER_USER:
            raise InvalidInput(
                f"name: you have {MAX_KEYS_PER_USER} keys already; revoke one first.",
                errors={"name": "too many keys"},
            )
        prefix = KEY_START + secrets.token_hex(6)
        raw = f"{prefix}_{secrets.token_urlsafe(24)}"
        expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
        key = ApiKey.objects.create(
            user=user, name=name, prefix=prefix, hashed_key=hash_key(raw), scopes=scopes, expires_at=expires_at
        )
    return key, raw


def key_in_use(raw: str) -> ApiKey | None:
    """The live key `raw` is (with its user loaded), or None: unknown, wrong secret, revoked,
    expired, or its user deactivated. The caller refuses a blocked user."""
    prefix, secret = raw[:PREFIX_LENGTH], raw[PREFIX_LENGTH + 1 :]
    if not prefix.startswith(KEY_START) or raw[PREFIX_LENGTH : PREFIX_LENGTH + 1] != "_" or not secret:
        return None
    if len(raw) > 200:
        return None
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.hashed_key, hash_key(raw)):
        return None
    now = timezone.now()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        return None
    if not key.user.is_active:
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key


def keys_of(user: User):
    return ApiKey.objects.filter(user=user).order_by("-created_at")


def revoke_key(*, user: User, key_id: int) -> ApiKey:
    """Revoke one of the user's keys (revoking twice is harmless); NotFound for anyone else's."""
    key = ApiKey.objects.filter(pk=key_id, user=user).first()
    if key is None:
        raise NotFound("API key not found.")
    if key.revoked_at is None:
        ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db()
    return key


def is_expired(key: ApiKey, now: datetime | None = None) -> bool:
    return key.expires_at is not None and key.expires_at <= (now or timezone.now())


def state_of(key: ApiKey) -> str:
    if key.revoked_at:
        return "revoked"
    return "expired" if is_expired(key) else "active"


def still_live(key_id: int) -> bool:
    """For long connections authenticated by a key (WebSockets): not revoked nor expired since."""
    live = ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True)
    return live.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())).exists()
