from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class NodeIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    base_url: str = Field(min_length=1, max_length=500)
    is_active: bool = True
    max_queue: int = Field(2, ge=1, le=1000)
    priority: int = Field(0, ge=-1000, le=1000)
    auth_header: str | None = Field(None, max_length=1000, description="Write-only.")


class NodePatchIn(Schema):
    name: str | None = Field(None, min_length=1, max_length=100)
    base_url: str | None = Field(None, min_length=1, max_length=500)
    is_active: bool | None = None
    max_queue: int | None = Field(None, ge=1, le=1000)
    priority: int | None = Field(None, ge=-1000, le=1000)
    auth_header: str | None = Field(None, max_length=1000, description="Write-only; empty string removes it.")


class NodeOut(Schema):
    id: int
    name: str
    base_url: str
    is_active: bool
    max_queue: int
    priority: int
    has_auth_header: bool
    status: str
    last_seen_at: datetime | None
    last_checked_at: datetime | None
    last_error: str
    consecutive_failures: int
    queue_remaining: int
    foreign_queue: int
    running_jobs: int
    vram_free: int | None
    vram_total: int | None
    comfyui_version: str | None
    class_types_count: int
    model_files_count: int = Field(description="Model files in its inventory (every folder).")
    inventory_read_at: datetime | None = Field(description="When its model files were last read.")
    inventory_stale: bool = Field(description="The last read failed: the inventory shown is the one before.")
    inventory_error: str
    held_models: list[str] = Field(description="Model files of the last prompt sent there (what ComfyUI holds).")
    system_stats: dict[str, Any]
    note: str = ""

    @staticmethod
    def resolve_model_files_count(obj) -> int:
        return obj.model_count

    @staticmethod
    def resolve_held_models(obj) -> list[str]:
        return obj.held_model_keys

    @staticmethod
    def resolve_has_auth_header(obj) -> bool:
        return bool(obj.auth_header)

    @staticmethod
    def resolve_running_jobs(obj) -> int:
        from nodes.health import node_has_running_jobs

        return node_has_running_jobs(obj)

    @staticmethod
    def resolve_vram_free(obj):
        return obj.vram[0]

    @staticmethod
    def resolve_vram_total(obj):
        return obj.vram[1]

    @staticmethod
    def resolve_comfyui_version(obj):
        return ((obj.system_stats or {}).get("system") or {}).get("comfyui_version")

    @staticmethod
    def resolve_class_types_count(obj) -> int:
        return len(obj.class_types or [])

    @staticmethod
    def resolve_note(obj) -> str:
        return getattr(obj, "note", "")


class NodeDeletedOut(Schema):
    detail: str


class NodeModelsOut(Schema):
    node: str
    inventory_read_at: datetime | None
    inventory_stale: bool
    models: dict[str, list[str]] = Field(description="Folder → file names, as the GPU server's /models answered.")
    held_models: list[str]


class ModelNodeOut(Schema):
    id: int
    name: str
    status: str
    is_active: bool
    holds: bool = Field(description="The last prompt sent there used this file (ComfyUI still holds it).")
    stale: bool = Field(description="The GPU server's inventory could not be read lately.")


class ModelFileOut(Schema):
    folder: str
    name: str
    nodes_online: int = Field(description="Active online GPU servers that have it.")
    nodes: list[ModelNodeOut]
