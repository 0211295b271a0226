"""`Idempotency-Key` on submits (as Stripe's): a program that retries a submit after a timeout
gets the job its first attempt made, never a second one.

The key is looked up and stored inside the submit's transaction, after the user's row lock
(jobs.queries.lock_user), so concurrent retries with one key queue on that lock: the first
creates the job and the key, each later one finds the key. A key lasts IDEMPOTENCY_HOURS; the
same key with a different body (or for another operation) is refused with 422.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core.errors import InvalidInput, Unprocessable
from jobs.models import IdempotencyKey, Job

HEADER = "Idempotency-Key"
MAX_LENGTH = 255
OPENAPI_PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": MAX_LENGTH},
    "description": "Retry-safe submits: the same key and body within 24 h give the same job (200).",
}


@dataclass(frozen=True)
class Idempotency:
    key: str
    fingerprint: str


def from_request(request, *, operation: str, body: dict) -> Idempotency | None:
    """The request's idempotency key with a fingerprint of what it asks, or None without one."""
    return for_key(request.headers.get(HEADER), operation=operation, body=body)


def for_key(key: str | None, *, operation: str, body: dict) -> Idempotency | None:
    """An `Idempotency-Key` header's value (None when absent) with a fingerprint of what it asks;
    400 for a malformed key."""
    if key is None:
        return None
    if not key or len(key) > MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInput(
            f"{HEADER}: must be 1 to {MAX_LENGTH} printable ASCII characters (a UUID is a good choice).",
            errors={HEADER: "invalid"},
        )
    canonical = json.dumps({"operation": operation, "body": body}, sort_keys=True, separators=(",", ":"), default=str)
    return Idempotency(key=key, fingerprint=hashlib.sha256(canonical.encode()).hexdigest())


def _window_start():
    return timezone.now() - timedelta(hours=settings.IDEMPOTENCY_HOURS)


def earlier_job(user_id: int, idem: Idempotency) -> Job | None:
    """Inside the submit's locked transaction: the job this key already made, None if the key
    is new (or expired, or its job deleted). 422 if the key came with another body."""
    row = IdempotencyKey.objects.filter(user_id=user_id, key=idem.key, created_at__gte=_window_start()).first()
    if row is None:
        return None
    if row.fingerprint != idem.fingerprint:
        raise Unprocessable(
            f"{HEADER}: this key was used within {settings.IDEMPOTENCY_HOURS} h for a request with another "
            "body; use a new key for a new request.",
            errors={HEADER: "reused with another body"},
        )
    return Job.objects.filter(pk=row.job_id).first() if row.job_id else None


def remember(user_id: int, idem: Idempotency, job: Job) -> None:
    """Inside the same transaction: the key now names this job (replacing an expired use of it)."""
    IdempotencyKey.objects.update_or_create(
        user_id=user_id,
        key=idem.key,
        defaults={"fingerprint": idem.fingerprint, "job": job, "created_at": timezone.now()},
    )


def forget_expired() -> int:
    """Scheduled with the retention clean-up: drop keys older than the window."""
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=_window_start()).delete()
    return deleted
