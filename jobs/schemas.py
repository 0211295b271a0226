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

    model_config = {**Schema.model_config, "extra": "forbid"}  # as the document says

    inputs: dict[str, Any]  # required, as the document says ({} takes every default)
    webhook_url: str = Field("", max_length=2000)


class FileOut(Schema):
    id: str
    kind: Literal["image", "video", "audio"] = Field(
        description="What the file holds, read from its bytes: image (a still), video (animations too) or audio."
    )
    url: str = Field(description="The file; answers byte ranges (206) so players can seek.")
    download_url: str = Field(
        "", description="The file as a download (`Content-Disposition: attachment`, `<workflow>-<job>-<n>.<ext>`)."
    )
    thumbnail_url: str = Field(description="A small picture of it (for audio, the waveform); empty if none.")
    preview_url: str = Field(description="The poster frame of a video, the waveform of a sound, an image's thumbnail.")
    width: int
    height: int
    content_type: str
    size: int
    duration: float | None = Field(default=None, description="Seconds, for video and audio.")
    frame_count: int | None = Field(default=None, description="Frames, for video.")
    frame_rate: float | None = Field(default=None, description="Frames per second, for video.")
    sample_rate: int | None = Field(default=None, description="Samples per second, for audio (and video with sound).")


class JobOut(Schema):
    id: str
    status: Literal["QUEUED", "RUNNING", "DONE", "ERROR", "CANCELLED"]
    workflow: str
    workflow_name: str
    workflow_version: str
    progress: float
    progress_text: str
    position: int | None
    waiting_reason: str = Field(
        default="",
        description="Why a queued job cannot start now, in the request's language: no GPU server online, "
        "none has its node classes or model files, or all able servers busy. Empty when it only waits its turn.",
    )
    waiting_code: Literal["", "no_node_online", "missing_classes", "missing_model", "all_busy"] = Field(
        default="", description="The reason as a code, for clients that word it themselves."
    )
    waiting_missing: list[str] = Field(
        default_factory=list, description="With missing_classes / missing_model: the node classes or model files."
    )
    model_files: list[str] = Field(
        default_factory=list, description="The model files its prompt names, as 'folder/name'."
    )
    node: str | None
    attempts: int
    error: str
    inputs: dict[str, Any]
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    cancel_requested: bool
    shareable: bool = Field(
        default=False,
        description="Its owner lets every user see its results: the catalogue shows the newest on the workflow's card.",
    )
    outputs: list[FileOut] = []


class ShareIn(Schema):
    shareable: bool = Field(
        strict=True,  # true or false: 0, 1 or "yes" are refused with 422, not read as a choice
        description="Show the job's results to every user (the workflow's example picture), or stop.",
    )


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
    duration: float | None = None
    frame_count: int | None = None
    sample_rate: int | None = None
    preview_url: str = ""
