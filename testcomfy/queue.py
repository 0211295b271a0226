"""The prompt queue and the history, with ComfyUI's observable quirks.

``queue_pending`` is the raw heap array (not sorted), deleting the last pending item
broadcasts ``status`` twice, the counter moves for every parsed /prompt body, and history
keeps the 5-element queue item plus ``outputs``, ``status`` and ``meta`` in that order.
"""

from __future__ import annotations

import asyncio
import copy
import heapq
import itertools
from collections.abc import Callable
from typing import Any

MAXIMUM_HISTORY_SIZE = 10000
QueueItem = tuple  # (number, prompt_id, prompt, extra_data, outputs_to_execute, sensitive)


class PromptQueue:
    """Pending heap, the running item, history and worker flags; ``on_update`` broadcasts status."""

    def __init__(self, on_update: Callable[[], None]):
        self.on_update = on_update
        self.number = 0  # the /prompt counter
        self.heap: list[tuple[Any, str, int, QueueItem]] = []
        self.running: dict[int, QueueItem] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.flags: dict[str, Any] = {}
        self._seq = itertools.count()
        self._task_counter = itertools.count()
        self.not_empty = asyncio.Event()

    # queue ---------------------------------------------------------------
    def put(self, item: QueueItem) -> None:
        heapq.heappush(self.heap, (item[0], item[1], next(self._seq), item))
        self.on_update()
        self.not_empty.set()

    def get(self) -> tuple[QueueItem, int] | None:
        """Pop the next item to run (None if empty) and mark it running."""
        if not self.heap:
            self.not_empty.clear()
            return None
        item = heapq.heappop(self.heap)[3]
        if not self.heap:
            self.not_empty.clear()
        task_id = next(self._task_counter)
        self.running[task_id] = copy.deepcopy(item)
        self.on_update()
        return item, task_id

    def pending_items(self) -> list[QueueItem]:
        return [entry[3] for entry in self.heap]

    def running_items(self) -> list[QueueItem]:
        return list(self.running.values())

    def remaining(self) -> int:
        return len(self.heap) + len(self.running)

    def wipe(self) -> None:
        self.heap = []
        self.not_empty.clear()
        self.on_update()

    def delete(self, match: Callable[[QueueItem], bool]) -> bool:
        for i, entry in enumerate(self.heap):
            if match(entry[3]):
                if len(self.heap) == 1:
                    self.wipe()
                else:
                    self.heap.pop(i)
                    heapq.heapify(self.heap)
                self.on_update()
                return True
        return False

    # history -------------------------------------------------------------
    def task_done(self, task_id: int, history_result: dict[str, Any], status: dict[str, Any]) -> None:
        item = self.running.pop(task_id)
        if len(self.history) > MAXIMUM_HISTORY_SIZE:
            self.history.pop(next(iter(self.history)))
        entry: dict[str, Any] = {"prompt": list(item[:5]), "outputs": {}, "status": copy.deepcopy(status)}
        entry.update(history_result)
        self.history[item[1]] = entry
        self.on_update()

    def get_history(
        self, prompt_id: str | None = None, max_items: int | None = None, offset: int = -1
    ) -> dict[str, Any]:
        if prompt_id is not None:
            return {prompt_id: copy.deepcopy(self.history[prompt_id])} if prompt_id in self.history else {}
        out: dict[str, Any] = {}
        if offset < 0 and max_items is not None:
            offset = len(self.history) - max_items
        for i, key in enumerate(self.history):
            if i >= offset:
                out[key] = self.history[key]
                if max_items is not None and len(out) >= max_items:
                    break
        return out

    def wipe_history(self) -> None:
        self.history = {}

    def delete_history(self, prompt_id: str) -> None:
        self.history.pop(prompt_id, None)

    # flags (POST /free) --------------------------------------------------
    def set_flag(self, name: str, value: Any) -> None:
        self.flags[name] = value
        self.not_empty.set()  # wake the worker so it applies the flag while idle

    def take_flags(self) -> dict[str, Any]:
        flags, self.flags = self.flags, {}
        return flags
