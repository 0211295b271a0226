"""Model instances from rows read with a plain cursor, their values converted as the ORM
converts what it reads (SQLite gives dates, ids and JSON as text, its datetimes naive)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from django.db import DEFAULT_DB_ALIAS, connections

# {connection: {model: (its columns' converters, its fields' attnames)}}, made once per connection and model (a few
# dozen µs): a backend's converters are bound to the connection they came from.
_converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def from_row(model, row: Sequence):
    """An instance of `model` loaded from `row`, which holds every concrete field's column in
    field order (`model._meta.concrete_fields`), as `Model.from_db` loads the ORM's rows."""
    db = connections[DEFAULT_DB_ALIAS]  # this thread's connection (`connection` stands in for it)
    known = _converters.setdefault(db, {})
    if model not in known:
        fields = model._meta.concrete_fields
        cols = [field.get_col(model._meta.db_table) for field in fields]
        converters = [
            (index, col, convert)
            for index, col in enumerate(cols)
            for convert in db.ops.get_db_converters(col) + col.get_db_converters(db)
        ]
        known[model] = (converters, [field.attname for field in fields])
    converters, attnames = known[model]
    values = list(row)
    for index, col, convert in converters:
        values[index] = convert(values[index], col, db)
    return model.from_db(db.alias, attnames, values)
