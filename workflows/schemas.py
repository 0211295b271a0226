from __future__ import annotations

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field


class WorkflowOut(Schema):
    slug: str
    name: str = Field(description="In the request's language.")
    version: str
    category: str = Field(description="The category's key, the same in every language.")
    category_name: str = Field("", description="The category as shown, in the request's language.")
    description: str = Field(description="In the request's language.")
    requires_mask: bool
    example_image: str | None = None

    @staticmethod
    def resolve_example_image(obj) -> str | None:
        return (obj.spec or {}).get("example_image")


class WorkflowDetailOut(WorkflowOut):
    ui_schema: dict[str, Any]


class CategoryOut(Schema):
    category: str = Field(description="The category's key, the same in every language.")
    category_name: str = Field(description="The category as shown, in the request's language.")
    workflows: list[WorkflowOut]


class AdminWorkflowOut(Schema):
    id: int
    slug: str
    name: str
    version: str
    category: str
    is_active: bool
    requires_mask: bool
    class_types: list[str]
    warnings: list[str]
    jobs: int
    created_at: datetime

    @staticmethod
    def resolve_jobs(obj) -> int:
        return obj.jobs.count()


class AdminWorkflowDetailOut(AdminWorkflowOut):
    graph: dict[str, Any]
    spec: dict[str, Any]


class WorkflowPatchIn(Schema):
    is_active: bool = Field(description="Show it in the catalogue or not.")


class DraftSpecOut(Schema):
    spec: dict[str, Any]
    warnings: list[str] = []
    graph: dict[str, Any] | None = Field(None, description="The API-format graph the spec binds to.")
    converted: bool = Field(False, description="The upload was a UI-format workflow, converted to `graph`.")
    models: list[dict[str, str]] = Field(
        [],
        description="Model files the workflow says it loads: `name`, `directory` (the models folder), "
        "`url` (where to download it, when the workflow says), `node`.",
    )
