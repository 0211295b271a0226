"""One UPDATE that sets different values on many rows, written as plain SQL.

Django's `bulk_update` (and `update()` with `Case`/`When`) builds an expression per row and
field and compiles it on every call. For the runner's batches (a dispatch step's claims, the
progress of a few dozen running jobs twice a second) that compiling costs more CPU than the
database spends running the statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from core.rows import columns as model_columns
from core.rows import from_row


def update_each(
    model,
    rows: dict[Any, Sequence[Any]],
    columns: Sequence[str],
    *,
    where: str = "",
    where_params: Sequence[Any] = (),
    set_also: dict[str, Any] | None = None,
) -> int:
    """`rows`: {primary key: (a value for each of `columns`)}; `set_also`: {field: value} for
    every row; `where`: an extra SQL condition (columns by their database names). Values go
    through each field's own conversion, as the ORM's would. Returns how many rows changed."""
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(*_statement(model, rows, columns, where, where_params, set_also))
        return cursor.rowcount


def can_return_updated() -> bool:
    """Does this database answer an UPDATE with its rows (`RETURNING`: PostgreSQL, SQLite ≥ 3.35)?"""
    return connection.vendor in ("postgresql", "sqlite") and connection.features.can_return_columns_from_insert


def update_each_returning(
    model,
    rows: dict[Any, Sequence[Any]],
    columns: Sequence[str],
    *,
    where: str = "",
    where_params: Sequence[Any] = (),
    set_also: dict[str, Any] | None = None,
) -> list:
    """update_each, answered with the changed rows as model instances (every concrete field
    loaded, as the database holds them after the UPDATE), in no particular order. Only where
    `can_return_updated()`."""
    if not rows:
        return []
    sql, params = _statement(model, rows, columns, where, where_params, set_also)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {model_columns(model)}", params)
        found = cursor.fetchall()
    return [from_row(model, row) for row in found]


def _statement(model, rows, columns, where, where_params, set_also) -> tuple[str, list]:
    meta = model._meta
    ids = [meta.pk.get_db_prep_value(pk, connection) for pk in rows]
    assignments: list[str] = []
    params: list[Any] = []
    for position, name in enumerate(columns):
        field = meta.get_field(name)
        assignments.append(
            f"{field.column} = CASE {meta.pk.column} " + " ".join(["WHEN %s THEN %s"] * len(ids)) + " END"
        )
        for db_id, values in zip(ids, rows.values()):
            params += [db_id, field.get_db_prep_value(values[position], connection)]
    for name, value in (set_also or {}).items():
        field = meta.get_field(name)
        assignments.append(f"{field.column} = %s")
        params.append(field.get_db_prep_value(value, connection))
    condition = f"{meta.pk.column} IN ({', '.join(['%s'] * len(ids))})" + (f" AND ({where})" if where else "")
    return f"UPDATE {meta.db_table} SET {', '.join(assignments)} WHERE {condition}", [*params, *ids, *where_params]
