"""Webhook endpoints, the signing secret for jobs' own webhook_url, and deliveries (with redelivery)."""

from __future__ import annotations

import uuid

from django_q.tasks import async_task
from ninja import Query, Router

from core.errors import InvalidInput, NotFound
from core.pagination import PageParams
from webhooks import delivery
from webhooks.models import WebhookDelivery, WebhookEndpoint
from webhooks.schemas import (
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPageOut,
    EndpointCreatedOut,
    EndpointIn,
    EndpointOut,
    EndpointPatchIn,
    SecretOut,
)

router = Router(tags=["webhooks"])
STATUSES = {choice for choice, _ in WebhookDelivery.Status.choices}


def endpoint_out(endpoint: WebhookEndpoint, *, secret: bool = False) -> dict:
    data = {
        "id": endpoint.pk,
        "url": endpoint.url,
        "description": endpoint.description,
        "events": endpoint.events,
        "is_active": endpoint.is_active,
        "created_at": endpoint.created_at,
    }
    if secret:
        data["secret"] = endpoint.secret
    return data


def delivery_out(row: WebhookDelivery, *, detail: bool = False) -> dict:
    data = {
        name: getattr(row, name)
        for name in (
            "message_id",
            "event",
            "url",
            "endpoint_id",
            "status",
            "attempts",
            "next_attempt_at",
            "give_up_at",
            "last_status_code",
            "last_error",
            "created_at",
            "delivered_at",
        )
    }
    data["id"] = row.pk
    data["job_id"] = str(row.job_id) if row.job_id else None
    if detail:
        data["payload"] = row.payload
        data["attempt_log"] = list(row.attempt_log.all())
    return data


@router.get("/endpoints", response=list[EndpointOut], summary="My webhook endpoints")
def list_endpoints(request):
    return [endpoint_out(e) for e in WebhookEndpoint.objects.filter(user=request.user)]


@router.post("/endpoints", response={201: EndpointCreatedOut}, summary="Register an endpoint for all my jobs")
def create_endpoint(request, payload: EndpointIn):
    endpoint = delivery.create_endpoint(
        user=request.user, url=payload.url, description=payload.description, events=list(payload.events)
    )
    return 201, endpoint_out(endpoint, secret=True)


@router.patch("/endpoints/{int:endpoint_id}", response=EndpointOut)
def update_endpoint(request, endpoint_id: int, payload: EndpointPatchIn):
    endpoint = delivery.get_endpoint(request.user, endpoint_id)
    return endpoint_out(delivery.update_endpoint(endpoint, payload.dict(exclude_unset=True)))


@router.post("/endpoints/{int:endpoint_id}/secret", response=SecretOut, summary="Rotate an endpoint's secret")
def rotate_endpoint_secret(request, endpoint_id: int):
    return {"secret": delivery.rotate_endpoint_secret(delivery.get_endpoint(request.user, endpoint_id))}


@router.delete("/endpoints/{int:endpoint_id}", response={204: None})
def delete_endpoint(request, endpoint_id: int):
    delivery.delete_endpoint(delivery.get_endpoint(request.user, endpoint_id))
    return 204, None


@router.post(
    "/secret", response=SecretOut, summary="A new signing secret for the `webhook_url` of my jobs (shown once)"
)
def rotate_signing_secret(request):
    return {"secret": delivery.rotate_signing_secret(request.user)}


@router.get("/deliveries", response=DeliveryPageOut, summary="My webhook deliveries, newest first")
def list_deliveries(request, page: Query[PageParams], status: str = "", job: str = ""):
    rows = WebhookDelivery.objects.filter(user=request.user).order_by("-created_at")
    if status:
        if status.upper() not in STATUSES:
            raise InvalidInput(
                f"status: unknown value {status}; use {', '.join(sorted(STATUSES))}.", errors={"status": "unknown"}
            )
        rows = rows.filter(status=status.upper())
    if job:
        try:
            rows = rows.filter(job_id=uuid.UUID(job))
        except ValueError as exc:
            raise InvalidInput("job: must be a job id.", errors={"job": "not a job id"}) from exc
    result = page.paginate(rows)
    return {"count": result["count"], "items": [delivery_out(row) for row in result["items"]]}


@router.get("/deliveries/{int:delivery_id}", response=DeliveryDetailOut, summary="A delivery with its attempts")
def get_delivery(request, delivery_id: int):
    row = WebhookDelivery.objects.filter(pk=delivery_id, user=request.user).first()
    if row is None:
        raise NotFound("Webhook delivery not found.")
    return delivery_out(row, detail=True)


@router.post("/deliveries/{int:delivery_id}/redeliver", response={202: DeliveryOut}, summary="Send it again")
def redeliver(request, delivery_id: int):
    row = delivery.redeliver(user=request.user, delivery_id=delivery_id)
    async_task("webhooks.tasks.deliver", row.pk)
    row.refresh_from_db()
    return 202, delivery_out(row)
