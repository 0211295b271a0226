"""Use cases for nodes: add, edit, drain/remove. Changes take effect at the next check and dispatch."""

from __future__ import annotations

import fnmatch
import re
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction

from core.errors import Conflict, InvalidInput, NotFound
from nodes import inventory
from nodes.comfy.client import auth_header_problem
from nodes.health import node_has_running_jobs
from nodes.models import ComfyNode
from nodes.urls_validation import normalize_base_url

EDITABLE = ("name", "base_url", "is_active", "max_queue", "priority", "auth_header")


def get_node(node_id: int) -> ComfyNode:
    node = ComfyNode.objects.filter(pk=node_id, remove_when_drained=False).first()
    if node is None:
        raise NotFound("Node not found.")
    return node


def _clean(changes: dict) -> dict:
    cleaned = dict(changes)
    for name in ("name", "base_url", "is_active", "max_queue", "priority"):
        if name in cleaned and cleaned[name] is None:
            raise InvalidInput(f"{name}: may not be null.", errors={name: "may not be null"})
    if "base_url" in cleaned:
        try:
            cleaned["base_url"] = normalize_base_url(cleaned["base_url"])
        except ValueError as exc:
            raise InvalidInput(f"base_url: {exc}.", errors={"base_url": str(exc)}) from exc
    if "name" in cleaned:
        cleaned["name"] = (cleaned["name"] or "").strip()
        if not cleaned["name"]:
            raise InvalidInput("name: is required.", errors={"name": "is required"})
    if "max_queue" in cleaned and (cleaned["max_queue"] is None or cleaned["max_queue"] < 1):
        raise InvalidInput("max_queue: must be at least 1.", errors={"max_queue": "must be at least 1"})
    if cleaned.get("auth_header") is None and "auth_header" in cleaned:
        cleaned["auth_header"] = ""
    problem = auth_header_problem(cleaned.get("auth_header"))
    if problem:
        raise InvalidInput(f"auth_header: {problem}.", errors={"auth_header": f"{problem}."})
    return cleaned


def create_node(**fields) -> ComfyNode:
    fields = _clean({k: v for k, v in fields.items() if k in EDITABLE})
    if ComfyNode.objects.filter(name=fields["name"]).exists():
        raise Conflict(f"name: a node named '{fields['name']}' exists.", errors={"name": "already exists"})
    try:
        with transaction.atomic():
            return ComfyNode.objects.create(**fields)
    except IntegrityError as exc:
        raise Conflict(f"name: a node named '{fields['name']}' exists.", errors={"name": "already exists"}) from exc


def update_node(*, node: ComfyNode, changes: dict) -> ComfyNode:
    changes = _clean({k: v for k, v in changes.items() if k in EDITABLE})
    if "name" in changes and ComfyNode.objects.filter(name=changes["name"]).exclude(pk=node.pk).exists():
        raise Conflict(f"name: a node named '{changes['name']}' exists.", errors={"name": "already exists"})
    url_changed = "base_url" in changes and changes["base_url"] != node.base_url
    for name, value in changes.items():
        setattr(node, name, value)
    if url_changed:  # a new address is a new server: learn its health and classes afresh
        node.status = ComfyNode.Status.UNKNOWN
        node.consecutive_failures = 0
        node.class_types = []
        node.class_types_refreshed_at = None
        node.system_stats = {}
        node.inventory, node.model_inputs, node.held_models = {}, {}, ""
        node.inventory_read_at, node.inventory_stale, node.inventory_error = None, False, ""
    node.save()
    return node


def delete_node(*, node: ComfyNode) -> str:
    """Remove a node. With jobs running on it, drain instead: they finish, it gets no new ones."""
    running = node_has_running_jobs(node)
    if running:
        node.is_active = False
        node.remove_when_drained = True
        node.save(update_fields=["is_active", "remove_when_drained", "updated_at"])
        return f"Draining: {running} running job(s) will finish on '{node.name}'; it is removed after them and gets no new jobs."
    node.delete()
    return f"Node '{node.name}' removed."


def drain_note(node: ComfyNode) -> str:
    running = node_has_running_jobs(node)
    if not node.is_active and running:
        return f"Disabled: {running} running job(s) will finish; the node gets no new jobs."
    return ""


