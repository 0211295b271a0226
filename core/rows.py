"""Model instances from rows read with a plain cursor, their values converted as the ORM
converts what it reads (SQLite gives dates, ids and JSON as text, its datetimes naive)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from functools import cache

from django.db import DEFAULT_DB_ALIAS, connection, connections

# {connection: {(model, fields): (its columns' converters, their attnames)}}, made once per connection, model and
# choice of fields (a few dozen µs): a backend's converters are bound to the connection they came from.
_converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fields(model, names: Sequence[str] | None) -> list:
    """`model`'s concrete fields, or those of them named in `names` (attnames), in field order."""
    fields = model._meta.concrete_fields
    return list(fields) if names is None else [field for field in fields if field.attname in names]


def columns(model, alias: str = "", fields: Sequence[str] | None = None) -> str:
    """The SELECT list of `model`'s columns that from_row reads (every concrete field, or the
    attnames in `fields`), in field order, each prefixed with the table `alias` if given."""
    return _columns(connection.vendor, model, alias, None if fields is None else tuple(fields))


@cache  # made on every read otherwise: joining the quoted names cost as much as reading a row
def _columns(vendor: str, model, alias: str, fields: tuple[str, ...] | None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + connection.ops.quote_name(field.column) for field in _fields(model, fields))


def from_row(model, row: Sequence, fields: Sequence[str] | None = None):
    """An instance of `model` loaded from `row`, which holds the columns of `columns(model, …,
    fields)`, as `Model.from_db` loads the ORM's rows; the fields left out are deferred."""
    db = connections[DEFAULT_DB_ALIAS]  # this thread's connection (`connection` stands in for it)
    known = _converters.setdefault(db, {})
    key = (model, None if fields is None else tuple(fields))
    if key not in known:
        chosen = _fields(model, fields)
        cols = [field.get_col(model._meta.db_table) for field in chosen]
        converters = [
            (index, col, convert)
            for index, col in enumerate(cols)
            for convert in db.ops.get_db_converters(col) + col.get_db_converters(db)
        ]
        known[key] = (converters, [field.attname for field in chosen])
    converters, attnames = known[key]
    values = list(row)
    for index, col, convert in converters:
        values[index] = convert(values[index], col, db)
    return model.from_db(db.alias, attnames, values)
