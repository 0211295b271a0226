"""Workflows as a reader sees them: the texts of their spec in the request's language.

The database columns keep the English texts (admin search and sort, grouping); pages and the API
show copies whose ``name`` and ``description`` are in the reader's language, with the category's
shown name as ``category_name``. Kept workflows (services.get_active_workflow) are never changed:
each reader gets a copy, so one cache serves every language.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from itertools import groupby
from typing import Any

from django.utils.translation import get_language

from workflows.models import Workflow
from workflows.texts import category_name, text_in


def shown_workflow(workflow: Workflow, language: str | None = None) -> Workflow:
    """A copy of ``workflow`` with its name, description and ``category_name`` in ``language``
    (by default the active one)."""
    language = language or get_language()
    spec = workflow.spec or {}
    shown = copy.copy(workflow)
    shown.name = text_in(spec.get("name"), language) or workflow.name
    shown.description = text_in(spec.get("description"), language) if "description" in spec else workflow.description
    shown.category_name = category_name(spec.get("category", workflow.category), language) or workflow.category
    return shown


def catalogue_groups(workflows: Iterable[Workflow], language: str | None = None) -> list[dict[str, Any]]:
    """``[{"category": key, "category_name": shown name, "workflows": [shown workflows]}]``, groups
    and the workflows in each in the alphabetical order of what the reader sees; workflows without
    a category last."""
    language = language or get_language()
    by_key = sorted(workflows, key=lambda w: w.category or "")
    groups = []
    for key, items in groupby(by_key, key=lambda w: w.category or ""):
        shown = sorted((shown_workflow(w, language) for w in items), key=lambda w: w.name.casefold())
        groups.append({"category": key, "category_name": shown[0].category_name if key else "", "workflows": shown})
    groups.sort(key=lambda g: (not g["category"], g["category_name"].casefold()))
    return groups
