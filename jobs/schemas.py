from __future__ import annotations

from typing import Any, Literal

from ninja import Schema
from pydantic import Field


class JobIn(Schema):
    workflow: str = Field(min_length=1, max_length=100, description="The workflow's slug.")
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Field id → value; image/mask fields take an upload id."
    )
    webhook_url: str | None = Field(
        None,
        max_length=2000,
        description="Also POST this job's status events here (signed with your signing secret, "
        "see POST /api/webhooks/secret). Must resolve to a public address.",
    )


class TypedJobIn(Schema):
    """The body of POST /api/workflows/{slug}/jobs (typed per workflow in the OpenAPI document)."""

    inputs: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = Field(None, max_length=2000)


class FileOut(Schema):
    id: str
    url: str
    thumbnail_url: str
    width: int
    height: int
    content_type: str
    size: int


class JobOut(Schema):
    id: str
    status: Literal["QUEUED", "RUNNING", "DONE", "ERROR", "CANCELLED"]
    workflow: str
    workflow_name: str
    workflow_version: str
    progress: float
    progress_text: str
    position: int | None
    node: str | None
    attempts: int
    error: str
    inputs: dict[str, Any]
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    cancel_requested: bool
    outputs: list[FileOut] = []


class JobPageOut(Schema):
    count: int
    items: list[JobOut]


class UploadOut(Schema):
    id: str
    kind: str
    width: int
    height: int
    content_type: str
    size: int
