from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Q
from ninja import Schema
from pydantic import Field


class PageParams(Schema):
    """`?page=1&page_size=50` for every list endpoint; returns ``{count, items}``."""

    page: int = Field(1, ge=1, le=100_000)
    page_size: int = Field(50, ge=1, le=200)

    def paginate(self, queryset) -> dict:
        start = (self.page - 1) * self.page_size
        return {"count": queryset.count(), "items": list(queryset[start : start + self.page_size])}


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class KeysetPage:
    """One page of a newest-first list, and the cursors of its neighbours ("" when none)."""

    items: list
    newer: str
    older: str

    @property
    def has_other_pages(self) -> bool:
        return bool(self.newer or self.older)


def keyset_page(queryset, *, size: int, before: str = "", after: str = "") -> KeysetPage:
    """The `size` rows of `queryset` (which has `created_at`) newest first, just older than the
    row `before` names or just newer than `after`'s; the first page without either.

    A deep page costs what the first one does: the rows are found from an index on
    created_at, never counted or skipped (OFFSET reads every row it skips, COUNT every row)."""
    if after and (key := _decode(after)):
        stamp, pk = key
        newer_rows = queryset.filter(Q(created_at__gt=stamp) | Q(created_at=stamp, pk__gt=pk))
        rows = list(newer_rows.order_by("created_at", "pk")[: size + 1])
        if rows:
            more = len(rows) > size
            rows = rows[:size][::-1]
            return KeysetPage(rows, newer=cursor_of(rows[0]) if more else "", older=cursor_of(rows[-1]))
        # nothing newer any more (deleted): the first page
    rows_from = queryset
    key = _decode(before) if before else None
    if key:
        stamp, pk = key
        rows_from = queryset.filter(Q(created_at__lt=stamp) | Q(created_at=stamp, pk__lt=pk))
    rows = list(rows_from.order_by("-created_at", "-pk")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return KeysetPage(
        rows, newer=cursor_of(rows[0]) if key and rows else "", older=cursor_of(rows[-1]) if more and rows else ""
    )


def cursor_of(row) -> str:
    """The cursor of a row: `?before=` it gives the rows older than it."""
    return f"{(row.created_at - EPOCH) // timedelta(microseconds=1)}_{row.pk}"


def _decode(cursor: str):
    """(created_at, pk) from a cursor; None for anything else (the first page is shown)."""
    micros, _, pk = cursor.partition("_")
    try:
        stamp = EPOCH + timedelta(microseconds=int(micros))
        pk = str(uuid.UUID(pk)) if "-" in pk or len(pk) == 32 else int(pk)
    except (ValueError, OverflowError):
        return None
    return stamp, pk
