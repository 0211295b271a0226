"""Use cases for workflows: upload (validated), (de)activate, delete, find the active version."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import re
import uuid
from collections.abc import Collection

import pydantic
import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from core.errors import Conflict, InvalidInput, NotFound, listed_lines
from core.redis_client import shared_redis
from nodes.comfy.client import ComfyClient
from nodes.comfy.errors import ComfyError
from nodes.farm import farm_folders
from nodes.models import ComfyNode
from workflows.drafting import draft_spec
from workflows.models import Workflow
from workflows.spec import first_image_field
from workflows.texts import text_key
from workflows.ui_format import PNG_SIGNATURE, workflow_from_png, workflow_title
from workflows.validation import WorkflowInvalid, detect_ui_format, validate_upload, workflow_graph

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


def farm_class_types() -> set[str] | None:
    """The node classes the active GPU servers reported, or None when none reported any yet
    (then the recorded catalogue stands in for them)."""
    classes: set[str] = set()
    for reported in ComfyNode.objects.filter(is_active=True).values_list("class_types", flat=True):
        classes.update(c for c in reported or [] if isinstance(c, str))
    return classes or None


def node_catalog(name: str) -> dict:
    """The node catalogue (``/object_info``) of the GPU node called ``name``, read now: with it, a
    workflow that uses that server's custom nodes can be converted. 400 when it cannot be read."""
    node = ComfyNode.objects.filter(name=name).first()
    if node is None:
        raise InvalidInput(f"node: there is no GPU server named {name!r}.")

    async def fetch() -> dict:
        client = ComfyClient(
            node.base_url,
            auth_header=node.auth_header or None,
            connect_timeout=settings.NODE_CONNECT_TIMEOUT,
            read_timeout=settings.NODE_READ_TIMEOUT,
        )
        async with client:
            return await client.object_info()

    try:
        catalog = asyncio.run(fetch())
    except ComfyError as exc:
        raise InvalidInput(f"node: {name} did not give its node catalogue (/object_info): {exc.message}") from exc
    except (OSError, TimeoutError) as exc:
        raise InvalidInput(f"node: {name} did not give its node catalogue (/object_info): {exc}") from exc
    if not isinstance(catalog, dict) or not catalog:
        raise InvalidInput(f"node: {name} answered /object_info with no node classes.")
    return catalog


def _converted_with(workflow_raw: bytes, node: str) -> tuple[bytes | dict, list[str]]:
    """A UI-format upload converted with a chosen node's catalogue: ``(API graph, warnings)``.
    Other uploads are returned as they are (their checks use the recorded catalogue)."""
    try:
        obj = json.loads(workflow_raw)
    except (ValueError, RecursionError):
        return workflow_raw, []  # validation reports it
    if not detect_ui_format(obj):
        return workflow_raw, []
    catalog = node_catalog(node)
    loaded = workflow_graph(obj, catalog=catalog, available=set(catalog))
    return loaded.graph, loaded.warnings


def unwrap_workflow(workflow_raw: bytes) -> bytes:
    """The workflow JSON of an upload: the file itself, or the workflow a PNG made by ComfyUI
    carries (how most workflows are shared). 400 for a PNG without one."""
    if not workflow_raw.startswith(PNG_SIGNATURE):
        return workflow_raw
    embedded = workflow_from_png(workflow_raw)
    if embedded is None:
        raise InvalidInput(
            "workflow: this PNG image carries no ComfyUI workflow (ComfyUI stores one in the images it saves)."
        )
    return embedded


