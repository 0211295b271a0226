"""The raw SQL of accounts, each statement a small function with the reason it is SQL."""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from core.rows import columns, from_row


def active_user(user_id: int):
    """The active user with this id, or None (blocked users included: the caller refuses them).

    SQL through a cursor: every API request reads its user, and both the ORM's compile and a
    raw queryset's column mapping cost as much as the query."""
    with connection.cursor() as cursor:
        cursor.execute(_user_select(connection.vendor), [user_id])
        row = cursor.fetchone()
    return None if row is None else from_row(get_user_model(), row)


@cache
def _user_select(vendor: str) -> str:
    """The user row's SELECT by id, every column in field order (core.rows.from_row reads it)."""
    User = get_user_model()
    return f"SELECT {columns(User)} FROM {connection.ops.quote_name(User._meta.db_table)} WHERE id = %s AND is_active"
