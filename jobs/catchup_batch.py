"""Catch-ups of one user's sockets that wait at the same time, served by one read.

After a web restart a thousand tabs reconnect within seconds, and they belong to far fewer
users (one person keeps several tabs; a program several sockets). Each socket's catch-up
queues for the catch-up threads (jobs.ws_threads); while it waits, the catch-ups other
sockets of the same user ask for join it, and one `catchup.catch_up_many` serves them all:
the same handful of queries as for one, each job presented and encoded once.

Correctness: a socket joins its group before it asks (see jobs.consumers), and a batch
takes no new socket once its read has begun, so each socket's catch-up is read after it
joined, exactly as if it had been served alone.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field

from jobs import ws_threads
from jobs.catchup import CatchUp, catch_up_many


@dataclass
class Delivery:
    """What one socket is sent: its catch-up as encoded WebSocket text messages."""

    catch_up: CatchUp
    messages: list[str]  # the `job` messages, then `synced`


@dataclass
class _Batch:
    requests: list[tuple[int | None, str]] = field(default_factory=list)
    task: asyncio.Future | None = None


class CatchUpBatches:
    def __init__(self):
        self._waiting: dict[int, _Batch] = {}  # user id → the batch not yet being read
        self._lock = threading.Lock()  # the event loop adds to a batch, a thread closes it

    async def catch_up(self, user_id: int, since: int | None, malformed: str = "") -> Delivery:
        with self._lock:
            batch = self._waiting.get(user_id)
            first = batch is None
            if first:
                batch = self._waiting[user_id] = _Batch()
            index = len(batch.requests)
            batch.requests.append((since, malformed))
        if first:
            batch.task = asyncio.ensure_future(ws_threads.catch_up(self._serve, user_id, batch))
            batch.task.add_done_callback(lambda _: self._close(user_id, batch))
        # Shielded: a socket that goes away does not cancel the others' catch-up.
        return (await asyncio.shield(batch.task))[index]

    def _close(self, user_id: int, batch: _Batch) -> list[tuple[int | None, str]]:
        """No socket joins `batch` any more (its read begins, or it failed): later ones start another."""
        with self._lock:
            if self._waiting.get(user_id) is batch:
                del self._waiting[user_id]
            return list(batch.requests)

    def _serve(self, user_id: int, batch: _Batch) -> list[Delivery]:
        """Blocking (database), on a catch-up thread."""
        requests = self._close(user_id, batch)
        results = catch_up_many(user_id, requests)
        encoded: dict[int, str] = {}  # id(job dict) → its message: a job shared by sockets is encoded once
        deliveries = []
        for result in results:
            messages = []
            for job in result.jobs:
                text = encoded.get(id(job))
                if text is None:
                    text = encoded[id(job)] = json.dumps({"type": "job", "job": job})
                messages.append(text)
            messages.append(json.dumps(result.synced_message()))
            deliveries.append(Delivery(result, messages))
        return deliveries


batches = CatchUpBatches()  # one per process: the web's event loop
