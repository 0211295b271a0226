"""Health checks of nodes: probe over HTTP, then record the result on the row.

`probe()` is pure protocol (async, no database); `check_node()` and `check_all_nodes()` run
probes concurrently, each bounded by its own timeout, so one hanging node never delays
the others.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from nodes import inventory
from nodes.comfy.client import ComfyClient
from nodes.comfy.errors import ComfyError
from nodes.models import ComfyNode
from nodes.signals import node_came_online

# Our prompts carry client ids with this prefix, so a node's queue can be split into ours
# and foreign ones (prompts sent to the node by someone else).
CLIENT_ID_PREFIX = "comfyportal-"


@dataclass
class ProbeResult:
    ok: bool
    error: str = ""
    system_stats: dict[str, Any] = field(default_factory=dict)
    queue_remaining: int = 0
    foreign_queue: int = 0
    class_types: list[str] | None = None  # None = not fetched this time
    seconds: float = 0.0
    # Read with the class list: the model files per folder and which inputs take them
    # (None = not read this time; inventory_error says why when the read failed).
    inventory: dict[str, list[str]] | None = None
    model_inputs: dict | None = None
    inventory_error: str = ""


async def probe(
    base_url: str, *, auth_header: str = "", want_object_info: bool, timeout: float, client: ComfyClient | None = None
) -> ProbeResult:
    """Ask one node /system_stats and /queue (and /object_info when asked). Never raises.

    `client`: a long-lived client of that node to reuse (the runner's); else one just for this.
    """
    started = time.monotonic()
    own = client is None
    if own:
        client = ComfyClient(
            base_url,
            auth_header=auth_header or None,
            connect_timeout=min(settings.NODE_CONNECT_TIMEOUT, timeout),
            read_timeout=timeout,
        )
    try:
        async with asyncio.timeout(timeout * (3 if want_object_info else 2)):
            stats = await client.system_stats(timeout=timeout)
            queue = await client.queue(timeout=timeout)
            object_info = await client.object_info() if want_object_info else None
        result = ProbeResult(
            ok=True,
            system_stats=stats,
            queue_remaining=len(queue.running) + len(queue.pending),
            foreign_queue=queue.foreign_count(CLIENT_ID_PREFIX),
            class_types=sorted(object_info) if object_info is not None else None,
        )
        if object_info is not None:
            await read_inventory(client, object_info, result, timeout=timeout)
        result.seconds = time.monotonic() - started
        return result
    except ComfyError as exc:
        return ProbeResult(ok=False, error=exc.message, seconds=time.monotonic() - started)
    except TimeoutError:
        return ProbeResult(
            ok=False,
            error=f"{base_url} did not answer the health check within {timeout:g} s",
            seconds=time.monotonic() - started,
        )
    except Exception as exc:  # a node must never crash the worker
        return ProbeResult(
            ok=False,
            error=f"unexpected answer from {base_url}: {type(exc).__name__}: {exc}",
            seconds=time.monotonic() - started,
        )
    finally:
        if own:
            await client.aclose()


async def read_inventory(client: ComfyClient, object_info: dict, result: ProbeResult, *, timeout: float) -> None:
    """Read /models and each folder into `result` (a few folders at a time). A failure leaves
    the inventory unread, with the reason: the node keeps its last one, marked stale."""
    try:
        async with asyncio.timeout(timeout * 4):
            folders = await client.model_folders(timeout=timeout)
            wanted = [f for f in folders if isinstance(f, str) and f not in inventory.SKIPPED_FOLDERS and "/" not in f]
            places = asyncio.Semaphore(4)

            async def one(folder: str) -> list:
                async with places:
                    return await client.model_files(folder, timeout=timeout)

            answers = await asyncio.gather(*(one(f) for f in wanted))
    except ComfyError as exc:
        result.inventory_error = f"model list not read: {exc.message}"
        return
    except TimeoutError:
        result.inventory_error = f"model list not read: {client.base_url} did not answer within {timeout * 4:g} s"
        return
    except Exception as exc:  # a node must never crash the worker
        result.inventory_error = f"model list not read: {type(exc).__name__}: {exc}"
        return
    result.inventory = inventory.clean_inventory(wanted, dict(zip(wanted, answers, strict=True)))
    result.model_inputs = inventory.model_inputs(object_info, result.inventory)


def needs_object_info(node: ComfyNode) -> bool:
    """Read the class list and model inventory again: when never read, when the last model read
    failed, when the node was not online (it may have restarted with other files) or by age."""
    if not node.class_types or node.class_types_refreshed_at is None:
        return True
    if node.inventory_stale or node.inventory_read_at is None or node.status != ComfyNode.Status.ONLINE:
        return True
    age = timezone.now() - node.class_types_refreshed_at
    return age > timedelta(seconds=settings.NODE_OBJECT_INFO_EVERY)


def record(node_id: int, base_url: str, result: ProbeResult) -> ComfyNode | None:
    """Store a probe's result on the node (unless its URL changed meanwhile). Returns the node."""
    now = timezone.now()
    came_online = False
    with transaction.atomic():
        node = ComfyNode.objects.select_for_update().filter(pk=node_id).first()
        if node is None or node.base_url != base_url:
            return node  # edited or deleted while we probed: the next check uses the new URL
        node.last_checked_at = now
        if result.ok:
            came_online = node.status != ComfyNode.Status.ONLINE
            if came_online:
                node.held_models = ""  # a restarted ComfyUI holds no model
            node.status = ComfyNode.Status.ONLINE
            node.consecutive_failures = 0
            node.last_seen_at = now
            node.last_error = ""
            node.system_stats = result.system_stats
            node.queue_remaining = result.queue_remaining
            node.foreign_queue = result.foreign_queue
            if result.class_types is not None:
                node.class_types = result.class_types
                node.class_types_refreshed_at = now
            if result.inventory is not None:
                if node.inventory != result.inventory:
                    node.held_models = ""  # restarted or files changed: what it holds is unknown
                node.inventory = result.inventory
                node.model_inputs = result.model_inputs or {}
                node.inventory_read_at = now
                node.inventory_stale = False
                node.inventory_error = ""
            elif result.inventory_error:
                node.inventory_stale = True
                node.inventory_error = result.inventory_error[:500]
        else:
            node.consecutive_failures += 1
            node.last_error = result.error[:2000]
            node.inventory_stale = node.inventory_stale or bool(node.inventory_read_at)
            if node.consecutive_failures >= settings.NODE_OFFLINE_AFTER or node.status == ComfyNode.Status.UNKNOWN:
                node.status = ComfyNode.Status.OFFLINE
        node.save()
    if came_online:
        node_came_online.send(sender=ComfyNode, node_id=node_id)
    return node


def mark_offline(node_id: int, error: str) -> None:
    """A running job found the node dead: take it out of dispatch now, without waiting for checks."""
    ComfyNode.objects.filter(pk=node_id).update(
        status=ComfyNode.Status.OFFLINE,
        last_error=error[:2000],
        consecutive_failures=settings.NODE_OFFLINE_AFTER,
        last_checked_at=timezone.now(),
    )


HEALTH_CONCURRENCY = 8


async def check_nodes_async(
    nodes: list[ComfyNode], *, timeout: float | None = None, db=None, client_for=None
) -> list[ComfyNode | None]:
    """Probe nodes concurrently (HEALTH_CONCURRENCY at a time) and record each result as soon as it comes.

    `db` runs the blocking record step and `client_for(node)` gives a kept-alive client (the
    runner passes its own executor and clients). Probing a big pool all at once would queue
    its work ahead of dispatch on the runner's event loop; a few at a time keeps dispatch
    prompt, and a hung node still holds only one place.
    """
    timeout = timeout or max(1.0, min(5.0, settings.NODE_HEALTH_INTERVAL / 2))
    db = db or (lambda fn, *args: sync_to_async(_closing(fn), thread_sensitive=False)(*args))
    places = asyncio.Semaphore(HEALTH_CONCURRENCY)

    async def one(node: ComfyNode) -> ComfyNode | None:
        async with places:
            result = await probe(
                node.base_url,
                auth_header=node.auth_header,
                want_object_info=needs_object_info(node),
                timeout=timeout,
                client=client_for(node) if client_for else None,
            )
            return await db(record, node.pk, node.base_url, result)

    return list(await asyncio.gather(*(one(node) for node in nodes)))


def _closing(fn):
    """Run `fn` and hand the thread's connection back (to the pool on PostgreSQL)."""

    def call(*args):
        try:
            return fn(*args)
        finally:
            close_old_connections()

    return call


def check_node(node_id: int) -> ComfyNode | None:
    """Health-check one node now and return its fresh state."""
    node = ComfyNode.objects.filter(pk=node_id).first()
    if node is None:
        return None
    return asyncio.run(check_nodes_async([node]))[0]


def refresh_node(node_id: int) -> ComfyNode | None:
    """An admin's "refresh now": read the node's class list and model files at once."""
    ComfyNode.objects.filter(pk=node_id).update(class_types_refreshed_at=None)
    return check_node(node_id)


def check_all_nodes() -> list[ComfyNode | None]:
    """Health-check every active node concurrently; remove drained nodes that were deleted."""
    remove_drained_nodes()
    nodes = list(ComfyNode.objects.filter(is_active=True))
    if not nodes:
        return []
    return asyncio.run(check_nodes_async(nodes))


def remove_drained_nodes() -> None:
    for node in ComfyNode.objects.filter(remove_when_drained=True):
        if not node_has_running_jobs(node):
            node.delete()


def node_has_running_jobs(node: ComfyNode) -> int:
    """How many of our jobs run on the node now (jobs are found by the reverse relation)."""
    related = getattr(node, "jobs", None)
    return related.filter(status="RUNNING").count() if related is not None else 0
