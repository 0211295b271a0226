from __future__ import annotations

from ninja import Schema
from pydantic import Field


class PageParams(Schema):
    """`?page=1&page_size=50` for every list endpoint; returns ``{count, items}``."""

    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=200)

    def paginate(self, queryset) -> dict:
        start = (self.page - 1) * self.page_size
        return {"count": queryset.count(), "items": list(queryset[start : start + self.page_size])}
