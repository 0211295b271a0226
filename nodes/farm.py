"""The farm as routing reads it: active nodes with their classes, model files and what they hold.

Rows are kept per process and read again only when a node's row was saved (its updated_at
changes), because a node's class list and inventory run to hundreds of names and a submit or
a page needs them all. ``held_models`` is read fresh every time (dispatch writes it without
touching updated_at).
"""

from __future__ import annotations

from collections.abc import Mapping

from nodes import inventory, queries
from nodes.inventory import ModelInputs, NodeView
from nodes.models import ComfyNode

# {node id: (updated_at, class types, model keys, model inputs)}
_kept: dict[int, tuple[object, frozenset, frozenset, ModelInputs]] = {}


def forget_kept() -> None:
    """Read every node afresh (tests: a rolled-back database can hand a node's id to another)."""
    _kept.clear()


def node_views(busy: Mapping[int, int] | None = None) -> list[NodeView]:
    """Every active node (being removed ones excluded). ``busy``: {node id: slots taken}; a node
    not in it counts as free. Two small queries when no row changed since the last call."""
    rows = queries.active_nodes()
    stale = [row.pk for row in rows if _kept.get(row.pk, (None,))[0] != row.updated_at]
    if stale:
        # Kept with the first query's updated_at: a save in between only makes the next call read again.
        updated = {row.pk: row.updated_at for row in rows}
        for pk, class_types, inv, inputs in ComfyNode.objects.filter(pk__in=stale).values_list(
            "pk", "class_types", "inventory", "model_inputs"
        ):
            _kept[pk] = (updated[pk], frozenset(class_types or []), inventory.inventory_keys(inv), inputs or {})
    busy = busy or {}
    views = []
    for pk, name, status, _updated, max_queue, foreign, held in rows:
        if pk not in _kept:
            continue
        _, class_types, models, _inputs = _kept[pk]
        views.append(
            NodeView(
                pk=pk,
                name=name,
                online=status == ComfyNode.Status.ONLINE,
                class_types=class_types,
                models=models,
                free=busy.get(pk, 0) + foreign < max_queue,
                capacity=max_queue - foreign,
                held=frozenset(line for line in held.splitlines() if line),
            )
        )
    return views


def count_busy(views: list[NodeView], busy: Mapping[int, int]) -> list[NodeView]:
    """Set each node's `free` from {node id: our prompts on it}."""
    for view in views:
        view.free = busy.get(view.pk, 0) < view.capacity
    return views


def farm_folders() -> set[str]:
    """The model folders the active nodes' inventories list."""
    return {inventory.split_key(k)[0] for v in node_views() for k in v.models}


def farm_model_inputs(views: list[NodeView]) -> ModelInputs:
    """The union of the given nodes' model-input maps (from the kept rows)."""
    return inventory.merge_model_inputs(_kept[v.pk][3] for v in views if v.pk in _kept)


def model_index(views: list[NodeView]) -> dict[str, list[NodeView]]:
    """{model key: nodes holding that file}."""
    index: dict[str, list[NodeView]] = {}
    for view in views:
        for model_key in view.models:
            index.setdefault(model_key, []).append(view)
    return index