def register_nodes_from_urls(urls: list[str]) -> list[ComfyNode]:
    """Pre-register COMFY_NODES at start (idempotent: a URL already known is skipped)."""
    created = []
    for raw in urls:
        try:
            url = normalize_base_url(raw)
        except ValueError:
            continue
        if ComfyNode.objects.filter(base_url=url).exists():
            continue
        parts = urlsplit(url)
        base = f"{parts.hostname}-{parts.port or (443 if parts.scheme == 'https' else 80)}"
        name, n = base, 1
        while ComfyNode.objects.filter(name=name).exists():
            n += 1
            name = f"{base}-{n}"
        created.append(ComfyNode.objects.create(name=name, base_url=url))
    return created


DEMO_NODE_NAME = re.compile(r"demo-\d+")


def register_demo_nodes(urls: list[str]) -> list[ComfyNode]:
    """Register `make demo`'s test nodes as demo-1..N, reusing the nodes of an earlier demo run.

    Each run starts its test servers on new ports: demo-i gets the new address (and a fresh
    health and class list), and demo nodes beyond N from a larger earlier run are removed, so a
    demo never shows the dead servers of the runs before it.
    """
    nodes = []
    for number, url in enumerate(urls, start=1):
        name = f"demo-{number}"
        node = ComfyNode.objects.filter(name=name).first()
        if node is None:
            nodes.append(create_node(name=name, base_url=url))
        else:
            nodes.append(update_node(node=node, changes={"base_url": url, "is_active": True}))
    for node in ComfyNode.objects.filter(name__startswith="demo-", remove_when_drained=False):
        if DEMO_NODE_NAME.fullmatch(node.name) and int(node.name.removeprefix("demo-")) > len(urls):
            delete_node(node=node)
    return nodes


def model_files(*, folder: str = "", name: str = "") -> list[dict]:
    """Every model file on the farm with the nodes that have it, by folder then name.

    `folder`: exact; `name`: a glob when it has *, ? or [ (e.g. "sdxl/*"), else a case-blind
    part of the name."""
    files: dict[tuple[str, str], list[ComfyNode]] = {}
    nodes = ComfyNode.objects.filter(remove_when_drained=False).only(
        "name", "status", "is_active", "inventory", "inventory_stale", "held_models"
    )
    for node in nodes:
        for node_folder, names in (node.inventory or {}).items():
            if folder and node_folder != folder:
                continue
            for file_name in names:
                if name and not _name_matches(file_name, name):
                    continue
                files.setdefault((node_folder, file_name), []).append(node)
    out = []
    for (file_folder, file_name), holders in sorted(files.items()):
        model_key = inventory.key(file_folder, file_name)
        out.append(
            {
                "folder": file_folder,
                "name": file_name,
                "nodes_online": sum(n.is_active and n.status == ComfyNode.Status.ONLINE for n in holders),
                "nodes": [
                    {
                        "id": n.pk,
                        "name": n.name,
                        "status": n.status,
                        "is_active": n.is_active,
                        "holds": model_key in n.held_model_keys,
                        "stale": n.inventory_stale,
                    }
                    for n in sorted(holders, key=lambda n: n.name)
                ],
            }
        )
    return out


def _name_matches(file_name: str, wanted: str) -> bool:
    if any(c in wanted for c in "*?["):
        return fnmatch.fnmatchcase(file_name, wanted)
    return wanted.lower() in file_name.lower()


def forget_model_files(node_id: int, keys: list[str], reason: str) -> None:
    """The node refused files its inventory lists (deleted since it was read): drop them now, so
    no job is sent there for them, and read its model list again at the next check."""
    with transaction.atomic():
        node = ComfyNode.objects.select_for_update().filter(pk=node_id).first()
        if node is None:
            return
        gone = set(keys)
        node.inventory = {
            folder: [name for name in names if inventory.key(folder, name) not in gone]
            for folder, names in (node.inventory or {}).items()
        }
        node.inventory_stale = True
        node.inventory_error = reason[:500]
        node.held_models = ""
        node.save()
