"""Webhooks: endpoints and secrets, turning job events into deliveries, and sending them.

A delivery is one event for one URL. It is sent by the workers (webhooks.tasks), never by a
request thread: at once after the event, then again on an error, a non-2xx answer or a
timeout, after `retry_delay(n)` (30 s doubling, at most 4 h apart), until it succeeds or
WEBHOOK_RETRY_HOURS have passed since the event. Each try is a WebhookAttempt row. Redirects
are not followed (a 3xx is a failed try), and the URL is checked again before every try and
the request sent to the checked address (core.safe_url: no DNS rebinding into the network).

Messages follow the Standard Webhooks specification: headers `webhook-id` (the same for
every try of a delivery, so receivers can drop duplicates), `webhook-timestamp` and
`webhook-signature` (HMAC-SHA256 with the endpoint's `whsec_…` secret, by the
`standardwebhooks` library); the body is `{"type", "timestamp", "data"}` with the job as
`GET /api/jobs/{id}` returns it in `data`.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import time
import uuid
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from core.errors import InvalidInput, NotFound, field_errors_detail
from core.safe_url import UnsafeUrl, check_url, resolve_safely
from jobs.models import Job
from jobs.presenters import for_presenting, present_job
from jobs.schemas import JobOut
from webhooks.models import EVENTS, SigningSecret, WebhookAttempt, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger("comfyportal.webhooks")
D = WebhookDelivery.Status
EVENT_OF_STATUS = {
    Job.Status.RUNNING: "job.started",
    Job.Status.DONE: "job.succeeded",
    Job.Status.ERROR: "job.failed",
    Job.Status.CANCELLED: "job.cancelled",
}
MAX_ENDPOINTS_PER_USER = 20
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 4 * 3600
USER_AGENT = "comfyportal-webhooks/1.0"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def retry_delay(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed try: 30 s, 1 min, 2 min, … at most 4 h."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


def retry_schedule(hours: float | None = None) -> list[float]:
    """Seconds after the event at which each try starts (the first at 0), within the window."""
    window = (hours if hours is not None else settings.WEBHOOK_RETRY_HOURS) * 3600
    at, times, attempts = 0.0, [0.0], 1
    while True:
        at += retry_delay(attempts).total_seconds()
        if at > window:
            return times
        times.append(at)
        attempts += 1


# Endpoints and secrets


def checked_url(url: str, field: str = "url") -> str:
    try:
        return check_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    except UnsafeUrl as exc:
        raise InvalidInput(f"{field}: {exc}.", errors={field: str(exc)}) from exc


def _checked_events(events: list[str] | None) -> list[str]:
    events = list(dict.fromkeys(events or []))
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        errors = {"events": f"unknown event(s) {', '.join(unknown)}; use {', '.join(EVENTS)} (or none for all)"}
        raise InvalidInput(field_errors_detail(errors), errors=errors)
    return events


def create_endpoint(*, user, url: str, description: str = "", events: list[str] | None = None):
    """A new endpoint and its secret (returned this once, as the endpoint's `whsec_…`)."""
    url = checked_url(url)
    events = _checked_events(events)
    if WebhookEndpoint.objects.filter(user=user).count() >= MAX_ENDPOINTS_PER_USER:
        raise InvalidInput(
            f"url: you have {MAX_ENDPOINTS_PER_USER} endpoints already; delete one first.", errors={"url": "too many"}
        )
    endpoint = WebhookEndpoint.objects.create(
        user=user, url=url, description=description, events=events, secret=new_secret()
    )
    forget_endpoint_users()
    return endpoint


def get_endpoint(user, endpoint_id: int) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id, user=user).first()
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


