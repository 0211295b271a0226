"""The raw SQL of accounts, each statement a small function with the reason it is SQL."""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection


def active_user(user_id: int):
    """The active user with this id, or None (blocked users included: the caller refuses them).

    SQL through a cursor: every API request reads its user, and both the ORM's compile and a
    raw queryset's column mapping cost as much as the query."""
    statement, attnames, converters = _user_select(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(statement, [user_id])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, column, functions in converters:
        for convert in functions:
            values[index] = convert(values[index], column, connection)
    return get_user_model().from_db(connection.alias, attnames, values)


@cache
def _user_select(vendor: str):
    """The user row's SELECT by id, its columns' attribute names in that order, and the
    converters the ORM would apply to each column's value (SQLite's datetimes are naive)."""
    User = get_user_model()
    fields = User._meta.concrete_fields
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    statement = f"SELECT {columns} FROM {quote(User._meta.db_table)} WHERE id = %s AND is_active"
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(User._meta.db_table)
        functions = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if functions:
            converters.append((index, column, functions))
    return statement, [field.attname for field in fields], converters
