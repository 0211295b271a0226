"""The raw SQL of accounts, each statement a small function with the reason it is SQL."""

from __future__ import annotations

from django.contrib.auth import get_user_model


def active_user(user_id: int):
    """The active user with this id, or None (blocked users included: the caller refuses them).

    SQL: every API request reads its user, and the ORM's compile cost as much as the query."""
    User = get_user_model()
    users = User.objects.raw(f"SELECT * FROM {User._meta.db_table} WHERE id = %s AND is_active", [user_id])
    return next(iter(users), None)
