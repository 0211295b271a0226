from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import Field


class TokenIn(Schema):
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=4096)


class RefreshIn(Schema):
    refresh: str = Field(min_length=1)


class TokenPairOut(Schema):
    access: str
    refresh: str


class LimitsOut(Schema):
    max_concurrent_jobs: int
    max_queued_jobs: int
    daily_job_limit: int
    storage_quota: int  # bytes


class MeOut(Schema):
    id: int
    username: str
    email: str
    role: str
    priority: int
    limits: LimitsOut
    jobs_today: int
    jobs_queued: int
    jobs_running: int
    storage_used: int  # bytes of uploads and results kept


class UserOut(Schema):
    id: int
    username: str
    email: str
    role: str
    is_blocked: bool
    blocked_reason: str
    max_concurrent_jobs: int | None
    max_queued_jobs: int | None
    daily_job_limit: int | None
    priority: int
    date_joined: datetime
    last_login: datetime | None


class UserCreateIn(Schema):
    username: str = Field(min_length=1, max_length=150, pattern=r"^[\w.@+-]+$")
    password: str = Field(min_length=1, max_length=4096)
    email: str = Field("", max_length=254)
    role: Literal["USER", "ADMIN"] = "USER"
    max_concurrent_jobs: int | None = Field(None, ge=0, le=10_000)
    max_queued_jobs: int | None = Field(None, ge=0, le=1_000_000)
    daily_job_limit: int | None = Field(None, ge=0, le=1_000_000)
    priority: int = Field(1, ge=1, le=100)


class UserPatchIn(Schema):
    email: str | None = Field(None, max_length=254)
    role: Literal["USER", "ADMIN"] | None = None
    is_blocked: bool | None = None
    blocked_reason: str | None = Field(None, max_length=500)
    password: str | None = Field(None, min_length=1, max_length=4096)
    max_concurrent_jobs: int | None = Field(None, ge=0, le=10_000)
    max_queued_jobs: int | None = Field(None, ge=0, le=1_000_000)
    daily_job_limit: int | None = Field(None, ge=0, le=1_000_000)
    priority: int | None = Field(None, ge=1, le=100)


class UserPageOut(Schema):
    count: int
    items: list[UserOut]


class ApiKeyIn(Schema):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[Literal["jobs:read", "jobs:write", "files", "admin"]] = Field(min_length=1, max_length=4)
    expires_in_days: int | None = Field(None, ge=1, le=3650, description="Empty: the key never expires.")


class ApiKeyOut(Schema):
    id: int
    name: str
    prefix: str
    scopes: list[str]
    state: Literal["active", "expired", "revoked"]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, never again.")
