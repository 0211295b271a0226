"""Use cases for workflows: upload (validated), (de)activate, delete, find the active version."""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Collection

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from core.errors import Conflict, InvalidInput, NotFound, listed_lines
from core.redis_client import shared_redis
from nodes.farm import farm_folders
from workflows.models import Workflow
from workflows.validation import WorkflowInvalid, validate_upload

logger = logging.getLogger("comfyportal.workflows")


def _spec_dict(spec) -> dict:
    return spec.model_dump(mode="json", exclude_none=True) if hasattr(spec, "model_dump") else dict(spec)


def describe_errors(exc: WorkflowInvalid) -> list[str]:
    """Each validation error as one line that names its file and place (the first ones, then how many more)."""
    lines = []
    for error in exc.errors:
        if isinstance(error, str):
            lines.append(error)
            continue
        place = f"{error.file}: {error.path}" if getattr(error, "path", "") else error.file
        lines.append(f"{place}: {error.message}")
    return listed_lines(lines)


def upload_workflow(*, workflow_raw, spec_raw, user=None, activate: bool = True) -> Workflow:
    """Validate and store a workflow version. 400 listing every problem; 409 if the version exists."""
    try:
        validated = validate_upload(workflow_raw, spec_raw, model_folders=farm_folders())
    except WorkflowInvalid as exc:
        lines = describe_errors(exc)
        raise InvalidInput(
            "The workflow was not accepted: " + " | ".join(lines),
            errors={f"error_{i + 1}": line for i, line in enumerate(lines)},
        ) from exc
    spec = _spec_dict(validated.spec)
    if Workflow.objects.filter(slug=spec["slug"], version=spec["version"]).exists():
        raise Conflict(
            f"spec: version {spec['version']} of '{spec['slug']}' exists; raise the version to upload a new one."
        )
    try:
        with transaction.atomic():
            workflow = Workflow.objects.create(
                slug=spec["slug"],
                name=spec["name"],
                version=spec["version"],
                category=spec.get("category", ""),
                description=spec.get("description", ""),
                graph=validated.graph,
                spec=spec,
                class_types=sorted(validated.class_types),
                combo_inputs=validated.combo_inputs,
                requires_mask=validated.requires_mask,
                warnings=list(validated.warnings),
                created_by=user,
                is_active=activate,
            )
            if activate:  # the newest version replaces the older ones in the catalogue
                Workflow.objects.filter(slug=workflow.slug).exclude(pk=workflow.pk).update(is_active=False)
    except IntegrityError as exc:
        raise Conflict(f"spec: version {spec['version']} of '{spec['slug']}' exists.") from exc
    return workflow


def active_workflows() -> QuerySet[Workflow]:
    """The catalogue: the newest active version of every slug."""
    newest = {}
    for workflow in Workflow.objects.filter(is_active=True).order_by("slug", "-created_at", "-pk"):
        newest.setdefault(workflow.slug, workflow.pk)
    return Workflow.objects.filter(pk__in=newest.values()).order_by("category", "name")


# Every submit reads the active version of its workflow. Each process keeps the versions it
# read, valid while a mark in Redis, replaced by every workflow change, stays the same: one
# GET instead of a query that decodes the spec. Without Redis, the database answers each time.
# The mark is random, not a counter: a Redis that restarted empty must not match an old one.
CHANGES_KEY = f"{settings.REDIS_PREFIX}:workflows:changes"
_active: dict[str, tuple[bytes, Workflow]] = {}  # slug → (mark when read, workflow)


def get_active_workflow(slug: str) -> Workflow:
    """The current version of a workflow, without its graph (a big JSON document that only
    building a prompt reads; submitting a job and showing its form need the spec)."""
    changes = _changes_mark()
    cached = _active.get(slug)
    if changes is not None and cached is not None and cached[0] == changes:
        return copy.copy(cached[1])  # a copy: callers may load its graph or change it
    workflow = Workflow.objects.filter(slug=slug, is_active=True).defer("graph").order_by("-created_at", "-pk").first()
    if workflow is None:
        raise NotFound(f"workflow: no active workflow '{slug}'.")
    if changes is not None:  # read before the query: a change after it replaces the mark
        _active[slug] = (changes, copy.copy(workflow))
    return workflow


_versions: dict[int, tuple[bytes, Workflow]] = {}  # id → (mark when read, that version)


def workflow_versions(pks: Collection[int]) -> dict[int, Workflow]:
    """Workflow versions by id (the runner reads one for every job it starts), kept like the
    active ones. One instance is shared by every job of that version: read it, never change it."""
    changes = _changes_mark()
    found: dict[int, Workflow] = {}
    if changes is not None:
        found = {pk: entry[1] for pk in pks if (entry := _versions.get(pk)) is not None and entry[0] == changes}
    missing = [pk for pk in pks if pk not in found]
    if missing:
        for pk, workflow in Workflow.objects.in_bulk(missing).items():
            found[pk] = workflow
            if changes is not None:  # read before the query: a change after it replaces the mark
                _versions[pk] = (changes, workflow)
    return found


def _changes_mark() -> bytes | None:
    try:
        mark = shared_redis().get(CHANGES_KEY)
        if mark is None:
            shared_redis().set(CHANGES_KEY, uuid.uuid4().hex, nx=True)
            mark = shared_redis().get(CHANGES_KEY)
        return mark
    except redis.RedisError:
        return None


def workflows_changed(**kwargs) -> None:
    """Signal receiver (workflow saved or deleted): drop every process's kept versions now, and
    again at commit, so that no process keeps what it read before the change was visible."""
    _bump_changes()
    transaction.on_commit(_bump_changes)


def forget_kept_workflows() -> None:
    """This process reads every workflow afresh (tests: a rolled-back workflow sends no signal)."""
    _active.clear()
    _versions.clear()


def _bump_changes() -> None:
    forget_kept_workflows()
    try:
        shared_redis().set(CHANGES_KEY, uuid.uuid4().hex)
    except redis.RedisError as exc:  # then nobody caches (see _changes_mark) until Redis is back
        logger.warning("could not record a workflow change: %s", exc)


def get_workflow(workflow_id: int) -> Workflow:
    workflow = Workflow.objects.filter(pk=workflow_id).first()
    if workflow is None:
        raise NotFound("Workflow not found.")
    return workflow


def set_active(*, workflow: Workflow, is_active: bool) -> Workflow:
    workflow.is_active = is_active
    workflow.save(update_fields=["is_active", "updated_at"])
    return workflow


def delete_workflow(*, workflow: Workflow) -> None:
    if workflow.jobs.exists():
        raise Conflict(f"'{workflow.slug}' {workflow.version} has jobs; deactivate it instead of deleting.")
    workflow.delete()
