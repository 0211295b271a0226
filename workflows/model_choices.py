"""Choice fields filled from the farm (spec 1.1 ``choices_from``): which model files to offer.

A field offers the files of its folder (matching its glob) present on at least one active node
able to run the workflow (one that has its node classes), each with how many of those nodes are
online now. Read from the nodes' stored inventories, so a file added to a node is offered after
its next read (or an admin's refresh), without a restart.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import get_language

from nodes import inventory
from nodes.farm import node_views
from nodes.inventory import NodeView
from workflows.spec import workflow_spec
from workflows.ui_schema import ui_schema


def offered_models(workflow: Any, views: list[NodeView] | None = None) -> dict[str, list[tuple[str, int]]]:
    """{field id: [(file name, able nodes online that have it)]} for the choices_from fields,
    names sorted. ``workflow``: anything with ``.spec`` and ``.class_types``."""
    spec = workflow_spec(workflow)
    fields = [f for f in spec.inputs if f.type == "choice" and f.choices_from is not None]
    if not fields:
        return {}
    views = node_views() if views is None else views
    needed = frozenset(workflow.class_types or [])
    able = [v for v in views if needed <= v.class_types]
    out: dict[str, list[tuple[str, int]]] = {}
    for fld in fields:
        counts: dict[str, int] = {}
        for view in able:
            for model_key in view.models:
                folder, name = inventory.split_key(model_key)
                if folder == fld.choices_from and inventory.matches(name, fld.match):
                    counts[name] = counts.get(name, 0) + (1 if view.online else 0)
        out[fld.id] = sorted(counts.items())
    return out


def form_schema(workflow: Any, views: list[NodeView] | None = None, language: str | None = None) -> dict[str, Any]:
    """The workflow's ui_schema with its model choices read from the farm, its texts in
    ``language`` (by default the active one: the request's)."""
    return ui_schema(workflow_spec(workflow), offered_models(workflow, views), language or get_language())
