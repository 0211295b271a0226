from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field

Event = Literal["job.started", "job.succeeded", "job.failed", "job.cancelled"]


class EndpointIn(Schema):
    url: str = Field(min_length=1, max_length=2000)
    description: str = Field("", max_length=200)
    events: list[Event] = Field(default_factory=list, description="Empty: every event.")


class EndpointPatchIn(Schema):
    url: str | None = Field(None, min_length=1, max_length=2000)
    description: str | None = Field(None, max_length=200)
    events: list[Event] | None = None
    is_active: bool | None = None


class EndpointOut(Schema):
    id: int
    url: str
    description: str
    events: list[str]
    is_active: bool
    created_at: datetime


class EndpointCreatedOut(EndpointOut):
    secret: str = Field(description="The endpoint's signing secret: shown this once.")


class SecretOut(Schema):
    secret: str = Field(description="A signing secret (`whsec_…`): shown this once.")


class AttemptOut(Schema):
    number: int
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str
    response_excerpt: str


class DeliveryOut(Schema):
    id: int
    message_id: str
    event: str
    url: str
    endpoint_id: int | None
    job_id: str | None
    status: Literal["PENDING", "SUCCEEDED", "FAILED"]
    attempts: int
    next_attempt_at: datetime | None
    give_up_at: datetime
    last_status_code: int | None
    last_error: str
    created_at: datetime
    delivered_at: datetime | None


class DeliveryDetailOut(DeliveryOut):
    payload: str
    attempt_log: list[AttemptOut]


class DeliveryPageOut(Schema):
    count: int
    items: list[DeliveryOut]
