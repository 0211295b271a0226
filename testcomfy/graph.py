"""Execution order and the node output cache.

``ExecutionList`` ports ComfyUI's staging (``comfy_execution/graph.py``): nodes become ready
when their inputs are done, and among ready nodes output nodes go first, then nodes feeding
an output within two hops. Clients see this order in ``executing`` events, so it is kept.
``OutputCache`` keys outputs by a signature of class, constants, IS_CHANGED and ancestors,
which is what makes an identical resubmission run nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .catalog import Catalog


class DependencyCycleError(Exception):
    """Raised when no pending node is ready (only reachable if validation was bypassed)."""


def is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2


class ExecutionList:
    """Which node runs next; ``is_cached`` says whether a node's output is already known."""

    def __init__(self, prompt: dict[str, Any], catalog: Catalog, is_cached: Callable[[str], bool]):
        self.prompt = prompt
        self.catalog = catalog
        self.is_cached = is_cached
        self.pending: dict[str, bool] = {}
        self.block_count: dict[str, int] = {}
        self.blocking: dict[str, dict[str, dict[int, bool]]] = {}
        self.staged: str | None = None

    def add_node(self, unique_id: str) -> None:
        node_ids = [unique_id]
        links: list[tuple[str, int, str]] = []
        while node_ids:
            uid = node_ids.pop()
            if uid in self.pending:
                continue
            self.pending[uid] = True
            self.block_count[uid] = 0
            self.blocking[uid] = {}
            for value in self.prompt[uid]["inputs"].values():
                if is_link(value):
                    from_id, socket = value
                    if not self.is_cached(from_id):
                        node_ids.append(from_id)
                    links.append((from_id, socket, uid))
        for link in links:
            self._add_strong_link(*link)

    def _add_strong_link(self, from_id: str, socket: int, to_id: str) -> None:
        if not self.is_cached(from_id):
            self.add_node(from_id)
            if to_id not in self.blocking[from_id]:
                self.blocking[from_id][to_id] = {}
                self.block_count[to_id] += 1
            self.blocking[from_id][to_id][socket] = True

    def is_empty(self) -> bool:
        return not self.pending

    def stage(self) -> str:
        """Pick the next node to run (raises DependencyCycleError if none is ready)."""
        ready = [n for n in self.pending if self.block_count[n] == 0]
        if not ready:
            raise DependencyCycleError("Dependency cycle detected")
        self.staged = self._pick(ready)
        return self.staged

    def _is_output(self, node_id: str) -> bool:
        return self.catalog.is_output_node(self.prompt[node_id]["class_type"])

    def _pick(self, ready: list[str]) -> str:
        for node_id in ready:
            if self._is_output(node_id):
                return node_id
        for node_id in ready:
            if any(self._is_output(b) for b in self.blocking[node_id]):
                return node_id
        for node_id in ready:
            for b in self.blocking[node_id]:
                if any(self._is_output(b1) for b1 in self.blocking[b]):
                    return node_id
        return ready[0]

    def complete(self) -> None:
        node_id = self.staged
        assert node_id is not None
        del self.pending[node_id]
        for blocked in self.blocking[node_id]:
            self.block_count[blocked] -= 1
        del self.blocking[node_id]
        self.staged = None


@dataclass
class CacheEntry:
    outputs: tuple[Any, ...]
    ui: dict[str, Any] | None
    size: int


def approx_bytes(value: Any) -> int:
    """Memory held by a node output; broadcast (constant) arrays count as tiny."""
    if isinstance(value, np.ndarray):
        return 64 if 0 in value.strides else value.nbytes
    if isinstance(value, (list, tuple)):
        return sum(approx_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(approx_bytes(v) for v in value.values())
    if hasattr(value, "__dict__"):
        return sum(approx_bytes(v) for v in vars(value).values())
    return 64


class OutputCache:
    """Outputs by signature, kept across prompts until ``limit_bytes`` (oldest dropped first)."""

    def __init__(
        self,
        catalog: Catalog,
        is_changed: Callable[[str, dict[str, Any]], Any],
        enabled: bool = True,
        limit_bytes: int = 512 << 20,
    ):
        self.catalog = catalog
        self.is_changed = is_changed
        self.enabled = enabled
        self.limit_bytes = limit_bytes
        self.entries: OrderedDict[str, CacheEntry] = OrderedDict()
        self.signatures: dict[str, str] = {}
        self.total = 0

    def set_prompt(self, prompt: dict[str, Any]) -> None:
        """Compute this prompt's node signatures (IS_CHANGED is evaluated now, once)."""
        self.signatures = {}
        for node_id in prompt:
            self._signature(prompt, node_id, set())

    def _signature(self, prompt: dict[str, Any], node_id: str, seen: set[str]) -> str:
        if node_id in self.signatures:
            return self.signatures[node_id]
        if node_id in seen or node_id not in prompt:
            return f"missing:{node_id}"
        seen.add(node_id)
        node = prompt[node_id]
        class_type = node["class_type"]
        parts: list[Any] = [class_type, repr(self.is_changed(class_type, node["inputs"]))]
        hidden = self.catalog.raw(class_type).get("input", {}).get("hidden", {}) if self.catalog.has(class_type) else {}
        if any("UNIQUE_ID" in (spec if isinstance(spec, str) else spec[0]) for spec in hidden.values()):
            parts.append(node_id)
        for name in sorted(node["inputs"]):
            value = node["inputs"][name]
            if is_link(value):
                parts.append([name, "link", self._signature(prompt, value[0], seen), value[1]])
            else:
                parts.append([name, value])
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()
        self.signatures[node_id] = digest
        return digest

    def get(self, node_id: str) -> CacheEntry | None:
        if not self.enabled:
            return None
        sig = self.signatures.get(node_id)
        entry = self.entries.get(sig) if sig else None
        if entry is not None:
            self.entries.move_to_end(sig)
        return entry

    def set(self, node_id: str, outputs: tuple[Any, ...], ui: dict[str, Any] | None) -> None:
        if not self.enabled or node_id not in self.signatures:
            return
        sig = self.signatures[node_id]
        size = approx_bytes(outputs)
        old = self.entries.pop(sig, None)
        if old is not None:
            self.total -= old.size
        self.entries[sig] = CacheEntry(outputs, ui, size)
        self.total += size
        while self.total > self.limit_bytes and len(self.entries) > 1:
            _, dropped = self.entries.popitem(last=False)
            self.total -= dropped.size

    def clear(self) -> None:
        self.entries.clear()
        self.total = 0