def draft_for_upload(workflow_raw: bytes, filename: str | None = None, node: str | None = None) -> dict:
    """Propose a spec for an uploaded workflow in either format: ``{"spec", "graph", "warnings",
    "converted", "models"}``, the graph being what the spec binds to and ``models`` the model files
    it says it loads. Its name comes from the workflow's
    subgraph or the file's name. ``node``: convert with that GPU node's catalogue (its custom
    nodes included) rather than the recorded one. 400 when it cannot be read."""
    try:
        obj = json.loads(unwrap_workflow(workflow_raw))
    except ValueError as exc:
        raise InvalidInput(f"workflow: not JSON ({exc}).") from exc
    except RecursionError as exc:  # the decoder recurses once per bracket
        raise InvalidInput("workflow: nested too deeply to be a workflow.") from exc
    try:
        if node:
            catalog = node_catalog(node)
            loaded = workflow_graph(obj, catalog=catalog, available=set(catalog))
        else:
            loaded = workflow_graph(obj, available=farm_class_types())
        name = (workflow_title(obj) if loaded.converted else None) or _name_from_file(filename)
        named = {"name": name[:200], "slug": _slug(name)} if name and _slug(name) else {}
        spec = draft_spec(loaded.graph, exposed=loaded.exposed, **named)
    except WorkflowInvalid as exc:
        raise InvalidInput("workflow: " + " | ".join(describe_errors(exc))) from exc
    graph, warnings, converted = loaded.graph, loaded.warnings, loaded.converted
    # The answer shows a converted graph (its node ids are what the spec binds to); an API-format
    # one is what the admin sent. A value nested deeper than any workflow's is not echoed: the
    # JSON encoder recurses once per bracket.
    shown = graph if converted and _depth(graph) <= MAX_ECHO_DEPTH else None
    return {"spec": spec, "graph": shown, "warnings": warnings, "converted": converted, "models": loaded.models}


MAX_ECHO_DEPTH = 64


def _name_from_file(filename: str | None) -> str | None:
    """ "sdxl_turbo-upscale.json" → "Sdxl turbo upscale"."""
    stem = re.sub(r"\.(json|png)$", "", (filename or "").rsplit("/", 1)[-1], flags=re.I)
    words = re.sub(r"[_\s]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words and words.lower() not in ("workflow", "image") else None


def _slug(name: str) -> str:
    """A slug (lowercase words joined by hyphens, at most 64 characters) for a workflow's name."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    if len(slug) > 64:
        slug = slug[:64].rsplit("-", 1)[0] if "-" in slug[:64] else slug[:64]
    return slug.strip("-")


def _depth(value) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if isinstance(item, dict):
            stack += [(v, depth + 1) for v in item.values()]
        elif isinstance(item, list):
            stack += [(v, depth + 1) for v in item]
    return deepest


def upload_workflow(*, workflow_raw, spec_raw, user=None, activate: bool = True, node: str | None = None) -> Workflow:
    """Validate and store a workflow version (a UI-format workflow is stored converted, with
    ``node``'s catalogue when given). 400 listing every problem; 409 if the version exists."""
    if isinstance(workflow_raw, (bytes, bytearray)):
        workflow_raw = unwrap_workflow(bytes(workflow_raw))
    conversion_warnings: list[str] = []
    try:
        if node and isinstance(workflow_raw, bytes):
            workflow_raw, conversion_warnings = _converted_with(workflow_raw, node)
        validated = validate_upload(workflow_raw, spec_raw, available=farm_class_types(), model_folders=farm_folders())
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
                # The English texts: admin search and sort; readers see their language (display.py).
                name=text_key(spec["name"]),
                names=spec["name"] if isinstance(spec["name"], dict) else {},
                version=spec["version"],
                category=text_key(spec.get("category", "")),
                description=text_key(spec.get("description", "")),
                graph=validated.graph,
                spec=spec,
                class_types=sorted(validated.class_types),
                combo_inputs=validated.combo_inputs,
                requires_mask=validated.requires_mask,
                warnings=conversion_warnings + list(validated.warnings),
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
    versions = Workflow.objects.filter(is_active=True).order_by("slug", "-created_at", "-pk").values_list("slug", "pk")
    for slug, pk in versions:  # only the keys: a version's graph and spec can be large
        newest.setdefault(slug, pk)
    return Workflow.objects.filter(pk__in=newest.values()).order_by("category", "name")


def workflows_taking_an_image() -> list[Workflow]:
    """The catalogue's workflows with a picture input: where a result can be used as input."""
    return [w for w in active_workflows().defer("graph") if first_image_field(w.spec or {})]


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
        with contextlib.suppress(pydantic.ValidationError):  # (then each caller parses it, and fails, itself)
            workflow.parsed_spec  # noqa: B018 (parsed before the copy, so every later copy has it)
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