def update_endpoint(endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    if changes.get("url") is not None:
        endpoint.url = checked_url(changes["url"])
    if "events" in changes and changes["events"] is not None:
        endpoint.events = _checked_events(changes["events"])
    for name in ("description", "is_active"):
        if changes.get(name) is not None:
            setattr(endpoint, name, changes[name])
    endpoint.save()
    forget_endpoint_users()
    return endpoint


def rotate_endpoint_secret(endpoint: WebhookEndpoint) -> str:
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret"])
    return endpoint.secret


def delete_endpoint(endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint; its deliveries still waiting end FAILED (nothing left to sign them)."""
    with transaction.atomic():
        WebhookDelivery.objects.filter(endpoint=endpoint, status=D.PENDING).update(
            status=D.FAILED, next_attempt_at=None, last_error="The endpoint was deleted."
        )
        endpoint.delete()
    forget_endpoint_users()


def rotate_signing_secret(user) -> str:
    """A new secret for the `webhook_url`s of the user's jobs (returned this once)."""
    secret = new_secret()
    SigningSecret.objects.update_or_create(user=user, defaults={"secret": secret})
    return secret


def _signing_secret(user_id: int) -> str:
    row, _ = SigningSecret.objects.get_or_create(user_id=user_id, defaults={"secret": new_secret()})
    return row.secret


# Which users have endpoints: read by the signal receiver on the runner's hot path, so kept
# per process for a few seconds (a new endpoint gets the events of jobs changing after that).
ENDPOINT_USERS_SECONDS = 5.0
_endpoint_users: tuple[float, frozenset[int]] | None = None


def endpoint_users() -> frozenset[int]:
    global _endpoint_users
    now = time.monotonic()
    if _endpoint_users is None or now - _endpoint_users[0] > ENDPOINT_USERS_SECONDS:
        users = WebhookEndpoint.objects.filter(is_active=True).values_list("user_id", flat=True).distinct()
        _endpoint_users = (now, frozenset(users))
    return _endpoint_users[1]


def forget_endpoint_users() -> None:
    global _endpoint_users
    _endpoint_users = None


def jobs_wanting_events(job_ids: list, *, held: Job | None = None, claimed: list[Job] | None = None) -> list[str]:
    """Of these jobs, those with a webhook_url or an owner with endpoints. Cheap: read from
    the caller's copies when it has them (`held`, the one job; `claimed`, dispatch's), else
    one PK read."""
    if claimed is not None:
        rows = [(job.pk, job.user_id, job.webhook_url) for job in claimed]
    elif held is not None and len(job_ids) == 1 and "webhook_url" not in held.get_deferred_fields():
        rows = [(held.pk, held.user_id, held.webhook_url)]
    else:
        rows = Job.objects.filter(pk__in=job_ids).values_list("pk", "user_id", "webhook_url")
    users = endpoint_users()
    return [str(pk) for pk, user_id, url in rows if url or user_id in users]


# Events → deliveries


def record_event(job_ids: list[str], event: str) -> list[int]:
    """Make one delivery per URL that wants this event of each job; their ids."""
    now = timezone.now()
    created = []
    jobs = for_presenting(Job.objects.filter(pk__in=job_ids))
    for job in jobs:
        body = json.dumps(
            {"type": event, "timestamp": now.isoformat(), "data": as_api_job(present_job(job))}, separators=(",", ":")
        )
        targets = [(None, job.webhook_url)] if job.webhook_url else []
        targets += [
            (endpoint, endpoint.url)
            for endpoint in WebhookEndpoint.objects.filter(user_id=job.user_id, is_active=True)
            if endpoint.wants(event)
        ]
        for endpoint, url in targets:
            delivery = WebhookDelivery.objects.create(
                message_id=f"msg_{uuid.uuid4().hex}",
                user_id=job.user_id,
                endpoint=endpoint,
                job=job,
                url=url,
                event=event,
                payload=body,
                next_attempt_at=now,
                give_up_at=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
            )
            created.append(delivery.pk)
    return created


def due_deliveries(limit: int = 200) -> list[int]:
    now = timezone.now()
    due = WebhookDelivery.objects.filter(status=D.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at")
    return list(due.values_list("pk", flat=True)[:limit])


def redeliver(*, user, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again (same message id and body) whatever became of it; retries restart."""
    delivery = WebhookDelivery.objects.filter(pk=delivery_id, user=user).first()
    if delivery is None:
        raise NotFound("Webhook delivery not found.")
    if (
        delivery.endpoint_id is None
        and delivery.status == D.FAILED
        and delivery.last_error == "The endpoint was deleted."
    ):
        raise InvalidInput("delivery: its endpoint was deleted.", errors={"delivery": "endpoint deleted"})
    now = timezone.now()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        status=D.PENDING, next_attempt_at=now, give_up_at=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS)
    )
    delivery.refresh_from_db()
    return delivery


# Sending


def _claim(delivery_id: int, now) -> WebhookDelivery | None:
    """Take a due delivery for one try (a lease past the timeout), so no other worker sends it too."""
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT + 60)
    taken = WebhookDelivery.objects.filter(pk=delivery_id, status=D.PENDING, next_attempt_at__lte=now).update(
        next_attempt_at=lease
    )
    return WebhookDelivery.objects.select_related("endpoint").filter(pk=delivery_id).first() if taken else None


def signed_headers(secret: str, message_id: str, body: str, at) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, at, body),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def _send(url: str, headers: dict, body: str) -> httpx.Response:
    """POST to the address checked just now (not to the name again), no redirects, bounded time."""
    target = resolve_safely(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    headers = {**headers, "host": target.host_header}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(timeout=settings.WEBHOOK_TIMEOUT, follow_redirects=False, trust_env=False) as client:
        request = client.build_request("POST", target.pinned_url, headers=headers, content=body.encode())
        request.extensions.update(extensions)
        return client.send(request)


def attempt(delivery_id: int) -> str | None:
    """One try of a due delivery; its new status, or None if it was not due (or someone else has it)."""
    started = timezone.now()
    delivery = _claim(delivery_id, started)
    if delivery is None:
        return None
    secret = delivery.endpoint.secret if delivery.endpoint_id else _signing_secret(delivery.user_id)
    headers = signed_headers(secret, delivery.message_id, delivery.payload, started)
    status_code, error, excerpt = None, "", ""
    clock = time.monotonic()
    try:
        response = _send(delivery.url, headers, delivery.payload)
        status_code, excerpt = response.status_code, response.text[:500]
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
    except UnsafeUrl as exc:
        error = f"refused: the URL {exc}"
    except httpx.TimeoutException:
        error = f"timed out after {settings.WEBHOOK_TIMEOUT:g} s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:500]
    duration_ms = int((time.monotonic() - clock) * 1000)
    number = delivery.attempts + 1
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=number,
        started_at=started,
        duration_ms=duration_ms,
        status_code=status_code,
        error=error[:500],
        response_excerpt=excerpt,
    )
    fields = {"attempts": number, "last_status_code": status_code, "last_error": error[:500]}
    if not error:
        fields.update(status=D.SUCCEEDED, next_attempt_at=None, delivered_at=timezone.now())
    else:
        retry_at = started + retry_delay(number)
        if retry_at > delivery.give_up_at:
            fields.update(status=D.FAILED, next_attempt_at=None)
        else:
            fields.update(next_attempt_at=retry_at)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(**fields)
    status = fields.get("status", D.PENDING)
    logger.info(
        "webhook %s %s attempt %s → %s %s",
        delivery.message_id,
        delivery.event,
        number,
        status_code or "-",
        error or "ok",
        extra={"webhook": delivery.message_id, "status": status},
    )
    return status


def as_api_job(job: dict) -> dict:
    """The job as `GET /api/jobs/{id}` gives it: its schema's fields only (the live events'
    cursor, `seq`, is not one)."""
    return {name: job[name] for name in JobOut.model_fields if name in job}
