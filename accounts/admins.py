"""The site keeps at least one active admin: without one nobody could manage users, nodes or workflows.

An active admin has the ADMIN role, is active and is not blocked. Every way of taking that away
(delete, demote, deactivate, block; API, services and Django Admin alike) asks here first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q

from core.errors import Conflict

User = get_user_model()

ACTIVE_ADMIN = Q(role="ADMIN", is_active=True, is_blocked=False)
# The fields that make a user an active admin, with the value each must have.
ADMIN_STATE = {"role": "ADMIN", "is_active": True, "is_blocked": False}


def is_active_admin(user, changes: Mapping[str, Any] | None = None) -> bool:
    """Whether the user is an active admin, with ``changes`` (field → new value) applied."""
    changes = changes or {}
    return all(changes.get(name, getattr(user, name)) == value for name, value in ADMIN_STATE.items())


def ensure_admins_remain(leaving: Iterable[int], *, field: str) -> None:
    """409 when the users ``leaving`` (pks) are all the active admins there are.

    Locks the active admins' rows until the caller's transaction ends, so that two admins
    demoting each other at the same moment cannot both succeed.
    """
    leaving = set(leaving)
    admins = set(User.objects.select_for_update().filter(ACTIVE_ADMIN).order_by("pk").values_list("pk", flat=True))
    if admins & leaving and not admins - leaving:
        raise Conflict(
            f"{field}: this would leave no active admin; make another user an admin first.",
            errors={field: "would leave no active admin"},
        )


def ensure_change_keeps_an_admin(user, changes: Mapping[str, Any]) -> None:
    """409 when ``changes`` would demote, deactivate or block the last active admin."""
    if user.pk is None or not is_active_admin(user) or is_active_admin(user, changes):
        return
    field = next(name for name, value in ADMIN_STATE.items() if changes.get(name, value) != value)
    ensure_admins_remain([user.pk], field=field)
