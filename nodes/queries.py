"""The raw SQL of nodes, each statement a small function returning plain values (as jobs.queries).

SQL where the ORM's compile costs more than the database's answer, on a path every request of
a kind runs; each function says why in one line. Everything else uses the ORM.
"""

from __future__ import annotations

from typing import NamedTuple

from django.db import connection

from nodes.models import ComfyNode

NODES = ComfyNode._meta.db_table


class ActiveNode(NamedTuple):
    pk: int
    name: str
    status: str
    updated_at: object  # changes whenever the row is saved; only compared with itself (nodes.farm)
    max_queue: int
    foreign_queue: int  # prompts others put on the node
    held_models: str  # model files of the last prompt sent there, one per line


def active_nodes() -> list[ActiveNode]:
    """Every active node not being removed, in the admin's order (priority, then name).

    SQL: every submit and every job form reads it; the ORM spent longer compiling it than the
    database answering."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT id, name, status, updated_at, max_queue, foreign_queue, held_models FROM {NODES}
                WHERE is_active = %s AND remove_when_drained = %s ORDER BY priority DESC, name""",
            [True, False],
        )
        return [ActiveNode(*row) for row in cursor.fetchall()]
